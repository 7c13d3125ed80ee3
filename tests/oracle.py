"""Brute-force point-in-time rules in plain Python, straight from the README's rules.

Deliberately naive (a scan of every row for every spine row) so it is easy to
check by eye; the engine's query must agree with it on random data.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass


class Ambiguous(Exception):
    pass


@dataclass(frozen=True)
class Event:
    key: int | None
    ts: int | None  # microseconds
    created: int | None
    value: float | None
    label: str | None


def latest(
    events: list[Event], key: int | None, t: int, ttl: int | None, fields: tuple[str, ...] = ("value", "label")
) -> tuple:
    """The selected row's ``fields``; tied rows are ambiguous only if they differ in those fields."""
    if key is None:
        return tuple(None for _ in fields)
    rows = [e for e in events if e.key == key and e.ts is not None and e.ts <= t and (ttl is None or e.ts >= t - ttl)]
    if not rows:
        return tuple(None for _ in fields)
    best_ts = max(e.ts for e in rows)
    tied = [e for e in rows if e.ts == best_ts]
    rank = lambda e: -math.inf if e.created is None else e.created  # noqa: E731
    best_created = max(rank(e) for e in tied)
    top = {tuple(getattr(e, f) for f in fields) for e in tied if rank(e) == best_created}
    if len(top) > 1:
        raise Ambiguous(f"key={key} ts={best_ts}")
    return next(iter(top))


def window(events: list[Event], key: int | None, t: int, w: int, agg: str, field: str = "value", where=None):
    if key is None:
        return None
    rows = {e for e in events if e.key == key and e.ts is not None and t - w <= e.ts < t}  # identical rows count once
    if where is not None:
        rows = {e for e in rows if where(e)}
    if agg == "count" and field is None:
        return len(rows)
    values = [getattr(e, field) for e in rows if getattr(e, field) is not None]
    if agg == "count":
        return len(values)
    if agg == "count_distinct":
        return len(set(values))
    if not values:
        return None
    if agg == "sum":
        return float(sum(values))
    if agg == "avg":
        return sum(values) / len(values)
    if agg == "min":
        return min(values)
    if agg == "max":
        return max(values)
    if agg == "stddev":
        return statistics.stdev(values) if len(values) > 1 else None
    if agg == "variance":
        return statistics.variance(values) if len(values) > 1 else None
    ordered = sorted(
        (
            (e.ts, -math.inf if e.created is None else e.created, getattr(e, field))
            for e in rows
            if getattr(e, field) is not None
        ),
    )
    return ordered[0][2] if agg == "first" else ordered[-1][2]
