"""Per-view feature queries: the point-in-time rules of DESIGN.md section 4.

Built once as SQLGlot ASTs; ``engine`` picks a strategy where the engines'
SQL differs (NOTES-engines.md). Two shapes, both joined to a spine of
(keys, ``__ts``) rows by the training-set compiler:

* latest values: source rows deduplicated per (keys, event time) by the
  greatest created timestamp. The dedupe window also carries the min and max
  of a hash of the tied rows' values, so an ambiguous tie is detected only
  where it decides a value, without another pass over the source. (DuckDB
  as-of joins these rows; PostgreSQL uses an index-backed LATERAL instead, see
  ``training_query.py``; Spark carries them forward with ``last(.., true)``.)
* window aggregates: the spine's distinct (keys, t) rows and the source events
  in one union, aggregated with a frame ``RANGE BETWEEN w PRECEDING AND 1
  PRECEDING`` on microseconds: exactly [t - w, t), one sort, no range join.
  PostgreSQL has no DISTINCT window aggregates and no arg_min/IGNORE NULLS, so
  there count_distinct, first and last are bounded index range lookups per
  spine point; Spark uses collect_set and min/max of a struct.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlglot import exp

from bigml_fs.catalog import ResolvedView
from bigml_fs.compiler.sqlparts import (
    CREATED,
    MIN_BIGINT,
    TS,
    alias,
    all_not_null,
    col,
    epoch_us,
    from_epoch_us,
    micros,
    parse_expr,
    row_hash,
)
from bigml_fs.spec.schema import FeatureSpec

EVENT = "__ev"
LO, HI = "__lo", "__hi"
RAW_TS, RAW_CREATED = "__rts", "__rcr"
ENGINES = ("duckdb", "postgres", "spark")
PG_LOOKUP_AGGS = ("count_distinct", "first", "last")


def strategy(dialect: str | None) -> str:
    """The plan family for a SQLGlot dialect: its own engine's plan, else DuckDB's."""
    return dialect if dialect in ENGINES else "duckdb"


@dataclass(frozen=True)
class ViewQuery:
    """A CTE body keyed by the view's key columns (and ``__ts`` unless static)."""

    view: ResolvedView
    features: tuple[FeatureSpec, ...]
    query: exp.Select
    kind: str  # "latest" | "static" | "window"


def _source_rows(
    view: ResolvedView, dialect: str, engine: str = "duckdb", distinct: bool = False
) -> tuple[exp.Select, list[exp.Expression]]:
    """Source rows with non-null keys and time; returns (FROM-able select, key columns)."""
    keys = [col(k) for k in view.keys]
    required = keys + ([col(view.timestamp)] if view.timestamp else [])
    base: exp.Expression = view.relation.copy()
    if distinct:
        base = exp.select("*").from_(base).distinct().subquery("__src")
    query = exp.select(*[k.copy() for k in keys]).from_(base).where(all_not_null(required))
    if view.timestamp:
        query = query.select(alias(epoch_us(col(view.timestamp), view.columns[view.timestamp], engine), TS))
        created = (
            epoch_us(col(view.created), view.columns[view.created], engine) if view.created else exp.Literal.number(0)
        )
        query = query.select(alias(created, CREATED))
    return query, keys


def raw_rows(view: ResolvedView, values: dict[str, exp.Expression], engine: str = "postgres") -> exp.Select:
    """Source rows keeping the raw time columns (``__rts``, ``__rcr``) beside ``__ts``.

    PostgreSQL flattens this subquery into its caller, so filters and orders on
    the raw columns can use an index on (keys, time, created).
    """
    rows, _ = _source_rows(view, "duckdb", engine)
    rows = rows.select(alias(col(view.timestamp), RAW_TS))
    if view.created:
        rows = rows.select(alias(col(view.created), RAW_CREATED))
    return rows.select(*[alias(v, name) for name, v in values.items()])


def pg_time_range(
    view: ResolvedView, ref: str, lower_us: exp.Expression | None, upper_us: exp.Expression, upper_inclusive: bool
) -> exp.Expression:
    """``lower <= time <(=) upper`` on a raw-rows alias, on the raw column when it is a timestamp (index-friendly)."""
    dtype = view.columns[view.timestamp].upper()
    if dtype.startswith("TIMESTAMP") and not dtype.endswith("_NS"):
        column, bound = col(RAW_TS, ref), (lambda us: from_epoch_us(us, dtype))
    else:  # a DATE (or text) time: compare the microseconds, still exact
        column, bound = col(TS, ref), (lambda us: us)
    upper_cmp = exp.LTE if upper_inclusive else exp.LT
    condition: exp.Expression = upper_cmp(this=column.copy(), expression=bound(upper_us))
    if lower_us is not None:
        condition = exp.and_(exp.GTE(this=column.copy(), expression=bound(lower_us)), condition)
    return condition


def pg_created_order(view: ResolvedView, ref: str, desc: bool) -> list[exp.Ordered]:
    """Order by event time then created (null lowest), matching an index on (keys, time, created NULLS FIRST)."""
    order = [exp.Ordered(this=col(RAW_TS, ref), desc=desc, nulls_first=not desc)]
    if view.created:
        order.append(exp.Ordered(this=col(RAW_CREATED, ref), desc=desc, nulls_first=not desc))
    return order


def _value(feature: FeatureSpec, dialect: str) -> exp.Expression:
    """The per-row value a feature aggregates (after its ``where`` filter)."""
    if feature.agg == "count" and feature.expr is None:
        value: exp.Expression = exp.Literal.number(1)
    else:
        value = parse_expr(feature.value_sql, dialect)
    if feature.where:
        value = exp.Case(ifs=[exp.If(this=parse_expr(feature.where, dialect), true=value)])
    return value


def latest_query(view: ResolvedView, features: list[FeatureSpec], dialect: str, engine: str = "duckdb") -> ViewQuery:
    """Deduplicated source rows (one per keys and event time) with the ``__lo``/``__hi`` tie hashes."""
    rows, keys = _source_rows(view, dialect, engine)
    rows = rows.select(*[alias(parse_expr(f.value_sql, dialect), f.name) for f in features])
    # min == max of a hash over the tied rows' values <=> they agree (a struct min/max costs ~40% more)
    values = row_hash([col(f.name) for f in features], engine)
    if view.timestamp is None:
        # Spark wants an ORDER BY in every row_number(); within one key any order picks an equal row
        window = exp.Window(
            this=exp.RowNumber(),
            partition_by=[k.copy() for k in keys],
            order=exp.Order(expressions=[exp.Ordered(this=k.copy()) for k in keys]),
        )
        spread = exp.Window(this=exp.Min(this=values.copy()), partition_by=[k.copy() for k in keys])
        spread_hi = exp.Window(this=exp.Max(this=values.copy()), partition_by=[k.copy() for k in keys])
        query = (
            exp.select(
                *[k.copy() for k in keys], *[col(f.name) for f in features], alias(spread, LO), alias(spread_hi, HI)
            )
            .from_(rows.subquery("__rows"))
            .qualify(exp.EQ(this=window, expression=exp.Literal.number(1)))
        )
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
        .qualify(exp.EQ(this=over(exp.RowNumber()), expression=exp.Literal.number(1)))
    )
    return ViewQuery(view, tuple(features), query, "latest")


def window_query(
    view: ResolvedView, features: list[FeatureSpec], spine_keys: exp.Select, dialect: str, engine: str = "duckdb"
) -> ViewQuery:
    """Exact [t - w, t) aggregates at each distinct (keys, t) of ``spine_keys``."""
    lookups = [f for f in features if engine == "postgres" and f.agg in PG_LOOKUP_AGGS]
    framed_features = [f for f in features if f not in lookups]
    base = _framed(view, framed_features, spine_keys, dialect, engine) if framed_features else spine_keys
    if not lookups:
        return ViewQuery(view, tuple(features), base, "window")
    point = "__p"
    query = exp.select(
        *[col(k, point) for k in view.keys], col(TS, point), *[col(f.name, point) for f in framed_features]
    ).from_(base.subquery(point))
    for feature in lookups:
        query = query.select(alias(_pg_lookup(view, feature, point, dialect), feature.name))
    ordered = exp.select(*[col(k) for k in view.keys], col(TS), *[col(f.name) for f in features]).from_(
        query.subquery("__looked")
    )
    return ViewQuery(view, tuple(features), ordered, "window")


def _framed(
    view: ResolvedView, features: list[FeatureSpec], spine_keys: exp.Select, dialect: str, engine: str
) -> exp.Select:
    """The union of spine points and events with one window frame per feature; spine rows kept."""
    events, _ = _source_rows(view, dialect, engine, distinct=True)
    values: list[exp.Expression] = []
    for i, feature in enumerate(features):
        value = _value(feature, dialect)
        values.append(alias(value, f"__v{i}"))
        if feature.agg in ("first", "last"):
            created = exp.func("coalesce", col(CREATED), exp.Literal.number(MIN_BIGINT))
            if engine == "spark":  # structs order field by field; the value breaks the remaining ties
                order_key: exp.Expression = exp.Anonymous(
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
            else:
                order_key = exp.Anonymous(this="row", expressions=[col(TS), created, value.copy()])
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

        aggregates.append(alias(_cast_output(feature, _aggregate(feature, i, engine, framed)), feature.name))
    framed_rows = exp.select(*[col(k) for k in view.keys], col(TS), col(EVENT), *aggregates).from_(
        union.subquery("__union")
    )
    return (
        exp.select(*[col(k) for k in view.keys], col(TS), *[col(f.name) for f in features])
        .from_(framed_rows.subquery("__framed"))
        .where(exp.Is(this=col(EVENT), expression=exp.Null()))
    )


def _aggregate(feature: FeatureSpec, i: int, engine: str, framed) -> exp.Expression:
    value = col(f"__v{i}")
    agg = feature.agg
    if agg == "count":
        return framed(exp.Count(this=col(EVENT) if feature.expr is None and not feature.where else value))
    if agg == "count_distinct":
        if engine == "spark":  # no DISTINCT window aggregates in Spark; a set per frame is exact
            return exp.Anonymous(
                this="size", expressions=[framed(exp.Anonymous(this="collect_set", expressions=[value]))]
            )
        return framed(exp.Count(this=exp.Distinct(expressions=[value])))
    if agg in ("first", "last"):
        if engine == "spark":
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
    if engine == "spark" and agg in ("avg", "stddev", "variance"):
        # Spark averages DECIMAL literals (CASE ... THEN 1.0) in DECIMAL with a few places; DOUBLE as elsewhere
        value = exp.cast(value, exp.DataType.Type.DOUBLE)
    return framed(builders[agg](this=value))


def _pg_lookup(view: ResolvedView, feature: FeatureSpec, point: str, dialect: str) -> exp.Expression:
    """PostgreSQL: count_distinct/first/last over [t - w, t) as one index range scan per spine point."""
    ref = "__r"
    rows = raw_rows(view, {"__v": _value(feature, dialect)}).subquery(ref)
    keys_match = exp.and_(*[exp.EQ(this=col(k, ref), expression=col(k, point)) for k in view.keys])
    t = col(TS, point)
    within = pg_time_range(
        view,
        ref,
        exp.Sub(this=t.copy(), expression=exp.Literal.number(micros(feature.window))),
        t.copy(),
        upper_inclusive=False,
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
        order = [*pg_created_order(view, ref, desc), exp.Ordered(this=value.copy(), desc=desc)]
        lookup = (
            exp.select(value)
            .from_(rows)
            .where(exp.and_(keys_match, within, exp.Not(this=exp.Is(this=value.copy(), expression=exp.Null()))))
            .order_by(*order)
            .limit(1)
        )
    return exp.Subquery(this=lookup)


def _cast_output(feature: FeatureSpec, window: exp.Expression) -> exp.Expression:
    """Fixed output types: count BIGINT; sum, avg, stddev, variance DOUBLE."""
    if feature.agg in ("count", "count_distinct"):
        return exp.cast(window, exp.DataType.Type.BIGINT)
    if feature.agg in ("sum", "avg", "stddev", "variance"):
        return exp.cast(window, exp.DataType.Type.DOUBLE)
    return window


__all__ = ["ENGINES", "ViewQuery", "latest_query", "raw_rows", "strategy", "window_query"]
