"""Point-in-time training sets: bigml_fs vs Feast vs hand-written DuckDB, same data, one run.

Data: 10,000,000 feature rows over 100,000 keys and 30
days, event times on whole seconds (ties happen), created timestamps 0-2 s
later; a spine of 1,000,000 rows. Every contender reads the same Parquet files
and writes Parquet in spine order.

1. latest values (2 features) at ttl 1 day and ttl 30 days:
   `bigml-fs training-set` (whole CLI process) vs Feast's DuckDB offline store
   (`get_historical_features`) vs a hand-written DuckDB ASOF query.
2. window aggregates (count 1h, sum 1d, avg 7d) vs a hand-written DuckDB window query.

Usage: python benchmarks/bench_pit.py [--rows 10000000] [--spine 1000000] [--runs 3] [--skip-feast]
Results are appended to benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import platform
import subprocess
import sys
import textwrap
from datetime import datetime, timezone
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.compare import IDENTICAL, compare_outputs
from benchmarks.harness import Measurement, measure_all

HERE = Path(__file__).resolve().parent
DATA = HERE / ".data"
PY = sys.executable
BIGML = [PY, "-m", "bigml_fs"]
START = "2024-01-01 00:00:00+00"
KEYS = ["driver_id", "event_timestamp"]
LATEST_VALUES = ["conv_rate", "trips"]
WINDOW_VALUES = ["trips_count_1h", "trips_sum_1d", "conv_avg_7d"]
# each contender's output, in the order latest_contenders / window_contenders list them
LATEST_OUTPUTS = [DATA / "out_bigml.parquet", DATA / "out_hand.parquet", DATA / "out_feast.parquet"]
WINDOW_OUTPUTS = [DATA / "out_bigml_windows.parquet", DATA / "out_hand_windows.parquet"]


def generate(rows: int, spine_rows: int, keys: int) -> None:
    DATA.mkdir(parents=True, exist_ok=True)
    marker = DATA / f"generated_{rows}_{spine_rows}_{keys}"
    if marker.exists():
        return
    con = duckdb.connect()
    con.execute("SET TimeZone='UTC'")
    con.execute(f"""
        COPY (
          SELECT (hash(i, 1) % {keys} + 1)::BIGINT AS driver_id,
                 (TIMESTAMPTZ '{START}' + to_seconds((hash(i, 2) % (30 * 86400))::BIGINT)) AS ts,
                 (TIMESTAMPTZ '{START}' + to_seconds((hash(i, 2) % (30 * 86400))::BIGINT)
                  + to_microseconds((hash(i, 3) % 2000001)::BIGINT)) AS created,
                 (hash(i, 4) % 1000000) / 1000000.0 AS conv_rate,
                 (hash(i, 5) % 500)::BIGINT AS trips
          FROM range({rows}) t(i)
        ) TO '{DATA}/features.parquet' (FORMAT parquet)""")
    con.execute(f"""
        COPY (
          SELECT (hash(i, 6) % ({keys} + {keys} // 10) + 1)::BIGINT AS driver_id,
                 (TIMESTAMPTZ '{START}' + to_microseconds((hash(i, 7) % (31 * 86400 * 1000000::BIGINT))::BIGINT))
                   AS event_timestamp
          FROM range({spine_rows}) t(i)
        ) TO '{DATA}/spine.parquet' (FORMAT parquet)""")
    for old in DATA.glob("generated_*"):
        old.unlink()
    marker.touch()


def bigml_project(name: str, features: str) -> Path:
    root = DATA / name
    (root / "features").mkdir(parents=True, exist_ok=True)
    (root / "project.yaml").write_text(
        textwrap.dedent(f"""\
        name: bench
        engine: {{type: duckdb, path: {DATA}/{name}/.bigml/warehouse.duckdb}}
        entities: [{{name: driver, join_keys: [driver_id]}}]
        sources:
          - {{name: stats, path: {DATA}/features.parquet, timestamp: ts, created_timestamp: created}}
        """)
    )
    (root / "features" / "views.yaml").write_text(textwrap.dedent(features))
    return root


def bigml_training_set(root: Path, features: str, output: str) -> list[str]:
    """The bigml_fs contender: its whole CLI process over the shared spine."""
    spine = str(DATA / "spine.parquet")
    return [
        *BIGML,
        "--quiet",
        "--project",
        str(root),
        "training-set",
        "--features",
        features,
        "--spine",
        spine,
        "-o",
        output,
    ]


def latest_contenders(ttl_days: int) -> list[tuple[str, list[str]]]:
    root = bigml_project(
        f"latest_{ttl_days}d",
        f"""\
        feature_views:
          - name: driver_stats
            entities: [driver]
            source: stats
            ttl: {ttl_days}d
            features: [{{name: conv_rate}}, {{name: trips}}]
        """,
    )
    out = DATA / "out"
    hand = f"""
import duckdb
con = duckdb.connect(); con.execute("SET TimeZone='UTC'")
con.execute('''COPY (
  WITH f AS (
    SELECT driver_id, ts, conv_rate, trips FROM read_parquet('{DATA}/features.parquet')
    QUALIFY row_number() OVER (PARTITION BY driver_id, ts ORDER BY created DESC NULLS LAST) = 1),
  s AS (SELECT driver_id, event_timestamp, file_row_number AS rid
        FROM read_parquet('{DATA}/spine.parquet', file_row_number = true))
  SELECT s.driver_id, s.event_timestamp,
         CASE WHEN f.ts >= s.event_timestamp - INTERVAL {ttl_days} DAY THEN f.conv_rate END AS conv_rate,
         CASE WHEN f.ts >= s.event_timestamp - INTERVAL {ttl_days} DAY THEN f.trips END AS trips
  FROM s ASOF LEFT JOIN f ON s.driver_id = f.driver_id AND s.event_timestamp >= f.ts
  ORDER BY s.rid) TO '{out}_hand.parquet' (FORMAT parquet)''')
"""
    repo = DATA / f"feast_{ttl_days}d"
    apply = f"""
import sys; sys.path.insert(0, {str(HERE.parent)!r})
from datetime import timedelta
from pathlib import Path
from benchmarks.feast_peer import PeerView, feast_store
feast_store(Path({str(repo)!r}),
    [PeerView('driver_stats', Path({str(DATA / "features.parquet")!r}), ['driver_id'], 'ts',
              'created', {{'conv_rate': 'Float64', 'trips': 'Int64'}}, timedelta(days={ttl_days}))])
"""
    # set-up, not timed: the Feast registry is applied once, as bigml_fs's project is written once
    subprocess.run([PY, "-c", apply], check=True)
    feast = f"""
import sys; sys.path.insert(0, {str(HERE.parent)!r})
import pandas as pd
from benchmarks.feast_peer import historical, open_feast_store
store = open_feast_store(__import__('pathlib').Path({str(repo)!r}))
spine = pd.read_parquet({str(DATA / "spine.parquet")!r})
spine['rid'] = range(len(spine))
df = historical(store, spine, ['driver_stats:conv_rate', 'driver_stats:trips']).sort_values('rid')
df[['driver_id', 'event_timestamp', 'conv_rate', 'trips']].to_parquet({str(out) + "_feast.parquet"!r}, index=False)
"""
    return [
        ("bigml_fs", bigml_training_set(root, "driver_stats:*", f"{out}_bigml.parquet")),
        ("hand-written DuckDB ASOF", [PY, "-c", hand]),
        ("Feast (DuckDB offline store)", [PY, "-c", feast]),
    ]


def window_contenders() -> list[tuple[str, list[str]]]:
    root = bigml_project(
        "windows",
        """\
        feature_views:
          - name: driver_windows
            entities: [driver]
            source: stats
            features:
              - {name: trips_count_1h, agg: count, window: 1h}
              - {name: trips_sum_1d, agg: sum, expr: trips, window: 1d}
              - {name: conv_avg_7d, agg: avg, expr: conv_rate, window: 7d}
        """,
    )
    out = DATA / "out"
    hand = f"""
import duckdb
con = duckdb.connect(); con.execute("SET TimeZone='UTC'")
con.execute('''COPY (
  WITH s AS (SELECT driver_id, event_timestamp, epoch_us(event_timestamp) AS t, file_row_number AS rid
             FROM read_parquet('{DATA}/spine.parquet', file_row_number = true)),
  e AS (SELECT DISTINCT * FROM read_parquet('{DATA}/features.parquet')),
  u AS (SELECT driver_id, t, NULL::BIGINT AS trips, NULL::DOUBLE AS conv_rate, NULL::INT AS ev
        FROM (SELECT DISTINCT driver_id, t FROM s)
        UNION ALL SELECT driver_id, epoch_us(ts), trips, conv_rate, 1 FROM e),
  w AS (SELECT driver_id, t, ev,
          count(ev) OVER (PARTITION BY driver_id ORDER BY t RANGE BETWEEN 3600000000 PRECEDING AND 1 PRECEDING)
            AS trips_count_1h,
          sum(trips) OVER (PARTITION BY driver_id ORDER BY t RANGE BETWEEN 86400000000 PRECEDING AND 1 PRECEDING)
            ::DOUBLE AS trips_sum_1d,
          avg(conv_rate) OVER (PARTITION BY driver_id ORDER BY t RANGE BETWEEN 604800000000 PRECEDING AND 1 PRECEDING)
            AS conv_avg_7d
        FROM u)
  SELECT s.driver_id, s.event_timestamp, w.trips_count_1h, w.trips_sum_1d, w.conv_avg_7d
  FROM s LEFT JOIN w ON s.driver_id = w.driver_id AND s.t = w.t AND w.ev IS NULL
  ORDER BY s.rid) TO '{out}_hand_windows.parquet' (FORMAT parquet)''')
"""
    return [
        ("bigml_fs", bigml_training_set(root, "driver_windows:*", f"{out}_bigml_windows.parquet")),
        ("hand-written DuckDB window", [PY, "-c", hand]),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--spine", type=int, default=1_000_000)
    parser.add_argument("--keys", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--skip-feast", action="store_true")
    parser.add_argument("--only", choices=["latest", "windows"], default=None)
    args = parser.parse_args()
    generate(args.rows, args.spine, args.keys)
    sections: list[str] = []
    if args.only in (None, "latest"):
        for ttl in (1, 30):
            print(f"latest values, ttl {ttl}d", flush=True)
            every = latest_contenders(ttl)
            outputs = dict(zip([n for n, _ in every], LATEST_OUTPUTS, strict=True))
            contenders = [(n, c) for n, c in every if not (args.skip_feast and n.startswith("Feast"))]
            results = measure_all(contenders, runs=args.runs, outputs={n: [outputs[n]] for n, _ in contenders})
            checks = {
                r.name: compare_outputs(outputs[results[0].name], outputs[r.name], KEYS, LATEST_VALUES, r.failed)
                for r in results[1:]
            }
            title = f"Latest values, ttl {ttl} day{'s' if ttl > 1 else ''}"
            sections.append(report(title, results, checks))
    if args.only in (None, "windows"):
        print("window aggregates", flush=True)
        contenders = window_contenders()
        outputs = dict(zip([n for n, _ in contenders], WINDOW_OUTPUTS, strict=True))
        results = measure_all(contenders, runs=args.runs, outputs={n: [outputs[n]] for n, _ in contenders})
        checks = {
            r.name: compare_outputs(outputs[results[0].name], outputs[r.name], KEYS, WINDOW_VALUES, r.failed)
            for r in results[1:]
        }
        sections.append(report("Window aggregates (count 1h, sum 1d, avg 7d)", results, checks))
    header = (
        f"\n## Run of {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC\n\n"
        f"{args.rows:,} feature rows, {args.keys:,} keys, 30 days; spine {args.spine:,} rows; "
        f"median of {args.runs} runs after a warm-up, contenders interleaved; "
        f"{platform.machine()}, {__import__('os').cpu_count()} cores, "
        f"Python {platform.python_version()}, duckdb {duckdb.__version__}.\n"
        f"Reproduce: `python benchmarks/bench_pit.py --rows {args.rows} --spine {args.spine} --runs {args.runs}"
        f"{' --only ' + args.only if args.only else ''}`\n"
    )
    text = header + "\n".join(sections)
    print(text)
    with open(HERE / "RESULTS.md", "a") as fh:
        fh.write(text)


def report(title: str, results: list[Measurement], checks: dict[str, str]) -> str:
    """A table of the contenders; a ratio only for a contender whose output equals bigml_fs's."""
    ours = results[0]
    lines = [
        f"\n### {title}\n",
        "| contender | median s | peak MB (process tree) | bigml_fs speed-up (their time / ours) |",
        "|---|---|---|---|",
    ]
    for r in results:
        if r.failed:
            lines.append(f"| {r.name} | failed: {r.failed.splitlines()[-1][:80] if r.failed else ''} | | |")
            continue
        check = checks.get(r.name, IDENTICAL)
        ratio = f"{r.median / ours.median:.2f}x" if check == IDENTICAL and not ours.failed else f"no ratio: {check}"
        lines.append(f"| {r.name} | {r.median:.2f} | {r.peak:.0f} | {ratio} |")
    lines.append("")
    lines.append(
        "Outputs compared with bigml_fs's (row counts, keys and times, every value; NULL against a value counts): "
        + ", ".join(f"{k}: {v}" for k, v in checks.items())
    )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
