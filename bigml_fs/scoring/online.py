"""Online scoring (``POST /predict/{model}``): online features, then the stored pipeline.

The features are read with the store's ``OnlineReader`` (the same values the
``/features`` endpoint returns) using the version's own feature list, so a
later edit of models/*.yaml never changes what a trained version reads. A
serving process keeps one ``ModelCache``: each version is loaded once.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from bigml_fs.errors import BigmlError
from bigml_fs.scoring.predict import Loaded, load, scores_table
from bigml_fs.training import registry
from bigml_fs.training.outputs import ANOMALY_SCORE, PREDICTION, PROBABILITY_PREFIX

if TYPE_CHECKING:
    from bigml_fs.store.online_read import OnlineReader
    from bigml_fs.training.manifest import FeatureColumn
    from bigml_fs.workspace import Paths


class ModelCache:
    """Model versions loaded once per (name, version): a server scores many requests with the same pipeline.

    ``MODEL`` is resolved on every call (a promotion or a new version is seen
    at once); the files of a version never change, so its load is kept.
    """

    def __init__(self, paths: Paths):
        self.paths = paths
        self._loaded: dict[tuple[str, int], Loaded] = {}

    def get(self, model: str) -> Loaded:
        """``MODEL`` (promoted, else latest) or ``MODEL@V``, loaded."""
        version = registry.resolve(self.paths.state_dir, model)
        key = (version.name, version.number)
        if key not in self._loaded:
            self._loaded[key] = load(self.paths, version.label)
        return self._loaded[key]


def predict_online(reader: OnlineReader, models: ModelCache, model: str, entities: Any) -> dict[str, Any]:
    """JSON-able: model, version, the online features used, predictions, probabilities (classifiers), anomaly scores."""
    loaded = models.get(model)
    manifest = loaded.manifest
    features = manifest.features
    full = any(f.column != f.feature for f in features)
    response = reader.read(manifest.refs, entities, full_feature_names=full)
    table = response.to_arrow()
    if not isinstance(table, pa.Table):
        raise BigmlError("online_features returned no table")
    table = _rename(table, features, full)
    scores = scores_table(loaded, table)
    out: dict[str, Any] = {
        "model": manifest.name,
        "version": manifest.version,
        "features": {f.column: [_plain(v) for v in table.column(f.column).to_pylist()] for f in features},
        "predictions": [_plain(v) for v in scores.column(PREDICTION).to_pylist()],
    }
    probability = [c for c in scores.column_names if c.startswith(PROBABILITY_PREFIX)]
    if probability:
        rows = [dict.fromkeys(c.removeprefix(PROBABILITY_PREFIX) for c in probability) for _ in range(scores.num_rows)]
        for c in probability:
            for row, value in zip(rows, scores.column(c).to_pylist(), strict=True):
                row[c.removeprefix(PROBABILITY_PREFIX)] = _plain(value)
        out["probabilities"] = rows
    if ANOMALY_SCORE in scores.column_names:
        out["anomaly_scores"] = [_plain(v) for v in scores.column(ANOMALY_SCORE).to_pylist()]
    return out


def _rename(table: pa.Table, features: list[FeatureColumn], full: bool) -> pa.Table:
    """Map the online response's column names onto the version's feature columns."""
    wanted = {(f"{f.view}__{f.feature}" if full else f.feature): f.column for f in features}
    names = [wanted.get(n, n) for n in table.column_names]
    table = table.rename_columns(names)
    missing = [f.column for f in features if f.column not in names]
    if missing:
        raise BigmlError(
            f"the online store returned no value column for {', '.join(missing)}; run `bigml-fs materialize` first"
        )
    return table


def _plain(value: Any) -> Any:
    """JSON-safe: NaN/inf become null, numpy scalars plain Python."""
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return None
    return value
