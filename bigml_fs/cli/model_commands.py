"""`train`, `predict` and `models ...`: model versions, from training to scoring."""

from __future__ import annotations

from typing import Annotated

import typer

from bigml_fs.cli.main import app, models_app
from bigml_fs.cli.output import user_errors
from bigml_fs.errors import UsageError


def _not_yet(command: str) -> None:
    with user_errors():
        raise UsageError(f"'{command}' is not available in this version of bigml-fs yet; see README.md for what works today")


@app.command()
def train(model: Annotated[str, typer.Argument()]) -> None:
    """Train, evaluate and register a model version (not available yet)."""
    _not_yet("train")


@app.command()
def predict(model: Annotated[str, typer.Argument()]) -> None:
    """Batch scoring, in Python or in the engine (not available yet)."""
    _not_yet("predict")


@models_app.command("list")
def models_list() -> None:
    """Registered model versions (not available yet)."""
    _not_yet("models list")


@models_app.command("show")
def models_show(name: Annotated[str, typer.Argument()]) -> None:
    """One model version's metrics and lineage (not available yet)."""
    _not_yet("models show")
