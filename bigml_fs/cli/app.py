"""The `bigml-fs` application object, its global options and the project they name.

Command modules register on ``app`` from here and ``main.py`` imports them
all, so the imports run one way: main -> commands -> app -> output.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
import typer.core

from bigml_fs.cli.output import setup_logging, user_errors
from bigml_fs.errors import BigmlError, UsageError, did_you_mean

if TYPE_CHECKING:
    from bigml_fs.project import Project

_display_type = typer.core.TyperOption.display_type_rich


def _flag_display_type(self: typer.core.TyperOption, ctx: Any) -> str | None:
    """No ``<bool>`` after a flag in the help panels: ``--json`` takes no value (typer's rich help shows one)."""
    return None if self.is_flag else _display_type(self, ctx)


typer.core.TyperOption.display_type_rich = _flag_display_type  # type: ignore[method-assign]


class State:
    """Options of the top-level callback (or given after the command), shared with the commands."""

    def __init__(self) -> None:
        self.project_dir: Path = Path(".")
        self.variables: dict[str, Any] = {}
        self.as_json = False


state = State()

PROJECT_HELP = "Project directory (default: current)."
VAR_HELP = "Override a project var: --var min_amount=10 (repeatable)."
QUIET_HELP = "Only errors on stderr (serve: no access log either)."
JSON_HELP = "Machine-readable output (for commands that have --json)."


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


# The global options every command also takes after its name: `bigml-fs validate --var x=1 -q`.
_SHARED = [
    inspect.Parameter(
        "shared_project",
        inspect.Parameter.KEYWORD_ONLY,
        default=None,
        annotation=Annotated[Path | None, typer.Option("--project", "-p", help=PROJECT_HELP, show_default=False)],
    ),
    inspect.Parameter(
        "shared_var",
        inspect.Parameter.KEYWORD_ONLY,
        default=None,
        annotation=Annotated[list[str] | None, typer.Option("--var", help=VAR_HELP, show_default=False)],
    ),
    inspect.Parameter(
        "shared_quiet",
        inspect.Parameter.KEYWORD_ONLY,
        default=False,
        annotation=Annotated[bool, typer.Option("--quiet", "-q", help=QUIET_HELP)],
    ),
]


def with_shared_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """``func`` taking --project, --var and -q/--quiet after the command name too (and --json before it)."""
    signature = inspect.signature(func, eval_str=True)
    takes_json = "as_json" in signature.parameters

    @functools.wraps(func)
    def command(
        *args: Any,
        shared_project: Path | None = None,
        shared_var: list[str] | None = None,
        shared_quiet: bool = False,
        **kwargs: Any,
    ) -> Any:
        if shared_quiet:
            setup_logging(quiet=True)
        if shared_project is not None:
            state.project_dir = shared_project
        if takes_json:
            kwargs["as_json"] = kwargs["as_json"] or state.as_json
        if shared_var:
            with user_errors(takes_json and kwargs["as_json"]):
                state.variables = {**state.variables, **parse_vars(shared_var)}
        return func(*args, **kwargs)

    params = [*signature.parameters.values(), *_SHARED]
    command.__signature__ = signature.replace(parameters=params)  # type: ignore[attr-defined]
    command.__annotations__ = {p.name: p.annotation for p in params}
    return command


class App(typer.Typer):
    """A typer app whose commands all take the shared options (see ``with_shared_options``)."""

    def command(self, *args: Any, **kwargs: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        register = super().command(*args, **kwargs)

        def decorator(func: Callable[..., Any]) -> Callable[..., Any]:
            register(with_shared_options(func))
            return func

        return decorator


app = App(
    name="bigml-fs",
    help="Declarative, SQL-centric feature store and ML-in-warehouse tool.",
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
)
models_app = App(help="Registered model versions.", no_args_is_help=True)
app.add_typer(models_app, name="models")


@app.callback()
def main(
    project: Annotated[Path, typer.Option("--project", "-p", help=PROJECT_HELP)] = Path("."),
    var: Annotated[list[str], typer.Option("--var", help=VAR_HELP)] = [],  # noqa: B006
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help=QUIET_HELP)] = False,
    as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """Run in a project directory, or point at one with --project DIR (before or after the command)."""
    setup_logging(quiet)
    state.project_dir = project
    state.as_json = as_json
    state.variables = {}
    with user_errors(as_json):
        state.variables = parse_vars(var)


def check_vars(declared: dict[str, Any], given: dict[str, Any]) -> None:
    """Every ``--var NAME`` must name a var declared under ``vars:`` in project.yaml (a usage error otherwise)."""
    for name in given:
        if name not in declared:
            hint = did_you_mean(name, declared)
            known = f"; declared vars: {', '.join(declared)}" if declared and not hint else ""
            raise UsageError(
                f"--var {name}: project.yaml declares no var '{name}'{hint}{known}; declare it under 'vars:' first"
            )


def check_model(project: Project, ref: str) -> None:
    """``MODEL`` or ``MODEL@V`` must name a model that is defined or registered: an unknown name is exit 2."""
    name = ref.partition("@")[0]
    known = sorted({*project.defs.models, *project.model_names()})
    if name not in known:
        raise UsageError(f"unknown model '{name}'{did_you_mean(name, known)}; models are defined in models/*.yaml")


def check_features(project: Project, features: list[str]) -> None:
    """``--features view:feature,...`` must name defined views and features: an unknown name is exit 2."""
    catalog = project.catalog  # a broken project stays a definition error (exit 1)
    try:
        catalog.expand(features)
    except BigmlError as exc:
        raise UsageError(str(exc)) from None


def load_project(in_memory: bool = False) -> Project:
    from bigml_fs.project import Project

    project = Project.load(state.project_dir, state.variables, in_memory=in_memory)
    check_vars(project.spec.vars, state.variables)
    return project
