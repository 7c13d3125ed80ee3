"""Materialize end to end on SQLite: idempotency, incremental == full refresh, late rows,
definition changes and drops, checks, a concurrent second run, and SIGKILL at
several points of a real ``bigml-fs materialize`` process.
"""

from __future__ import annotations

import math
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from bigml_fs import Project
from bigml_fs.store import state
from bigml_fs.store.materialize import MaterializeFailed
from tests.helpers import read_rows, write_project

BASE = np.datetime64("2024-03-01T00:00:00", "us")
FEATURES = """
feature_views:
  - name: stats
    entities: [driver]
    source: trips
    ttl: 2d
    features:
      - {name: rating}
      - {name: zone}
      - {name: trips_1d, agg: count, window: 1d}
      - {name: rating_avg_3d, agg: avg, expr: rating, window: 3d}
      - {name: last_zone_12h, agg: last, expr: zone, window: 12h}
  - name: recent
    entities: [driver]
    source: trips
    features:
      - {name: fare}
  - name: profile
    entities: [driver]
    source: drivers
    features:
      - {name: city}
"""
CHECKS = """
    checks:
      - not_null: [driver_id]
      - range: {column: fare, min: 0}
"""
BIN = Path(sys.executable).with_name("bigml-fs")


def _trips(seed: int, n: int, days: int, start_day: int = 0) -> pa.Table:
    rng = np.random.default_rng(seed)
    minutes = rng.integers(start_day * 1440, (start_day + days) * 1440, n)
    ts = BASE + minutes.astype("timedelta64[m]").astype("timedelta64[us]")
    created = ts + rng.permutation(n).astype("timedelta64[ms]").astype("timedelta64[us]")
    return pa.table(
        {
            "driver_id": pa.array(rng.integers(1, 40, n), type=pa.int64()),
            "ts": pa.array(ts, type=pa.timestamp("us")).cast(pa.timestamp("us", tz="UTC")),
            "created": pa.array(created, type=pa.timestamp("us")).cast(pa.timestamp("us", tz="UTC")),
            "rating": pa.array(rng.normal(4, 0.5, n).round(2)),
            "zone": pa.array(rng.choice(["n", "s", "e", "w"], n)),
            "fare": pa.array(rng.integers(0, 80, n).astype(float)),
        }
    )


def _project(root: Path, trips: pa.Table, features: str = FEATURES) -> Path:
    drivers = pa.table(
        {"driver_id": pa.array(range(1, 41), type=pa.int64()), "city": pa.array([f"c{i % 5}" for i in range(40)])}
    )
    project = {
        "name": "mat",
        "entities": [{"name": "driver", "join_keys": ["driver_id"]}],
        "sources": [
            {"name": "trips", "path": "data/trips.parquet", "timestamp": "ts", "created_timestamp": "created"},
            {"name": "drivers", "path": "data/drivers.parquet"},
        ],
    }
    return write_project(root, project, features, tables={"trips": trips, "drivers": drivers})


def snapshot(root: Path) -> dict[str, bytes | list]:
    """Published Parquet bytes and every online row (the state a reader sees)."""
    out: dict[str, bytes | list] = {}
    current = root / ".bigml" / "offline" / "current"
    for path in sorted(current.glob("*.parquet")) if current.exists() else []:
        out[path.name] = path.read_bytes()
    db = root / ".bigml" / "online.db"
    if db.exists():
        con = sqlite3.connect(db)
        for (table,) in con.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"):
            out[f"online:{table}"] = con.execute(
                f'SELECT entity_key, feature_name, value, event_ts FROM "{table}" ORDER BY 1, 2'
            ).fetchall()
        con.close()
    return out


def _materialize(root: Path, **kwargs):
    with Project.load(root) as project:
        return project.materialize(**kwargs)


def _full_refresh_equals(root: Path, end: str, exact: bool = False) -> None:
    """The current state equals a full refresh at ``end`` (run in place, then compared).

    ``exact``: byte for byte. Otherwise floating-point aggregates may differ in
    the last bits (a window sum is added up in another order when an incremental
    run feeds the engine fewer rows), everything else must be equal.
    """
    before = snapshot(root)
    report = _materialize(root, end=end, full_refresh=True)
    assert {v.action for v in report.views} == {"recompute"}
    after = snapshot(root)
    assert before.keys() == after.keys()
    for name in before:
        if exact or before[name] == after[name]:
            assert before[name] == after[name], f"{name} differs from a full refresh"
        elif name.endswith(".parquet"):
            _assert_tables_close(
                pq.read_table(pa.BufferReader(before[name])), pq.read_table(pa.BufferReader(after[name])), name
            )
        else:
            _assert_online_close(before[name], after[name], name)


def _close(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-12)
    return a == b


def _assert_tables_close(a: pa.Table, b: pa.Table, name: str) -> None:
    assert a.schema == b.schema and a.num_rows == b.num_rows, name
    for column in a.column_names:
        for i, (x, y) in enumerate(zip(a.column(column).to_pylist(), b.column(column).to_pylist(), strict=True)):
            assert _close(x, y), f"{name}: {column} row {i}: {x!r} != {y!r}"


def _assert_online_close(a: list, b: list, name: str) -> None:
    from feast.protos.feast.types.Value_pb2 import Value

    assert len(a) == len(b), name
    for ra, rb in zip(a, b, strict=True):
        assert (ra[0], ra[1], ra[3]) == (rb[0], rb[1], rb[3]), name
        if ra[2] != rb[2]:
            va, vb = Value(), Value()
            va.ParseFromString(ra[2])
            vb.ParseFromString(rb[2])
            assert va.WhichOneof("val") == vb.WhichOneof("val") == "double_val" and _close(
                va.double_val, vb.double_val
            ), (name, va, vb)


@pytest.fixture(scope="module")
def base_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = _project(tmp_path_factory.mktemp("mat_base"), _trips(1, 3000, days=10))
    _materialize(root, end="2024-03-05T12:00:00Z")  # the Feast repo exists from here on (applied once)
    return root


@pytest.fixture(autouse=True)
def _skip_feast_apply_in_process(monkeypatch):
    """In-process runs keep the copied registry (Feast's apply costs seconds and is tested in test_feast_repo.py)."""
    from bigml_fs.store import feast_repo

    monkeypatch.setattr(feast_repo, "write_repo", lambda project, description: None)


def _copy(base: Path, tmp_path: Path) -> Path:
    import shutil

    target = tmp_path / "p"
    shutil.copytree(base, target, symlinks=True)
    # the copied Feast yaml and state name the old paths; a full refresh of the copy fixes both
    _materialize(target, end="2024-03-05T12:00:00Z", full_refresh=True)
    return target


def test_same_end_twice_changes_nothing(base_project, tmp_path):
    root = _copy(base_project, tmp_path)
    before = snapshot(root)
    assert any(k.startswith("online:") for k in before) and any(k.endswith(".parquet") for k in before)
    report = _materialize(root, end="2024-03-05T12:00:00Z")
    assert {v.view: v.action for v in report.views} == {
        "stats": "unchanged",
        "recent": "unchanged",
        "profile": "recompute",
    }
    assert snapshot(root) == before
    _full_refresh_equals(root, "2024-03-05T12:00:00Z")


def test_recompute_is_byte_equal_on_one_thread(tmp_path):
    """With DuckDB on one thread, a recompute writes byte-equal Parquet and online values.

    (On several threads a window sum may be added up in another order: equal to ~1e-15.)
    """
    root = _project(tmp_path / "p", _trips(3, 2000, days=6))
    text = (root / "project.yaml").read_text()
    (root / "project.yaml").write_text(text + "engine: {type: duckdb, threads: 1}\n")
    _materialize(root, end="2024-03-04T00:00:00Z")
    _full_refresh_equals(root, "2024-03-04T00:00:00Z", exact=True)


def test_incremental_equals_full_refresh(base_project, tmp_path):
    root = _copy(base_project, tmp_path)
    for i, end in enumerate(
        ("2024-03-06T00:00:00Z", "2024-03-06T00:00:00.000001Z", "2024-03-07T13:30:00Z", "2024-03-09T00:00:00Z")
    ):
        report = _materialize(
            root, end=end, views=["stats"] if i == 1 else None, start="2024-03-03T12:00:00Z" if i == 2 else None
        )
        assert {v.view: v.action for v in report.views}["stats"] == "update"
        assert not report.registry_updated  # same Feast objects: no apply (whatever the views' order)
    _full_refresh_equals(root, "2024-03-09T00:00:00Z")


def test_late_rows_recompute_and_plan(base_project, tmp_path):
    root = _copy(base_project, tmp_path)
    _materialize(root, end="2024-03-07T00:00:00Z")
    trips = pq.read_table(root / "data" / "trips.parquet")
    # late rows: one far behind the watermark (needs a full recompute), one inside the last window (an update sees it)
    late = _trips(9, 2, days=1, start_day=1).set_column(0, "driver_id", pa.array([3, 4], type=pa.int64()))
    recent = _trips(10, 1, days=1, start_day=5)
    pq.write_table(pa.concat_tables([trips, late, recent]), root / "data" / "trips.parquet")
    with Project.load(root) as project:
        planned = {v.view: v for v in project.plan(end="2024-03-08T00:00:00Z").views}
    assert planned["stats"].action == "recompute" and "late rows" in planned["stats"].reason
    assert planned["recent"].action == "recompute" and "late rows" in planned["recent"].reason
    report = _materialize(root, end="2024-03-08T00:00:00Z")
    assert {v.view: v.action for v in report.views}["stats"] == "recompute"
    _full_refresh_equals(root, "2024-03-08T00:00:00Z")


def test_definition_change_and_drop(base_project, tmp_path, monkeypatch):
    root = _copy(base_project, tmp_path)
    monkeypatch.undo()  # this test checks the Feast registry: apply it for real
    changed = FEATURES.replace("ttl: 2d", "ttl: 3d").replace(
        """  - name: recent
    entities: [driver]
    source: trips
    features:
      - {name: fare}
""",
        "",
    )
    (root / "features" / "views.yaml").write_text(changed)
    with Project.load(root) as project:
        planned = {v.view: (v.action, v.reason) for v in project.plan(end="2024-03-05T12:00:00Z").views}
    assert planned["stats"] == ("recompute", "definition changed")
    assert planned["recent"] == ("drop", "no longer defined")
    report = _materialize(root, end="2024-03-05T12:00:00Z")
    assert report.dropped == ["recent"]
    assert "recent" not in state.view_states(Project.load(root).paths)
    assert not (root / ".bigml" / "offline" / "current" / "recent.parquet").exists()
    assert "online:mat_recent" not in snapshot(root)
    from feast.protos.feast.core.Registry_pb2 import Registry

    registry = Registry()
    registry.ParseFromString((root / ".bigml" / "registry.db").read_bytes())
    views = {fv.spec.name: fv for fv in registry.feature_views}
    assert set(views) == {"stats", "stats__windows", "profile"}  # the removed view's Feast objects are gone
    assert views["stats"].spec.ttl.seconds == 3 * 86400


def test_failing_check_stops_the_view_only(base_project, tmp_path):
    root = _copy(base_project, tmp_path)
    before = snapshot(root)
    trips = pq.read_table(root / "data" / "trips.parquet")
    fares = trips.column("fare").to_pylist()
    fares[7] = -5.0
    pq.write_table(trips.set_column(5, "fare", pa.array(fares)), root / "data" / "trips.parquet")
    (root / "features" / "views.yaml").write_text(
        FEATURES.replace(
            "      - {name: fare}\n",
            "      - {name: fare}\n" + CHECKS.strip("\n").replace("    checks", "    checks", 1) + "\n",
        )
    )
    with pytest.raises(MaterializeFailed) as info:
        _materialize(root, end="2024-03-06T00:00:00Z")
    message = str(info.value)
    assert "recent" in message and "range" in message and "1 row" in message and "-5.0" in message
    after = snapshot(root)
    assert after["recent.parquet"] == before["recent.parquet"]  # the failed view keeps its table
    assert after["stats.parquet"] != before["stats.parquet"]  # the others moved on
    states = state.view_states(Project.load(root).paths)
    assert states["stats"].end.startswith("2024-03-06") and states["recent"].end.startswith("2024-03-05")
    result = subprocess.run(
        [str(BIN), "-p", str(root), "materialize", "--end", "2024-03-06T00:00:00Z"], capture_output=True, text=True
    )
    assert result.returncode == 1 and "range" in result.stderr and "Traceback" not in result.stderr


def test_second_materialize_exits_clearly(base_project, tmp_path):
    root = _copy(base_project, tmp_path)
    with Project.load(root) as project, state.materialize_lock(project.paths):
        result = subprocess.run(
            [str(BIN), "-p", str(root), "materialize", "--end", "2024-03-06T00:00:00Z"], capture_output=True, text=True
        )
    assert result.returncode == 1
    assert "another bigml-fs materialize is running" in result.stderr and "Traceback" not in result.stderr
    result = subprocess.run(
        [str(BIN), "-p", str(root), "materialize", "--end", "2024-03-06T00:00:00Z", "--json"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr


KILLER = """
import os, signal, sys
from bigml_fs import Project
target = int(sys.argv[2])
seen = 0
def progress(event, **info):
    global seen
    seen += 1
    if seen == target:
        os.kill(os.getpid(), signal.SIGKILL)
with Project.load(sys.argv[1]) as project:
    project.materialize(end=sys.argv[3], progress=progress)
print("finished")
"""


def _assert_previous_state_readable(root: Path, before: dict, states_before: dict) -> dict:
    """Offline tables, state and registry are the previous run's; returns the snapshot for the online check."""
    now = snapshot(root)
    for name in before:
        if name.endswith(".parquet"):
            assert now[name] == before[name], name
    assert state.view_states(Project.load(root).paths) == states_before
    from feast.protos.feast.core.Registry_pb2 import Registry

    registry = Registry()
    registry.ParseFromString((root / ".bigml" / "registry.db").read_bytes())
    assert {fv.spec.name for fv in registry.feature_views} >= {"stats", "stats__windows", "recent", "profile"}
    return now


def test_sigkill_at_each_step_then_a_normal_run(base_project, tmp_path):
    root = _copy(base_project, tmp_path)
    before, states_before = snapshot(root), state.view_states(Project.load(root).paths)
    end = "2024-03-08T00:00:00Z"
    # progress events: begin, then per view (view, steps..., done), then the last step before publishing
    killed: list[dict] = []
    for point in (2, 5, 9, 13):
        result = subprocess.run(
            [sys.executable, "-c", KILLER, str(root), str(point), end], capture_output=True, text=True
        )
        assert result.returncode == -signal.SIGKILL, (point, result.stdout, result.stderr)
        killed.append(_assert_previous_state_readable(root, before, states_before))
    report = _materialize(root, end=end)
    assert all(v.error is None for v in report.views)
    final = snapshot(root)
    # each view's online values are one transaction: the previous run's or this run's, never a mix
    for snap in killed:
        for name, rows in snap.items():
            if name.startswith("online:") and rows != before[name]:
                _assert_online_close(rows, final[name], name)
    _full_refresh_equals(root, end)


def _lock_held_by_another(lock: Path) -> bool:
    """True when some process holds the materialize lock (our non-blocking flock on it fails)."""
    import fcntl

    with open(lock, "a+") as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return True
        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
        return False


def _wait_for_run_start(proc: subprocess.Popen, lock: Path, timeout: float = 120.0) -> None:
    """Until the run holds the lock (its pid is in the lock file); fails if it ends first."""
    deadline = time.monotonic() + timeout
    while not (lock.exists() and lock.read_text().strip() == str(proc.pid)):
        assert proc.poll() is None, f"the run ended (code {proc.returncode}) before taking the lock"
        assert time.monotonic() < deadline, "the run did not take the lock in time"
        time.sleep(0.01)


def test_sigkill_of_the_cli_at_random_times(tmp_path):
    """First runs (they import Feast and apply the repo) killed at random times mid-run, then a normal run.

    Each kill is checked to land mid-run: the run holds the materialize lock at kill time and
    dies of the SIGKILL (return code -9), not of finishing first.
    """
    root = _project(tmp_path / "p", _trips(2, 3000, days=10))
    end = "2024-03-06T00:00:00Z"
    env = {**os.environ, "FEAST_USAGE": "False"}
    lock = root / ".bigml" / state.LOCK_FILE
    delays = np.random.default_rng(7).uniform(0.0, 2.0, size=3)  # seconds after the run took the lock
    for delay in delays:
        proc = subprocess.Popen(
            [str(BIN), "-p", str(root), "-q", "materialize", "--end", end],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
        )
        _wait_for_run_start(proc, lock)
        time.sleep(delay)
        running = proc.poll() is None
        held = _lock_held_by_another(lock)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert running and held, (delay, running, held, proc.returncode)  # the kill landed mid-run
        assert proc.returncode == -signal.SIGKILL, (delay, proc.returncode)
        current = root / ".bigml" / "offline" / "current"
        if current.exists():  # the run published before the kill: it is complete
            assert set(state.view_states(Project.load(root).paths)) == {"stats", "recent", "profile"}
    result = subprocess.run(
        [str(BIN), "-p", str(root), "materialize", "--end", end, "--json"], capture_output=True, text=True, env=env
    )
    assert result.returncode == 0, result.stderr
    _full_refresh_equals(root, end)


def test_unreachable_online_store_names_it_and_keeps_the_state(base_project, tmp_path):
    root = _copy(base_project, tmp_path)
    before, states_before = snapshot(root), state.view_states(Project.load(root).paths)
    runs = sorted(p.name for p in (root / ".bigml" / "offline" / "runs").iterdir())
    (root / "project.yaml").write_text(
        (root / "project.yaml").read_text()
        + "online_store: {type: redis, host: 127.0.0.1, port: 1, password_env: BIGML_TEST_SECRET}\n"
    )
    env = {**os.environ, "BIGML_TEST_SECRET": "s3cret-value"}
    result = subprocess.run(
        [str(BIN), "-p", str(root), "materialize", "--end", "2024-03-06T00:00:00Z"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert result.returncode == 1 and "127.0.0.1:1" in result.stderr and "Traceback" not in result.stderr
    assert "s3cret-value" not in result.stderr + result.stdout
    assert snapshot(root) == before and state.view_states(Project.load(root).paths) == states_before
    assert (
        sorted(p.name for p in (root / ".bigml" / "offline" / "runs").iterdir()) == runs
    )  # the failed run left nothing


def test_readers_during_a_run_see_old_or_new_values(base_project, tmp_path):
    """Online reads (SQLite) and offline reads while a `bigml-fs materialize` runs: each is all old or all new."""
    from bigml_fs.store.naming import feast_parts
    from bigml_fs.store.online import open_store

    root = _copy(base_project, tmp_path)
    project = Project.load(root)
    keys = pa.table({"driver_id": pa.array(range(1, 41), type=pa.int64())})
    parts = [p for v in project.catalog.views.values() for p in feast_parts(v) if p.kind != "static"]
    project.close()  # the warehouse file is the run's

    def read_all() -> tuple:
        store = open_store(project.spec, project.paths)
        try:
            online = tuple(
                tuple(tuple(sorted(r.items())) for r in read_rows(store, p, keys, p.feature_names).to_pylist())
                for p in parts
            )
        finally:
            store.close()
        offline = tuple((root / ".bigml" / "offline" / "current" / f"{p.name}.parquet").read_bytes() for p in parts)
        return online, offline

    old = read_all()
    proc = subprocess.Popen(
        [str(BIN), "-q", "-p", str(root), "materialize", "--end", "2024-03-09T00:00:00Z"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    seen = []
    while proc.poll() is None:
        seen.append(read_all())
    assert proc.wait() == 0, proc.stderr.read()
    new = read_all()
    assert len(seen) > 3
    for online, offline in seen:
        for i, part in enumerate(parts):
            assert online[i] in (old[0][i], new[0][i]), f"{part.name}: a read mixed old and new online values"
            assert offline[i] in (old[1][i], new[1][i]), f"{part.name}: a read saw a partial offline table"


# --- switching online_store (issue 14) ---------------------------------------------------------------------------

SWITCH_END = "2024-03-05T12:00:00Z"


def _online_values(root: Path) -> dict[str, tuple[list, list]]:
    """Every feature of every view for drivers 1-40 through ``Project.online`` (ttl checked at SWITCH_END)."""
    from bigml_fs.core.timeutil import parse_time

    with Project.load(root) as project:
        out = {}
        for view in project.catalog.views.values():
            response = project.online.read(
                [f"{view.name}:{f.name}" for f in view.spec.features],
                {"driver_id": list(range(1, 41))},
                now=parse_time(SWITCH_END),
            )
            out[view.name] = (response.values, response.statuses)
        return out


@pytest.mark.parametrize("target", ["sqlite", "redis", "postgres"])
def test_switching_the_online_store_recomputes_into_the_new_one(base_project, tmp_path, request, monkeypatch, target):
    import shutil

    root = tmp_path / "p"
    shutil.copytree(base_project, root, symlinks=True)
    monkeypatch.setenv("BIGML_TEST_SECRET", "s3cret-value")  # trust auth: PostgreSQL never asks for it
    monkeypatch.setenv("BIGML_TEST_EMPTY", "")
    if target == "sqlite":
        store = "{type: sqlite, path: .bigml/other-online.db}"
    elif target == "redis":
        info, prefix = request.getfixturevalue("redis_prefix")
        text = (root / "project.yaml").read_text().replace("name: mat", f"name: {prefix}")  # keys end with it
        (root / "project.yaml").write_text(text)
        store = f"{{type: redis, host: {info['host']}, port: {info['port']}, password_env: BIGML_TEST_EMPTY}}"
    else:
        info, schema = request.getfixturevalue("postgres_schema")
        store = (
            f"{{type: postgres, host: {info['host']}, port: {info['port']}, database: {info['database']}, "
            f"user: {info['user']}, schema: {schema}, password_env: BIGML_TEST_SECRET}}"
        )
    _materialize(root, end=SWITCH_END, full_refresh=True)  # SQLite at .bigml/online.db
    before = _online_values(root)
    assert sum(s == "PRESENT" for _, statuses in before.values() for col in statuses for s in col) > 100

    (root / "project.yaml").write_text((root / "project.yaml").read_text() + f"online_store: {store}\n")
    with Project.load(root) as project:
        planned = {v.view: (v.action, v.reason) for v in project.plan(end=SWITCH_END).views}
    assert {v: a for v, (a, _) in planned.items()} == {
        "stats": "recompute",
        "recent": "recompute",
        "profile": "recompute",
    }
    assert all(r.startswith("online store changed") for _, r in planned.values()), planned

    report = _materialize(root, end=SWITCH_END)
    assert {v.action for v in report.views} == {"recompute"}
    after = _online_values(root)
    assert after.keys() == before.keys()
    for name in before:
        (values_a, statuses_a), (values_b, statuses_b) = before[name], after[name]
        assert statuses_a == statuses_b, name
        for col_a, col_b in zip(values_a, values_b, strict=True):
            assert all(_close(a, b) for a, b in zip(col_a, col_b, strict=True)), (name, col_a, col_b)

    # the new store is recorded: the same run again leaves the event-time views alone
    assert {v.view: v.action for v in _materialize(root, end=SWITCH_END).views}["stats"] == "unchanged"
    text = (root / ".bigml" / "offline" / "current" / "state.json").read_text()
    for secret in ("s3cret-value", "BIGML_TEST_SECRET", "BIGML_TEST_EMPTY", "password"):
        assert secret not in text
    published = state.published_state(Project.load(root).paths)
    assert published.format == state.FORMAT
    assert {v.online_store.type for v in published.views.values()} == {target}


def test_a_state_without_online_store_reads_as_the_configured_store(base_project, tmp_path):
    """States written before stores were recorded: no recompute for it, and the next run records the store."""
    import json

    root = _copy(base_project, tmp_path)
    path = root / ".bigml" / "offline" / "current" / "state.json"
    old = json.loads(path.read_text())
    del old["format"]
    for view in old["views"].values():
        del view["online_store"]
    path.write_text(json.dumps(old))
    paths = Project.load(root).paths
    assert state.published_state(paths).format == 1
    with Project.load(root) as project:
        actions = {v.view: v.action for v in project.plan(end=SWITCH_END).views}
    assert actions == {"stats": "unchanged", "recent": "unchanged", "profile": "recompute"}
    _materialize(root, end=SWITCH_END)
    published = state.published_state(paths)
    assert published.format == state.FORMAT
    assert all(
        v.online_store == state.online_store_identity(Project.load(root).spec, paths) for v in published.views.values()
    )
