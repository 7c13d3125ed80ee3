"""Per-view feature queries: the point-in-time rules of DESIGN.md section 4.

Two shapes, both joined to a spine of (keys, ``__ts``) rows by the
training-set compiler:

* latest values: source rows deduplicated per (keys, event time) by the
  greatest created timestamp, then an as-of join (greatest event time <= t),
  with the ttl checked on the matched time. The dedupe window also carries the
  min and max of a hash of the tied rows' values, so an ambiguous tie is
  detected only where it decides a value, without another pass over the source.
* window aggregates: the spine's distinct (keys, t) rows and the source events
  in one union, aggregated with a frame ``RANGE BETWEEN w PRECEDING AND 1
  PRECEDING`` on microseconds: exactly [t - w, t), one sort, no range join.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlglot import exp

from bigml_fs.catalog import ResolvedView
from bigml_fs.compiler.sqlparts import CREATED, MIN_BIGINT, TS, alias, all_not_null, col, epoch_us, micros, parse_expr
from bigml_fs.spec.schema import FeatureSpec

EVENT = "__ev"
LO, HI = "__lo", "__hi"


@dataclass(frozen=True)
class ViewQuery:
    """A CTE body keyed by the view's key columns (and ``__ts`` unless static)."""

    view: ResolvedView
    features: tuple[FeatureSpec, ...]
    query: exp.Select
    kind: str  # "latest" | "static" | "window"


def _source_rows(view: ResolvedView, dialect: str, distinct: bool = False) -> tuple[exp.Select, list[exp.Expression]]:
    """Source rows with non-null keys and time; returns (FROM-able select, key columns)."""
    keys = [col(k) for k in view.keys]
    required = keys + ([col(view.timestamp)] if view.timestamp else [])
    base: exp.Expression = view.relation.copy()
    if distinct:
        base = exp.select("*").from_(base).distinct().subquery("__src")
    query = exp.select(*[k.copy() for k in keys]).from_(base).where(all_not_null(required))
    if view.timestamp:
        query = query.select(alias(epoch_us(col(view.timestamp), view.columns[view.timestamp]), TS))
        created = epoch_us(col(view.created), view.columns[view.created]) if view.created else exp.Literal.number(0)
        query = query.select(alias(created, CREATED))
    return query, keys


def _value(feature: FeatureSpec, dialect: str) -> exp.Expression:
    """The per-row value a feature aggregates (after its ``where`` filter)."""
    if feature.agg == "count" and feature.expr is None:
        value: exp.Expression = exp.Literal.number(1)
    else:
        value = parse_expr(feature.value_sql, dialect)
    if feature.where:
        value = exp.Case(ifs=[exp.If(this=parse_expr(feature.where, dialect), true=value)])
    return value


def latest_query(view: ResolvedView, features: list[FeatureSpec], dialect: str) -> ViewQuery:
    rows, keys = _source_rows(view, dialect)
    rows = rows.select(*[alias(parse_expr(f.value_sql, dialect), f.name) for f in features])
    # min == max of a hash over the tied rows' values <=> they agree (a struct min/max costs ~40% more)
    values = exp.Anonymous(this="hash", expressions=[col(f.name) for f in features])
    if view.timestamp is None:
        window = exp.Window(this=exp.RowNumber(), partition_by=[k.copy() for k in keys])
        spread = exp.Window(this=exp.Min(this=values.copy()), partition_by=[k.copy() for k in keys])
        spread_hi = exp.Window(this=exp.Max(this=values.copy()), partition_by=[k.copy() for k in keys])
        query = (
            exp.select(*[k.copy() for k in keys], *[col(f.name) for f in features], alias(spread, LO), alias(spread_hi, HI))
            .from_(rows.subquery("__rows"))
            .qualify(exp.EQ(this=window, expression=exp.Literal.number(1)))
        )
        return ViewQuery(view, tuple(features), query, "static")
    partition = [k.copy() for k in keys] + [col(TS)]
    order = exp.Order(expressions=[exp.Ordered(this=col(CREATED), desc=True, nulls_first=False)])

    def over(func: exp.Expression) -> exp.Window:
        return exp.Window(this=func, partition_by=[p.copy() for p in partition], order=order.copy())

    query = (
        exp.select(*[k.copy() for k in keys], col(TS), *[col(f.name) for f in features])
        .select(alias(over(exp.Min(this=values.copy())), LO), alias(over(exp.Max(this=values.copy())), HI))
        .from_(rows.subquery("__rows"))
        .qualify(exp.EQ(this=over(exp.RowNumber()), expression=exp.Literal.number(1)))
    )
    return ViewQuery(view, tuple(features), query, "latest")


def window_query(view: ResolvedView, features: list[FeatureSpec], spine_keys: exp.Select, dialect: str) -> ViewQuery:
    """Exact [t - w, t) aggregates at each distinct (keys, t) of ``spine_keys``."""
    events, _ = _source_rows(view, dialect, distinct=True)
    values: list[exp.Expression] = []
    for i, feature in enumerate(features):
        value = _value(feature, dialect)
        values.append(alias(value, f"__v{i}"))
        if feature.agg in ("first", "last"):
            order_key = exp.Anonymous(this="row", expressions=[col(TS), exp.func("coalesce", col(CREATED), exp.Literal.number(MIN_BIGINT)), value.copy()])
            values.append(alias(exp.Case(ifs=[exp.If(this=exp.Not(this=exp.Is(this=value.copy(), expression=exp.Null())), true=order_key)]), f"__o{i}"))
    events = events.select(*values, alias(exp.Literal.number(1), EVENT))
    nulls = [alias(exp.Null(), v.alias) for v in values]
    spine_side = exp.select(*[col(k) for k in view.keys], col(TS), alias(exp.Null(), CREATED), *nulls, alias(exp.Null(), EVENT)).from_(spine_keys.subquery("__spine_keys"))
    union = exp.union(spine_side, events, distinct=False)

    aggregates = []
    for i, feature in enumerate(features):
        frame = exp.WindowSpec(kind="RANGE", start=exp.Literal.number(micros(feature.window)), start_side="PRECEDING", end=exp.Literal.number(1), end_side="PRECEDING")
        window = exp.Window(this=_aggregate(feature, i), partition_by=[col(k) for k in view.keys], order=exp.Order(expressions=[exp.Ordered(this=col(TS))]), spec=frame)
        aggregates.append(alias(_cast_output(feature, window), feature.name))
    framed = exp.select(*[col(k) for k in view.keys], col(TS), col(EVENT), *aggregates).from_(union.subquery("__union"))
    query = exp.select(*[col(k) for k in view.keys], col(TS), *[col(f.name) for f in features]).from_(framed.subquery("__framed")).where(exp.Is(this=col(EVENT), expression=exp.Null()))
    return ViewQuery(view, tuple(features), query, "window")


def _aggregate(feature: FeatureSpec, i: int) -> exp.Expression:
    value = col(f"__v{i}")
    agg = feature.agg
    if agg == "count":
        return exp.Count(this=col(EVENT) if feature.expr is None and not feature.where else value)
    if agg == "count_distinct":
        return exp.Count(this=exp.Distinct(expressions=[value]))
    if agg == "first":
        return exp.ArgMin(this=value, expression=col(f"__o{i}"))
    if agg == "last":
        return exp.ArgMax(this=value, expression=col(f"__o{i}"))
    # sample statistics, as SQL's stddev/variance (exp.Variance is the sample variance in every dialect)
    builders = {"sum": exp.Sum, "avg": exp.Avg, "min": exp.Min, "max": exp.Max, "stddev": exp.StddevSamp, "variance": exp.Variance}
    return builders[agg](this=value)


def _cast_output(feature: FeatureSpec, window: exp.Expression) -> exp.Expression:
    """Fixed output types: count BIGINT; sum, avg, stddev, variance DOUBLE."""
    if feature.agg in ("count", "count_distinct"):
        return exp.cast(window, exp.DataType.Type.BIGINT)
    if feature.agg in ("sum", "avg", "stddev", "variance"):
        return exp.cast(window, exp.DataType.Type.DOUBLE)
    return window


__all__ = ["ViewQuery", "latest_query", "window_query"]
