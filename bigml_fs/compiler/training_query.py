"""Assemble the point-in-time training-set query over a prepared spine.

The spine relation holds the user's columns plus ``__row`` (its order) and
``__ts`` (its time in UTC microseconds). Each requested view adds a CTE from
``features.py``; latest-value views are as-of joined, window views are
equi-joined on (keys, t). The result keeps the spine's rows and order, adds
one column per feature and one ``__amb{i}`` column per latest-value part that
is non-null where an ambiguous tie decided a value.

``dialect.latest`` picks how latest values meet the spine: ``asof``
(DuckDB) as-of joins on the event time alone, then picks by created among
the matched rows only; ``lateral`` (PostgreSQL, no as-of join) takes ``LEFT
JOIN LATERAL (... ORDER BY time DESC, created DESC LIMIT 1)`` over an index
on (keys, time, created); ``carry`` (Spark and the compile-only warehouses)
carries the last event forward over the union of events and spine points,
events first at equal times: Spark carries the row as ``last(struct, true)``,
the others carry its event time (a running max) and join the row back.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlglot import exp

from bigml_fs.catalog import ResolvedView
from bigml_fs.compiler.features import (
    HI,
    LO,
    RAW_CREATED,
    RAW_TS,
    _source_rows,
    latest_query,
    probe_order,
    probe_time_range,
    raw_rows,
    window_query,
)
from bigml_fs.compiler.sqlparts import CREATED, MIN_BIGINT, ROW, TS, alias, all_not_null, col, parse_expr
from bigml_fs.core.timeutil import micros
from bigml_fs.engines.dialects import Dialect, Latest
from bigml_fs.spec.schema import FeatureSpec

SPINE = "__s"
AMBIGUOUS = "__amb"


@dataclass(frozen=True)
class OutputColumn:
    view: str
    feature: str
    name: str


@dataclass(frozen=True)
class TrainingQuery:
    query: exp.Select
    outputs: list[OutputColumn]
    ambiguity: dict[str, str]  # __amb{i} column -> view name
    # __amb{i} columns whose view's matched keys the result keeps as __ambk{i}_{j} (DuckDB's plan)
    ambiguity_keys: dict[str, list[str]] = field(default_factory=dict)


def output_names(requested: list[tuple[str, str]], full_feature_names: bool) -> list[OutputColumn]:
    """Name each feature; shared names (or --full-feature-names) become view__feature."""
    counts: dict[str, int] = {}
    for _, feature in requested:
        counts[feature] = counts.get(feature, 0) + 1
    return [OutputColumn(v, f, f"{v}__{f}" if full_feature_names or counts[f] > 1 else f) for v, f in requested]


def training_query(
    spine: exp.Table,
    spine_columns: dict[str, str],
    views: dict[str, ResolvedView],
    requested: list[tuple[str, str]],
    read_dialect: str,
    full_feature_names: bool,
    dialect: Dialect,
) -> TrainingQuery:
    """The training-set query in ``dialect``'s plan; feature expressions are read in ``read_dialect``."""
    outputs = output_names(requested, full_feature_names)
    user_columns = [c for c in spine_columns if c not in (ROW, TS)]
    by_view: dict[str, list[FeatureSpec]] = {}
    for view_name, feature in requested:
        by_view.setdefault(view_name, []).append(views[view_name].feature(feature))

    spine_select = exp.select("*").from_(spine.copy())
    key_columns: dict[str, tuple[str, ...]] = {}
    for i, view_name in enumerate(by_view):
        view = views[view_name]
        names = []
        for key in view.keys:
            wanted = view.columns[key]
            if spine_columns.get(key, "").upper() == wanted.upper():
                names.append(key)
            else:
                names.append(f"__k{i}_{key}")
                spine_select = spine_select.select(
                    alias(exp.cast(col(key), exp.DataType.build(wanted, dialect="duckdb")), f"__k{i}_{key}")
                )
        key_columns[view_name] = tuple(names)

    query = exp.select(*[col(c, SPINE) for c in user_columns]).from_(exp.alias_(exp.table_(SPINE), SPINE, table=True))
    query = query.with_(SPINE, as_=spine_select)
    ambiguity: dict[str, str] = {}
    ambiguity_keys: dict[str, list[str]] = {}
    base = SPINE  # DuckDB's latest-value steps extend the spine one CTE per view
    feature_columns: dict[tuple[str, str], exp.Expression] = {}
    # latest-value parts first, then window parts: a view with both kinds becomes two parts
    parts = [(name, [f for f in fs if not f.is_window]) for name, fs in by_view.items()]
    parts += [(name, [f for f in fs if f.is_window]) for name, fs in by_view.items()]
    for i, (view_name, features) in enumerate(p for p in parts if p[1]):
        view, spine_keys = views[view_name], key_columns[view_name]
        if features[0].is_window:
            query, columns = _join_windows(query, view, features, spine_keys, read_dialect, i, dialect)
        else:
            if view.timestamp is None:
                query, columns = _join_static(query, view, features, spine_keys, read_dialect, i, dialect)
            elif dialect.latest is Latest.LATERAL:
                query, columns = _join_latest_lateral(query, view, features, spine_keys, read_dialect, i, dialect)
            elif dialect.latest is Latest.CARRY:
                query, columns = _join_latest_carried(query, view, features, spine_keys, read_dialect, i, dialect)
            else:
                query, base, columns = _join_latest_matched(
                    query, base, view, features, spine_keys, read_dialect, i, dialect
                )
                ambiguity_keys[f"__amb{i}"] = [f"__ambk{i}_{j}" for j in range(len(view.keys))]
            ambiguity[f"__amb{i}"] = view_name
        feature_columns.update({(view_name, name): value for name, value in columns.items()})
    for out in outputs:
        query = query.select(alias(feature_columns[(out.view, out.feature)], out.name), copy=False)
    query = query.select(col(ROW, SPINE), copy=False).order_by(col(ROW, SPINE), copy=False)
    if base != SPINE:
        query = query.from_(exp.alias_(exp.table_(base), SPINE, table=True), copy=False)
    return TrainingQuery(query, outputs, ambiguity, ambiguity_keys)


def _keys_match(spine_keys: tuple[str, ...], view: ResolvedView, ref: str) -> exp.Expression:
    return exp.and_(
        *[exp.EQ(this=col(s, SPINE), expression=col(k, ref)) for s, k in zip(spine_keys, view.keys, strict=True)]
    )


def _spine_points(view: ResolvedView, spine_keys: tuple[str, ...]) -> exp.Select:
    """The distinct (keys, t) of the spine with no null key or time, named as the view's keys."""
    return (
        exp.select(*[alias(col(s), k) for s, k in zip(spine_keys, view.keys, strict=True)], col(TS))
        .from_(exp.table_(SPINE))
        .where(all_not_null([col(s) for s in spine_keys] + [col(TS)]))
        .distinct()
    )


def _join_windows(
    query: exp.Select,
    view: ResolvedView,
    features: list[FeatureSpec],
    spine_keys: tuple[str, ...],
    read_dialect: str,
    i: int,
    dialect: Dialect,
) -> tuple[exp.Select, dict[str, exp.Expression]]:
    """Equi-join the window aggregates computed at each distinct spine (keys, t)."""
    cte, ref = f"__view{i}", f"__v{i}"
    query = query.with_(
        cte, as_=window_query(view, features, _spine_points(view, spine_keys), read_dialect, dialect).query
    )
    on = exp.and_(_keys_match(spine_keys, view, ref), exp.EQ(this=col(TS, SPINE), expression=col(TS, ref)))
    query = query.join(exp.alias_(exp.table_(cte), ref, table=True), on=on, join_type="LEFT")
    return query, {f.name: col(f.name, ref) for f in features}


def _join_latest_matched(
    query: exp.Select,
    base: str,
    view: ResolvedView,
    features: list[FeatureSpec],
    spine_keys: tuple[str, ...],
    read_dialect: str,
    i: int,
    dialect: Dialect,
) -> tuple[exp.Select, str, dict[str, exp.Expression]]:
    """``asof`` (DuckDB): as-of join on event time alone, then pick among the matched (keys, time) rows by created.

    Step 1 (``__m{i}``) as-of joins the spine with the source's narrow (keys,
    time) rows: the sort carries 8 bytes a row and no values, so it is the
    cheapest as-of join there is. It keeps the matched time ``__mts{i}``
    where it lies within the ttl. Step 2 (``__p{i}``) reads the source once
    more for just the matched (keys, time) pairs (a semi-join on a hash table
    of them) and picks, per pair, the row with the greatest created
    timestamp (null lowest), noting whether rows tied on (keys, time,
    created) disagree, so the tie check costs no pass of its own. The spine
    chain continues from ``__m{i}``; the result left-joins ``__p{i}`` on
    (keys, ``__mts{i}``).
    """
    match, ref, matched = f"__m{i}", f"__p{i}", f"__mts{i}"
    rows, keys = _source_rows(view, dialect)
    times = exp.select(*[k.copy() for k in keys], col(TS)).from_(rows.subquery("__rows"))
    on = exp.and_(
        *[exp.EQ(this=col(s, "__b"), expression=col(k, "__a")) for s, k in zip(spine_keys, view.keys, strict=True)],
        exp.GTE(this=col(TS, "__b"), expression=col(TS, "__a")),
    )
    matched_ts: exp.Expression = col(TS, "__a")
    if view.ttl is not None:
        live = exp.GTE(
            this=col(TS, "__a"),
            expression=exp.Sub(this=col(TS, "__b"), expression=exp.Literal.number(micros(view.ttl))),
        )
        matched_ts = exp.Case(ifs=[exp.If(this=live, true=col(TS, "__a"))])
    step1 = exp.select(exp.Column(this=exp.Star(), table=exp.to_identifier("__b")), alias(matched_ts, matched)).from_(
        exp.alias_(exp.table_(base), "__b", table=True)
    )
    step1.append(
        "joins", exp.Join(this=exp.alias_(times.subquery(), "__a", table=True), method="ASOF", side="LEFT", on=on)
    )
    query = query.with_(match, as_=step1, materialized=True)  # read twice (pairs, result): computed once
    query = query.with_(ref, as_=_pick_latest(view, features, read_dialect, match, spine_keys, matched, dialect))
    join_on = exp.and_(_keys_match(spine_keys, view, ref), exp.EQ(this=col(matched, SPINE), expression=col(TS, ref)))
    query = query.join(exp.alias_(exp.table_(ref), ref, table=True), on=join_on, join_type="LEFT")
    query = query.select(
        alias(exp.Case(ifs=[exp.If(this=col(AMBIGUOUS, ref), true=col(TS, ref))]), f"__amb{i}"), copy=False
    )
    query = query.select(*[alias(col(k, ref), f"__ambk{i}_{j}") for j, k in enumerate(view.keys)], copy=False)
    return query, match, {f.name: col(f.name, ref) for f in features}


def _pick_latest(
    view: ResolvedView,
    features: list[FeatureSpec],
    read_dialect: str,
    match: str,
    spine_keys: tuple[str, ...],
    matched: str,
    dialect: Dialect,
) -> exp.Select:
    """Per matched (keys, time): the values of the greatest created (null lowest) and whether tied rows there differ."""
    rows, _ = _source_rows(view, dialect)
    created = exp.func("coalesce", col(CREATED), exp.Literal.number(MIN_BIGINT))  # null created sorts below every time
    values = [alias(parse_expr(f.value_sql, read_dialect), f.name) for f in features]
    rows = rows.select(*values, alias(dialect.row_hash([v.this for v in values]), "__h"))
    pairs = (
        exp.select(*[alias(col(s), k) for s, k in zip(spine_keys, view.keys, strict=True)], alias(col(matched), TS))
        .from_(exp.table_(match))
        .where(exp.Not(this=exp.Is(this=col(matched), expression=exp.Null())))
        .distinct()
    )
    same = exp.and_(
        *[exp.EQ(this=col(k, "__r"), expression=col(k, "__q")) for k in view.keys],
        exp.EQ(this=col(TS, "__r"), expression=col(TS, "__q")),
    )
    candidates = (
        exp.select(
            *[col(k, "__r") for k in view.keys],
            col(TS, "__r"),
            alias(created, "__ck"),
            *[col(f.name, "__r") for f in features],
            col("__h", "__r"),
        )
        .from_(rows.subquery("__r"))
        .join(pairs.subquery("__q"), on=same, join_type="SEMI")
    )
    group = [*[col(k) for k in view.keys], col(TS)]
    tied = (
        exp.select(
            *[g.copy() for g in group],
            col("__ck"),
            *[alias(exp.func("any_value", col(f.name)), f.name) for f in features],
        )
        .select(alias(exp.NEQ(this=exp.Min(this=col("__h")), expression=exp.Max(this=col("__h"))), AMBIGUOUS))
        .from_(candidates.subquery("__c"))
        .group_by(*[g.copy() for g in group], col("__ck"))
    )
    newest = [alias(exp.func("arg_max_null", col(n), col("__ck")), n) for n in [*[f.name for f in features], AMBIGUOUS]]
    return (
        exp.select(*[g.copy() for g in group], *newest).from_(tied.subquery("__g")).group_by(*[g.copy() for g in group])
    )


def _join_latest_lateral(
    query: exp.Select,
    view: ResolvedView,
    features: list[FeatureSpec],
    spine_keys: tuple[str, ...],
    read_dialect: str,
    i: int,
    dialect: Dialect,
) -> tuple[exp.Select, dict[str, exp.Expression]]:
    """``lateral`` (PostgreSQL): the newest row at or before t (within ttl) by one index probe per spine row.

    ``__tie`` is true when another row with the same keys, event and created
    time has different values: an ambiguous tie that decided this value.
    """
    ref, top, other = f"__v{i}", "__r", "__o"
    values = {f.name: parse_expr(f.value_sql, read_dialect) for f in features}
    t = col(TS, SPINE)
    lower = exp.Sub(this=t.copy(), expression=exp.Literal.number(micros(view.ttl))) if view.ttl is not None else None
    same_row = [exp.EQ(this=col(k, other), expression=col(k, top)) for k in view.keys] + [
        exp.EQ(this=col(RAW_TS, other), expression=col(RAW_TS, top))
    ]
    if view.created:
        same_row.append(exp.Not(this=exp.NullSafeNEQ(this=col(RAW_CREATED, other), expression=col(RAW_CREATED, top))))
    differs = exp.NullSafeNEQ(
        this=exp.Tuple(expressions=[col(n, other) for n in values]),
        expression=exp.Tuple(expressions=[col(n, top) for n in values]),
    )
    tie = exp.Exists(
        this=exp.select(exp.Literal.number(1))
        .from_(raw_rows(view, values, dialect).subquery(other))
        .where(exp.and_(*same_row, differs))
    )
    lookup = (
        exp.select(col(TS, top), *[col(n, top) for n in values], alias(tie, "__tie"))
        .from_(raw_rows(view, values, dialect).subquery(top))
        .where(
            exp.and_(
                *[
                    exp.EQ(this=col(k, top), expression=col(s, SPINE))
                    for s, k in zip(spine_keys, view.keys, strict=True)
                ],
                probe_time_range(view, top, lower, t, upper_inclusive=True, dialect=dialect),
            )
        )
        .order_by(*probe_order(view, top, desc=True))
        .limit(1)
    )
    lateral = exp.Lateral(this=lookup.subquery(), alias=exp.TableAlias(this=exp.to_identifier(ref)))
    query.append("joins", exp.Join(this=lateral, side="LEFT", on=exp.true()))
    query = query.select(
        alias(exp.Case(ifs=[exp.If(this=col("__tie", ref), true=col(TS, ref))]), f"__amb{i}"), copy=False
    )
    return query, {f.name: col(f.name, ref) for f in features}


def _join_latest_carried(
    query: exp.Select,
    view: ResolvedView,
    features: list[FeatureSpec],
    spine_keys: tuple[str, ...],
    read_dialect: str,
    i: int,
    dialect: Dialect,
) -> tuple[exp.Select, dict[str, exp.Expression]]:
    """``carry``: the last event at or before each spine point, over events and spine points (events
    first at equal t).
    """
    cte, ref = f"__view{i}", f"__v{i}"
    deduped = latest_query(view, features, read_dialect, dialect).query
    fields = [TS, *[f.name for f in features], LO, HI]
    keys = [col(k) for k in view.keys]
    frame = exp.WindowSpec(kind="ROWS", start="UNBOUNDED", start_side="PRECEDING", end="CURRENT ROW")
    order = exp.Order(expressions=[exp.Ordered(this=col(TS)), exp.Ordered(this=col("__side"))])
    if dialect.carries_struct:  # the whole row, as last(named_struct, true) (IGNORE NULLS)
        source = deduped.subquery("__dedup")
        carried_value: exp.Expression = exp.Anonymous(
            this="named_struct", expressions=[part for n in fields for part in (exp.Literal.string(n), col(n))]
        )
        no_value: exp.Expression = exp.Null()
        carry = exp.Anonymous(this="last", expressions=[col("__m"), exp.true()])
    else:  # its event time: events come in time order, so the running max is the last one
        dedup_cte = f"__dedup{i}"
        query = query.with_(dedup_cte, as_=deduped)
        source = exp.table_(dedup_cte)
        carried_value = col(TS)
        no_value = exp.cast(exp.Null(), exp.DataType.Type.BIGINT)
        carry = exp.Max(this=col("__m"))
    events = exp.select(*keys, col(TS), alias(exp.Literal.number(0), "__side"), alias(carried_value, "__m")).from_(
        source
    )
    points = exp.select(
        *[k.copy() for k in keys], col(TS), alias(exp.Literal.number(1), "__side"), alias(no_value, "__m")
    ).from_(_spine_points(view, spine_keys).subquery("__points"))
    carried = exp.Window(this=carry, partition_by=[k.copy() for k in keys], order=order, spec=frame)
    union = exp.union(events, points, distinct=False).subquery("__union")
    rows = exp.select(*[k.copy() for k in keys], col(TS), col("__side"), alias(carried, "__m")).from_(union)
    at_points = rows.subquery("__carried")
    on_side = exp.EQ(this=col("__side"), expression=exp.Literal.number(1))
    if dialect.carries_struct:
        picked = [
            alias(exp.Dot(this=col("__m"), expression=exp.to_identifier(n, quoted=True)), "__mts" if n == TS else n)
            for n in fields
        ]
        result = exp.select(*[k.copy() for k in keys], col(TS), *picked).from_(at_points).where(on_side)
    else:
        point, row = "__c", "__d"
        on = exp.and_(
            *[exp.EQ(this=col(k, row), expression=col(k, point)) for k in view.keys],
            exp.EQ(this=col(TS, row), expression=col("__m", point)),
        )
        result = (
            exp.select(
                *[col(k, point) for k in view.keys],
                col(TS, point),
                alias(col("__m", point), "__mts"),
                *[col(n, row) for n in fields[1:]],
            )
            .from_(at_points.this.subquery(point))
            .join(exp.alias_(exp.table_(dedup_cte), row, table=True), on=on, join_type="LEFT")
            .where(exp.EQ(this=col("__side", point), expression=exp.Literal.number(1)))
        )
    query = query.with_(cte, as_=result)
    on = exp.and_(_keys_match(spine_keys, view, ref), exp.EQ(this=col(TS, SPINE), expression=col(TS, ref)))
    query = query.join(exp.alias_(exp.table_(cte), ref, table=True), on=on, join_type="LEFT")
    live: exp.Expression | None = None
    if view.ttl is not None:
        live = exp.GTE(
            this=col("__mts", ref),
            expression=exp.Sub(this=col(TS, SPINE), expression=exp.Literal.number(micros(view.ttl))),
        )
    columns = {
        f.name: col(f.name, ref) if live is None else exp.Case(ifs=[exp.If(this=live.copy(), true=col(f.name, ref))])
        for f in features
    }
    differs = exp.NullSafeNEQ(this=col(LO, ref), expression=col(HI, ref))
    condition = differs if live is None else exp.and_(differs, live.copy())
    query = query.select(alias(exp.Case(ifs=[exp.If(this=condition, true=col("__mts", ref))]), f"__amb{i}"), copy=False)
    return query, columns


def _join_static(
    query: exp.Select,
    view: ResolvedView,
    features: list[FeatureSpec],
    spine_keys: tuple[str, ...],
    read_dialect: str,
    i: int,
    dialect: Dialect,
) -> tuple[exp.Select, dict[str, exp.Expression]]:
    """A view without event time: join its one row per key; add the ``__amb{i}`` flag (time 0)."""
    cte, ref = f"__view{i}", f"__v{i}"
    query = query.with_(cte, as_=latest_query(view, features, read_dialect, dialect).query)
    on = _keys_match(spine_keys, view, ref)
    query = query.join(exp.alias_(exp.table_(cte), ref, table=True), on=on, join_type="LEFT")
    differs = exp.NullSafeNEQ(this=col(LO, ref), expression=col(HI, ref))
    query = query.select(
        alias(exp.Case(ifs=[exp.If(this=differs, true=exp.Literal.number(0))]), f"__amb{i}"), copy=False
    )
    return query, {f.name: col(f.name, ref) for f in features}
