"""`online`: online feature values from the shell."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from bigml_fs.cli.app import app, check_features, load_project
from bigml_fs.cli.output import console, emit_json, err_console, escape, status, user_errors
from bigml_fs.errors import UsageError

STATUS_STYLE = {"NOT_FOUND": "dim", "OUTSIDE_MAX_AGE": "yellow"}


@app.command()
def online(
    features: Annotated[
        list[str], typer.Option("--features", "-f", help="view:feature or view:*, comma-separated or repeated.")
    ] = [],  # noqa: B006
    entity: Annotated[
        list[str],
        typer.Option("--entity", "-e", help="JOIN_KEY=VALUE; repeat a key for more rows, give each key of the views."),
    ] = [],  # noqa: B006
    entities: Annotated[
        Path | None, typer.Option("--entities", help="Entity rows from a CSV, Parquet or JSON file.")
    ] = None,
    full_feature_names: Annotated[
        bool, typer.Option("--full-feature-names", help="Name every feature view__feature.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Feast feature-server JSON (/get-online-features).")] = False,
) -> None:
    """Online feature values for entity rows, as materialize left them (ttl checked now).

    Examples: bigml-fs online -f customer_spend:* --entity customer_id=1 --entity customer_id=2;
    bigml-fs online -f merchant_profile:category --entities merchants.csv --json
    """
    from bigml_fs.project import entities_from_file, entities_from_pairs

    with user_errors(as_json):
        if not features:
            raise UsageError("give --features view:feature,... (or view:*)")
        if entities is not None and entity:
            raise UsageError("give either --entity k=v options or --entities FILE, not both")
        if entities is None and not entity:
            raise UsageError("give the entity rows: --entity JOIN_KEY=VALUE (repeatable) or --entities FILE")
        rows = entities_from_file(entities) if entities is not None else entities_from_pairs(entity)
        with load_project() as project, status("Reading online features"):
            check_features(project, features)
            response = project.online_features(features, rows, full_feature_names=full_feature_names)
            materialized = bool(project.view_states())
    if not materialized:
        err_console.print(
            "[yellow]warning:[/] nothing is materialized in this project yet, so every value is NOT_FOUND; "
            "run `bigml-fs materialize` first"
        )
    if as_json:
        emit_json(response.to_dict())
        return
    table = Table(
        title="online features", caption="NOT_FOUND: no value for the key; OUTSIDE_MAX_AGE: older than the view's ttl"
    )
    for i, name in enumerate(response.feature_names):
        table.add_column(escape(name), style="bold" if i < response.key_count else None)
    values, statuses = response.values, response.statuses
    for row in range(len(values[0]) if values else 0):
        cells = []
        for col in range(len(values)):
            state = statuses[col][row]
            if state in STATUS_STYLE:
                cells.append(f"[{STATUS_STYLE[state]}]{state}[/]")
            else:
                cells.append(_cell(values[col][row]))
        table.add_row(*cells)
    console.print(table)


def _cell(value: object) -> str:
    """A value for the table (floats to 10 significant digits; --json keeps them exact)."""
    if value is None:
        return "[dim]null[/]"
    if isinstance(value, float):
        return f"{value:.10g}"
    return escape(str(value))
