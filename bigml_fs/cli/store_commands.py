"""`plan` and `materialize`: feature tables, the Feast repo and the online store."""

from __future__ import annotations

from bigml_fs.cli.main import app
from bigml_fs.cli.output import user_errors
from bigml_fs.errors import UsageError


def _not_yet(command: str) -> None:
    with user_errors():
        raise UsageError(f"'{command}' is not available in this version of bigml-fs yet; see README.md for what works today")


@app.command()
def plan() -> None:
    """What `materialize` would add, change or drop (not available yet)."""
    _not_yet("plan")


@app.command()
def materialize() -> None:
    """Compute feature tables and load the online store (not available yet)."""
    _not_yet("materialize")
