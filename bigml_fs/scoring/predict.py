"""Batch scoring: point-in-time features at each spine row, then the model's scores.

In Python, the features come back as Arrow and the stored pipeline scores
them. With ``in_warehouse``, the fitted pipeline is compiled to SQL
(``bigml_fs.scoring.sql``) and the engine scores the training-set relation
itself; both give the columns of ``bigml_fs.training.outputs``, after the
spine's own columns, in spine order.
"""

from __future__ import annotations

import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from sqlglot import exp

from bigml_fs.errors import BigmlError, DataError
from bigml_fs.training import registry
from bigml_fs.training.outputs import PREDICTION, score
from bigml_fs.training.pipeline import frame
from bigml_fs.training.training_set import SpineLike, training_set, write_atomically

if TYPE_CHECKING:
    from bigml_fs.catalog import Catalog
    from bigml_fs.training.manifest import ModelManifest
    from bigml_fs.workspace import Paths, Workspace

log = logging.getLogger("bigml_fs")
ROW = "__row"


class StaleModelError(DataError):
    """A feature the model uses changed since the model version was trained (``--strict``)."""


@dataclass
class Loaded:
    """A resolved model version: its manifest and fitted pipeline."""

    version: registry.Version
    manifest: ModelManifest
    pipeline: Any

    @property
    def refs(self) -> list[str]:
        return self.manifest.refs

    @property
    def columns(self) -> list[str]:
        return self.manifest.columns


def load(paths: Paths, model: str) -> Loaded:
    """``MODEL`` (promoted, else latest) or ``MODEL@V``: manifest and pipeline."""
    version = registry.resolve(paths.state_dir, model)
    return Loaded(version, version.manifest(), version.load_pipeline())


def changed_views(catalog: Catalog, manifest: ModelManifest) -> list[str]:
    """Views whose fingerprint differs from the one recorded at training."""
    views = catalog.views
    recorded = manifest.fingerprints.views
    _require_views(manifest, [v for v in recorded if v not in views])
    return [v for v, fp in recorded.items() if views[v].fingerprint != fp]


def changed_features(catalog: Catalog, manifest: ModelManifest) -> list[str] | None:
    """``view:feature`` of the used features whose fingerprint differs from training; None if none were recorded.

    Versions trained before per-feature fingerprints were recorded have none; ``check_fresh`` then compares
    the views' fingerprints.
    """
    recorded = manifest.fingerprints.features
    if recorded is None:
        return None
    views = catalog.views
    refs = {ref: ref.partition(":") for ref in recorded}
    _require_views(manifest, list(dict.fromkeys(v for v, _, _ in refs.values() if v not in views)))
    gone = [ref for ref, (v, _, f) in refs.items() if f not in views[v].feature_fingerprints]
    if gone:
        raise BigmlError(
            f"model {manifest.name} v{manifest.version} uses feature(s) {', '.join(gone)} that no longer exist; "
            "restore them or train a new version"
        )
    return [ref for ref, fp in recorded.items() if views[refs[ref][0]].feature_fingerprints[refs[ref][2]] != fp]


def _require_views(manifest: ModelManifest, missing: list[str]) -> None:
    if missing:
        raise BigmlError(
            f"model {manifest.name} v{manifest.version} uses feature view(s) {', '.join(missing)} that no longer "
            "exist; restore them or train a new version"
        )


def check_fresh(catalog: Catalog, loaded: Loaded, strict: bool) -> list[str]:
    """Warn (``strict``: raise ``StaleModelError``) when a feature the version uses changed; return what changed.

    Compares the used features' fingerprints, or for versions that recorded none the views' (then any change
    to a used view counts, even to a feature the model does not read).
    """
    changed = changed_features(catalog, loaded.manifest)
    what = "feature(s)"
    if changed is None:
        changed, what = changed_views(catalog, loaded.manifest), "feature view(s)"
    if changed:
        text = (
            f"model {loaded.version.label} was trained on an earlier definition of {what} {', '.join(changed)} "
            f"(fingerprint changed); its features may mean something else now. Train a new version"
        )
        if strict:
            raise StaleModelError(text + " (or drop --strict to score anyway)")
        log.warning(text)
    return changed


def scores_table(loaded: Loaded, features: pa.Table) -> pa.Table:
    """The score columns (``outputs`` contract) for rows holding the model's feature columns."""
    manifest = loaded.manifest
    out = score(loaded.pipeline, frame(features, manifest.features), manifest.task)
    arrays: dict[str, pa.Array] = {}
    for column in manifest.outputs:
        name = column.name
        values = out[name]
        if name == PREDICTION and manifest.task == "classification":
            arrays[name] = _typed(values, manifest.labels.target_type)
        else:
            arrays[name] = pa.array(values, type=pa.float64() if column.type == "DOUBLE" else pa.int64())
    return pa.table(arrays)


def _typed(values: np.ndarray, target_type: str | None) -> pa.Array:
    """Class labels typed like the target (int64 stays int64, bool stays bool, text stays text)."""
    items = [v.item() if hasattr(v, "item") else v for v in values]
    try:
        return pa.array(items, type=pa.type_for_alias(target_type)) if target_type else pa.array(items)
    except (ValueError, TypeError, pa.ArrowInvalid):
        return pa.array(items)


def predict(
    ws: Workspace,
    model: str,
    spine: SpineLike,
    output: str | Path | None = None,
    in_warehouse: bool = False,
    strict: bool = False,
    timestamp: str | None = None,
) -> pa.Table | int:
    """Score every spine row; return Arrow, or write ``output`` (Parquet, or CSV by suffix) and return the row count."""
    loaded = load(ws.paths, model)
    check_fresh(ws.catalog, loaded, strict)
    if in_warehouse:
        return _in_warehouse(ws, loaded, spine, output, timestamp)
    table = training_set(ws, None, loaded.refs, spine, timestamp, False, None)
    assert isinstance(table, pa.Table)
    _check_columns(loaded, table.column_names)
    spine_columns = [c for c in table.column_names if c not in loaded.columns]
    result = table.select(spine_columns)
    scores = scores_table(loaded, table)
    for name, column in zip(scores.column_names, scores.columns, strict=True):
        result = result.append_column(name, column)
    if output is None:
        return result
    return write_table(result, Path(output))


def _check_columns(loaded: Loaded, names: list[str]) -> None:
    missing = [c for c in loaded.columns if c not in names]
    if missing:
        raise BigmlError(
            f"model {loaded.version.label}: the training set lacks feature column(s) {', '.join(missing)}; train a new "
            "version"
        )


def write_table(table: pa.Table, path: Path) -> int:
    """Parquet (or CSV for .csv) written beside the target, then renamed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    try:
        if path.suffix.lower() == ".csv":
            import pyarrow.csv as pacsv

            pacsv.write_csv(table, partial)
        else:
            pq.write_table(table, partial)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return table.num_rows


def scoring_query(loaded: Loaded, source: exp.Expression, passthrough: list[str], dialect: str) -> exp.Select:
    """The engine-side scoring SELECT (helper module ``bigml_fs.scoring.sql``)."""
    from bigml_fs.scoring.sql import compile_pipeline

    return compile_pipeline(loaded.pipeline, source, loaded.columns, loaded.manifest.task, passthrough, dialect)


def _in_warehouse(
    ws: Workspace, loaded: Loaded, spine: SpineLike, output: str | Path | None, timestamp: str | None
) -> pa.Table | int:
    """Training-set relation and scoring both in the engine; only the result leaves it."""
    from bigml_fs.training.training_set import RESULT

    engine = ws.engine
    with tempfile.TemporaryDirectory(dir=_tmp_dir(ws.paths)) as tmp:
        features_file = Path(tmp) / "features.parquet"
        training_set(ws, None, loaded.refs, spine, timestamp, False, features_file)
        names = pq.read_schema(features_file).names
    _check_columns(loaded, names)
    spine_columns = [c for c in names if c not in loaded.columns]
    query = scoring_query(loaded, exp.table_(RESULT, quoted=True), [*spine_columns, ROW], engine.dialect)
    score_names = [c.name for c in loaded.manifest.outputs]
    final = (
        exp.select(*[exp.column(c, quoted=True) for c in spine_columns + score_names])
        .from_(query.subquery("__scored"))
        .order_by(exp.column(ROW, quoted=True))
    )
    if output is None:
        return engine.to_arrow(final)
    path = Path(output)
    if path.suffix.lower() == ".csv":
        return write_table(engine.to_arrow(final), path)
    return write_atomically(engine, final, path)


def _tmp_dir(paths: Paths) -> Path:
    path = paths.tmp
    path.mkdir(parents=True, exist_ok=True)
    return path
