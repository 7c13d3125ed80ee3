"""Online scoring (``POST /predict/{model}``): online features, then the stored pipeline.

The features are read with the store's ``OnlineReader`` (the same values the
``/features`` endpoint returns) using the version's own feature list, so a
later edit of models/*.yaml never changes what a trained version reads. A
serving process keeps one ``ModelCache``: each version is loaded once.

Missing features: the response's ``missing`` has one object per entity row,
``{feature column: status}`` for each of the version's features whose online
status is not PRESENT (``NOT_FOUND``: no value for the key; ``OUTSIDE_MAX_AGE``:
older than the view's ttl), ``{}`` for a complete row. What such a row gets is
the model's ``missing:`` policy as the version was trained with it (its
``manifest.definition``, like the feature list; old versions: ``score``):
``score`` scores it anyway (the imputer fills the nulls), ``null`` gives it null
prediction, probabilities and anomaly score, ``error`` fails the request with
``MissingFeaturesError`` naming the rows and features (HTTP 422).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from bigml_fs.errors import BigmlError, DataError
from bigml_fs.scoring.predict import Loaded, load, scores_table
from bigml_fs.training import registry
from bigml_fs.training.outputs import ANOMALY_SCORE, PREDICTION, PROBABILITY_PREFIX

if TYPE_CHECKING:
    from bigml_fs.store.online.response import OnlineResponse
    from bigml_fs.store.online_read import OnlineReader
    from bigml_fs.training.manifest import FeatureColumn
    from bigml_fs.workspace import Paths


PRESENT = "PRESENT"  # the online status of a value that was found and is fresh
MISSING_POLICIES = ("score", "null", "error")  # ModelSpec.missing
SHOWN_ROWS = 10  # rows a MissingFeaturesError names before "and N more"


class MissingFeaturesError(DataError):
    """Entity rows lack features online and the model's ``missing:`` is ``error`` (HTTP 422)."""


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
    """JSON-able: model, version, the online features used, predictions, probabilities (classifiers), anomaly
    scores, and per row the features missing online with their status (``missing``; see the module docstring).
    """
    loaded = models.get(model)
    manifest = loaded.manifest
    features = manifest.features
    full = any(f.column != f.feature for f in features)
    response = reader.read(manifest.refs, entities, full_feature_names=full)
    table = response.to_arrow()
    if not isinstance(table, pa.Table):
        raise BigmlError("online_features returned no table")
    table = _rename(table, features, full)
    missing = _missing(response, features, full, table.num_rows)
    policy = missing_policy(loaded)
    scores = scores_table(loaded, table)
    if policy == "error" and any(missing):
        raise MissingFeaturesError(_missing_text(loaded, missing))
    blank = [bool(m) for m in missing] if policy == "null" else [False] * table.num_rows
    out: dict[str, Any] = {
        "model": manifest.name,
        "version": manifest.version,
        "features": {f.column: [_plain(v) for v in table.column(f.column).to_pylist()] for f in features},
        "predictions": _blanked(scores.column(PREDICTION).to_pylist(), blank),
    }
    probability = [c for c in scores.column_names if c.startswith(PROBABILITY_PREFIX)]
    if probability:
        rows = [dict.fromkeys(c.removeprefix(PROBABILITY_PREFIX) for c in probability) for _ in range(scores.num_rows)]
        for c in probability:
            for row, value in zip(rows, scores.column(c).to_pylist(), strict=True):
                row[c.removeprefix(PROBABILITY_PREFIX)] = _plain(value)
        out["probabilities"] = [None if b else row for row, b in zip(rows, blank, strict=True)]
    if ANOMALY_SCORE in scores.column_names:
        out["anomaly_scores"] = _blanked(scores.column(ANOMALY_SCORE).to_pylist(), blank)
    out["missing"] = missing
    return out


def missing_policy(loaded: Loaded) -> str:
    """The version's ``missing:`` (from the definition it was trained with; ``score`` before the key existed)."""
    policy = loaded.manifest.definition.get("missing", "score")
    if policy not in MISSING_POLICIES:
        raise BigmlError(
            f"model {loaded.version.label} records missing: {policy!r}; expected one of {', '.join(MISSING_POLICIES)}"
        )
    return str(policy)


def _missing(response: OnlineResponse, features: list[FeatureColumn], full: bool, rows: int) -> list[dict[str, str]]:
    """Per entity row, ``{feature column: status}`` of the version's features whose status is not PRESENT."""
    wanted = {(f"{f.view}__{f.feature}" if full else f.feature): f.column for f in features}
    out: list[dict[str, str]] = [{} for _ in range(rows)]
    for name, statuses in zip(response.feature_names, response.statuses, strict=True):
        column = wanted.get(name)
        if column is None:
            continue  # a join key
        for row, status in zip(out, statuses, strict=True):
            if status != PRESENT:
                row[column] = status
    return out


def _missing_text(loaded: Loaded, missing: list[dict[str, str]]) -> str:
    rows = [(i, m) for i, m in enumerate(missing) if m]
    shown = "; ".join(
        f"row {i}: " + ", ".join(f"{column} {status}" for column, status in m.items()) for i, m in rows[:SHOWN_ROWS]
    )
    more = f"; and {len(rows) - SHOWN_ROWS} more row(s)" if len(rows) > SHOWN_ROWS else ""
    return (
        f"model {loaded.version.label} (missing: error) cannot score {len(rows)} of {len(missing)} entity row(s) "
        f"whose features are not online: {shown}{more}. Materialize them (`bigml-fs materialize`), check the entity "
        "keys, or set the model's missing: to score or null and train a new version"
    )


def _blanked(values: list[Any], blank: list[bool]) -> list[Any]:
    return [None if b else _plain(v) for v, b in zip(values, blank, strict=True)]


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
