"""Online feature values for entity rows, with Feast's statuses and JSON.

``OnlineReader.read`` resolves ``view:feature`` / ``view:*``, groups the
features by Feast view (store/naming.py: a view with both kinds of features is
two Feast views), casts the entity values to each view's key types, and reads
all entities of one Feast view in one round trip to the store. Statuses are
Feast's: PRESENT, NOT_FOUND (no value for the key) and OUTSIDE_MAX_AGE (a
latest-value feature older than its view's ttl at request time, returned as
null, unlike Feast issue #6821). Window aggregates are as of the last
materialize T, which their event timestamps carry.

The reader is the online hot path of a serving process, so everything a
request needs besides the store round trip is resolved once: one store
connection, the published state (feature types, which views were
materialized), and the plan of each feature list. A request never reads a
file: a materialize in this process calls ``reload()``; one in another
process is noticed by re-reading the ``current`` link at most once a second.

``OnlineResponse.to_dict()`` is exactly the JSON of Feast's feature server
``/get-online-features``; it is built from plain lists (no protobuf), never
through protobuf messages per value as Feast does.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from bigml_fs.catalog import FeatureRef, ResolvedView
from bigml_fs.compiler.training_query import output_names
from bigml_fs.core import types
from bigml_fs.core.timeutil import now as utc_now
from bigml_fs.core.timeutil import timestamp_text, to_us
from bigml_fs.errors import DataError, UsageError, did_you_mean
from bigml_fs.spec.schema import FeatureSpec
from bigml_fs.store import feast_types as ft
from bigml_fs.store import state
from bigml_fs.store.naming import FeastPart, part_of
from bigml_fs.store.online import OnlineStore, encoding, open_store
from bigml_fs.store.online.entities import cast_key, entities_from_file, entities_from_pairs, entity_table
from bigml_fs.store.online.response import NOT_FOUND, OUTSIDE_MAX_AGE, PRESENT, OnlineResponse
from bigml_fs.workspace import Workspace

__all__ = [
    "NOT_FOUND",
    "OUTSIDE_MAX_AGE",
    "PRESENT",
    "OnlineReader",
    "OnlineResponse",
    "entities_from_file",
    "entities_from_pairs",
    "entity_table",
    "timestamp_text",
]

RECHECK_SECONDS = 1.0  # how often a reader looks whether another process published a new run
MAX_PLANS = 256  # request plans kept per reader (distinct feature lists); more clears them
SMALL_REQUEST = 256  # up to this many entity rows, keys are checked and serialized in plain Python


@dataclass(frozen=True)
class _Part:
    part: FeastPart
    names: tuple[str, ...]
    key_types: tuple[tuple[str, ft.FeastType], ...]  # the view's join keys, in view order


@dataclass(frozen=True)
class _Plan:
    """What a request for a list of features needs, resolved once per reader and feature list."""

    needed: tuple[str, ...]
    key_types: dict[str, ft.FeastType]
    parts: tuple[_Part, ...]
    outputs: tuple[tuple[str, str, str], ...]  # (view, feature, output name)
    views: tuple[str, ...]


class OnlineReader:
    """Online reads of one workspace: one store handle, the published state, request plans.

    Thread-safe: a serving process shares one reader between its request threads.
    """

    def __init__(self, ws: Workspace):
        self._ws = ws
        self._lock = threading.Lock()
        self._store: OnlineStore | None = None
        self._plans: dict[tuple[tuple[str, ...], bool], _Plan] = {}
        self._types: dict[str, dict[str, ft.FeastType]] = {}  # per Feast view: feature -> Feast type
        self._published = state.PublishedState()
        self._target: str | None = None
        self._checked = 0.0
        self.reload()

    @property
    def store(self) -> OnlineStore:
        """The one store handle, opened on first use (a request that fails to connect names host and port)."""
        store = self._store
        if store is None:
            with self._lock:
                if self._store is None:
                    self._store = open_store(self._ws.spec, self._ws.paths)
                store = self._store
        return store

    def reload(self) -> None:
        """Re-read the published state (after a materialize): feature types and materialized views."""
        paths = self._ws.paths
        target = state.current_target(paths)  # the state of the run the link names, never a newer one's
        published = state.run_state(state.offline_root(paths) / target if target is not None else None)
        with self._lock:
            self._target, self._published, self._types = target, published, {}
            self._checked = time.monotonic()

    def close(self) -> None:
        with self._lock:
            store, self._store = self._store, None
        if store is not None:
            store.close()

    def _check_published(self) -> None:
        """Reload when another process published a run: one readlink, at most once per RECHECK_SECONDS."""
        checked = time.monotonic()
        if checked - self._checked < RECHECK_SECONDS:
            return
        self._checked = checked
        if state.current_target(self._ws.paths) != self._target:
            self.reload()

    # --- request plans and feature types -------------------------------------------

    def _plan(self, features: list[str], full_feature_names: bool) -> _Plan:
        key = (tuple(features), full_feature_names)
        plan = self._plans.get(key)
        if plan is None:
            plan = _make_plan(self._ws, features, full_feature_names)
            if len(self._plans) >= MAX_PLANS:
                self._plans.clear()
            self._plans[key] = plan
        return plan

    def feature_types(self, part: FeastPart) -> dict[str, ft.FeastType]:
        """The Feast type of each feature of ``part``: from the published table's SQL types, else the definition."""
        found = self._types.get(part.name)
        if found is None:
            published = self._published.views.get(part.view.name)
            columns = published.columns.get(part.name) if published is not None else None
            found = self._types[part.name] = _feature_types(part, columns)
        return found

    # --- the read ------------------------------------------------------------------------

    def read(
        self, features: list[str], entities: Any, full_feature_names: bool = False, now: datetime | None = None
    ) -> OnlineResponse:
        """Online values of ``features`` for each entity row, ttl checked against ``now`` (default:
        the current time).
        """
        plan = self._plan(list(features), full_feature_names)
        rows = entity_table(entities)
        missing = [k for k in plan.needed if k not in rows]
        if missing:
            given = ", ".join(rows) or "none"
            spare = [k for k in rows if k not in plan.needed]  # a given key that is needed is no misspelling
            hints = "".join(did_you_mean(k, spare) for k in missing)
            raise DataError(
                f"entities lack the join key(s) {', '.join(missing)} needed by {', '.join(plan.views)}{hints}; "
                f"given: {given}"
            )
        lengths = {k: len(rows[k]) for k in plan.needed}
        if len(set(lengths.values())) > 1:
            raise DataError(
                f"entity key columns have different lengths: {', '.join(f'{k}={n}' for k, n in lengths.items())}"
            )
        n = next(iter(lengths.values())) if lengths else 0
        now_us = to_us(now or utc_now())
        store = self.store
        self._check_published()
        materialized = self._published.views

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
            feature_types = self.feature_types(part)
            empty = _empty_windows(part, keys_bin, hits) if part.view.name in materialized else []
            for name in p.names:
                raw = [h[1].get(name) if h is not None else None for h in hits]
                ftype = feature_types.get(name) or encoding.infer_type(raw)
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


def _make_plan(ws: Workspace, features: list[str], full_feature_names: bool) -> _Plan:
    catalog = ws.catalog
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
    return _Plan(needed, key_types, parts, outputs, tuple(views))


def _key_type_sql(view: ResolvedView, key: str) -> ft.FeastType:
    t = ft.feast_type_from_sql(view.columns[key], f"join key '{key}' of view '{view.name}'")
    if not t.key_ok:
        raise DataError(
            f"join key '{key}' of view '{view.name}' has type {view.columns[key]}; "
            "Feast entity keys must be integers or strings"
        )
    return t


def _feature_types(part: FeastPart, columns: dict[str, str] | None) -> dict[str, ft.FeastType]:
    """Each feature's Feast type: its SQL type in the published table, else what its definition gives."""
    out: dict[str, ft.FeastType] = {}
    for feature in part.features:
        if columns is not None and feature.name in columns:
            try:
                out[feature.name] = ft.feast_type_from_sql(columns[feature.name])
                continue
            except DataError:
                pass
        guess = _defined_type(part.view, feature)
        if guess is not None:
            out[feature.name] = guess
    return out


def _defined_type(view: ResolvedView, feature: FeatureSpec) -> ft.FeastType | None:
    """A feature's type from its definition, for a view not materialized yet (the fixed output types of aggregates)."""
    agg = getattr(feature, "agg", None)
    if agg in ("count", "count_distinct"):
        return ft.from_logical(types.INT64)
    if agg in ("sum", "avg", "stddev", "variance"):
        return ft.from_logical(types.FLOAT64)
    column = (feature.expr or feature.name) if not agg or feature.expr else None
    if column in view.columns:
        logical = types.from_sql(view.columns[column])
        return ft.from_logical(logical) if logical is not None else None
    return None


def _empty_windows(part: FeastPart, keys_bin: list[bytes | None], hits: list) -> list[int]:
    """Rows whose key never had an event in a materialized window view: their counts are 0, as in training sets.

    The store holds no row for such a key (plain Feast reads null there, as
    the README says); bigml_fs's own reads give the aggregate of an empty window.
    The caller passes only views the published state holds.
    """
    if part.kind != "windows":
        return []
    return [i for i, (k, h) in enumerate(zip(keys_bin, hits, strict=True)) if h is None and k is not None]


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
