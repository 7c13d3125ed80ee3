"""`online` and `serve`: online feature values, from the shell and over HTTP."""

from __future__ import annotations

from bigml_fs.cli.main import app
from bigml_fs.cli.output import user_errors
from bigml_fs.errors import UsageError


def _not_yet(command: str) -> None:
    with user_errors():
        raise UsageError(f"'{command}' is not available in this version of bigml-fs yet; see README.md for what works today")


@app.command()
def online() -> None:
    """Online feature values (not available yet)."""
    _not_yet("online")
