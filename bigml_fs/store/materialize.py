"""``materialize``: offline Feast tables, the online store and the Feast registry, as of ``--end``.

One run, under the project's lock:

1. per view (``plan.decide``): skip it if unchanged, else run its checks,
   compute each Feast view's table in the engine (in full, or incrementally
   from the watermark minus the longest window, united with the previous
   table), write it to Parquet in a *new* run directory, then write the rows in
   effect at ``end`` to the online store (one transaction per Feast view on
   SQLite/PostgreSQL, keys absent from the new rows deleted);
2. rebuild the Feast registry if any object changed (atomically);
3. publish: one symlink swap makes the new run directory, with the state
   describing it, current.

Each view's state records the online store its rows went to
(``state.OnlineStoreIdentity``); after ``online_store`` changes in
project.yaml, ``plan.decide`` recomputes every view into the new store. The old
store is left as it was.

If writing the Feast repo fails (step 2) nothing is published, but the online
store already holds the rows of the views this run computed: the error says so,
and the next run with the same ``--end`` (or ``--full-refresh``) rewrites them
against the state it publishes. The repo's yaml is checked before any online
write, so a password variable that cannot go into it fails with nothing written.

A run killed before 3 leaves the previous offline tables, state and registry
in place; the next run recomputes whatever was not published, so it ends with
the same result as a full refresh.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlglot import exp

from bigml_fs.catalog import ResolvedView
from bigml_fs.compiler import materialize_query as mq
from bigml_fs.compiler.probes import probed_view
from bigml_fs.compiler.sqlparts import TS
from bigml_fs.core.timeutil import iso, micros, now, parse_time, to_us
from bigml_fs.engines.base import Engine
from bigml_fs.errors import AmbiguousTie, BigmlError, DataError
from bigml_fs.spec.schema import ProjectSpec
from bigml_fs.store import feast_repo, state
from bigml_fs.store.checks import enforce_checks
from bigml_fs.store.naming import FeastPart, feast_parts
from bigml_fs.store.online import OnlineStore, open_store
from bigml_fs.store.plan import ViewPlan, decide, schema_hash, select_views, source_counts, spec_hash
from bigml_fs.store.state import PublishedState, ViewState
from bigml_fs.workspace import Paths, Workspace

Progress = Callable[..., None]


@dataclass
class ViewReport:
    view: str
    action: str
    reason: str
    rows: dict[str, int] = field(default_factory=dict)  # offline rows per Feast view
    online_rows: int = 0
    seconds: float = 0.0
    watermark: str | None = None
    error: str | None = None

    @property
    def total_rows(self) -> int:
        return sum(self.rows.values())


@dataclass
class MaterializeReport:
    end: datetime
    run: str
    views: list[ViewReport]
    seconds: float = 0.0
    registry_updated: bool = False
    dropped: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not any(v.error for v in self.views)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "end": self.end.isoformat(),
            "run": self.run,
            "seconds": round(self.seconds, 3),
            "registry_updated": self.registry_updated,
            "dropped": self.dropped,
            "views": [{**asdict(v), "seconds": round(v.seconds, 3), "total_rows": v.total_rows} for v in self.views],
        }


class MaterializeFailed(DataError):
    """Some views failed (checks, ambiguous ties); the others were published."""

    def __init__(self, report: MaterializeReport):
        self.report = report
        failed = [v for v in report.views if v.error]
        lines = [f"{len(failed)} view(s) not materialized (their previous tables and online values are kept):"]
        lines += [f"  {v.view}: {v.error}" for v in failed]
        super().__init__("\n".join(lines))


def _noop(*args: Any, **kwargs: Any) -> None:
    return None


def open_online_store(spec: ProjectSpec, paths: Paths) -> OnlineStore:
    """The project's online store, reachable (else an error naming host and port)."""
    store = open_store(spec, paths)
    store.ping()
    return store


def materialize(
    ws: Workspace,
    views: list[str] | None = None,
    start: Any = None,
    end: Any = None,
    full_refresh: bool = False,
    progress: Progress | None = None,
) -> MaterializeReport:
    """Materialize ``views`` (default: all) as of ``end`` (default: now, UTC); see the module docstring."""
    progress = progress or _noop
    began = time.perf_counter()
    end_dt = parse_time(end) if end is not None else now()
    end_us = to_us(end_dt)
    start_us = to_us(parse_time(start, "--start")) if start is not None else None
    paths = ws.paths
    with state.materialize_lock(paths):
        catalog = ws.catalog
        engine = ws.engine
        previous = state.published_state(paths)
        prev_views = previous.views
        prev_dir = state.current_dir(paths)
        selected = select_views(catalog.views, views)
        state.clean_runs(paths)  # unpublished leftovers of a killed run
        run = state.new_run_dir(paths)
        online = None
        store_id = state.online_store_identity(ws.spec, paths)
        try:
            online = open_online_store(ws.spec, paths)  # unreachable: an error naming host and port, nothing written
            feast_repo.load_config_text(feast_repo.config_text(feast_repo.repo_config(ws.spec, paths)))
            reports: list[ViewReport] = []
            new_views: dict[str, ViewState] = {}
            progress("begin", total=len(selected))
            for view in selected:
                prev = prev_views.get(view.name)
                plan = decide(engine, view, prev, end_us, full_refresh, start_us, store_id)
                progress("view", view=view.name, action=plan.action, reason=plan.reason)
                t0 = time.perf_counter()
                try:
                    if plan.action == "unchanged":
                        assert prev is not None  # decide() says unchanged only against a previous state
                        _carry(prev_dir, run, prev)
                        report = ViewReport(
                            view.name, plan.action, plan.reason, dict(prev.rows), 0, watermark=iso(end_us)
                        )
                        # a state from before stores were recorded is taken as this store's (plan.decide): record it
                        new_views[view.name] = (
                            prev if prev.online_store else prev.model_copy(update={"online_store": store_id})
                        )
                    else:
                        report, entry = _materialize_view(
                            ws, engine, online, probed_view(view, engine), plan, run, prev_dir, end_us, progress
                        )
                        entry.online_store = store_id
                        new_views[view.name] = entry
                except BigmlError as exc:
                    report = ViewReport(view.name, plan.action, plan.reason, error=str(exc))
                    if prev is not None:
                        _carry(prev_dir, run, prev)
                        new_views[view.name] = prev
                report.seconds = time.perf_counter() - t0
                reports.append(report)
                progress("done", view=view.name, report=report)
            selected_names = {v.name for v in selected}
            for name, prev in prev_views.items():
                if name in catalog.views and name not in selected_names:
                    _carry(prev_dir, run, prev)
                    new_views[name] = prev
            dropped_views = [n for n in prev_views if n not in catalog.views]
            dropped_parts = _dropped_parts(prev_views, new_views)

            tables = _published_tables(paths, catalog.views, new_views, run)
            description = feast_repo.describe(ws.spec, paths, tables)
            signature = feast_repo.signature(description)
            registry_path = Path(description["config"]["registry"])
            registry_updated = signature != previous.feast_signature or not registry_path.exists()
            if registry_updated:
                progress("step", view=None, text="registering in Feast")
                try:
                    feast_repo.write_repo(paths, description)
                except feast_repo.FeastRepoError as exc:
                    raise feast_repo.FeastRepoError(_repo_failed(exc, reports, store_id)) from None
            published = PublishedState(run=run.name, end=iso(end_us), feast_signature=signature, views=new_views)
            state.publish(paths, run, published)
        except BaseException:
            shutil.rmtree(run, ignore_errors=True)
            if online is not None:
                online.close()
            raise
        try:
            if online is not None:
                for part in dropped_parts:
                    online.drop(part)
        finally:
            if online is not None:
                online.close()
        state.clean_runs(paths)
    report = MaterializeReport(end_dt, run.name, reports, time.perf_counter() - began, registry_updated, dropped_views)
    if not report.ok:
        raise MaterializeFailed(report)
    return report


def _repo_failed(exc: BaseException, reports: list[ViewReport], store: state.OnlineStoreIdentity) -> str:
    """The Feast repo error, and what the failed run left in the online store."""
    written = [r.view for r in reports if r.action != "unchanged" and not r.error]
    lines = [
        f"{exc}",
        "Nothing was published: the offline tables, the state and the Feast repo are the previous run's.",
    ]
    if written:
        lines.append(
            f"The online store ({store.describe()}) already holds this run's values for {', '.join(written)}; run "
            "materialize again with the same --end (or --full-refresh) once this is fixed to make them agree."
        )
    return "\n".join(lines)


def _carry(prev_dir: Path | None, run: Path, prev: ViewState) -> None:
    """Hard-link a view's previous Parquet files into the new run (copy where links are impossible)."""
    if prev_dir is None:
        return
    for part in prev.parts:
        src = prev_dir / f"{part}.parquet"
        if not src.exists():
            continue
        dst = run / src.name
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)


def _dropped_parts(prev_views: dict[str, ViewState], new_views: dict[str, ViewState]) -> list[str]:
    before = {p for v in prev_views.values() for p in v.parts}
    after = {p for v in new_views.values() for p in v.parts}
    return sorted(before - after)


def _published_tables(
    paths: Paths, views: dict[str, ResolvedView], new_views: dict[str, ViewState], run: Path
) -> list[feast_repo.PartTable]:
    """Every Feast view the new run publishes, with its path under ``current`` (stable across runs)."""
    current = state.offline_root(paths).resolve() / state.CURRENT
    tables: list[feast_repo.PartTable] = []
    for name, entry in new_views.items():
        view = views.get(name)
        if view is None or entry.fingerprint != view.fingerprint:
            continue
        for part in feast_parts(view):
            columns = entry.columns.get(part.name)
            if columns is not None and (run / f"{part.name}.parquet").exists():
                tables.append(feast_repo.PartTable(part, current / f"{part.name}.parquet", columns))
    return tables


def _materialize_view(
    ws: Workspace,
    engine: Engine,
    online: OnlineStore | None,
    view: ResolvedView,
    plan: ViewPlan,
    run: Path,
    prev_dir: Path | None,
    end_us: int,
    progress: Progress,
) -> tuple[ViewReport, ViewState]:
    if view.spec.checks:
        progress("step", view=view.name, text="checks")
        enforce_checks(engine, view)
    since = plan.since_us if plan.action == "update" else None
    dialect = ws.sql_dialect
    rows: dict[str, int] = {}
    columns: dict[str, dict[str, str]] = {}
    online_rows = 0
    staged: list[tuple[FeastPart, str]] = []
    for part in feast_parts(view):
        progress("step", view=view.name, text=f"computing {part.name}")
        table = _compute_part(engine, view, part, dialect, end_us, since, prev_dir)
        path = run / f"{part.name}.parquet"
        query = mq.offline_table(table, view, list(part.features))
        columns[part.name] = engine.columns(query)
        rows[part.name] = engine.copy_to_parquet(query, path)
        staged.append((part, table))
    if online is not None:
        for part, table in staged:
            progress("step", view=view.name, text=f"online store: {part.name}")
            ttl_us = micros(part.ttl) if part.ttl else None
            data = engine.to_arrow(
                mq.online_rows(table, view, list(part.features), end_us, ttl_us, part.kind == "windows")
            )
            online_rows += online.write(part, data, replace=True)
    for _, table in staged:
        engine.execute(f"DROP TABLE IF EXISTS {exp.table_(table, quoted=True).sql(engine.dialect)}")
    longest = mq.longest_window_us(view)
    counts = source_counts(engine, view, {"settled": end_us - longest, "at_end": end_us})
    entry = ViewState(
        fingerprint=view.fingerprint,
        spec_hash=spec_hash(view),
        schema_hash=schema_hash(view),
        parts=[p.name for p in feast_parts(view)],
        columns=columns,
        end=iso(end_us),
        end_us=end_us,
        watermark=iso(end_us),
        settled_before_us=end_us - longest,
        settled_count=counts.get("settled", 0),
        count_at_end=counts.get("at_end", 0),
        rows=rows,
        online_rows=online_rows,
        finished_at=now().isoformat(),
        run=run.name,
    )
    return ViewReport(view.name, plan.action, plan.reason, rows, online_rows, watermark=iso(end_us)), entry


def _compute_part(
    engine: Engine,
    view: ResolvedView,
    part: FeastPart,
    dialect: str,
    end_us: int,
    since: int | None,
    prev_dir: Path | None,
) -> str:
    """Create the temp table ``__mat_<part>`` (keys, ``__ts``, features); return its name."""
    features = list(part.features)
    target = f"__mat_{part.name}"
    fresh = f"__new_{part.name}"
    if part.kind == "windows":
        points = f"__cp_{part.name}"
        engine.create_temp_table(points, mq.change_points(view, end_us, since, engine.sql_dialect))
        engine.create_temp_table(fresh, mq.window_rows(view, features, dialect, points, since, engine.sql_dialect))
        engine.execute(f"DROP TABLE IF EXISTS {exp.table_(points, quoted=True).sql(engine.dialect)}")
    else:
        engine.create_temp_table(fresh, mq.latest_rows(view, features, dialect, end_us, since, engine.sql_dialect))
        _raise_on_ambiguity(engine, fresh, view)
    new_rows = exp.select(
        *[exp.column(k, quoted=True) for k in view.keys],
        exp.column(TS, quoted=True),
        *[exp.column(f.name, quoted=True) for f in features],
    ).from_(exp.table_(fresh, quoted=True))
    if since is not None and prev_dir is not None and (prev_dir / f"{part.name}.parquet").exists():
        previous = engine.register_file_source(f"__prev_{part.name}", prev_dir / f"{part.name}.parquet")
        engine.create_temp_table(
            target, mq.union_all(mq.previous_rows(previous, view, features, since, engine.sql_dialect), new_rows)
        )
    else:
        engine.create_temp_table(target, new_rows)
    engine.execute(f"DROP TABLE IF EXISTS {exp.table_(fresh, quoted=True).sql(engine.dialect)}")
    return target


def _raise_on_ambiguity(engine: Engine, table: str, view: ResolvedView) -> None:
    """The training sets' error, for any tie among the rows Feast would read."""
    rows = engine.rows(mq.ambiguous_rows(table, view))
    if not rows:
        return
    row = rows[0]
    ts = row.pop(TS)
    raise AmbiguousTie(view.name, row, iso(ts) if view.timestamp else "(static source)")
