"""`train`, `predict` and `models list|show|promote`: model versions, from training to scoring."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from bigml_fs.cli.app import app, check_model, load_project, models_app
from bigml_fs.cli.output import console, emit_json, err_console, escape, user_errors

JSON = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    return "-" if value is None else str(value)


@app.command()
def train(
    model: Annotated[str, typer.Argument(help="Model name (models/*.yaml).")],
    end: Annotated[
        str | None,
        typer.Option(help="Use only labels whose prediction time is at or before this ISO 8601 time (naive = UTC)."),
    ] = None,
    strict: Annotated[
        bool, typer.Option("--strict", help="Fail, not warn, when a feature can read the model's own label.")
    ] = False,
    as_json: JSON = False,
) -> None:
    """Training set, fit, evaluate and register a new model version.

    Example: bigml-fs train fraud_detector --end 2024-05-01
    """
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    with user_errors(as_json), load_project() as project:
        if as_json:
            result = project.train(model, end=end, strict=strict)
        else:
            columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
            with Progress(*columns, console=err_console, transient=False) as bar:
                task: Any = None

                def step(text: str) -> None:
                    nonlocal task
                    if text.startswith("tuning: trial") and task is not None:
                        bar.update(task, description=f"{model}: {text}")
                        return
                    if task is not None:
                        bar.update(task, completed=1, total=1)
                        bar.stop_task(task)
                    task = bar.add_task(f"{model}: {text}", total=None)

                result = project.train(model, end=end, progress=step, strict=strict)
                if task is not None:
                    bar.update(task, completed=1, total=1)
    if as_json:
        emit_json({"ok": True, **result.to_dict()})
        return
    m = result.manifest
    table = Table(
        title=(
            f"{model} v{result.version} — test part "
            f"({m.rows.test:,} rows after {m.window.boundary or 'a random split'})"
        )
    )
    table.add_column("metric")
    table.add_column("value", justify="right")
    wanted = list(m.definition.get("metrics") or [])
    for name in wanted + [k for k in m.metrics if k not in wanted]:
        if name in m.metrics:
            table.add_row(f"[bold]{name}[/]" if name in wanted else name, _fmt(m.metrics[name]))
    console.print(table)
    if m.cv:
        console.print(f"CV ({m.cv.folds} folds by {m.cv.by}): {m.cv.metric} = {_fmt(m.cv.mean)}")
    if m.tuning:
        console.print(f"Tuning ({m.tuning.method}, {len(m.tuning.trials)} trials): best {m.tuning.best_params}")
    console.print(f"Registered {escape(model)} v{result.version}: {escape(str(result.path))}")
    console.print(f"Report: {escape(str(result.report_path))}")


@app.command()
def predict(
    model: Annotated[str, typer.Argument(help="MODEL (promoted, else latest version) or MODEL@V.")],
    spine: Annotated[Path, typer.Option(help="Spine file (Parquet or CSV): join keys and a time column.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="File to write (Parquet; .csv for CSV).")] = Path(
        "predictions.parquet"
    ),
    in_warehouse: Annotated[
        bool, typer.Option("--in-warehouse", help="Compile the pipeline to SQL and score inside the engine.")
    ] = False,
    strict: Annotated[
        bool, typer.Option("--strict", help="Fail if a feature view changed since the version was trained.")
    ] = False,
    timestamp: Annotated[
        str | None, typer.Option(help="Spine time column (default: event_timestamp, else the only timestamp column).")
    ] = None,
    as_json: JSON = False,
) -> None:
    """Batch scoring: point-in-time features at each spine row, then the model's scores.

    Example: bigml-fs predict fraud_detector --spine spine.parquet -o scores.parquet --in-warehouse
    """
    from bigml_fs.cli.output import status

    with user_errors(as_json), load_project() as project, status(f"Scoring with {model}"):
        check_model(project, model)
        rows = project.predict(
            model, spine, output=output, in_warehouse=in_warehouse, strict=strict, timestamp=timestamp
        )
        version = project.model_version(model)
    where = "in the engine" if in_warehouse else "in Python"
    if as_json:
        emit_json(
            {
                "ok": True,
                "model": version.name,
                "version": version.number,
                "rows": rows,
                "output": str(output),
                "in_warehouse": in_warehouse,
            }
        )
    else:
        console.print(f"Scored {rows:,} rows with {escape(version.label)} {where}; wrote {escape(str(output))}")


def _summary(version: Any, promoted: int | None) -> dict[str, Any]:
    m = version.manifest()
    return {
        "model": version.name,
        "version": version.number,
        "promoted": version.number == promoted,
        "created_at": m.created_at,
        "task": m.task,
        "estimator": m.estimator,
        "rows": m.rows.model_dump(),
        "objective": m.objective,
        "metrics": m.metrics,
        "path": str(version.path),
    }


@models_app.command("list")
def models_list(as_json: JSON = False) -> None:
    """Registered model versions, their main metric and which one is used.

    Example: bigml-fs models list --json
    """
    with user_errors(as_json), load_project() as project:
        rows = []
        for name in project.model_names():
            chosen = project.promoted_version(name)
            versions = project.model_versions(name)
            rows += [_summary(v, chosen) for v in versions]
            in_use = project.model_version(name).number if versions else None
            for row in rows:
                if row["model"] == name:
                    row["in_use"] = row["version"] == in_use
    if as_json:
        emit_json({"ok": True, "versions": rows})
        return
    if not rows:
        console.print("No trained models yet; run `bigml-fs train MODEL`.")
        return
    table = Table(title="model versions")
    for column in ("model", "version", "in use", "trained (UTC)", "train/test rows", "test metric"):
        table.add_column(column, overflow="fold")
    for r in rows:
        objective = r["objective"]
        table.add_row(
            r["model"],
            f"v{r['version']}",
            ("promoted" if r["promoted"] else "latest") if r["in_use"] else "",
            str(r["created_at"])[:16].replace("T", " "),
            f"{r['rows']['train']}/{r['rows']['test']}",
            f"{objective} {_fmt((r['metrics'] or {}).get(objective))}",
        )
    console.print(table)


@models_app.command("show")
def models_show(
    name: Annotated[str, typer.Argument(help="NAME (the version in use) or NAME@V.")],
    as_json: JSON = False,
) -> None:
    """One model version: metrics, parameters, features, lineage (fingerprints, training window).

    Example: bigml-fs models show fraud_detector@v1
    """
    with user_errors(as_json), load_project() as project:
        check_model(project, name)
        version = project.model_version(name)
        m = version.manifest()
        promoted = project.promoted_version(version.name)
    if as_json:
        emit_json(
            {
                "ok": True,
                "path": str(version.path),
                "promoted": promoted == version.number,
                "manifest": json.loads(m.to_json()),
            }
        )
        return
    console.print(
        f"[bold]{escape(version.label)}[/] ({m.task}, {escape(m.estimator_class)}) trained {m.created_at}"
        + (" [green]promoted[/]" if promoted == version.number else "")
    )
    w = m.window
    console.print(
        f"train {w.train_start} .. {w.train_end} ({m.rows.train:,} rows); "
        f"test {w.test_start} .. {w.test_end} ({m.rows.test:,} rows)"
    )
    console.print(f"params: {escape(str(m.params))}")
    table = Table(title="metrics (test part)")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in m.metrics.items():
        table.add_row(key, _fmt(value))
    console.print(table)
    if m.cv:
        console.print(f"CV: {m.cv.metric} = {_fmt(m.cv.mean)} over {m.cv.folds} folds by {m.cv.by}")
    features = Table(title="features")
    for column in ("column", "from", "type", "importance"):
        features.add_column(column)
    importance = {r.feature: r.importance for r in m.importances}
    for f in m.features:
        features.add_row(f.column, f.ref, f.type, _fmt(importance.get(f.column)))
    console.print(features)
    console.print("fingerprints: " + ", ".join(f"{k}={v}" for k, v in m.fingerprints.views.items()))
    console.print(f"report: {escape(str(version.report_path))}")


@models_app.command("promote")
def models_promote(
    ref: Annotated[str, typer.Argument(help="NAME@V to use for predict and serve.")],
    as_json: JSON = False,
) -> None:
    """Make one version the one predict and serve use (instead of the latest).

    Example: bigml-fs models promote fraud_detector@v2
    """
    with user_errors(as_json), load_project() as project:
        check_model(project, ref)
        version = project.promote(ref)
    if as_json:
        emit_json({"ok": True, "model": version.name, "version": version.number})
    else:
        console.print(f"Promoted {escape(version.label)}: predict and serve now use it")
