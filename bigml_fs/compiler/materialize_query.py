"""Queries of materialize: offline Feast tables and online rows, as SQLGlot ASTs.

They reuse the point-in-time machinery of ``features.py`` so a materialized
value is computed by exactly the rules a training set uses:

* latest values: ``latest_query`` (rows deduplicated per keys and event time,
  the greatest created timestamp winning, with the tie hash columns), kept up
  to ``end``. Feast's own as-of rule over this table gives the training-set
  value at any t <= end.
* windows: ``window_query`` evaluated at every *change point* of the view (each
  event enters its windows at ts + 1 µs and leaves at ts + w + 1 µs), so the
  row with the greatest change point <= t holds the aggregates over [t - w, t).

Incremental runs pass ``since``: only rows (change points) after it are
computed, from source rows filtered on the event time before any dedupe or
window, which never changes a row's result (dedupe partitions by event time;
a change point c only needs events in [c - longest window, c)).
"""

from __future__ import annotations

import dataclasses

from sqlglot import exp

from bigml_fs.catalog import ResolvedView
from bigml_fs.compiler.features import HI, LO, latest_query, window_query
from bigml_fs.compiler.sqlparts import TS, alias, all_not_null, col
from bigml_fs.core.timeutil import EVENT_TIMESTAMP, micros
from bigml_fs.engines.dialects import Dialect
from bigml_fs.spec.schema import FeatureSpec

RN = "__rn"


def to_timestamp(micros_expr: exp.Expression) -> exp.Expression:
    """UTC microseconds -> a time-zoned timestamp (written to Parquet as timestamp[us, UTC]).

    Epoch plus an interval of microseconds: exact in every dialect (PostgreSQL's
    ``to_timestamp(double)`` would round at the microsecond, and change points
    sit exactly 1 µs after an event).
    """
    epoch = exp.cast(exp.Literal.string("1970-01-01 00:00:00+00"), exp.DataType.Type.TIMESTAMPTZ)
    return exp.TimestampAdd(this=epoch, expression=micros_expr, unit=exp.var("MICROSECOND"))


def event_time(view: ResolvedView, dialect: Dialect) -> exp.Expression:
    """The view's event time as UTC microseconds in ``dialect`` (same conversion as training sets)."""
    assert view.timestamp is not None
    return dialect.epoch_us(col(view.timestamp), view.columns[view.timestamp])


def longest_window_us(view: ResolvedView) -> int:
    return max((micros(f.window) for f in view.window_features if f.window is not None), default=0)


def restrict_source(
    view: ResolvedView, since_us: int | None, inclusive: bool = False, *, dialect: Dialect
) -> ResolvedView:
    """The view over only its source rows with event time after ``since_us`` (at or after with ``inclusive``)."""
    if since_us is None or view.timestamp is None:
        return view
    bound = exp.Literal.number(since_us)
    since = event_time(view, dialect)
    cond = exp.GTE(this=since, expression=bound) if inclusive else exp.GT(this=since, expression=bound)
    relation = exp.select("*").from_(view.relation.copy()).where(cond).subquery("__src_since")
    return dataclasses.replace(view, relation=relation)


def latest_rows(
    view: ResolvedView,
    features: list[FeatureSpec],
    read: str,
    end_us: int,
    since_us: int | None,
    dialect: Dialect,
) -> exp.Select:
    """Deduplicated rows (keys, ``__ts``, features, tie hashes) with since < event time <= end, in
    ``dialect``'s plan.
    """
    vq = latest_query(restrict_source(view, since_us, dialect=dialect), features, read, dialect)
    query = exp.select("*").from_(vq.query.subquery("__latest"))
    if view.timestamp is not None:
        query = query.where(exp.LTE(this=col(TS), expression=exp.Literal.number(end_us)))
    else:
        query = exp.select(
            *[col(k) for k in view.keys],
            alias(exp.Literal.number(0), TS),
            *[col(f.name) for f in features],
            col(LO),
            col(HI),
        ).from_(vq.query.subquery("__latest"))
    return query


def ambiguous_rows(table: str, view: ResolvedView) -> exp.Select:
    """One row (keys, ``__ts``) of ``table`` where tied source rows disagree."""
    differs = exp.NullSafeNEQ(this=col(LO), expression=col(HI))
    return (
        exp.select(*[col(k) for k in view.keys], col(TS))
        .from_(exp.table_(table, quoted=True))
        .where(differs)
        .order_by(*[col(k) for k in view.keys], col(TS))
        .limit(1)
    )


def change_points(view: ResolvedView, end_us: int, since_us: int | None, dialect: Dialect) -> exp.Select:
    """Distinct (keys, ``__ts``) where some window aggregate of the view can change, in (since, end]."""
    windows = sorted({micros(f.window) for f in view.window_features if f.window is not None})
    base = restrict_source(view, None if since_us is None else since_us - windows[-1] - 1, dialect=dialect)
    keys = [col(k) for k in view.keys]
    required = [*keys, col(view.timestamp)]
    events = (
        exp.select(*[k.copy() for k in keys], alias(event_time(view, dialect), "__e"))
        .from_(base.relation.copy())
        .where(all_not_null(required))
        .distinct()
    )
    parts: list[exp.Select] = []
    for shift in [1] + [w + 1 for w in windows]:
        point = exp.Add(this=col("__e"), expression=exp.Literal.number(shift))
        parts.append(exp.select(*[k.copy() for k in keys], alias(point, TS)).from_(exp.table_("__events")))
    union: exp.Expression = parts[0]
    for part in parts[1:]:
        union = exp.union(union, part, distinct=False)
    cond = exp.LTE(this=col(TS), expression=exp.Literal.number(end_us))
    if since_us is not None:
        cond = exp.and_(cond, exp.GT(this=col(TS), expression=exp.Literal.number(since_us)))
    return (
        exp.select(*[k.copy() for k in keys], col(TS))
        .from_(union.subquery("__points"))
        .where(cond)
        .distinct()
        .with_("__events", as_=events)
    )


def window_rows(
    view: ResolvedView,
    features: list[FeatureSpec],
    read: str,
    points: str,
    since_us: int | None,
    dialect: Dialect,
) -> exp.Select:
    """The aggregates at each change point stored in the table ``points`` (keys, ``__ts``), in ``dialect``'s plan."""
    longest = longest_window_us(view)
    source = restrict_source(
        view, None if since_us is None else since_us - longest - 1, inclusive=True, dialect=dialect
    )
    spine = exp.select(*[col(k) for k in view.keys], col(TS)).from_(exp.table_(points, quoted=True))
    return window_query(source, features, spine, read, dialect).query


def previous_rows(
    relation: exp.Table, view: ResolvedView, features: list[FeatureSpec], upto_us: int, dialect: Dialect
) -> exp.Select:
    """Rows of a previously published Parquet table with event time <= ``upto_us``, back in the ``__ts`` form."""
    ts = dialect.epoch_us(col(EVENT_TIMESTAMP), "TIMESTAMP WITH TIME ZONE")
    return (
        exp.select(*[col(k) for k in view.keys], alias(ts, TS), *[col(f.name) for f in features])
        .from_(relation.copy())
        .where(exp.LTE(this=ts.copy(), expression=exp.Literal.number(upto_us)))
    )


def offline_table(table: str, view: ResolvedView, features: list[FeatureSpec]) -> exp.Select:
    """What goes to Parquet: keys, event_timestamp, features, in a deterministic order."""
    keys = [col(k) for k in view.keys]
    return (
        exp.select(*keys, alias(to_timestamp(col(TS)), EVENT_TIMESTAMP), *[col(f.name) for f in features])
        .from_(exp.table_(table, quoted=True))
        .order_by(*[k.copy() for k in keys], col(TS))
    )


def online_rows(
    table: str, view: ResolvedView, features: list[FeatureSpec], end_us: int, ttl_us: int | None, window_part: bool
) -> exp.Select:
    """Per key, the row in effect at ``end``: latest values within the ttl, or the last change point.

    Window rows are stamped ``end`` (their aggregates are as of it); latest
    values keep the event time of the row they come from.
    """
    keys = [col(k) for k in view.keys]
    number = exp.Window(
        this=exp.RowNumber(),
        partition_by=[k.copy() for k in keys],
        order=exp.Order(expressions=[exp.Ordered(this=col(TS), desc=True)]),
    )
    ranked = exp.select(*[k.copy() for k in keys], col(TS), *[col(f.name) for f in features], alias(number, RN)).from_(
        exp.table_(table, quoted=True)
    )
    cond: exp.Expression = exp.EQ(this=col(RN), expression=exp.Literal.number(1))
    if ttl_us is not None:
        cond = exp.and_(cond, exp.GTE(this=col(TS), expression=exp.Literal.number(end_us - ttl_us)))
    stamp = to_timestamp(exp.Literal.number(end_us)) if window_part else to_timestamp(col(TS))
    return (
        exp.select(*[k.copy() for k in keys], alias(stamp, EVENT_TIMESTAMP), *[col(f.name) for f in features])
        .from_(ranked.subquery("__ranked"))
        .where(cond)
        .order_by(*[k.copy() for k in keys])
    )


def union_all(first: exp.Select, second: exp.Select) -> exp.Select:
    return exp.select("*").from_(exp.union(first, second, distinct=False).subquery("__both"))
