"""Assemble the point-in-time training-set query over a prepared spine.

The spine relation holds the user's columns plus ``__row`` (its order) and
``__ts`` (its time in UTC microseconds). Each requested view adds a CTE from
``features.py``; latest-value views are as-of joined, window views are
equi-joined on (keys, t). The result keeps the spine's rows and order, adds
one column per feature and one ``__amb{i}`` column per latest-value part that
is non-null where an ambiguous tie decided a value.

``engine`` picks how latest values meet the spine: DuckDB as-of joins the
deduplicated rows; PostgreSQL (no as-of join) takes ``LEFT JOIN LATERAL (...
ORDER BY time DESC, created DESC LIMIT 1)`` over an index on (keys, time,
created); Spark (no as-of join either) carries the last event forward with
``last(struct, true)`` over the union of events and spine points, events
first at equal times.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlglot import exp

from bigml_fs.catalog import ResolvedView
from bigml_fs.compiler.features import HI, LO, RAW_CREATED, RAW_TS, _source_rows, latest_query, pg_created_order, pg_time_range, raw_rows, window_query
from bigml_fs.compiler.sqlparts import CREATED, ROW, TS, alias, all_not_null, col, micros, parse_expr, row_hash
from bigml_fs.spec.schema import FeatureSpec

SPINE = "__s"
SPINE_ORDER = "__sok"
ORDER_KEY = "__ok"
HUGEINT = exp.DataType.build("HUGEINT", dialect="duckdb")


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
    # __amb{i} columns that hold the matched order key, checked by a query over the result (DuckDB's plan)
    ties: dict[str, TieCheck] = field(default_factory=dict)


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
    full_feature_names: bool = False,
    engine: str = "duckdb",
) -> TrainingQuery:
    """The training-set query for ``engine``'s plan (duckdb | postgres | spark)."""
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
                spine_select = spine_select.select(alias(exp.cast(col(key), exp.DataType.build(wanted, dialect="duckdb")), f"__k{i}_{key}"))
        key_columns[view_name] = tuple(names)

    if engine == "duckdb":  # the spine's as-of order key: (t, the largest created offset)
        spine_select = spine_select.select(alias(_order_key(col(TS), exp.Literal.number(2**64 - 1)), SPINE_ORDER))
    query = exp.select(*[col(c, SPINE) for c in user_columns]).from_(exp.alias_(exp.table_(SPINE), SPINE, table=True))
    query = query.with_(SPINE, as_=spine_select)
    ambiguity: dict[str, str] = {}
    ties: dict[str, TieCheck] = {}
    feature_columns: dict[tuple[str, str], exp.Expression] = {}
    # latest-value parts first, then window parts: a view with both kinds becomes two parts
    parts = [(name, [f for f in fs if not f.is_window]) for name, fs in by_view.items()]
    parts += [(name, [f for f in fs if f.is_window]) for name, fs in by_view.items()]
    for i, (view_name, features) in enumerate(p for p in parts if p[1]):
        view, spine_keys = views[view_name], key_columns[view_name]
        if features[0].is_window:
            query, columns = _join_windows(query, view, features, spine_keys, read_dialect, i, engine)
        else:
            if engine == "postgres" and view.timestamp:
                query, columns = _join_latest_lateral(query, view, features, spine_keys, read_dialect, i)
            elif engine == "spark" and view.timestamp:
                query, columns = _join_latest_carried(query, view, features, spine_keys, read_dialect, i)
            elif engine == "duckdb" and view.timestamp:
                query, columns, ties[f"__amb{i}"] = _join_latest_ordered(query, view, features, spine_keys, read_dialect, i)
            else:
                query, columns = _join_latest(query, view, features, spine_keys, read_dialect, i, engine)
            ambiguity[f"__amb{i}"] = view_name
        feature_columns.update({(view_name, name): value for name, value in columns.items()})
    for out in outputs:
        query = query.select(alias(feature_columns[(out.view, out.feature)], out.name), copy=False)
    query = query.select(col(ROW, SPINE), copy=False).order_by(col(ROW, SPINE), copy=False)
    return TrainingQuery(query, outputs, ambiguity, ties)


def _keys_match(spine_keys: tuple[str, ...], view: ResolvedView, ref: str) -> exp.Expression:
    return exp.and_(*[exp.EQ(this=col(s, SPINE), expression=col(k, ref)) for s, k in zip(spine_keys, view.keys, strict=True)])


def _spine_points(view: ResolvedView, spine_keys: tuple[str, ...]) -> exp.Select:
    """The distinct (keys, t) of the spine with no null key or time, named as the view's keys."""
    return (
        exp.select(*[alias(col(s), k) for s, k in zip(spine_keys, view.keys, strict=True)], col(TS))
        .from_(exp.table_(SPINE))
        .where(all_not_null([col(s) for s in spine_keys] + [col(TS)]))
        .distinct()
    )


def _join_windows(query: exp.Select, view: ResolvedView, features: list[FeatureSpec], spine_keys: tuple[str, ...], read_dialect: str, i: int, engine: str = "duckdb") -> tuple[exp.Select, dict[str, exp.Expression]]:
    """Equi-join the window aggregates computed at each distinct spine (keys, t)."""
    cte, ref = f"__view{i}", f"__v{i}"
    query = query.with_(cte, as_=window_query(view, features, _spine_points(view, spine_keys), read_dialect, engine).query)
    on = exp.and_(_keys_match(spine_keys, view, ref), exp.EQ(this=col(TS, SPINE), expression=col(TS, ref)))
    query = query.join(exp.alias_(exp.table_(cte), ref, table=True), on=on, join_type="LEFT")
    return query, {f.name: col(f.name, ref) for f in features}


def _order_key(ts: exp.Expression, low: exp.Expression) -> exp.Expression:
    """DuckDB: event time in the high 64 bits of a HUGEINT, ``low`` (0 .. 2**64 - 1) below it."""
    high = exp.Mul(this=exp.cast(ts, HUGEINT), expression=exp.cast(exp.Literal.number(2**64), HUGEINT))
    return exp.Add(this=high, expression=exp.cast(low, HUGEINT))


def _join_latest_ordered(query: exp.Select, view: ResolvedView, features: list[FeatureSpec], spine_keys: tuple[str, ...], read_dialect: str, i: int) -> tuple[exp.Select, dict[str, exp.Expression], TieCheck]:
    """DuckDB: one as-of join on (event time, created) packed in a HUGEINT, with no dedupe pass.

    The source row's order key is its time in the high bits and its created
    time, offset by 2**62 + 1 (null: 0, the lowest), in the low bits; the
    spine's is (t, 2**64 - 1), so the join takes the greatest time <= t and,
    among ties, the greatest created. Rows tied on the whole key are checked
    afterwards, only for the (keys, order key) pairs that decided a value: the
    result keeps them in ``__amb{i}`` / ``__ambk{i}_*`` and ``TieCheck`` joins
    them back to the source (NOTES-engines.md: 3 s instead of 6 s for 10M rows).
    """
    cte, ref = f"__rows{i}", f"__v{i}"
    query = query.with_(cte, as_=_ordered_rows(view, features, read_dialect))
    on = exp.and_(_keys_match(spine_keys, view, ref), exp.GTE(this=col(SPINE_ORDER, SPINE), expression=col(ORDER_KEY, ref)))
    query.append("joins", exp.Join(this=exp.alias_(exp.table_(cte), ref, table=True), method="ASOF", side="LEFT", on=on))
    live: exp.Expression | None = None
    if view.ttl is not None:
        live = exp.GTE(this=col(TS, ref), expression=exp.Sub(this=col(TS, SPINE), expression=exp.Literal.number(micros(view.ttl))))

    def when_live(value: exp.Expression) -> exp.Expression:
        return value if live is None else exp.Case(ifs=[exp.If(this=live.copy(), true=value)])

    columns = {f.name: when_live(col(f.name, ref)) for f in features}
    query = query.select(alias(when_live(col(ORDER_KEY, ref)), f"__amb{i}"), copy=False)
    query = query.select(*[alias(col(k, ref), f"__ambk{i}_{j}") for j, k in enumerate(view.keys)], copy=False)
    return query, columns, TieCheck(view, tuple(features), read_dialect, i)


@dataclass(frozen=True)
class TieCheck:
    """DuckDB's after-check for ties on (keys, event time, created) among the matched source rows."""

    view: ResolvedView
    features: tuple[FeatureSpec, ...]
    read_dialect: str
    part: int

    def query(self, result: exp.Table) -> exp.Select:
        """One (keys, ``__ts``) where tied source rows that decided a value in ``result`` differ; empty if none."""
        i, keys = self.part, self.view.keys
        matched = (
            exp.select(*[alias(col(f"__ambk{i}_{j}"), k) for j, k in enumerate(keys)], alias(col(f"__amb{i}"), ORDER_KEY))
            .from_(result.copy())
            .where(exp.Not(this=exp.Is(this=col(f"__amb{i}"), expression=exp.Null())))
            .distinct()
        )
        on = exp.and_(*[exp.EQ(this=col(k, "__r"), expression=col(k, "__m")) for k in keys], exp.EQ(this=col(ORDER_KEY, "__r"), expression=col(ORDER_KEY, "__m")))
        values = row_hash([col(f.name, "__r") for f in self.features], "duckdb")
        return (
            exp.select(*[col(k, "__r") for k in keys], alias(exp.Max(this=col(TS, "__r")), TS))
            .from_(_ordered_rows(self.view, list(self.features), self.read_dialect).subquery("__r"))
            .join(matched.subquery("__m"), on=on)
            .group_by(*[col(k, "__r") for k in keys], col(ORDER_KEY, "__r"))
            .having(exp.NEQ(this=exp.Min(this=values.copy()), expression=exp.Max(this=values.copy())))
            .limit(1)
        )


def _ordered_rows(view: ResolvedView, features: list[FeatureSpec] | tuple[FeatureSpec, ...], read_dialect: str) -> exp.Select:
    rows, _ = _source_rows(view, read_dialect, "duckdb")
    rows = rows.select(*[alias(parse_expr(f.value_sql, read_dialect), f.name) for f in features])
    created_low = exp.func("coalesce", exp.Add(this=exp.cast(col(CREATED), HUGEINT), expression=exp.Literal.number(2**62 + 1)), exp.Literal.number(0))
    return exp.select(*[col(k) for k in view.keys], col(TS), alias(_order_key(col(TS), created_low), ORDER_KEY), *[col(f.name) for f in features]).from_(rows.subquery("__rows"))


def _join_latest_lateral(query: exp.Select, view: ResolvedView, features: list[FeatureSpec], spine_keys: tuple[str, ...], read_dialect: str, i: int) -> tuple[exp.Select, dict[str, exp.Expression]]:
    """PostgreSQL: the newest row at or before t (within ttl) by one index probe per spine row.

    ``__tie`` is true when another row with the same keys, event and created
    time has different values: an ambiguous tie that decided this value.
    """
    ref, top, other = f"__v{i}", "__r", "__o"
    values = {f.name: parse_expr(f.value_sql, read_dialect) for f in features}
    t = col(TS, SPINE)
    lower = exp.Sub(this=t.copy(), expression=exp.Literal.number(micros(view.ttl))) if view.ttl is not None else None
    same_row = [exp.EQ(this=col(k, other), expression=col(k, top)) for k in view.keys] + [exp.EQ(this=col(RAW_TS, other), expression=col(RAW_TS, top))]
    if view.created:
        same_row.append(exp.Not(this=exp.NullSafeNEQ(this=col(RAW_CREATED, other), expression=col(RAW_CREATED, top))))
    differs = exp.NullSafeNEQ(this=exp.Tuple(expressions=[col(n, other) for n in values]), expression=exp.Tuple(expressions=[col(n, top) for n in values]))
    tie = exp.Exists(this=exp.select(exp.Literal.number(1)).from_(raw_rows(view, values).subquery(other)).where(exp.and_(*same_row, differs)))
    lookup = (
        exp.select(col(TS, top), *[col(n, top) for n in values], alias(tie, "__tie"))
        .from_(raw_rows(view, values).subquery(top))
        .where(exp.and_(*[exp.EQ(this=col(k, top), expression=col(s, SPINE)) for s, k in zip(spine_keys, view.keys, strict=True)], pg_time_range(view, top, lower, t, upper_inclusive=True)))
        .order_by(*pg_created_order(view, top, desc=True))
        .limit(1)
    )
    lateral = exp.Lateral(this=lookup.subquery(), alias=exp.TableAlias(this=exp.to_identifier(ref)))
    query.append("joins", exp.Join(this=lateral, side="LEFT", on=exp.true()))
    query = query.select(alias(exp.Case(ifs=[exp.If(this=col("__tie", ref), true=col(TS, ref))]), f"__amb{i}"), copy=False)
    return query, {f.name: col(f.name, ref) for f in features}


def _join_latest_carried(query: exp.Select, view: ResolvedView, features: list[FeatureSpec], spine_keys: tuple[str, ...], read_dialect: str, i: int) -> tuple[exp.Select, dict[str, exp.Expression]]:
    """Spark: ``last(struct, true)`` over events and spine points, events before spine points at equal t."""
    cte, ref = f"__view{i}", f"__v{i}"
    deduped = latest_query(view, features, read_dialect, "spark").query
    fields = [TS, *[f.name for f in features], LO, HI]
    struct = exp.Anonymous(this="named_struct", expressions=[part for n in fields for part in (exp.Literal.string(n), col(n))])
    keys = [col(k) for k in view.keys]
    events = exp.select(*keys, col(TS), alias(exp.Literal.number(0), "__side"), alias(struct, "__m")).from_(deduped.subquery("__dedup"))
    points = exp.select(*[k.copy() for k in keys], col(TS), alias(exp.Literal.number(1), "__side"), alias(exp.Null(), "__m")).from_(_spine_points(view, spine_keys).subquery("__points"))
    frame = exp.WindowSpec(kind="ROWS", start="UNBOUNDED", start_side="PRECEDING", end="CURRENT ROW")
    order = exp.Order(expressions=[exp.Ordered(this=col(TS)), exp.Ordered(this=col("__side"))])
    carried = exp.Window(this=exp.Anonymous(this="last", expressions=[col("__m"), exp.true()]), partition_by=[k.copy() for k in keys], order=order, spec=frame)
    union = exp.union(events, points, distinct=False).subquery("__union")
    rows = exp.select(*[k.copy() for k in keys], col(TS), col("__side"), alias(carried, "__m")).from_(union)
    picked = [alias(exp.Dot(this=col("__m"), expression=exp.to_identifier(n, quoted=True)), "__mts" if n == TS else n) for n in fields]
    result = exp.select(*[k.copy() for k in keys], col(TS), *picked).from_(rows.subquery("__carried")).where(exp.EQ(this=col("__side"), expression=exp.Literal.number(1)))
    query = query.with_(cte, as_=result)
    on = exp.and_(_keys_match(spine_keys, view, ref), exp.EQ(this=col(TS, SPINE), expression=col(TS, ref)))
    query = query.join(exp.alias_(exp.table_(cte), ref, table=True), on=on, join_type="LEFT")
    live: exp.Expression | None = None
    if view.ttl is not None:
        live = exp.GTE(this=col("__mts", ref), expression=exp.Sub(this=col(TS, SPINE), expression=exp.Literal.number(micros(view.ttl))))
    columns = {f.name: col(f.name, ref) if live is None else exp.Case(ifs=[exp.If(this=live.copy(), true=col(f.name, ref))]) for f in features}
    differs = exp.NullSafeNEQ(this=col(LO, ref), expression=col(HI, ref))
    condition = differs if live is None else exp.and_(differs, live.copy())
    query = query.select(alias(exp.Case(ifs=[exp.If(this=condition, true=col("__mts", ref))]), f"__amb{i}"), copy=False)
    return query, columns


def _join_latest(query: exp.Select, view: ResolvedView, features: list[FeatureSpec], spine_keys: tuple[str, ...], read_dialect: str, i: int, engine: str = "duckdb") -> tuple[exp.Select, dict[str, exp.Expression]]:
    """As-of join the deduplicated rows (plain join for a static view); add the ``__amb{i}`` flag."""
    cte, ref = f"__view{i}", f"__v{i}"
    vq = latest_query(view, features, read_dialect, engine)
    query = query.with_(cte, as_=vq.query)
    on = _keys_match(spine_keys, view, ref)
    live: exp.Expression | None = None
    if vq.kind == "static":
        query = query.join(exp.alias_(exp.table_(cte), ref, table=True), on=on, join_type="LEFT")
        amb_time: exp.Expression = exp.Literal.number(0)
    else:
        on = exp.and_(on, exp.GTE(this=col(TS, SPINE), expression=col(TS, ref)))
        query.append("joins", exp.Join(this=exp.alias_(exp.table_(cte), ref, table=True), method="ASOF", side="LEFT", on=on))
        if view.ttl is not None:
            live = exp.GTE(this=col(TS, ref), expression=exp.Sub(this=col(TS, SPINE), expression=exp.Literal.number(micros(view.ttl))))
        amb_time = col(TS, ref)
    columns: dict[str, exp.Expression] = {}
    for feature in features:
        value: exp.Expression = col(feature.name, ref)
        columns[feature.name] = value if live is None else exp.Case(ifs=[exp.If(this=live.copy(), true=value)])
    differs = exp.NullSafeNEQ(this=col(LO, ref), expression=col(HI, ref))
    condition = differs if live is None else exp.and_(differs, live.copy())
    query = query.select(alias(exp.Case(ifs=[exp.If(this=condition, true=amb_time)]), f"__amb{i}"), copy=False)
    return query, columns
