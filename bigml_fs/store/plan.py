"""What materialize would do per view, and why: add, recompute, update, unchanged, drop.

``decide`` is the one rule both ``plan`` and ``materialize`` use, so the plan
is what the run does. It compares the view against the state the last
published run left (``state.py``):

* add: never materialized (full computation);
* recompute: in full, because of --full-refresh, a changed fingerprint (its
  definition, its source's schema, or the SQL/vars upstream), another online
  store than the one its online rows were written to (``online_store`` in
  project.yaml switched: the new store is empty), a static source
  (no event time: read in full every run), an --end before the watermark, or
  late rows (source rows at or before the watermark minus the longest window
  that were not there last time: an incremental run would miss them);
* update: incremental, from the watermark minus the view's longest window;
* unchanged: same --end, same fingerprint and no new rows up to it;
* drop: materialized before, no longer defined.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from sqlglot import exp

from bigml_fs.catalog import ResolvedView
from bigml_fs.compiler.materialize_query import event_time, longest_window_us
from bigml_fs.compiler.sqlparts import all_not_null, col
from bigml_fs.core.digest import digest
from bigml_fs.core.timeutil import iso, now, parse_time, to_us
from bigml_fs.core.types import logical_type
from bigml_fs.engines.base import Engine
from bigml_fs.errors import BigmlError, UsageError, did_you_mean
from bigml_fs.store.naming import feast_parts
from bigml_fs.store.state import OnlineStoreIdentity, ViewState, online_store_identity, view_states
from bigml_fs.workspace import Workspace


@dataclass
class ViewPlan:
    view: str
    action: str  # add | recompute | update | unchanged | drop
    reason: str
    parts: list[str] = field(default_factory=list)
    since_us: int | None = None  # incremental lower bound (exclusive); None = full
    counts: dict[str, int] = field(default_factory=dict)  # source row counts for the next run's late-row check

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["since"] = iso(self.since_us) if self.since_us is not None else None
        del out["since_us"], out["counts"]
        return out


@dataclass
class Plan:
    end: datetime
    views: list[ViewPlan]

    def to_dict(self) -> dict[str, Any]:
        return {"end": self.end.isoformat(), "views": [v.to_dict() for v in self.views]}


def spec_hash(view: ResolvedView) -> str:
    return digest(view.spec.model_dump(mode="json"))


def schema_hash(view: ResolvedView) -> str:
    """Column names and logical types (as in the fingerprint): another engine's spelling of a type is no change."""
    return digest({c: logical_type(t) for c, t in view.columns.items()})


def source_counts(engine: Engine, view: ResolvedView, bounds: dict[str, int]) -> dict[str, int]:
    """Source rows (non-null keys and time) with event time <= each bound, in one scan."""
    if view.timestamp is None or not bounds:
        return {}
    required = [col(k) for k in view.keys] + [col(view.timestamp)]
    sums = [
        exp.alias_(
            exp.func(
                "coalesce",
                exp.Sum(
                    this=exp.Case(
                        ifs=[
                            exp.If(
                                this=exp.LTE(
                                    this=event_time(view, engine.sql_dialect), expression=exp.Literal.number(b)
                                ),
                                true=exp.Literal.number(1),
                            )
                        ],
                        default=exp.Literal.number(0),
                    )
                ),
                exp.Literal.number(0),
            ),
            name,
            quoted=True,
        )
        for name, b in bounds.items()
    ]
    row = engine.rows(exp.select(*sums).from_(view.relation.copy()).where(all_not_null(required)))[0]
    return {k: int(v) for k, v in row.items()}


def decide(
    engine: Engine,
    view: ResolvedView,
    prev: ViewState | None,
    end_us: int,
    full_refresh: bool = False,
    start_us: int | None = None,
    online_store: OnlineStoreIdentity | None = None,
) -> ViewPlan:
    """The action for one view (see the module docstring).

    ``online_store``: the store project.yaml names now (None: not compared). A
    state written before stores were recorded (``prev.online_store`` None) counts
    as written to this store: existing projects do not all recompute after an
    upgrade; the run then records the store (``materialize``).
    """
    parts = [p.name for p in feast_parts(view)]
    if prev is None:
        return ViewPlan(view.name, "add", "new", parts)
    if full_refresh:
        return ViewPlan(view.name, "recompute", "--full-refresh", parts)
    if prev.fingerprint != view.fingerprint or prev.parts != parts:
        if prev.schema_hash != schema_hash(view):
            reason = "source schema changed"
        elif prev.spec_hash != spec_hash(view):
            reason = "definition changed"
        else:
            reason = "upstream SQL or vars changed"
        return ViewPlan(view.name, "recompute", reason, parts)
    if online_store is not None and prev.online_store is not None and prev.online_store != online_store:
        was, now_ = prev.online_store.describe(), online_store.describe()
        if was == now_:
            was, now_ = f"Feast project {prev.online_store.project}", online_store.project
        detail = f"{was} -> {now_}"
        return ViewPlan(view.name, "recompute", f"online store changed ({detail})", parts)
    if view.timestamp is None:
        return ViewPlan(view.name, "recompute", "static source (no event time): read in full every run", parts)
    prev_end = prev.end_us
    if end_us < prev_end:
        return ViewPlan(view.name, "recompute", f"--end is before the watermark {iso(prev_end)}", parts)
    settled = prev.settled_before_us
    counts = source_counts(engine, view, {"settled": settled, "at_end": prev_end})
    if counts["settled"] != prev.settled_count:
        diff = counts["settled"] - prev.settled_count
        what = f"{diff:,} late row(s)" if diff > 0 else f"{-diff:,} row(s) removed"
        return ViewPlan(
            view.name, "recompute", f"late rows behind the watermark: {what} at or before {iso(settled)}", parts
        )
    if end_us == prev_end and counts["at_end"] == prev.count_at_end and start_us is None:
        return ViewPlan(view.name, "unchanged", f"already materialized to {iso(prev_end)}", parts)
    since = prev_end - longest_window_us(view)
    reason = f"incremental from {iso(since)} (watermark {iso(prev_end)} minus the longest window)"
    if start_us is not None and start_us - 1 < since:
        since = start_us - 1
        reason = f"recompute from --start {iso(start_us)}, older rows kept"
    return ViewPlan(view.name, "update", reason, parts, since_us=since)


def select_views(catalog_views: dict[str, ResolvedView], names: list[str] | None) -> list[ResolvedView]:
    if not names:
        return list(catalog_views.values())
    unknown = [n for n in names if n not in catalog_views]
    if unknown:
        raise UsageError(
            f"unknown feature view '{unknown[0]}'{did_you_mean(unknown[0], catalog_views)}; views: "
            f"{', '.join(catalog_views)}"
        )
    return [catalog_views[n] for n in dict.fromkeys(names)]


def plan(
    ws: Workspace, views: list[str] | None = None, end: Any = None, full_refresh: bool = False, start: Any = None
) -> Plan:
    """Per view, what ``materialize`` with the same arguments would do (``end`` default: now, UTC)."""
    end_dt = parse_time(end) if end is not None else now()
    end_us = to_us(end_dt)
    start_us = to_us(parse_time(start, "--start")) if start is not None else None
    catalog = ws.catalog
    previous = view_states(ws.paths)
    store = online_store_identity(ws.spec, ws.paths)
    out: list[ViewPlan] = []
    for view in select_views(catalog.views, views):
        try:
            out.append(decide(ws.engine, view, previous.get(view.name), end_us, full_refresh, start_us, store))
        except BigmlError as exc:
            out.append(ViewPlan(view.name, "error", str(exc)))
    if not views:
        for name, state in previous.items():
            if name not in catalog.views:
                out.append(ViewPlan(name, "drop", "no longer defined", list(state.parts)))
    return Plan(end_dt, out)
