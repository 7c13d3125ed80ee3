"""Training sets per engine: bigml_fs on DuckDB, PostgreSQL and Spark, and a hand-written query on each.

The same generated data for every contender (bench_pit.py's generator: event
times on whole seconds so ties occur, created timestamps 0-2 s later), one
view with two latest values (ttl 30 days) and three window aggregates (count
1h, sum 1d, avg 7d). Every contender is a whole process: Parquet spine in,
Parquet training set out in spine order. PostgreSQL's source table is loaded
by bigml_fs during the warm-up (streaming COPY, then reused while the file is
unchanged); the hand-written PostgreSQL query reads that same table and
loads its spine with COPY too. Spark runs at local[2] and includes its start.

Usage: python benchmarks/bench_engines.py [--rows 10000000] [--spine 1000000] [--runs 3] [--warmup 1]
       [--engines duckdb,postgres,spark]
PostgreSQL at 127.0.0.1:5432 (user postgres, database test; schema bigml_bench).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import textwrap
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import bench_pit
from benchmarks.compare import IDENTICAL, compare_outputs
from benchmarks.harness import measure_all

PY = sys.executable
DATA = bench_pit.DATA / "engines"  # its own files: bench_pit.py keeps its 10M-row data beside
PG = {"host": "127.0.0.1", "port": 5432, "database": "test", "user": "postgres", "schema": "bigml_bench"}
FEATURES = """\
    feature_views:
      - name: drv
        entities: [driver]
        source: stats
        ttl: 30d
        features:
          - {name: conv_rate}
          - {name: trips}
          - {name: trips_count_1h, agg: count, window: 1h}
          - {name: trips_sum_1d, agg: sum, expr: trips, window: 1d}
          - {name: conv_avg_7d, agg: avg, expr: conv_rate, window: 7d}
    """
KEYS = ["driver_id", "event_timestamp"]
VALUES = ["conv_rate", "trips", "trips_count_1h", "trips_sum_1d", "conv_avg_7d"]
TTL_US, H_US, D_US, W_US = 30 * 86_400_000_000, 3_600_000_000, 86_400_000_000, 7 * 86_400_000_000


def project(engine: str) -> Path:
    root = DATA / f"engines_{engine}"
    (root / "features").mkdir(parents=True, exist_ok=True)
    block = {
        "duckdb": f"{{type: duckdb, path: {root}/.bigml/warehouse.duckdb}}",
        "postgres": (
            "{{type: postgres, host: {host}, port: {port}, database: {database}, user: {user}, schema: {schema}}}"
        ).format(**PG),
        "spark": (
            "{type: spark, master: 'local[2]', conf: {spark.sql.shuffle.partitions: '4', spark.driver.memory: 6g}}"
        ),
    }[engine]
    (root / "project.yaml").write_text(
        textwrap.dedent(f"""\
        name: bench
        engine: {block}
        entities: [{{name: driver, join_keys: [driver_id]}}]
        sources:
          - {{name: stats, path: {DATA}/features.parquet, timestamp: ts, created_timestamp: created}}
        """)
    )
    (root / "features" / "views.yaml").write_text(textwrap.dedent(FEATURES))
    return root


def bigml(engine: str) -> list[str]:
    return [
        PY,
        "-m",
        "bigml_fs",
        "--quiet",
        "--project",
        str(project(engine)),
        "training-set",
        "--features",
        "drv:*",
        "--spine",
        str(DATA / "spine.parquet"),
        "-o",
        str(DATA / f"eng_{engine}_bigml.parquet"),
    ]


def hand_duckdb() -> str:
    return f"""
import duckdb
con = duckdb.connect(); con.execute("SET TimeZone='UTC'")
con.execute('''COPY (
  WITH s AS (SELECT driver_id, event_timestamp, epoch_us(event_timestamp) AS t, file_row_number AS rid
             FROM read_parquet('{DATA}/spine.parquet', file_row_number = true)),
  f AS (SELECT driver_id, epoch_us(ts) AS t, conv_rate, trips FROM read_parquet('{DATA}/features.parquet')
        QUALIFY row_number() OVER (PARTITION BY driver_id, ts ORDER BY created DESC NULLS LAST) = 1),
  e AS (SELECT DISTINCT * FROM read_parquet('{DATA}/features.parquet')),
  u AS (SELECT driver_id, t, NULL::BIGINT AS trips, NULL::DOUBLE AS conv_rate, NULL::INT AS ev
        FROM (SELECT DISTINCT driver_id, t FROM s)
        UNION ALL SELECT driver_id, epoch_us(ts), trips, conv_rate, 1 FROM e),
  w AS (SELECT driver_id, t, ev,
          count(ev) OVER (PARTITION BY driver_id ORDER BY t RANGE BETWEEN {H_US} PRECEDING AND 1 PRECEDING)
            AS trips_count_1h,
          sum(trips) OVER (PARTITION BY driver_id ORDER BY t RANGE BETWEEN {D_US} PRECEDING AND 1 PRECEDING)::DOUBLE
            AS trips_sum_1d,
          avg(conv_rate) OVER (PARTITION BY driver_id ORDER BY t RANGE BETWEEN {W_US} PRECEDING AND 1 PRECEDING)
            AS conv_avg_7d
        FROM u)
  SELECT s.driver_id, s.event_timestamp,
         CASE WHEN f.t >= s.t - {TTL_US} THEN f.conv_rate END AS conv_rate,
         CASE WHEN f.t >= s.t - {TTL_US} THEN f.trips END AS trips,
         w.trips_count_1h, w.trips_sum_1d, w.conv_avg_7d
  FROM s ASOF LEFT JOIN f ON s.driver_id = f.driver_id AND s.t >= f.t
  LEFT JOIN w ON s.driver_id = w.driver_id AND s.t = w.t AND w.ev IS NULL
  ORDER BY s.rid) TO '{DATA}/eng_duckdb_hand.parquet' (FORMAT parquet)''')
"""


def hand_postgres() -> str:
    """LATERAL for the latest values (index on driver_id, ts, created), window frames for the aggregates."""
    table = f'"{PG["schema"]}"."bigml_src_stats"'
    epoch = "TIMESTAMPTZ '1970-01-01 00:00:00+00' + ({}) * INTERVAL '1 microsecond'"
    return f"""
import io, psycopg, pyarrow as pa, pyarrow.csv as csv, pyarrow.parquet as pq
con = psycopg.connect(
    host={PG["host"]!r}, port={PG["port"]}, dbname={PG["database"]!r}, user={PG["user"]!r}, autocommit=True
)
con.execute("SET TimeZone = 'UTC'")
spine = pq.read_table({str(DATA / "spine.parquet")!r})
spine = spine.append_column('rid', pa.array(range(spine.num_rows), type=pa.int64()))
con.execute("CREATE TEMP TABLE s (driver_id bigint, event_timestamp timestamptz, rid bigint)")
with con.cursor().copy("COPY s FROM STDIN (FORMAT csv)") as copy:
    for batch in spine.to_batches(100000):
        buf = io.BytesIO()
        csv.write_csv(batch, buf, csv.WriteOptions(include_header=False))
        copy.write(buf.getvalue())
con.execute("ALTER TABLE s ADD COLUMN t bigint")
con.execute("UPDATE s SET t = CAST(EXTRACT(EPOCH FROM event_timestamp) * 1000000 AS BIGINT)")
con.execute("ANALYZE s")
sql = '''
WITH p AS (SELECT DISTINCT driver_id, t FROM s),
u AS (SELECT driver_id, t, NULL::bigint AS trips, NULL::float8 AS conv_rate, NULL::int AS ev FROM p
      UNION ALL SELECT driver_id, CAST(EXTRACT(EPOCH FROM ts) * 1000000 AS BIGINT), trips, conv_rate, 1
      FROM (SELECT DISTINCT * FROM {table}) d),
w AS (SELECT driver_id, t, ev,
        count(ev) OVER (PARTITION BY driver_id ORDER BY t RANGE BETWEEN {H_US} PRECEDING AND 1 PRECEDING)
          AS trips_count_1h,
        sum(trips) OVER (PARTITION BY driver_id ORDER BY t RANGE BETWEEN {D_US} PRECEDING AND 1 PRECEDING)::float8
          AS trips_sum_1d,
        avg(conv_rate) OVER (PARTITION BY driver_id ORDER BY t RANGE BETWEEN {W_US} PRECEDING AND 1 PRECEDING)::float8
          AS conv_avg_7d
      FROM u)
SELECT s.driver_id, s.event_timestamp, l.conv_rate, l.trips, w.trips_count_1h, w.trips_sum_1d, w.conv_avg_7d
FROM s
LEFT JOIN LATERAL (SELECT f.conv_rate, f.trips FROM {table} f
  WHERE f.driver_id = s.driver_id AND f.ts <= {epoch.format("s.t")} AND f.ts >= {epoch.format(f"s.t - {TTL_US}")}
  ORDER BY f.ts DESC, f.created DESC NULLS LAST LIMIT 1) l ON TRUE
LEFT JOIN w ON w.driver_id = s.driver_id AND w.t = s.t AND w.ev IS NULL
ORDER BY s.rid'''
schema = pa.schema([('driver_id', pa.int64()), ('event_timestamp', pa.timestamp('us', tz='UTC')),
                    ('conv_rate', pa.float64()), ('trips', pa.int64()),
                    ('trips_count_1h', pa.int64()), ('trips_sum_1d', pa.float64()), ('conv_avg_7d', pa.float64())])
out_path = {str(DATA / "eng_postgres_hand.parquet")!r}
with con.transaction(), con.cursor(name='c') as cur, pq.ParquetWriter(out_path, schema) as out:
    cur.execute(sql)
    while rows := cur.fetchmany(100000):
        arrays = [pa.array(c, type=f.type) for c, f in zip(zip(*rows), schema)]
        out.write_batch(pa.RecordBatch.from_arrays(arrays, schema=schema))
"""


def hand_spark() -> str:
    """last(struct, true) over events and spine rows for latest values; frames on BIGINT microseconds for windows."""
    return f"""
import os, shutil, glob
from pyspark.sql import SparkSession
spark = (SparkSession.builder.master('local[2]')
         .config('spark.sql.session.timeZone', 'UTC').config('spark.ui.enabled', 'false')
         .config('spark.sql.shuffle.partitions', '4').config('spark.driver.memory', '6g')
         .config('spark.sql.parquet.outputTimestampType', 'TIMESTAMP_MICROS').getOrCreate())
spark.sparkContext.setLogLevel('ERROR')
(spark.read.parquet({str(DATA / "spine.parquet")!r})
 .selectExpr('driver_id', 'event_timestamp', 'unix_micros(event_timestamp) AS t',
             'monotonically_increasing_id() AS rid')
 .createOrReplaceTempView('s'))
spark.read.parquet({str(DATA / "features.parquet")!r}).createOrReplaceTempView('f')
out = spark.sql('''
WITH d AS (SELECT driver_id, unix_micros(ts) AS t, conv_rate, trips,
             row_number() OVER (PARTITION BY driver_id, ts ORDER BY created DESC NULLS LAST) AS rn FROM f),
p AS (SELECT DISTINCT driver_id, t FROM s),
lu AS (SELECT driver_id, t, 0 AS side, named_struct('t', t, 'conv_rate', conv_rate, 'trips', trips) AS m
       FROM d WHERE rn = 1
       UNION ALL SELECT driver_id, t, 1, NULL FROM p),
l AS (SELECT driver_id, t, side,
             last(m, true) OVER (PARTITION BY driver_id ORDER BY t, side
                                 ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
               AS m
      FROM lu),
u AS (SELECT driver_id, t, CAST(NULL AS BIGINT) AS trips, CAST(NULL AS DOUBLE) AS conv_rate, CAST(NULL AS INT) AS ev
      FROM p
      UNION ALL SELECT driver_id, unix_micros(ts), trips, conv_rate, 1 FROM (SELECT DISTINCT * FROM f)),
w AS (SELECT driver_id, t, ev,
        count(ev) OVER (PARTITION BY driver_id ORDER BY t RANGE BETWEEN {H_US} PRECEDING AND 1 PRECEDING)
          AS trips_count_1h,
        CAST(sum(trips) OVER (PARTITION BY driver_id ORDER BY t RANGE BETWEEN {D_US} PRECEDING AND 1 PRECEDING)
             AS DOUBLE)
          AS trips_sum_1d,
        avg(conv_rate) OVER (PARTITION BY driver_id ORDER BY t RANGE BETWEEN {W_US} PRECEDING AND 1 PRECEDING)
          AS conv_avg_7d
      FROM u)
SELECT s.driver_id, s.event_timestamp,
       CASE WHEN l.m.t >= s.t - {TTL_US} THEN l.m.conv_rate END AS conv_rate,
       CASE WHEN l.m.t >= s.t - {TTL_US} THEN l.m.trips END AS trips,
       w.trips_count_1h, w.trips_sum_1d, w.conv_avg_7d
FROM s LEFT JOIN l ON l.driver_id = s.driver_id AND l.t = s.t AND l.side = 1
LEFT JOIN w ON w.driver_id = s.driver_id AND w.t = s.t AND w.ev IS NULL
ORDER BY s.rid''')
scratch = {str(DATA / "eng_spark_hand.spark")!r}
out.coalesce(1).write.mode('overwrite').parquet(scratch)
shutil.move(glob.glob(os.path.join(scratch, 'part-*.parquet'))[0], {str(DATA / "eng_spark_hand.parquet")!r})
shutil.rmtree(scratch)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--spine", type=int, default=1_000_000)
    parser.add_argument("--keys", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--engines", default="duckdb,postgres,spark")
    parser.add_argument(
        "--warmup", type=int, default=1, help="untimed runs first (PostgreSQL loads its source table in the first)"
    )
    args = parser.parse_args()
    for marker in DATA.glob("generated_*") if DATA.exists() else []:
        if marker.name != f"generated_{args.rows}_{args.spine}_{args.keys}":
            marker.unlink()  # another scale was generated last: regenerate
    bench_pit.DATA = DATA  # bench_pit's generator, writing into this benchmark's directory
    bench_pit.generate(args.rows, args.spine, args.keys)
    engines = args.engines.split(",")
    hands = {
        "duckdb": ("DuckDB hand-written ASOF + window", hand_duckdb),
        "postgres": ("PostgreSQL hand-written LATERAL + window", hand_postgres),
        "spark": ("Spark hand-written last(struct) + window", hand_spark),
    }
    contenders = []
    for engine in engines:
        contenders.append((f"bigml_fs on {engine}", bigml(engine)))
        contenders.append((hands[engine][0], [PY, "-c", hands[engine][1]()]))
    outputs = {
        name: [DATA / f"eng_{engine}_{side}.parquet"]
        for engine in engines
        for name, side in ((f"bigml_fs on {engine}", "bigml"), (hands[engine][0], "hand"))
    }
    results = measure_all(contenders, runs=args.runs, warmup=args.warmup, outputs=outputs)
    duck = next((r for r in results if r.name == "bigml_fs on duckdb" and not r.failed), None)
    lines = [
        f"{args.rows:,} feature rows, {args.keys:,} keys, 30 days; spine {args.spine:,} rows; "
        f"median of {args.runs} runs after {args.warmup} warm-up run(s), contenders interleaved; "
        f"{platform.machine()}, {os.cpu_count()} cores, duckdb {duckdb.__version__}.",
        (
            f"Reproduce: `python benchmarks/bench_engines.py --rows {args.rows} --spine {args.spine} "
            f"--runs {args.runs} --warmup {args.warmup} --engines {args.engines}`"
        ),
        "",
        (
            "| contender | median s | peak MB | vs bigml_fs on DuckDB "
            "| bigml_fs / hand-written on the same engine | equal to bigml_fs on DuckDB |"
        ),
        "|---|---|---|---|---|---|",
    ]
    for i in range(0, len(results), 2):
        ours, hand = results[i], results[i + 1]
        engine = engines[i // 2]
        for r, out in ((ours, f"eng_{engine}_bigml.parquet"), (hand, f"eng_{engine}_hand.parquet")):
            if r.failed:
                lines.append(f"| {r.name} | failed: {r.failed.splitlines()[-1][:80]} | | | | |")
                continue
            vs_duck = f"{r.median / duck.median:.2f}x" if duck else ""
            ratio = f"{ours.median / hand.median:.2f}" if r is ours and not hand.failed else ""
            equal = compare_outputs(DATA / "eng_duckdb_bigml.parquet", DATA / out, KEYS, VALUES) if duck else ""
            if equal and equal != IDENTICAL:  # a ratio is printed only for an output equal to DuckDB's
                vs_duck = ratio = f"no ratio: {equal}"
            lines.append(f"| {r.name} | {r.median:.2f} | {r.peak:.0f} | {vs_duck} | {ratio} | {equal} |")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
