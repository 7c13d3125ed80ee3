"""The `bigml-fs` application object, its global options and the project they name.

Command modules register on ``app`` from here and ``main.py`` imports them
all, so the imports run one way: main -> commands -> app -> output.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
import typer.core

from bigml_fs.cli.output import setup_logging, user_errors
from bigml_fs.errors import UsageError

if TYPE_CHECKING:
    from bigml_fs.project import Project

_display_type = typer.core.TyperOption.display_type_rich


def _flag_display_type(self: typer.core.TyperOption, ctx: Any) -> str | None:
    """No ``<bool>`` after a flag in the help panels: ``--json`` takes no value (typer's rich help shows one)."""
    return None if self.is_flag else _display_type(self, ctx)


typer.core.TyperOption.display_type_rich = _flag_display_type  # type: ignore[method-assign]

app = typer.Typer(
    name="bigml-fs",
    help="Declarative, SQL-centric feature store and ML-in-warehouse tool.",
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
)
models_app = typer.Typer(help="Registered model versions.", no_args_is_help=True)
app.add_typer(models_app, name="models")


class State:
    """Options of the top-level callback, shared with the commands."""

    def __init__(self) -> None:
        self.project_dir: Path = Path(".")
        self.variables: dict[str, Any] = {}


state = State()


def parse_vars(values: list[str]) -> dict[str, Any]:
    """``--var k=v`` pairs; values are read as YAML scalars (numbers, booleans, text)."""
    import yaml

    out: dict[str, Any] = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--var {item!r}: write --var NAME=VALUE")
        out[key.strip()] = yaml.safe_load(value) if value else ""
    return out


@app.callback()
def main(
    project: Annotated[Path, typer.Option("--project", "-p", help="Project directory (default: current).")] = Path("."),
    var: Annotated[
        list[str], typer.Option("--var", help="Override a project var: --var min_amount=10 (repeatable).")
    ] = [],  # noqa: B006
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only errors on stderr.")] = False,
) -> None:
    """Run in a project directory, or point at one with --project DIR."""
    setup_logging(quiet)
    state.project_dir = project
    with user_errors():
        state.variables = parse_vars(var)


def load_project(in_memory: bool = False) -> Project:
    from bigml_fs.project import Project

    return Project.load(state.project_dir, state.variables, in_memory=in_memory)
