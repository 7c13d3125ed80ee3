"""Online scoring (``POST /predict/{model}``): online features, then the stored pipeline.

The features are read with ``project.online_features`` (the same values the
``/features`` endpoint returns) using the version's own feature list, so a
later edit of models/*.yaml never changes what a trained version reads.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from bigml_fs.errors import BigmlError
from bigml_fs.scoring.predict import Loaded, load, scores_table
from bigml_fs.training.outputs import ANOMALY_SCORE, PREDICTION, PROBABILITY_PREFIX

if TYPE_CHECKING:
    from bigml_fs.project import Project

_CACHE_ATTR = "_bigml_online_models"


def _cached(project: Project, model: str) -> Loaded:
    """Load a version once per project object and model reference (the server scores many requests)."""
    from bigml_fs.training import registry

    cache: dict[tuple[str, int], Loaded] = project.__dict__.setdefault(_CACHE_ATTR, {})
    version = registry.resolve(project.state_dir, model)
    key = (version.name, version.number)
    if key not in cache:
        cache[key] = load(project, version.label)
    return cache[key]


def predict_online(project: Project, model: str, entities: Any) -> dict[str, Any]:
    """JSON-able: model, version, the online features used, predictions, probabilities (classifiers), anomaly scores."""
    loaded = _cached(project, model)
    manifest = loaded.manifest
    features = manifest["features"]
    full = any(f["column"] != f["feature"] for f in features)
    response = project.online_features([f["ref"] for f in features], entities, full_feature_names=full)
    table = response.to_arrow() if hasattr(response, "to_arrow") else response
    if not isinstance(table, pa.Table):
        raise BigmlError("online_features returned no table")
    table = _rename(table, features, full)
    scores = scores_table(loaded, table)
    out: dict[str, Any] = {
        "model": manifest["name"],
        "version": manifest["version"],
        "features": {f["column"]: [_plain(v) for v in table.column(f["column"]).to_pylist()] for f in features},
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


def _rename(table: pa.Table, features: list[dict[str, str]], full: bool) -> pa.Table:
    """Map the online response's column names onto the version's feature columns."""
    wanted = {(f"{f['view']}__{f['feature']}" if full else f["feature"]): f["column"] for f in features}
    names = [wanted.get(n, n) for n in table.column_names]
    table = table.rename_columns(names)
    missing = [f["column"] for f in features if f["column"] not in names]
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
