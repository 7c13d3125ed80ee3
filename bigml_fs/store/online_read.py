"""Online feature values for entity rows, with Feast's statuses and JSON.

``online_features`` resolves ``view:feature`` / ``view:*``, groups the
features by Feast view (store/naming.py: a view with both kinds of features is
two Feast views), casts the entity values to each view's key types, and reads
all entities of one Feast view in one round trip to the store. Statuses are
Feast's: PRESENT, NOT_FOUND (no value for the key) and OUTSIDE_MAX_AGE (a
latest-value feature older than its view's ttl at request time, returned as
null, unlike Feast issue #6821). Window aggregates are as of the last
materialize T, which their event timestamps carry.

``OnlineResponse.to_dict()`` is exactly the JSON of Feast's feature server
``/get-online-features``; it is built from plain lists (no protobuf), so 100
entities cost well under a millisecond.
"""

from __future__ import annotations

import base64
import math
import threading
import time
import weakref
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from bigml_fs.catalog import FeatureRef, ResolvedView
from bigml_fs.compiler.training_query import output_names
from bigml_fs.errors import DataError, UsageError, did_you_mean
from bigml_fs.store import feast_types as ft
from bigml_fs.store.naming import FeastPart, part_of

PRESENT, NOT_FOUND, OUTSIDE_MAX_AGE = "PRESENT", "NOT_FOUND", "OUTSIDE_MAX_AGE"
EPOCH_TEXT = "1970-01-01T00:00:00Z"
_TEXTS: dict[int | None, str] = {}  # timestamp texts already formatted (materialize times repeat a lot)
TS = pa.timestamp("us", tz="UTC")


def timestamp_text(micros: int | None) -> str:
    """A time as Feast's server writes it (RFC 3339, Z, no / 3 / 6 fraction digits)."""
    if not micros:
        return EPOCH_TEXT
    seconds, frac = divmod(micros, 1_000_000)
    base = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
    if frac == 0:
        return base + "Z"
    if frac % 1000 == 0:
        return f"{base}.{frac // 1000:03d}Z"
    return f"{base}.{frac:06d}Z"


def _json_float(value: float) -> float | str:
    if math.isfinite(value):
        return value
    return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")


def _json_values(array: pa.Array) -> list:
    """Values as Feast's JSON carries them: timestamps as int seconds, bytes as base64, non-finite floats as text."""
    t = array.type
    if pa.types.is_timestamp(t):
        micros = array.cast(pa.int64()).to_pylist()
        return [None if m is None else (m // 1_000_000 if m >= 0 else -((-m) // 1_000_000)) for m in micros]
    values = array.to_pylist()
    if pa.types.is_floating(t):
        return [v if v is None or math.isfinite(v) else _json_float(v) for v in values]
    if pa.types.is_binary(t) or pa.types.is_large_binary(t):
        return [None if v is None else base64.b64encode(v).decode("ascii") for v in values]
    return values


@dataclass
class OnlineResponse:
    """Online values: one column per join key, then per feature (like Feast's OnlineResponse)."""

    feature_names: list[str]
    arrays: list[pa.Array]
    statuses: list[list[str]]
    event_micros: list[list[int | None]]  # UTC microseconds; None where there is no event time
    key_count: int = 0  # how many leading columns are join keys

    @property
    def values(self) -> list[list[Any]]:
        return [a.to_pylist() for a in self.arrays]

    @property
    def event_timestamps(self) -> list[list[datetime | None]]:
        return [pa.array(t, pa.int64()).cast(TS).to_pylist() for t in self.event_micros]

    def column(self, name: str) -> pa.Array:
        return self.arrays[self.feature_names.index(name)]

    def to_dict(self) -> dict[str, Any]:
        """Feast's feature-server ``/get-online-features`` JSON."""
        cache = _TEXTS
        if len(cache) > 100_000:
            cache.clear()
        results = []
        for array, statuses, times in zip(self.arrays, self.statuses, self.event_micros, strict=True):
            texts = []
            for t in times:
                text = cache.get(t)
                if text is None:
                    text = cache[t] = timestamp_text(t)
                texts.append(text)
            results.append({"values": _json_values(array), "statuses": statuses, "event_timestamps": texts})
        return {"metadata": {"feature_names": list(self.feature_names)}, "results": results}

    to_feast_json = to_dict

    def to_arrow(self, include_statuses: bool = False) -> pa.Table:
        """Join keys and features as columns; with ``include_statuses`` also ``<name>__status`` per feature."""
        columns: dict[str, pa.Array] = dict(zip(self.feature_names, self.arrays, strict=True))
        if include_statuses:
            for name, statuses in zip(self.feature_names[self.key_count :], self.statuses[self.key_count :], strict=True):
                columns[f"{name}__status"] = pa.array(statuses, pa.string())
        return pa.table(columns)

    def to_pandas(self, include_statuses: bool = False) -> Any:
        return self.to_arrow(include_statuses).to_pandas()


# --- entity rows --------------------------------------------------------------


def entity_table(entities: Any) -> dict[str, Any]:
    """Entity rows as {column: list or Arrow array} from a dict of lists, Arrow or pandas."""
    if isinstance(entities, pa.Table):
        return {name: entities.column(name) for name in entities.column_names}
    if type(entities).__module__.startswith("pandas"):
        table = pa.Table.from_pandas(entities, preserve_index=False)
        return {name: table.column(name) for name in table.column_names}
    if isinstance(entities, dict):
        out: dict[str, Any] = {}
        for name, values in entities.items():
            if isinstance(values, (str, bytes)) or not hasattr(values, "__len__"):
                values = [values]
            out[str(name)] = values
        return out
    if isinstance(entities, list) and all(isinstance(r, dict) for r in entities):  # Feast's entity_rows
        names = list(dict.fromkeys(k for r in entities for k in r))
        return {n: [r.get(n) for r in entities] for n in names}
    raise UsageError("entities must be a dict of join key -> list of values, a list of dicts, an Arrow table or a pandas DataFrame")


def cast_key(name: str, values: Any, ftype: ft.FeastType) -> pa.Array:
    """Entity values of one join key in the key's Arrow type; a wrong type names the key and the expected type."""
    expected = {"int32": "an integer (int32)", "int64": "an integer (int64)", "string": "a string", "bytes": "bytes"}[ftype.name]
    try:
        array = values if isinstance(values, (pa.Array, pa.ChunkedArray)) else pa.array(list(values))
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, OverflowError):
        bad = next((v for v in values if v is not None and type(v) is not type(next(x for x in values if x is not None))), None)
        raise DataError(f"entity key '{name}' must be {expected}; got mixed values such as {bad!r}") from None
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if (pa.types.is_boolean(array.type) and ftype.name != "string") or pa.types.is_timestamp(array.type) or pa.types.is_date(array.type):
        raise DataError(f"entity key '{name}' must be {expected}; got {array.type} values such as {next((v for v in array.to_pylist() if v is not None), None)!r}")
    if array.type == ftype.arrow or pa.types.is_null(array.type):
        return array.cast(ftype.arrow)
    try:
        return array.cast(ftype.arrow)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        bad = _first_bad(array, ftype)
        raise DataError(f"entity key '{name}' must be {expected}; got {bad!r}") from None


def _first_bad(array: pa.Array, ftype: ft.FeastType) -> Any:
    for value in array.to_pylist():
        if value is None:
            continue
        try:
            pa.array([value]).cast(ftype.arrow)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
            return value
    return array[0].as_py() if len(array) else None


def _key_type_sql(view: ResolvedView, key: str) -> ft.FeastType:
    t = ft.feast_type_from_sql(view.columns[key], f"join key '{key}' of view '{view.name}'")
    if not t.key_ok:
        raise DataError(f"join key '{key}' of view '{view.name}' has type {view.columns[key]}; Feast entity keys must be integers or strings")
    return t


# --- feature types --------------------------------------------------------------

_schema_cache: dict[tuple[str, float], pa.Schema] = {}


_types_cache: dict[tuple[str, str, int], dict[str, ft.FeastType]] = {}


def feature_types(project: Any, part: FeastPart) -> dict[str, ft.FeastType]:
    """The Feast type of each feature of ``part``: from the published table, else from the definition."""
    schema = _published_schema(project, part.name)
    key = (part.view.fingerprint, part.name, id(schema))
    cached = _types_cache.get(key)
    if cached is None:
        cached = _types_cache[key] = _feature_types(part, schema)
    return cached


def _feature_types(part: FeastPart, schema: pa.Schema | None) -> dict[str, ft.FeastType]:
    out: dict[str, ft.FeastType] = {}
    for feature in part.features:
        if schema is not None and feature.name in schema.names:
            try:
                out[feature.name] = ft.feast_type(schema.field(feature.name).type)
                continue
            except DataError:
                pass
        guess = _defined_type(part.view, feature)
        if guess is not None:
            out[feature.name] = guess
    return out


def _published_schema(project: Any, part_name: str) -> pa.Schema | None:
    try:
        from bigml_fs.store.state import current_dir

        run = current_dir(project)
    except Exception:
        return None
    if run is None:
        return None
    path: Path = run / f"{part_name}.parquet"
    try:
        key = (str(path), path.stat().st_mtime)
    except OSError:
        return None
    if key not in _schema_cache:
        _schema_cache[key] = pq.read_schema(path)
    return _schema_cache[key]


def _defined_type(view: ResolvedView, feature: Any) -> ft.FeastType | None:
    agg = getattr(feature, "agg", None)
    if agg in ("count", "count_distinct"):
        return ft.INT64
    if agg in ("sum", "avg", "stddev", "variance"):
        return ft.FLOAT64
    column = (feature.expr or feature.name) if not agg or feature.expr else None
    if column in view.columns:
        try:
            return ft.feast_type_from_sql(view.columns[column])
        except DataError:
            return None
    return None


# --- stores per project -------------------------------------------------------------

_stores: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_stores_lock = threading.Lock()


def project_store(project: Any) -> Any:
    """The project's online store, opened once per Project object and reused by every read."""
    with _stores_lock:
        store = _stores.get(project)
        if store is None:
            from bigml_fs.store.online import open_store

            store = _stores[project] = open_store(project)
        return store


# --- the read -------------------------------------------------------------------------


def online_features(project: Any, features: list[str], entities: Any, full_feature_names: bool = False, now: datetime | None = None, store: Any = None) -> OnlineResponse:
    """Online values of ``features`` for each entity row, ttl checked against ``now`` (default: the current time)."""
    catalog = project.catalog
    refs: list[FeatureRef] = catalog.expand(list(features))
    rows = entity_table(entities)
    views = {r.view: catalog.views[r.view] for r in refs}
    needed = list(dict.fromkeys(k for v in views.values() for k in v.keys))
    missing = [k for k in needed if k not in rows]
    if missing:
        given = ", ".join(rows) or "none"
        hints = "".join(did_you_mean(k, rows) for k in missing)
        raise DataError(f"entities lack the join key(s) {', '.join(missing)} needed by {', '.join(views)}{hints}; given: {given}")
    lengths = {k: len(rows[k]) for k in needed}
    if len(set(lengths.values())) > 1:
        raise DataError(f"entity key columns have different lengths: {', '.join(f'{k}={n}' for k, n in lengths.items())}")
    n = next(iter(lengths.values())) if lengths else 0
    now_us = _micros(now or datetime.now(timezone.utc))
    store = store or project_store(project)

    # group the requested features by Feast view, keeping request order within each
    by_part: dict[str, tuple[FeastPart, list[str]]] = {}
    for ref in refs:
        part = part_of(views[ref.view], ref.feature)
        by_part.setdefault(part.name, (part, []))[1].append(ref.feature)

    key_arrays: dict[str, pa.Array] = {}
    results: dict[tuple[str, str], tuple[pa.Array, list[str], list[int | None]]] = {}
    for part, names in by_part.values():
        view = part.view
        keys = pa.table({k: cast_key(k, rows[k], _key_type_sql(view, k)) for k in view.keys})
        for k in view.keys:
            key_arrays.setdefault(k, keys.column(k).combine_chunks())
        got = store.read(part, keys, names, feature_types(project, part))
        found = got.column("__found").to_pylist()
        times = got.column("event_timestamp").cast(pa.int64()).to_pylist()
        expired = [False] * n
        if part.kind == "latest" and part.ttl is not None:
            limit = now_us - int(part.ttl.total_seconds() * 1_000_000)
            expired = [f and t is not None and t < limit for f, t in zip(found, times, strict=True)]
        statuses = [OUTSIDE_MAX_AGE if e else (PRESENT if f else NOT_FOUND) for f, e in zip(found, expired, strict=True)]
        row_times = [t if f else None for f, t in zip(found, times, strict=True)]
        mask = pa.array(expired, pa.bool_()) if any(expired) else None
        for name in names:
            column = got.column(name).combine_chunks()
            if mask is not None:
                column = pc.if_else(mask, pa.nulls(n, column.type), column)
            results[(view.name, name)] = (column, statuses, row_times)

    names_out = output_names([(r.view, r.feature) for r in refs], full_feature_names)
    response_names = list(needed)
    arrays: list[pa.Array] = [key_arrays[k] for k in needed]
    statuses_out: list[list[str]] = [[PRESENT] * n for _ in needed]
    times_out: list[list[int | None]] = [[None] * n for _ in needed]
    for out in names_out:
        if out.name in response_names:
            raise UsageError(f"feature '{out.view}:{out.feature}' is named like the join key '{out.name}'; request it with full feature names")
        column, statuses, row_times = results[(out.view, out.feature)]
        response_names.append(out.name)
        arrays.append(column)
        statuses_out.append(statuses)
        times_out.append(row_times)
    return OnlineResponse(response_names, arrays, statuses_out, times_out, key_count=len(needed))


def _micros(value: datetime) -> int:
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    delta = value - datetime(1970, 1, 1, tzinfo=timezone.utc)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


# --- entity rows from the command line ------------------------------------------------


def entities_from_pairs(pairs: list[str]) -> dict[str, list[str]]:
    """``--entity k=v`` options: repeated keys are rows, different keys are zipped; a key given once repeats."""
    columns: dict[str, list[str]] = {}
    for item in pairs:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--entity {item!r}: write --entity JOIN_KEY=VALUE, e.g. --entity customer_id=42")
        columns.setdefault(key.strip(), []).append(value)
    rows = max((len(v) for v in columns.values()), default=0)
    for key, values in columns.items():
        if len(values) == 1 and rows > 1:
            columns[key] = values * rows
        elif len(values) != rows:
            counts = ", ".join(f"{k} x{len(v)}" for k, v in columns.items())
            raise UsageError(f"--entity: every join key needs the same number of values (or just one): {counts}")
    return columns


def entities_from_file(path: Path) -> pa.Table:
    """Entity rows from a CSV, Parquet or JSON file (JSON: {key: [values]} or [{key: value}, ...])."""
    import json

    if not path.exists():
        raise UsageError(f"--entities {path}: no such file")
    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            return pq.read_table(path)
        if suffix == ".csv":
            from pyarrow import csv

            return csv.read_csv(path)
        if suffix == ".json":
            payload = json.loads(path.read_text())
            if isinstance(payload, dict) and "entities" in payload:  # a Feast /get-online-features request body
                payload = payload["entities"]
            columns = entity_table(payload)
            return pa.table({k: pa.array(list(v)) for k, v in columns.items()})
    except (OSError, ValueError, pa.ArrowInvalid) as exc:
        raise DataError(f"--entities {path}: cannot read it: {str(exc).splitlines()[0]}") from None
    raise UsageError(f"--entities {path}: give a .csv, .parquet or .json file")
