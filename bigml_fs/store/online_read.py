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
``/get-online-features``; it is built from plain lists (no protobuf), never
through protobuf messages per value as Feast does.
"""

from __future__ import annotations

import threading
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
from bigml_fs.store.online import encoding
from bigml_fs.store.online.entities import cast_key, entities_from_file, entities_from_pairs, entity_table
from bigml_fs.store.online.response import NOT_FOUND, OUTSIDE_MAX_AGE, PRESENT, OnlineResponse, timestamp_text

__all__ = [
    "NOT_FOUND",
    "OUTSIDE_MAX_AGE",
    "PRESENT",
    "OnlineResponse",
    "entities_from_file",
    "entities_from_pairs",
    "entity_table",
    "online_features",
    "timestamp_text",
]


def _key_type_sql(view: ResolvedView, key: str) -> ft.FeastType:
    t = ft.feast_type_from_sql(view.columns[key], f"join key '{key}' of view '{view.name}'")
    if not t.key_ok:
        raise DataError(
            f"join key '{key}' of view '{view.name}' has type {view.columns[key]}; Feast entity keys must be integers or strings"
        )
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


@dataclass(frozen=True)
class _Part:
    part: FeastPart
    names: tuple[str, ...]
    key_types: tuple[tuple[str, ft.FeastType], ...]  # the view's join keys, in view order


@dataclass(frozen=True)
class _Plan:
    """What a request for a list of features needs, resolved once per project and feature list."""

    needed: tuple[str, ...]
    key_types: dict[str, ft.FeastType]
    parts: tuple[_Part, ...]
    outputs: tuple[tuple[str, str, str], ...]  # (view, feature, output name)
    views: tuple[str, ...]


_plans: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _plan(project: Any, features: list[str], full_feature_names: bool) -> _Plan:
    catalog = project.catalog
    cached = _plans.get(project)
    if cached is None or cached[0] is not catalog:  # a re-resolved catalog gets new plans
        cached = _plans[project] = (catalog, {})
    per_project = cached[1]
    key = (tuple(features), full_feature_names)
    plan = per_project.get(key)
    if plan is not None:
        return plan
    refs: list[FeatureRef] = catalog.expand(list(features))
    views = {r.view: catalog.views[r.view] for r in refs}
    needed = tuple(dict.fromkeys(k for v in views.values() for k in v.keys))
    by_part: dict[str, tuple[FeastPart, list[str]]] = {}
    for ref in refs:
        part = part_of(views[ref.view], ref.feature)
        by_part.setdefault(part.name, (part, []))[1].append(ref.feature)
    parts = tuple(
        _Part(p, tuple(names), tuple((k, _key_type_sql(p.view, k)) for k in p.view.keys))
        for p, names in by_part.values()
    )
    key_types: dict[str, ft.FeastType] = {}
    for part in parts:
        for k, t in part.key_types:
            key_types.setdefault(k, t)
    outputs = tuple(
        (o.view, o.feature, o.name) for o in output_names([(r.view, r.feature) for r in refs], full_feature_names)
    )
    for view, feature, name in outputs:
        if name in needed:
            raise UsageError(
                f"feature '{view}:{feature}' is named like the join key '{name}'; request it with full feature names"
            )
    plan = per_project[key] = _Plan(needed, key_types, parts, outputs, tuple(views))
    if len(per_project) > 256:
        per_project.clear()
    return plan


SMALL_REQUEST = 256  # up to this many entity rows, keys are checked and serialized in plain Python


def online_features(
    project: Any,
    features: list[str],
    entities: Any,
    full_feature_names: bool = False,
    now: datetime | None = None,
    store: Any = None,
) -> OnlineResponse:
    """Online values of ``features`` for each entity row, ttl checked against ``now`` (default: the current time)."""
    plan = _plan(project, list(features), full_feature_names)
    rows = entity_table(entities)
    missing = [k for k in plan.needed if k not in rows]
    if missing:
        given = ", ".join(rows) or "none"
        hints = "".join(did_you_mean(k, rows) for k in missing)
        raise DataError(
            f"entities lack the join key(s) {', '.join(missing)} needed by {', '.join(plan.views)}{hints}; given: {given}"
        )
    lengths = {k: len(rows[k]) for k in plan.needed}
    if len(set(lengths.values())) > 1:
        raise DataError(
            f"entity key columns have different lengths: {', '.join(f'{k}={n}' for k, n in lengths.items())}"
        )
    n = next(iter(lengths.values())) if lengths else 0
    now_us = _micros(now or datetime.now(timezone.utc))
    store = store or project_store(project)

    key_values: dict[str, list] = {}  # each join key's values in its type (the first view's type)
    typed: dict[tuple[str, str], list] = {}
    for part in plan.parts:
        for k, t in part.key_types:
            if (k, t.name) not in typed:
                typed[(k, t.name)] = _typed_key(k, rows[k], t)
                key_values.setdefault(k, typed[(k, t.name)])

    results: dict[tuple[str, str], tuple[list, ft.FeastType | None, list[str], list[int | None]]] = {}
    for p in plan.parts:
        part = p.part
        keys_bin = _serialize(p.key_types, [typed[(k, t.name)] for k, t in p.key_types], n)
        found = store.fetch(part, keys_bin, list(p.names))
        hits = [found.get(k) if k is not None else None for k in keys_bin]
        times = [h[0] if h is not None else None for h in hits]
        statuses = [PRESENT if h is not None else NOT_FOUND for h in hits]
        expired: list[int] = []
        if part.kind == "latest" and part.ttl is not None:
            limit = now_us - int(part.ttl.total_seconds() * 1_000_000)
            expired = [i for i, t in enumerate(times) if t is not None and t < limit]
            for i in expired:
                statuses[i] = OUTSIDE_MAX_AGE
        types = feature_types(project, part)
        empty = _empty_windows(project, part, keys_bin, hits)
        for name in p.names:
            raw = [h[1].get(name) if h is not None else None for h in hits]
            ftype = types.get(name) or encoding.infer_type(raw)
            values = _decode(raw, ftype)
            for i in expired:
                values[i] = None
            feature_statuses = statuses
            if empty and part.view.feature(name).agg in ("count", "count_distinct"):
                feature_statuses = list(statuses)
                for i in empty:
                    values[i], feature_statuses[i] = 0, PRESENT
            results[(part.view.name, name)] = (values, ftype, feature_statuses, times)

    names = list(plan.needed)
    columns: list[list] = [key_values[k] for k in plan.needed]
    types_out: list[ft.FeastType | None] = [plan.key_types[k] for k in plan.needed]
    statuses_out: list[list[str]] = [[PRESENT] * n for _ in plan.needed]
    times_out: list[list[int | None]] = [[None] * n for _ in plan.needed]
    for view, feature, name in plan.outputs:
        values, ftype, statuses, times = results[(view, feature)]
        names.append(name)
        columns.append(values)
        types_out.append(ftype)
        statuses_out.append(statuses)
        times_out.append(times)
    return OnlineResponse(names, columns, types_out, statuses_out, times_out, key_count=len(plan.needed))


def _empty_windows(project: Any, part: FeastPart, keys_bin: list[bytes | None], hits: list) -> list[int]:
    """Rows whose key never had an event in a materialized window view: their counts are 0, as in training sets.

    The store holds no row for such a key (plain Feast reads null there, as
    DESIGN.md says); bigml_fs's own reads give the aggregate of an empty window.
    """
    if part.kind != "windows":
        return []
    rows = [i for i, (k, h) in enumerate(zip(keys_bin, hits, strict=True)) if h is None and k is not None]
    if not rows:
        return []
    from bigml_fs.store.state import view_states

    return rows if part.view.name in view_states(project) else []


def _decode(raw: list[bytes | None], ftype: ft.FeastType | None) -> list:
    """Python values of stored ValueProto bytes (timestamps as Unix seconds)."""
    if ftype is None:
        return [None] * len(raw)
    if len(raw) <= encoding.SMALL:
        decode = encoding.FAST_DECODERS.get(ftype.name, encoding.decode_value)
        return [decode(b) if b else None for b in raw]
    values = encoding.decode_column(raw, ftype)
    if ftype is ft.TIMESTAMP:
        values = pc.divide(values.cast(pa.int64()), 1_000_000)
    return values.to_pylist()


_INT_KINDS = ("int32", "int64")


def _typed_key(name: str, values: Any, ftype: ft.FeastType) -> list:
    """A join key's request values as Python values of its type (None stays None)."""
    if isinstance(values, list) and len(values) <= SMALL_REQUEST:
        bound = 1 << (63 if ftype is ft.INT64 else 31)
        if ftype.name in _INT_KINDS and all(v is None or (type(v) is int and -bound <= v < bound) for v in values):
            return values
        if ftype is ft.STRING and all(v is None or type(v) is str for v in values):
            return values
    return cast_key(name, values, ftype).to_pylist()


def _serialize(key_types: tuple[tuple[str, ft.FeastType], ...], columns: list[list], n: int) -> list[bytes | None]:
    """Serialized entity keys (v3) of the request rows; None where a key is null."""
    if n <= SMALL_REQUEST:
        serialize = encoding.key_serializer(dict(key_types))
        if len(columns) == 1:
            return [None if v is None else serialize((v,)) for v in columns[0]]
        rows = list(zip(*columns, strict=True))
        return [None if None in row else serialize(row) for row in rows]
    table = pa.table({k: pa.array(c, t.arrow) for (k, t), c in zip(key_types, columns, strict=True)})
    out: list[bytes | None] = encoding.entity_keys(table, dict(key_types)).to_pylist()
    nulls = [i for c in columns for i, v in enumerate(c) if v is None]
    for i in nulls:
        out[i] = None
    return out


def _micros(value: datetime) -> int:
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    delta = value - datetime(1970, 1, 1, tzinfo=timezone.utc)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
