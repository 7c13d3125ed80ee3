"""Per-view feature queries: the point-in-time rules (the README's rules).

Built once as SQLGlot ASTs; the ``Dialect`` object says where the engines'
SQL differs and spells those parts. Two shapes, both joined to a spine of
(keys, ``__ts``) rows by the training-set compiler:

* latest values: source rows deduplicated per (keys, event time) by the
  greatest created timestamp. The dedupe window also carries the min and max
  of a hash of the tied rows' values, so an ambiguous tie is detected only
  where it decides a value, without another pass over the source. (DuckDB
  as-of joins these rows; PostgreSQL uses an index-backed LATERAL instead, see
  ``training_query.py``; carry dialects (Spark, the compile-only warehouses)
  carry the last event forward.)
* window aggregates: the spine's distinct (keys, t) rows and the source events
  in one union, aggregated with a frame ``RANGE BETWEEN w PRECEDING AND 1
  PRECEDING`` on microseconds: exactly [t - w, t), one sort, no range join.
  Aggregates in ``dialect.window_lookups`` are looked up per spine point
  instead: PostgreSQL (no DISTINCT window aggregates, no arg_min/IGNORE
  NULLS) probes an index range; the compile-only warehouses aggregate a range
  join. Spark uses collect_set and min/max of a struct.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlglot import exp

from bigml_fs.catalog import ResolvedView
from bigml_fs.compiler.sqlparts import CREATED, MIN_BIGINT, TS, alias, all_not_null, col, parse_expr
from bigml_fs.core.timeutil import micros
from bigml_fs.engines.dialects import Dialect
from bigml_fs.spec.schema import FeatureSpec

EVENT = "__ev"
LO, HI = "__lo", "__hi"
RAW_TS, RAW_CREATED = "__rts", "__rcr"


@dataclass(frozen=True)
class ViewQuery:
    """A CTE body keyed by the view's key columns (and ``__ts`` unless static)."""

    view: ResolvedView
    features: tuple[FeatureSpec, ...]
    query: exp.Select
    kind: str  # "latest" | "static" | "window"


def _source_rows(
    view: ResolvedView, dialect: Dialect, distinct: bool = False
) -> tuple[exp.Select, list[exp.Expression]]:
    """Source rows with non-null keys and time; returns (FROM-able select, key columns)."""
    keys = [col(k) for k in view.keys]
    required = keys + ([col(view.timestamp)] if view.timestamp else [])
    base: exp.Expression = view.relation.copy()
    if distinct:
        base = exp.select("*").from_(base).distinct().subquery("__src")
    query = exp.select(*[k.copy() for k in keys]).from_(base).where(all_not_null(required))
    if view.timestamp:
        query = query.select(alias(dialect.epoch_us(col(view.timestamp), view.columns[view.timestamp]), TS))
        created = (
            dialect.epoch_us(col(view.created), view.columns[view.created]) if view.created else exp.Literal.number(0)
        )
        query = query.select(alias(created, CREATED))
    return query, keys


def raw_rows(view: ResolvedView, values: dict[str, exp.Expression], dialect: Dialect) -> exp.Select:
    """Source rows keeping the raw time columns (``__rts``, ``__rcr``) beside ``__ts``.

    PostgreSQL flattens this subquery into its caller, so filters and orders on
    the raw columns can use an index on (keys, time, created).
    """
    rows, _ = _source_rows(view, dialect)
    rows = rows.select(alias(col(view.timestamp), RAW_TS))
    if view.created:
        rows = rows.select(alias(col(view.created), RAW_CREATED))
    return rows.select(*[alias(v, name) for name, v in values.items()])


def probe_time_range(
    view: ResolvedView,
    ref: str,
    lower_us: exp.Expression | None,
    upper_us: exp.Expression,
    upper_inclusive: bool,
    dialect: Dialect,
) -> exp.Expression:
    """``lower <= time <(=) upper`` on a raw-rows alias, on the raw column when it is a timestamp (index-friendly)."""
    dtype = view.columns[view.timestamp].upper()
    if dtype.startswith("TIMESTAMP") and not dtype.endswith("_NS"):
        column, bound = col(RAW_TS, ref), (lambda us: dialect.from_epoch_us(us, dtype))
    else:  # a DATE (or text) time: compare the microseconds, still exact
        column, bound = col(TS, ref), (lambda us: us)
    upper_cmp = exp.LTE if upper_inclusive else exp.LT
    condition: exp.Expression = upper_cmp(this=column.copy(), expression=bound(upper_us))
    if lower_us is not None:
        condition = exp.and_(exp.GTE(this=column.copy(), expression=bound(lower_us)), condition)
    return condition


def probe_order(view: ResolvedView, ref: str, desc: bool) -> list[exp.Ordered]:
    """Order by event time then created (null lowest), matching an index on (keys, time, created NULLS FIRST)."""
    order = [exp.Ordered(this=col(RAW_TS, ref), desc=desc, nulls_first=not desc)]
    if view.created:
        order.append(exp.Ordered(this=col(RAW_CREATED, ref), desc=desc, nulls_first=not desc))
    return order


def _value(feature: FeatureSpec, read: str) -> exp.Expression:
    """The per-row value a feature aggregates (after its ``where`` filter), read in the project's ``read`` dialect."""
    if feature.agg == "count" and feature.expr is None:
        value: exp.Expression = exp.Literal.number(1)
    else:
        value = parse_expr(feature.value_sql, read)
    if feature.where:
        value = exp.Case(ifs=[exp.If(this=parse_expr(feature.where, read), true=value)])
    return value


def latest_query(view: ResolvedView, features: list[FeatureSpec], read: str, dialect: Dialect) -> ViewQuery:
    """Deduplicated source rows (one per keys and event time) with the ``__lo``/``__hi`` tie hashes."""
    rows, keys = _source_rows(view, dialect)
    rows = rows.select(*[alias(parse_expr(f.value_sql, read), f.name) for f in features])
    # min == max of a hash over the tied rows' values <=> they agree (a struct min/max costs ~40% more)
    values = dialect.row_hash([col(f.name) for f in features])
    if view.timestamp is None:
        # Spark wants an ORDER BY in every row_number(); within one key any order picks an equal row
        window = exp.Window(
            this=exp.RowNumber(),
            partition_by=[k.copy() for k in keys],
            order=exp.Order(expressions=[exp.Ordered(this=k.copy()) for k in keys]),
        )
        spread = exp.Window(this=exp.Min(this=values.copy()), partition_by=[k.copy() for k in keys])
        spread_hi = exp.Window(this=exp.Max(this=values.copy()), partition_by=[k.copy() for k in keys])
        query = exp.select(
            *[k.copy() for k in keys], *[col(f.name) for f in features], alias(spread, LO), alias(spread_hi, HI)
        ).from_(rows.subquery("__rows"))
        query = dialect.qualify(query, exp.EQ(this=window, expression=exp.Literal.number(1)))
        return ViewQuery(view, tuple(features), query, "static")
    partition = [k.copy() for k in keys] + [col(TS)]
    order = exp.Order(expressions=[exp.Ordered(this=col(CREATED), desc=True, nulls_first=False)])

    def over(func: exp.Expression) -> exp.Window:
        # the default frame (up to the current row's peers) spans exactly the top-created tie group at row 1
        return exp.Window(this=func, partition_by=[p.copy() for p in partition], order=order.copy())

    query = (
        exp.select(*[k.copy() for k in keys], col(TS), *[col(f.name) for f in features])
        .select(alias(over(exp.Min(this=values.copy())), LO), alias(over(exp.Max(this=values.copy())), HI))
        .from_(rows.subquery("__rows"))
    )
    query = dialect.qualify(query, exp.EQ(this=over(exp.RowNumber()), expression=exp.Literal.number(1)))
    return ViewQuery(view, tuple(features), query, "latest")


def window_query(
    view: ResolvedView, features: list[FeatureSpec], spine_keys: exp.Select, read: str, dialect: Dialect
) -> ViewQuery:
    """Exact [t - w, t) aggregates at each distinct (keys, t) of ``spine_keys``."""
    lookups = [f for f in features if f.agg in dialect.window_lookups]
    framed_features = [f for f in features if f not in lookups]
    base = _framed(view, framed_features, spine_keys, read, dialect) if framed_features else spine_keys
    if not lookups:
        return ViewQuery(view, tuple(features), base, "window")
    point = "__p"
    query = exp.select(
        *[col(k, point) for k in view.keys], col(TS, point), *[col(f.name, point) for f in framed_features]
    ).from_(base.subquery(point))
    for i, feature in enumerate(lookups):
        if dialect.probes_by_index:
            query = query.select(alias(_probe(view, feature, point, read, dialect), feature.name))
        else:
            query = _join_range(query, view, feature, point, f"__l{i}", spine_keys, read, dialect)
    ordered = exp.select(*[col(k) for k in view.keys], col(TS), *[col(f.name) for f in features]).from_(
        query.subquery("__looked")
    )
    return ViewQuery(view, tuple(features), ordered, "window")


def _framed(
    view: ResolvedView, features: list[FeatureSpec], spine_keys: exp.Select, read: str, dialect: Dialect
) -> exp.Select:
    """The union of spine points and events with one window frame per feature; spine rows kept."""
    events, _ = _source_rows(view, dialect, distinct=True)
    values: list[exp.Expression] = []
    for i, feature in enumerate(features):
        value = _value(feature, read)
        values.append(alias(value, f"__v{i}"))
        if feature.agg in ("first", "last"):
            created = exp.func("coalesce", col(CREATED), exp.Literal.number(MIN_BIGINT))
            if dialect.arg_windows:
                order_key: exp.Expression = exp.Anonymous(this="row", expressions=[col(TS), created, value.copy()])
            else:  # min/max of a struct: structs order field by field; the value breaks the remaining ties
                order_key = exp.Anonymous(
                    this="named_struct",
                    expressions=[
                        exp.Literal.string("t"),
                        col(TS),
                        exp.Literal.string("c"),
                        created,
                        exp.Literal.string("v"),
                        value.copy(),
                    ],
                )
            values.append(
                alias(
                    exp.Case(
                        ifs=[
                            exp.If(this=exp.Not(this=exp.Is(this=value.copy(), expression=exp.Null())), true=order_key)
                        ]
                    ),
                    f"__o{i}",
                )
            )
    events = events.select(*values, alias(exp.Literal.number(1), EVENT))
    nulls = [alias(exp.Null(), v.alias) for v in values]
    spine_side = exp.select(
        *[col(k) for k in view.keys], col(TS), alias(exp.Null(), CREATED), *nulls, alias(exp.Null(), EVENT)
    ).from_(spine_keys.subquery("__spine_keys"))
    union = exp.union(spine_side, events, distinct=False)

    aggregates = []
    for i, feature in enumerate(features):
        frame = exp.WindowSpec(
            kind="RANGE",
            start=exp.Literal.number(micros(feature.window)),
            start_side="PRECEDING",
            end=exp.Literal.number(1),
            end_side="PRECEDING",
        )

        def framed(func: exp.Expression, frame: exp.WindowSpec = frame) -> exp.Window:
            return exp.Window(
                this=func,
                partition_by=[col(k) for k in view.keys],
                order=exp.Order(expressions=[exp.Ordered(this=col(TS))]),
                spec=frame,
            )

        aggregates.append(alias(_cast_output(feature, _aggregate(feature, i, dialect, framed)), feature.name))
    framed_rows = exp.select(*[col(k) for k in view.keys], col(TS), col(EVENT), *aggregates).from_(
        union.subquery("__union")
    )
    return (
        exp.select(*[col(k) for k in view.keys], col(TS), *[col(f.name) for f in features])
        .from_(framed_rows.subquery("__framed"))
        .where(exp.Is(this=col(EVENT), expression=exp.Null()))
    )


def _aggregate(feature: FeatureSpec, i: int, dialect: Dialect, framed) -> exp.Expression:
    value = col(f"__v{i}")
    agg = feature.agg
    if agg == "count":
        return framed(exp.Count(this=col(EVENT) if feature.expr is None and not feature.where else value))
    if agg == "count_distinct":
        if not dialect.distinct_windows:  # a set per frame is exact
            return exp.Anonymous(
                this="size", expressions=[framed(exp.Anonymous(this="collect_set", expressions=[value]))]
            )
        return framed(exp.Count(this=exp.Distinct(expressions=[value])))
    if agg in ("first", "last"):
        if not dialect.arg_windows:
            func = exp.Min if agg == "first" else exp.Max
            return exp.Dot(this=exp.paren(framed(func(this=col(f"__o{i}")))), expression=exp.to_identifier("v"))
        builder = exp.ArgMin if agg == "first" else exp.ArgMax
        return framed(builder(this=value, expression=col(f"__o{i}")))
    # sample statistics, as SQL's stddev/variance (exp.Variance is the sample variance in every dialect)
    builders = {
        "sum": exp.Sum,
        "avg": exp.Avg,
        "min": exp.Min,
        "max": exp.Max,
        "stddev": exp.StddevSamp,
        "variance": exp.Variance,
    }
    if dialect.avg_as_double and agg in ("avg", "stddev", "variance"):
        # Spark averages DECIMAL literals (CASE ... THEN 1.0) in DECIMAL with a few places; DOUBLE as elsewhere
        value = exp.cast(value, exp.DataType.Type.DOUBLE)
    return framed(builders[agg](this=value))


def _probe(view: ResolvedView, feature: FeatureSpec, point: str, read: str, dialect: Dialect) -> exp.Expression:
    """count_distinct/first/last over [t - w, t) as one index range scan per spine point (PostgreSQL)."""
    ref = "__r"
    rows = raw_rows(view, {"__v": _value(feature, read)}, dialect).subquery(ref)
    keys_match = exp.and_(*[exp.EQ(this=col(k, ref), expression=col(k, point)) for k in view.keys])
    t = col(TS, point)
    within = probe_time_range(
        view,
        ref,
        exp.Sub(this=t.copy(), expression=exp.Literal.number(micros(feature.window))),
        t.copy(),
        upper_inclusive=False,
        dialect=dialect,
    )
    value = col("__v", ref)
    if feature.agg == "count_distinct":
        lookup = (
            exp.select(exp.cast(exp.Count(this=exp.Distinct(expressions=[value])), exp.DataType.Type.BIGINT))
            .from_(rows)
            .where(exp.and_(keys_match, within))
        )
    else:
        desc = feature.agg == "last"
        order = [*probe_order(view, ref, desc), exp.Ordered(this=value.copy(), desc=desc)]
        lookup = (
            exp.select(value)
            .from_(rows)
            .where(exp.and_(keys_match, within, exp.Not(this=exp.Is(this=value.copy(), expression=exp.Null()))))
            .order_by(*order)
            .limit(1)
        )
    return exp.Subquery(this=lookup)


def _join_range(
    query: exp.Select,
    view: ResolvedView,
    feature: FeatureSpec,
    point: str,
    ref: str,
    spine_keys: exp.Select,
    read: str,
    dialect: Dialect,
) -> exp.Select:
    """count_distinct/first/last over [t - w, t) by a range join of spine points and events, one row per point.

    Plain SQL every warehouse runs (COUNT(DISTINCT) per group, ROW_NUMBER for
    the pick), where a framed DISTINCT or arg_min/arg_max is not available.
    """
    events, _ = _source_rows(view, dialect)
    events = events.select(alias(_value(feature, read), "__v"))
    p, e = "__q", "__e"
    on = exp.and_(
        *[exp.EQ(this=col(k, e), expression=col(k, p)) for k in view.keys],
        exp.GTE(
            this=col(TS, e),
            expression=exp.Sub(this=col(TS, p), expression=exp.Literal.number(micros(feature.window))),
        ),
        exp.LT(this=col(TS, e), expression=col(TS, p)),
        exp.Not(this=exp.Is(this=col("__v", e), expression=exp.Null())),
    )
    group = [*[col(k, p) for k in view.keys], col(TS, p)]
    pairs = (
        exp.select(*[g.copy() for g in group])
        .from_(spine_keys.subquery(p))
        .join(events.subquery(e), on=on, join_type="INNER")
    )
    if feature.agg == "count_distinct":
        found = pairs.select(alias(exp.Count(this=exp.Distinct(expressions=[col("__v", e)])), "__x")).group_by(
            *[g.copy() for g in group]
        )
        picked: exp.Expression = exp.cast(
            exp.func("coalesce", col("__x", ref), exp.Literal.number(0)), exp.DataType.Type.BIGINT
        )
    else:
        desc = feature.agg == "last"
        order = [
            exp.Ordered(this=col(TS, e), desc=desc),
            exp.Ordered(
                this=exp.func("coalesce", col(CREATED, e), exp.Literal.number(MIN_BIGINT)), desc=desc
            ),  # null created sorts lowest
            exp.Ordered(this=col("__v", e), desc=desc),
        ]
        number = exp.Window(
            this=exp.RowNumber(), partition_by=[g.copy() for g in group], order=exp.Order(expressions=order)
        )
        ranked = pairs.select(alias(col("__v", e), "__x"), alias(number, "__n"))
        found = (
            exp.select(*[col(k) for k in view.keys], col(TS), col("__x"))
            .from_(ranked.subquery("__ranked"))
            .where(exp.EQ(this=col("__n"), expression=exp.Literal.number(1)))
        )
        picked = col("__x", ref)
    on_point = exp.and_(
        *[exp.EQ(this=col(k, ref), expression=col(k, point)) for k in view.keys],
        exp.EQ(this=col(TS, ref), expression=col(TS, point)),
    )
    query = query.join(found.subquery(ref), on=on_point, join_type="LEFT")
    return query.select(alias(picked, feature.name))


def _cast_output(feature: FeatureSpec, window: exp.Expression) -> exp.Expression:
    """Fixed output types: count BIGINT; sum, avg, stddev, variance DOUBLE."""
    if feature.agg in ("count", "count_distinct"):
        return exp.cast(window, exp.DataType.Type.BIGINT)
    if feature.agg in ("sum", "avg", "stddev", "variance"):
        return exp.cast(window, exp.DataType.Type.DOUBLE)
    return window


__all__ = ["ViewQuery", "latest_query", "raw_rows", "window_query"]
