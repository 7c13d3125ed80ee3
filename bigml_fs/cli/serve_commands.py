"""`serve`: the HTTP API for online features and predictions."""

from __future__ import annotations

from bigml_fs.cli.main import app
from bigml_fs.cli.output import user_errors
from bigml_fs.errors import UsageError


@app.command()
def serve() -> None:
    """HTTP API for features and predictions (not available yet)."""
    with user_errors():
        raise UsageError("'serve' is not available in this version of bigml-fs yet; see README.md for what works today")
