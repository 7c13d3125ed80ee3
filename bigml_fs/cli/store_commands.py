"""`plan` and `materialize`: feature tables, the Feast repo and the online store."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from bigml_fs.cli.app import app, load_project
from bigml_fs.cli.output import console, emit_json, err_console, escape, user_errors

ACTION_STYLE = {
    "add": "green",
    "recompute": "yellow",
    "update": "cyan",
    "unchanged": "dim",
    "drop": "red",
    "error": "bold red",
}


@app.command()
def plan(
    views: Annotated[list[str] | None, typer.Argument(help="Views to plan (default: all).")] = None,
    end: Annotated[
        str | None, typer.Option(help="State as of this time, ISO 8601 (naive = UTC; default: now).")
    ] = None,
    start: Annotated[str | None, typer.Option(help="Recompute from this time, ISO 8601.")] = None,
    full_refresh: Annotated[bool, typer.Option("--full-refresh", help="Plan a full recompute of every view.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """What `materialize` would add, recompute (and why), update incrementally or drop, per view.

    Example: bigml-fs plan --end 2024-05-01T00:00:00Z
    """
    with user_errors(as_json), load_project() as project:
        result = project.plan(views or None, end=end, full_refresh=full_refresh, start=start)
    if as_json:
        emit_json({"ok": True, **result.to_dict()})
        return
    table = Table(title=f"materialize plan as of {_short(result.end.isoformat())}")
    for column in ("view", "action", "Feast views", "reason"):
        table.add_column(column, overflow="fold")
    for v in result.views:
        style = ACTION_STYLE.get(v.action, "")
        table.add_row(v.view, f"[{style}]{v.action}[/]" if style else v.action, ", ".join(v.parts), escape(v.reason))
    console.print(table)


@app.command()
def materialize(
    views: Annotated[list[str] | None, typer.Argument(help="Views to materialize (default: all).")] = None,
    start: Annotated[
        str | None, typer.Option(help="Recompute rows from this time, ISO 8601 (default: from each view's watermark).")
    ] = None,
    end: Annotated[
        str | None, typer.Option(help="State as of this time, ISO 8601 (naive = UTC; default: now).")
    ] = None,
    full_refresh: Annotated[
        bool, typer.Option("--full-refresh", help="Recompute every selected view in full.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable summary.")] = False,
) -> None:
    """Compute feature tables as of --end, publish them, register them in Feast, load the online store.

    Incremental by default: each view continues from its watermark minus its
    longest window; a changed definition recomputes it in full.

    Examples: bigml-fs materialize; bigml-fs materialize customer_spend --end 2024-05-01T00:00:00Z
    """
    from bigml_fs.project import MaterializeFailed

    report: Any = None
    failed: MaterializeFailed | None = None
    with user_errors(as_json), load_project() as project:
        try:
            report = _run(project, views or None, start, end, full_refresh, quiet=as_json)
        except MaterializeFailed as exc:
            report, failed = exc.report, exc
    if as_json:
        emit_json({**report.to_dict(), **({"error": str(failed)} if failed else {})})
    else:
        _summary(report)
        if failed:
            err_console.print(f"[bold red]error:[/] {escape(str(failed))}", highlight=False)
    if failed:
        raise typer.Exit(failed.exit_code)


def _run(
    project: Any, views: list[str] | None, start: str | None, end: str | None, full_refresh: bool, quiet: bool
) -> Any:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    if quiet:
        return project.materialize(views=views, start=start, end=end, full_refresh=full_refresh)
    columns = (
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=err_console, transient=True) as bar:
        task = bar.add_task("materialize", total=None)

        def progress(event: str, **info: Any) -> None:
            if event == "begin":
                bar.update(task, total=info["total"])
            elif event == "view":
                bar.update(task, description=f"{info['view']}: {info['action']}")
            elif event == "step":
                where = f"{info['view']}: " if info.get("view") else ""
                bar.update(task, description=escape(where + info["text"]))
            elif event == "done":
                r = info["report"]
                mark = "[red]failed[/]" if r.error else "[green]done[/]"
                bar.console.print(f"  {escape(r.view)}: {mark} ({r.action}, {r.total_rows:,} rows, {r.seconds:.2f}s)")
                bar.advance(task)

        return project.materialize(views=views, start=start, end=end, full_refresh=full_refresh, progress=progress)


def _summary(report: Any) -> None:
    table = Table(title=f"materialized as of {_short(report.end.isoformat())} in {report.seconds:.2f}s")
    for column, justify in (
        ("view", "left"),
        ("action", "left"),
        ("rows", "right"),
        ("online", "right"),
        ("s", "right"),
        ("watermark", "left"),
    ):
        table.add_column(
            column,
            justify=justify,  # type: ignore[arg-type]
            no_wrap=column != "watermark",
            overflow="fold",
        )
    for v in report.views:
        style = "bold red" if v.error else ACTION_STYLE.get(v.action, "")
        action = "failed" if v.error else v.action
        table.add_row(
            v.view,
            f"[{style}]{action}[/]" if style else action,
            f"{v.total_rows:,}",
            f"{v.online_rows:,}",
            f"{v.seconds:.2f}",
            _short(v.watermark) if v.watermark else "-",
        )
    console.print(table)
    if report.dropped:
        console.print(f"Dropped: {', '.join(report.dropped)}")
    if report.registry_updated:
        console.print("Feast repo updated: .bigml/feast (FeatureStore(repo_path='.bigml/feast'))")


def _short(iso_time: str) -> str:
    """2024-03-31T00:00:00+00:00 -> 2024-03-31T00:00:00Z (all times here are UTC)."""
    return iso_time.replace("+00:00", "Z")
