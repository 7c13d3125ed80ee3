"""``train MODEL``: training set, split, CV/tuning, fit, evaluate, report, register.

The model's labels are the spine (``labels.timestamp`` is the prediction
time), so every feature is computed as of when the model would have been
called. Nothing is written until the version is complete (see registry.py).
"""

from __future__ import annotations

import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from bigml_fs.catalog import FeatureRef
from bigml_fs.compiler.training_query import output_names
from bigml_fs.core.digest import digest
from bigml_fs.core.timeutil import iso, now, parse_time
from bigml_fs.core.types import sql_name
from bigml_fs.errors import BigmlError, DataError, UsageError, did_you_mean
from bigml_fs.spec.schema import CvSpec, ModelSpec
from bigml_fs.training import registry, report
from bigml_fs.training import spine as spine_io
from bigml_fs.training.estimators import estimator_path
from bigml_fs.training.evaluate import confusion, evaluate, objective, permutation_importances
from bigml_fs.training.leakage import check_label_leakage
from bigml_fs.training.manifest import (
    ConfusionMatrix,
    CvRecord,
    FeatureColumn,
    Fingerprints,
    ManifestLabels,
    ModelManifest,
    RowCounts,
    SplitRecord,
    TrainingWindow,
    TuningRecord,
)
from bigml_fs.training.outputs import (
    ANOMALY_SCORE,
    PREDICTION,
    decision_scores,
    has_proba,
    output_columns,
    score,
    thread_limit,
)
from bigml_fs.training.pipeline import build_pipeline, column_kind, frame
from bigml_fs.training.split import Split, random_folds, split_by_time, split_random, time_folds
from bigml_fs.training.training_set import TrainingSet, build_training_set
from bigml_fs.training.tuning import Trial, check_space, cv_score, fit, search

if TYPE_CHECKING:
    from bigml_fs.workspace import Workspace

Progress = Callable[[str], None]


@dataclass
class TrainResult:
    """A registered version: where it is and how it scored."""

    name: str
    version: int
    path: Path
    manifest: ModelManifest
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def metrics(self) -> dict[str, Any]:
        return self.manifest.metrics

    @property
    def report_path(self) -> Path:
        return self.path / registry.REPORT

    @property
    def model_path(self) -> Path:
        return self.path / registry.MODEL_FILE

    def to_dict(self) -> dict[str, Any]:
        m = self.manifest
        return {
            "model": self.name,
            "version": self.version,
            "path": str(self.path),
            "report": str(self.report_path),
            "metrics": m.metrics,
            "params": m.params,
            "rows": m.rows.model_dump(),
            "window": m.window.model_dump(),
            "cv": m.cv.model_dump() if m.cv is not None else None,
            "timings": self.timings,
        }


def train(
    ws: Workspace, model: str, end: Any = None, progress: Progress | None = None, strict: bool = False
) -> TrainResult:
    """Train, evaluate and register a new version of ``model`` (see the module docstring).

    A feature that can read the label warns, or with ``strict`` raises a DataError (``leakage.py``).
    """
    with thread_limit():
        return _train(ws, model, end, progress, strict)


def _train(ws: Workspace, model: str, end: Any, progress: Progress | None, strict: bool) -> TrainResult:
    step = progress or (lambda _text: None)
    catalog = ws.catalog
    if model not in catalog.models:
        raise UsageError(
            f"unknown model '{model}'{did_you_mean(model, catalog.models)}; models are defined in models/*.yaml"
        )
    spec = catalog.models[model]
    refs = catalog.expand(list(spec.features), f"model '{model}'")
    check_label_leakage(catalog, spec, refs, strict)
    timings: dict[str, float] = {}
    end_time = parse_time(end, "--end") if end is not None else None

    step("training set")
    started = time.perf_counter()
    built = _training_table(ws, spec, refs, end_time)
    table = built.data
    assert isinstance(table, pa.Table)
    timings["training_set"] = time.perf_counter() - started
    names = [o.name for o in output_names([(r.view, r.feature) for r in refs], False)]
    features = [
        FeatureColumn(
            ref=str(r),
            view=r.view,
            feature=r.feature,
            column=n,
            type=str(table.schema.field(n).type),
            sql_type=sql_name(table.schema.field(n).type),
            kind=column_kind(n, table.schema.field(n).type),
        )
        for r, n in zip(refs, names, strict=True)
    ]
    data = _prepare(spec, table)
    X, y, times = frame(data.table, features), data.y, data.times
    classes = sorted(np.unique(y).tolist()) if spec.task == "classification" else None
    if classes is not None and len(classes) < 2:
        raise DataError(
            f"model '{model}': the target '{spec.labels.target}' has one class ({classes[0]!r}) in {len(y)} rows; a "
            "classifier needs two or more"
        )

    parts = (
        split_by_time(times, spec.split.test_fraction)
        if spec.split.by == "time"
        else split_random(len(X), spec.split.test_fraction, spec.seed, y if classes else None)
    )
    X_train, X_test = X.iloc[parts.train].reset_index(drop=True), X.iloc[parts.test].reset_index(drop=True)
    y_train = None if y is None else y[parts.train]
    y_test = None if y is None else y[parts.test]
    metric = objective(spec.task, list(spec.metrics), classes is not None and len(classes) == 2, y is not None)
    check_space(spec, features, classes)

    started = time.perf_counter()
    params: dict[str, Any] = {}
    tuning_record = cv_record = None
    cv = spec.cv or (CvSpec(folds=3, by=spec.split.by) if spec.tuning else None)
    if cv is not None:
        train_times = times[parts.train]
        folds = (
            time_folds(train_times, cv.folds)
            if cv.by == "time"
            else random_folds(len(X_train), cv.folds, spec.seed, y_train if classes else None)
        )
        if spec.tuning is not None:
            step(f"tuning ({spec.tuning.method}, {metric})")
            found = search(spec, features, X_train, y_train, folds, metric, classes, step)
            params = found.best_params
            best = found.best
            tuning_record = TuningRecord(
                method=spec.tuning.method,
                metric=metric,
                best_params=params,
                trials=[_trial(t) for t in found.trials],
            )
        else:
            step("cross-validation")
            best = cv_score(spec, features, X_train, y_train, folds, metric, {}, classes)
        assert best is not None
        cv_record = CvRecord(folds=len(folds), by=cv.by, metric=metric, mean=best.score, fold_scores=best.fold_scores)
    timings["cv_tuning"] = time.perf_counter() - started

    step("fit")
    started = time.perf_counter()
    pipeline = fit(build_pipeline(spec, features, params, classes), X_train, y_train, spec.task, model)
    timings["fit"] = time.perf_counter() - started

    step("evaluation")
    started = time.perf_counter()
    metrics = evaluate(pipeline, X_test, y_test, spec.task, spec.seed)
    outputs = score(pipeline, X_test, spec.task)
    importances = permutation_importances(pipeline, X_test, y_test, spec.task, metric, spec.seed)
    timings["evaluation"] = time.perf_counter() - started

    target_type = data.target_type
    manifest = ModelManifest(
        name=model,
        version=None,
        created_at=now().isoformat(),
        task=spec.task,
        description=spec.description,
        estimator=spec.estimator,
        estimator_class=estimator_path(spec),
        params=_jsonable(params),
        estimator_params=_jsonable(pipeline.steps[-1][1].get_params()),
        seed=spec.seed,
        definition=spec.model_dump(mode="json"),
        labels=ManifestLabels(
            source=spec.labels.source,
            target=spec.labels.target,
            timestamp=spec.labels.timestamp,
            target_type=target_type,
        ),
        features=features,
        classes=_jsonable(classes),
        outputs=output_columns(
            spec.task,
            [str(c) for c in classes] if classes else None,
            spec.task == "classification" and has_proba(pipeline),
            sql_name(data.target_arrow) if data.target_arrow is not None and spec.task == "classification" else None,
        ),
        fingerprints=Fingerprints(
            views={r.view: catalog.views[r.view].fingerprint for r in refs},
            labels=_labels_fingerprint(ws, spec),
            features={str(r): catalog.views[r.view].feature_fingerprints[r.feature] for r in refs},
        ),
        training_sql=built.sql(ws.engine.sql_dialect),
        window=_window(times, parts, end_time),
        split=SplitRecord(by=spec.split.by, test_fraction=spec.split.test_fraction),
        rows=RowCounts(total=table.num_rows, **data.dropped, train=len(parts.train), test=len(parts.test)),
        objective=metric,
        metrics=metrics,
        cv=cv_record,
        tuning=tuning_record,
        importances=importances,
        timings={k: round(v, 4) for k, v in timings.items()},
        library_versions=_versions(),
    )
    if classes is not None:
        manifest.confusion_matrix = ConfusionMatrix(**confusion(y_test, outputs[PREDICTION], classes))
    scores = decision_scores(pipeline, X_test) if spec.task == "classification" else None
    plot_data = report.ReportData(
        spec.task,
        y_test,
        outputs.get(PREDICTION),
        scores,
        classes,
        outputs.get(ANOMALY_SCORE),
        times[parts.train],
        times[parts.test],
    )

    step("register")
    model_bytes = registry.dump_model(pipeline)

    def write(directory: Path, number: int) -> None:
        manifest.version = number
        (directory / registry.MODEL_FILE).write_bytes(model_bytes)
        (directory / registry.REPORT).write_text(report.render(manifest, plot_data))
        (directory / registry.MANIFEST).write_text(manifest.to_json())

    version = registry.publish(ws.paths.state_dir, model, write)
    manifest.version = version.number
    return TrainResult(model, version.number, version.path, manifest, timings)


@dataclass
class _Prepared:
    table: pa.Table
    y: np.ndarray | None
    times: np.ndarray
    dropped: dict[str, int]
    target_type: str | None
    target_arrow: pa.DataType | None


def _training_table(ws: Workspace, spec: ModelSpec, refs: list[FeatureRef], end: datetime | None) -> TrainingSet:
    """The model's point-in-time training set (and the plan that ran); with ``end``, only labels at or before it."""
    spine_io.load_labels_spine(ws.engine, ws.catalog, spec, refs, end)
    built = build_training_set(ws.engine, ws.catalog, refs, spec.labels.timestamp)
    assert isinstance(built.data, pa.Table)
    if built.data.num_rows == 0:
        raise DataError(
            f"model '{spec.name}': labels source '{spec.labels.source}' has no rows"
            + (f" at or before {end.isoformat()}" if end else "")
        )
    return built


def _prepare(spec: ModelSpec, table: pa.Table) -> _Prepared:
    """Drop rows without a prediction time (or a target, when supervised); numpy target and times."""
    time_col = table.column(spec.labels.timestamp)
    if pa.types.is_date(time_col.type):
        time_col = time_col.cast(pa.timestamp("s"))
    keep = pc.is_valid(time_col)
    dropped = {
        "dropped_null_time": int(table.num_rows - pc.sum(keep).as_py() if table.num_rows else 0),
        "dropped_null_target": 0,
    }
    target = spec.labels.target
    if target and spec.task in ("classification", "regression"):
        valid_target = pc.is_valid(table.column(target))
        dropped["dropped_null_target"] = int(pc.sum(pc.and_(keep, pc.invert(valid_target))).as_py() or 0)
        keep = pc.and_(keep, valid_target)
    table = table.filter(keep)
    time_col = time_col.filter(keep)
    if table.num_rows < 4:
        raise DataError(
            f"model '{spec.name}': only {table.num_rows} usable training rows (rows need a prediction time and a "
            "target); add labels"
        )
    times = pc.cast(pc.cast(time_col, pa.timestamp("us", tz="UTC")), pa.int64()).to_numpy(zero_copy_only=False)
    y = None
    target_arrow = None
    if target:
        column = table.column(target)
        target_arrow = column.type
        if spec.task == "regression":
            if not (
                pa.types.is_integer(column.type)
                or pa.types.is_floating(column.type)
                or pa.types.is_decimal(column.type)
            ):
                raise DataError(
                    f"model '{spec.name}': regression target '{target}' is {column.type}, not a number; cast it in a "
                    "sql/ model"
                )
            y = column.cast(pa.float64()).to_numpy(zero_copy_only=False)
        elif spec.task == "classification":
            if pa.types.is_floating(column.type):
                raise DataError(
                    f"model '{spec.name}': classification target '{target}' is {column.type}; use integer, boolean or "
                    "text classes (cast it in a sql/ model)"
                )
            y = column.to_numpy(zero_copy_only=False)
        else:
            y = np.asarray(column.to_pylist(), dtype=object)
    return _Prepared(table, y, times, dropped, str(target_arrow) if target_arrow is not None else None, target_arrow)


def _window(times: np.ndarray, parts: Split, end: datetime | None) -> TrainingWindow:
    def text(us: Any) -> str | None:
        return None if us is None else iso(int(us))

    train, test = times[parts.train], times[parts.test]
    return TrainingWindow(
        end=end.isoformat() if end else None,
        train_start=text(train.min()),
        train_end=text(train.max()),
        test_start=text(test.min()),
        test_end=text(test.max()),
        boundary=text(parts.boundary),
    )


def _labels_fingerprint(ws: Workspace, spec: ModelSpec) -> str:
    source = spec.labels.source
    sql = ws.sql_models[source].sql(ws.engine.dialect) if source in ws.sql_models else ""
    return digest([source, ws.catalog.columns.get(source, {}), sql])


def _trial(trial: Trial) -> dict[str, Any]:
    return {"params": _jsonable(trial.params), "score": trial.score, "fold_scores": trial.fold_scores}


def _jsonable(value: Any) -> Any:
    """numpy scalars and odd objects to JSON-able values."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return repr(value)


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for dist in (
        "bigml-fs",
        "scikit-learn",
        "numpy",
        "pandas",
        "pyarrow",
        "skops",
        "imbalanced-learn",
        "optuna",
        "duckdb",
        "sqlglot",
    ):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return out


__all__ = ["BigmlError", "TrainResult", "train"]
