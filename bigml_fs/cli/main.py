"""Commands of `bigml-fs`. Each is a few lines over the `Project` facade.

This module is the entry point (``bigml_fs.cli.main:app``): it holds the
project-wide commands and imports the command modules, which register theirs.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated

import typer

from bigml_fs.cli.app import app, check_features, load_project, state
from bigml_fs.cli.output import console, emit_json, escape, status, user_errors


@app.command()
def init(
    directory: Annotated[Path, typer.Argument(help="Where to create the project.")],
    rows: Annotated[int, typer.Option(help="Rows of generated transactions.")] = 5000,
    blank: Annotated[bool, typer.Option("--blank", help="A project with no definitions or data yet.")] = False,
) -> None:
    """Scaffold a runnable example project (definitions and generated data), or a blank one.

    Examples: bigml-fs init myproject && cd myproject && bigml-fs validate; bigml-fs init --blank mine
    """
    from bigml_fs.example.scaffold import scaffold

    with user_errors():
        written = scaffold(directory, rows=rows, blank=blank)
    console.print(
        f"Created project in [bold]{escape(str(directory))}[/] ({len(written)} files). "
        f"Next: cd {escape(str(directory))} && bigml-fs validate"
    )


@app.command("generate-data")
def generate_data(
    rows: Annotated[int, typer.Option(help="Number of transactions.")] = 50_000,
    seed: Annotated[int, typer.Option(help="Random seed; the same seed gives the same data.")] = 7,
    out: Annotated[Path | None, typer.Option(help="Output directory (default: PROJECT/data).")] = None,
    end_day: Annotated[
        datetime | None,
        typer.Option(
            formats=["%Y-%m-%d"], metavar="YYYY-MM-DD", help="Last day of the transactions (default: today, UTC)."
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Generate the example project's data deterministically (Parquet under data/), ending on a given day.

    The transactions span 90 days up to --end-day; the same seed, rows and end day give the same files.

    Example: bigml-fs generate-data --rows 100000 --end-day 2025-01-10
    """
    from bigml_fs.example.generate import generate

    target = out or state.project_dir / "data"
    day = end_day.date() if end_day else datetime.now(timezone.utc).date()
    with status(f"Generating {rows:,} transactions ending {day}"):
        counts = generate(target, rows=rows, seed=seed, end_day=day)
    if as_json:
        emit_json({"ok": True, "directory": str(target), "rows": counts})
        return
    for name, count in counts.items():
        console.print(f"  {name:<14} {count:>10,} rows")
    console.print(f"Wrote {escape(str(target))}")


@app.command()
def validate(as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False) -> None:
    """Load and check every definition and SQL file; report all errors at once.

    Example: bigml-fs validate
    """
    with user_errors(as_json), load_project() as project:
        catalog = project.validate()
        summary = {
            "views": len(catalog.views),
            "models": len(catalog.models),
            "sql_models": len(project.sql_models),
            "sources": len(project.spec.sources),
            "entities": len(project.spec.entities),
        }
    if as_json:
        emit_json({"ok": True, **summary})
        return
    console.print("[green]OK[/] " + ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in summary.items()))


@app.command("compile")
def compile_(
    name: Annotated[str, typer.Argument(help="A sql model, feature view or model.")],
    dialect: Annotated[str | None, typer.Option(help="SQLGlot dialect to print (default: the engine's).")] = None,
    predict: Annotated[
        bool,
        typer.Option("--predict", help="Print a registered model's in-warehouse scoring SQL (NAME or NAME@VERSION)."),
    ] = False,
) -> None:
    """Print the SQL a sql model, a feature view or a model's training set runs.

    Examples: bigml-fs compile payments; bigml-fs compile customer_spend --dialect postgres;
    bigml-fs compile fraud_detector --predict
    """
    with user_errors(), load_project() as project:
        sql = project.compile_scoring(name, dialect) if predict else project.compile(name, dialect)
    typer.echo(sql)


@app.command("training-set")
def training_set(
    model: Annotated[str | None, typer.Argument(help="Model whose labels are the spine.")] = None,
    output: Annotated[Path, typer.Option("--output", "-o", help="Parquet file to write.")] = Path(
        "training_set.parquet"
    ),
    features: Annotated[
        list[str], typer.Option("--features", "-f", help="view:feature or view:*, comma-separated or repeated.")
    ] = [],  # noqa: B006
    spine: Annotated[
        Path | None, typer.Option(help="Spine file (Parquet or CSV) with join keys and a time column.")
    ] = None,
    timestamp: Annotated[
        str | None, typer.Option(help="Spine time column (default: event_timestamp, else the only timestamp column).")
    ] = None,
    full_feature_names: Annotated[
        bool, typer.Option("--full-feature-names", help="Name every feature view__feature.")
    ] = False,
    strict: Annotated[
        bool, typer.Option("--strict", help="Fail, not warn, when a model feature can read its own label.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Point-in-time-correct training data for a model or any spine file.

    Examples: bigml-fs training-set fraud_detector -o train.parquet;
    bigml-fs training-set --features customer_spend:* --spine spine.csv -o out.parquet
    """
    with user_errors(as_json), load_project() as project, status("Building the training set"):
        if features and model is None:
            check_features(project, features)
        rows = project.training_set(
            model=model,
            features=features or None,
            spine=spine,
            timestamp=timestamp,
            full_feature_names=full_feature_names,
            output=output,
            strict=strict,
        )
    if as_json:
        emit_json({"ok": True, "rows": rows, "output": str(output)})
    else:
        console.print(f"Wrote {rows:,} rows to {escape(str(output))}")


# The other capabilities' commands live in their own modules and register on `app` when imported.
from bigml_fs.cli import model_commands, online_commands, serve_commands, store_commands  # noqa: E402

__all__ = ["app", "model_commands", "online_commands", "serve_commands", "state", "store_commands"]
