"""Materialize into an online store: the whole `bigml-fs materialize` process vs Feast's `materialize`.

Data: 1,000,000 source rows over 500,000 entities (2 rows each on average,
30 days, whole seconds, created timestamps 0-2 s later), 2 features
(a DOUBLE and a BIGINT).

1. latest values (2 features, no ttl): `bigml-fs materialize --end T` from a
   clean state (engine, checks, Parquet, Feast registry, online store: all of
   it) vs a Python process that builds the same Feast repo (FileSource over
   the same Parquet), applies it and calls `FeatureStore.materialize(start,
   end)` into the same kind of online store.
2. a view with 3 windows (count 1h, sum 1d, avg 7d): bigml_fs computes the
   change-point table and loads the aggregates as of T; Feast has no window
   features, so its contender materializes the change-point table bigml_fs
   published (the load alone, a lower bound of what Feast would need).

Both repos are applied once before timing (a first bigml_fs run also imports
Feast and applies the registry, like `feast apply`). Each timed run then
starts from an emptied online store: bigml_fs runs `materialize --full-refresh`
(everything recomputed; the registry is unchanged, so Feast is not even
imported), Feast runs a process that opens its repo and calls `materialize`;
the time of Feast's call alone is recorded too. Median of N runs after a
warm-up, contenders interleaved; peak memory of the process tree. Afterwards
2,000 random entities are read back through plain Feast from both stores and
compared.

Usage: python benchmarks/bench_materialize.py [--entities 500000] [--rows 1000000] [--runs 3] \
[--stores sqlite,redis,postgres] [--write]
``--write`` puts the tables into benchmarks/RESULTS.md (section materialize).
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import textwrap
from datetime import datetime, timezone
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.harness import Measurement, measure_all

HERE = Path(__file__).resolve().parent
DATA = HERE / ".data" / "materialize"
PY = sys.executable
START = "2024-01-01 00:00:00+00"
END = "2024-02-01T00:00:00Z"
REDIS = {"host": "127.0.0.1", "port": 6379}
POSTGRES = {"host": "127.0.0.1", "port": 5432, "database": "test", "user": "postgres"}


def generate(rows: int, entities: int) -> Path:
    DATA.mkdir(parents=True, exist_ok=True)
    path = DATA / f"source_{rows}_{entities}.parquet"
    if path.exists():
        return path
    con = duckdb.connect()
    con.execute("SET TimeZone='UTC'")
    con.execute(f"""
        COPY (
          SELECT (CASE WHEN i < {entities} THEN i ELSE hash(i, 1) % {entities} END + 1)::BIGINT AS driver_id,
                 (TIMESTAMPTZ '{START}' + to_seconds((hash(i, 2) % (30 * 86400))::BIGINT)) AS ts,
                 (TIMESTAMPTZ '{START}' + to_seconds((hash(i, 2) % (30 * 86400))::BIGINT) \
+ to_microseconds((hash(i, 3) % 2000001)::BIGINT)) AS created,
                 (hash(i, 4) % 1000000) / 1000000.0 AS conv_rate,
                 (hash(i, 5) % 500)::BIGINT AS trips
          FROM range({rows}) t(i)
        ) TO '{path}' (FORMAT parquet)""")
    return path


def online_yaml(store: str, name: str) -> str:
    if store == "sqlite":
        return f"online_store: {{type: sqlite, path: {DATA}/{name}/.bigml/online.db}}"
    if store == "redis":
        return f"online_store: {{type: redis, host: {REDIS['host']}, port: {REDIS['port']}}}"
    return (
        f"online_store: {{type: postgres, host: {POSTGRES['host']}, port: {POSTGRES['port']}, "
        f"database: {POSTGRES['database']}, user: {POSTGRES['user']}, schema: {name}}}"
    )


def bigml_project(name: str, source: Path, store: str, features: str) -> Path:
    root = DATA / name
    (root / "features").mkdir(parents=True, exist_ok=True)
    (root / "project.yaml").write_text(
        textwrap.dedent(f"""\
        name: {name}
        engine: {{type: duckdb, path: {root}/.bigml/warehouse.duckdb}}
        entities: [{{name: driver, join_keys: [driver_id]}}]
        sources:
          - {{name: stats, path: {source}, timestamp: ts, created_timestamp: created}}
        """)
        + online_yaml(store, name)
        + "\n"
    )
    (root / "features" / "views.yaml").write_text(textwrap.dedent(features))
    return root


LATEST = """\
    feature_views:
      - name: driver_stats
        entities: [driver]
        source: stats
        features: [{name: conv_rate}, {name: trips}]
    """
WINDOWS = """\
    feature_views:
      - name: driver_windows
        entities: [driver]
        source: stats
        features:
          - {name: trips_count_1h, agg: count, window: 1h}
          - {name: trips_sum_1d, agg: sum, expr: trips, window: 1d}
          - {name: conv_avg_7d, agg: avg, expr: conv_rate, window: 7d}
    """

FEAST_SCRIPT = """
import os, sys, shutil, time, warnings
os.environ['FEAST_USAGE'] = 'False'
warnings.filterwarnings('ignore')
from datetime import datetime, timedelta, timezone
from pathlib import Path
from feast import Entity, FeatureStore, FeatureView, Field, FileSource
from feast import types as ftypes
from feast.repo_config import RepoConfig
from feast.value_type import ValueType
repo = Path({repo!r}); apply = sys.argv[1:] == ['apply']
if apply:
    shutil.rmtree(repo, ignore_errors=True); repo.mkdir(parents=True)
config = dict(project={project!r}, registry=str(repo / 'registry.db'), provider='local', \
offline_store={{'type': 'duckdb'}},
              online_store={online!r}, entity_key_serialization_version=3)
store = FeatureStore(config=RepoConfig(**config, repo_path=str(repo)))
driver = Entity(name='driver', join_keys=['driver_id'], value_type=ValueType.INT64)
fields = [Field(name='driver_id', dtype=ftypes.Int64)] + \
[Field(name=n, dtype=getattr(ftypes, t)) for n, t in {fields!r}]
view = FeatureView(name={view!r}, entities=[driver], ttl=timedelta(0), schema=fields,
                   source=FileSource(path={path!r}, timestamp_field={ts!r}, created_timestamp_column={created!r}))
if apply:
    store.apply([driver, view])
    sys.exit(0)
t0 = time.perf_counter()
store.materialize(start_date=datetime(2000, 1, 1, tzinfo=timezone.utc), \
end_date=datetime(2024, 2, 1, tzinfo=timezone.utc))
with open(repo / 'call_seconds.txt', 'a') as fh:
    fh.write(f'{{time.perf_counter() - t0}}\\n')
"""


def feast_online(store: str, name: str) -> dict:
    if store == "sqlite":
        return {"type": "sqlite", "path": str(DATA / name / "online.db")}
    if store == "redis":
        return {"type": "redis", "connection_string": f"{REDIS['host']}:{REDIS['port']},db=0"}
    return {
        "type": "postgres",
        "host": POSTGRES["host"],
        "port": POSTGRES["port"],
        "database": POSTGRES["database"],
        "db_schema": name,
        "user": POSTGRES["user"],
        "password": "",
        "sslmode": "prefer",
    }


def reset_command(store: str, project: str, sqlite_path: Path, then: list[str]) -> list[str]:
    """Empty a contender's online store (rows, keys), keeping its tables, then exec it."""
    code = f"""
import os, sqlite3
store, project = {store!r}, {project!r}
if store == 'sqlite' and os.path.exists({str(sqlite_path)!r}):
    con = sqlite3.connect({str(sqlite_path)!r})
    for (t,) in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall():
        con.execute('DELETE FROM "' + t + '"')
    con.commit(); con.execute('VACUUM'); con.close()
if store == 'redis':
    import redis
    r = redis.Redis(host={REDIS["host"]!r}, port={REDIS["port"]})
    keys = list(r.scan_iter(match=b'*' + project.encode(), count=10000))
    for i in range(0, len(keys), 10000):
        r.delete(*keys[i:i + 10000])
if store == 'postgres':
    import psycopg
    with psycopg.connect('host={POSTGRES["host"]} port={POSTGRES["port"]} user={POSTGRES["user"]} \
dbname={POSTGRES["database"]}', autocommit=True) as c:
        for (t,) in c.execute("SELECT tablename FROM pg_tables WHERE schemaname = %s", (project,)).fetchall():
            c.execute('TRUNCATE "' + project + '"."' + t + '"')
os.execv({then[0]!r}, {then!r})
"""
    return [PY, "-c", code]


def setup_schema(store: str, name: str) -> None:
    if store != "postgres":
        return
    import psycopg

    with psycopg.connect(
        f"host={POSTGRES['host']} port={POSTGRES['port']} user={POSTGRES['user']} dbname={POSTGRES['database']}",
        autocommit=True,
    ) as c:
        c.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
        c.execute(f'CREATE SCHEMA "{name}"')


def contenders(case: str, store: str, source: Path) -> tuple[list[tuple[str, list[str]]], Path, Path, str, list[str]]:
    ours_name, theirs_name = f"bm_{case}_{store}", f"bf_{case}_{store}"
    if case == "latest":
        root = bigml_project(ours_name, source, store, LATEST)
        view, fields, path, ts, created = (
            "driver_stats",
            [("conv_rate", "Float64"), ("trips", "Int64")],
            str(source),
            "ts",
            "created",
        )
    else:
        root = bigml_project(ours_name, source, store, WINDOWS)
        # Feast loads the change-point table bigml_fs publishes (computed once, outside the timing)
        from bigml_fs import Project

        shutil.rmtree(root / ".bigml", ignore_errors=True)
        with Project.load(root) as project:
            project.materialize(end=END)
        table = DATA / "driver_windows_change_points.parquet"
        shutil.copy(root / ".bigml" / "offline" / "current" / "driver_windows.parquet", table)
        view, fields, path, ts, created = (
            "driver_windows",
            [("trips_count_1h", "Int64"), ("trips_sum_1d", "Float64"), ("conv_avg_7d", "Float64")],
            str(table),
            "event_timestamp",
            "",
        )
    feast_repo = DATA / theirs_name
    script = FEAST_SCRIPT.format(
        repo=str(feast_repo),
        project=theirs_name,
        online=feast_online(store, theirs_name),
        fields=fields,
        view=view,
        path=path,
        ts=ts,
        created=created,
    )
    bigml = [str(Path(PY).with_name("bigml-fs")), "--quiet", "--project", str(root), "materialize", "--end", END]
    # set-up, not timed: both registries applied (bigml_fs: a first run)
    setup_schema(store, ours_name)
    setup_schema(store, theirs_name)
    shutil.rmtree(root / ".bigml", ignore_errors=True)
    subprocess.run(bigml, check=True, stdout=subprocess.DEVNULL)
    subprocess.run([PY, "-c", script, "apply"], check=True)
    write_feast_yaml(feast_repo, store, theirs_name)
    (feast_repo / "call_seconds.txt").unlink(missing_ok=True)
    return (
        [
            (
                "bigml_fs materialize --full-refresh",
                reset_command(store, ours_name, root / ".bigml" / "online.db", [*bigml, "--full-refresh"]),
            ),
            (
                "Feast materialize (process)",
                reset_command(store, theirs_name, feast_repo / "online.db", [PY, "-c", script]),
            ),
        ],
        root,
        feast_repo,
        view,
        [n for n, _ in fields],
    )


def compare(root: Path, feast_repo: Path, view: str, features: list[str], entities: int) -> str:
    """Plain Feast reads 2,000 random entities from both stores; count the differences."""
    import random
    import warnings

    warnings.filterwarnings("ignore")
    os.environ["FEAST_USAGE"] = "False"
    from feast import FeatureStore

    ours = FeatureStore(repo_path=str(root / ".bigml" / "feast"))
    theirs = FeatureStore(repo_path=str(feast_repo))
    rng = random.Random(0)
    rows = [{"driver_id": rng.randint(1, entities)} for _ in range(2000)]
    refs = [f"{view}:{f}" for f in features]
    a = ours.get_online_features(features=refs, entity_rows=rows).to_dict()
    b = theirs.get_online_features(features=refs, entity_rows=rows).to_dict()
    differ = sum(
        1
        for f in features
        for x, y in zip(a[f], b[f], strict=True)
        if not (x == y or (x is not None and y is not None and abs(x - y) <= 1e-9 * max(abs(x), abs(y)) + 1e-12))
    )
    return "identical" if differ == 0 else f"{differ} values differ"


def write_feast_yaml(feast_repo: Path, store: str, name: str) -> None:
    """A feature_store.yaml beside the benchmark's Feast registry, so plain Feast can reopen it."""
    import yaml

    config = {
        "project": name,
        "registry": str(feast_repo / "registry.db"),
        "provider": "local",
        "offline_store": {"type": "duckdb"},
        "online_store": feast_online(store, name),
        "entity_key_serialization_version": 3,
    }
    (feast_repo / "feature_store.yaml").write_text(yaml.safe_dump(config))


def report(title: str, results: list[Measurement], check: str, call: list[float]) -> str:
    ours, theirs = results
    lines = [f"\n#### {title}\n", "| contender | median s | peak MB (process tree) |", "|---|---|---|"]
    for r in results:
        lines.append(
            f"| {r.name} | {'failed: ' + r.failed.splitlines()[-1][:80] if r.failed else f'{r.median:.2f}'} | "
            f"{'' if r.failed else f'{r.peak:.0f}'} |"
        )
    if ours.seconds and theirs.seconds:
        call_text = f"{statistics.median(call):.2f} s" if call else "n/a"
        ratio_call = statistics.median(call) / ours.median if call else float("nan")
        lines.append(
            f"\nWhole processes: bigml_fs is **{theirs.median / ours.median:.1f}x** faster than Feast's process; "
            f"Feast's `materialize` call alone took {call_text} (median), **{ratio_call:.1f}x** our whole process. "
            f"Peak memory {ours.peak / theirs.peak:.2f}x Feast's. Online values read back through plain Feast: {check}."
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entities", type=int, default=500_000)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--stores", default="sqlite,redis,postgres")
    parser.add_argument("--cases", default="latest,windows")
    parser.add_argument(
        "--write", action="store_true", help="write the results into benchmarks/RESULTS.md (section materialize)"
    )
    args = parser.parse_args()
    source = generate(args.rows, args.entities)
    sections: list[str] = []
    for store in args.stores.split(","):
        for case in args.cases.split(","):
            print(f"{case} into {store}", flush=True)
            runs, root, feast_repo, view, features = contenders(case, store, source)
            results = measure_all(runs, runs=args.runs)
            check = "not compared"
            if not any(r.failed for r in results):
                check = compare(root, feast_repo, view, features, args.entities)
            calls_file = feast_repo / "call_seconds.txt"
            calls = [float(x) for x in calls_file.read_text().split()] if calls_file.exists() else []
            call = calls[1:] if len(calls) > 1 else calls  # drop the warm-up
            title = {
                "latest": f"{args.entities:,} entities x 2 features",
                "windows": f"{args.entities:,} entities, 3 windows (count 1h, sum 1d, avg 7d)",
            }[case]
            sections.append(report(f"{store}: {title}", results, check, call))
    header = (
        f"\n### Run of {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC\n\n"
        f"{args.rows:,} source rows, {args.entities:,} entities, `--end {END}`; median of {args.runs} runs "
        f"after a warm-up, contenders interleaved, each from an emptied online store "
        f"(registries applied before timing); "
        f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"duckdb {duckdb.__version__}.\n"
        f"Reproduce: `.venv/bin/python benchmarks/bench_materialize.py --entities {args.entities} --rows {args.rows} "
        f"--runs {args.runs} --stores {args.stores} --cases {args.cases}`\n"
    )
    text = header + "\n".join(sections)
    print(text)
    if args.write:
        results_md = HERE / "RESULTS.md"
        content = results_md.read_text()
        start = content.index("<!-- section:materialize")
        start = content.index("\n", start) + 1
        stop = content.index("<!-- /section:materialize -->")
        existing = content[start:stop]
        intro = existing if existing.strip() else "## Materialize\n"
        results_md.write_text(content[:start] + intro.rstrip("\n") + "\n" + text + content[stop:])


if __name__ == "__main__":
    main()
