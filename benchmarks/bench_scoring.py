"""In-warehouse scoring benchmark: bigml_fs SQL vs Python scikit-learn vs orbital, same pipeline, same data.

For each pipeline (logistic regression with scaler + one-hot, a 100-tree
depth-8 random forest, gradient boosting), in one run on the same generated
Parquet file: compile time and SQL size of bigml_fs and orbital, and the run
time of scoring every row with Parquet in and Parquet out (DuckDB ``COPY (...)
TO`` for the two SQL contenders; read, ``predict`` + ``predict_proba``, write
for scikit-learn), median of N interleaved runs after a warm-up. Every output
is compared with scikit-learn's: the maximum absolute difference of the
probabilities and the number of rows whose class differs.

Reproduce: .venv/bin/python benchmarks/bench_scoring.py --rows 1000000 --runs 3
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import sklearn
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sqlglot import exp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bigml_fs.scoring.sql import compile_pipeline

DATA = Path(__file__).resolve().parent / ".data" / "scoring"
NUMERIC = [f"x{i}" for i in range(8)]
TEXT = ["country", "channel"]
FEATURES = NUMERIC + TEXT


def generate(rows: int, seed: int = 7) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    data: dict[str, np.ndarray] = {"row_id": np.arange(rows, dtype=np.int64)}
    for i, c in enumerate(NUMERIC):
        data[c] = rng.normal(loc=i, scale=1 + i, size=rows)
    data["country"] = rng.choice(["US", "FR", "DE", "BR", "IN", "JP", "NG", "MX"], size=rows).astype(object)
    data["channel"] = rng.choice(["web", "app", "pos"], size=rows).astype(object)
    frame = pd.DataFrame(data)
    logit = (
        0.8 * (frame.x0 - 0)
        - 0.3 * (frame.x1 - 1)
        + 0.2 * np.sin(frame.x2)
        + (frame.country == "NG") * 1.5
        - (frame.channel == "pos") * 0.7
    )
    y = (logit + rng.logistic(size=rows) > 0.5).astype(np.int64).to_numpy()
    return frame, y


def pipelines() -> dict[str, Pipeline]:
    def pre() -> ColumnTransformer:
        return ColumnTransformer(
            [
                ("num", StandardScaler(), NUMERIC),
                ("cat", OneHotEncoder(handle_unknown="ignore", sparse_output=False), TEXT),
            ],
            sparse_threshold=0.0,
        )

    return {
        "logistic regression (scaler + one-hot)": Pipeline(
            [("pre", pre()), ("estimator", LogisticRegression(max_iter=1000))]
        ),
        "random forest (100 trees, depth 8)": Pipeline(
            [
                ("pre", pre()),
                ("estimator", RandomForestClassifier(n_estimators=100, max_depth=8, random_state=0, n_jobs=2)),
            ]
        ),
        "gradient boosting (100 trees, depth 3)": Pipeline(
            [("pre", pre()), ("estimator", GradientBoostingClassifier(n_estimators=100, max_depth=3, random_state=0))]
        ),
    }


def compile_bigml(pipe: Pipeline, parquet: Path) -> str:
    source = exp.select("*").from_(exp.Anonymous(this="read_parquet", expressions=[exp.Literal.string(str(parquet))]))
    return compile_pipeline(pipe, source, FEATURES, "classification", ["row_id"], "duckdb").sql("duckdb")


def compile_orbital(pipe: Pipeline) -> str:
    import orbital
    import orbital.types as ot

    features = {c: ot.DoubleColumnType() for c in NUMERIC} | {c: ot.StringColumnType() for c in TEXT}
    parsed = orbital.parse_pipeline(pipe, features=features)
    return orbital.export_sql("scored", parsed, dialect="duckdb")


def timed(fn) -> tuple[float, object]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def run_sql(sql: str, out: Path, parquet: Path | None = None) -> None:
    con = duckdb.connect()
    if parquet is not None:  # orbital's query reads a table name: a view over the same Parquet file
        con.execute(f"CREATE VIEW scored AS SELECT * FROM read_parquet('{parquet}')")
    con.execute(f"COPY ({sql}) TO '{out}' (FORMAT parquet)")
    con.close()


def run_python(pipe: Pipeline, parquet: Path, out: Path) -> None:
    frame = pq.read_table(parquet).to_pandas()
    # each output computed once, as the SQL does: the probabilities, then the class of the largest
    proba = pipe.predict_proba(frame[FEATURES])
    pred = pipe.classes_[np.argmax(proba, axis=1)]
    table = pa.table(
        {
            "row_id": frame["row_id"].to_numpy(),
            "prediction": pred,
            **{f"probability__{c}": proba[:, i] for i, c in enumerate(pipe.classes_)},
        }
    )
    pq.write_table(table, out)


def differences(path: Path, truth: pa.Table, label: str, prob: str) -> tuple[float, int]:
    got = pq.read_table(path).to_pandas()
    if "row_id" in got:
        got = got.sort_values("row_id").reset_index(drop=True)
    want = truth.to_pandas()
    diff = float(np.max(np.abs(got[prob.format(1)].to_numpy(np.float64) - want["probability__1"].to_numpy())))
    wrong = int((got[label].to_numpy().astype(np.int64) != want["prediction"].to_numpy()).sum())
    return diff, wrong


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--train-rows", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1, help="Untimed rounds before the timed ones.")
    parser.add_argument("--skip-orbital", action="store_true")
    parser.add_argument(
        "--only",
        default="",
        help="Run only the pipelines whose name contains one of these comma-separated texts (e.g. forest,logistic).",
    )
    args = parser.parse_args()
    DATA.mkdir(parents=True, exist_ok=True)
    frame, y = generate(args.rows)
    parquet = DATA / "rows.parquet"
    pq.write_table(
        pa.Table.from_pandas(frame, preserve_index=False), parquet, row_group_size=100_000
    )  # row groups let DuckDB use every core
    train = slice(0, min(args.train_rows, args.rows))
    only = f" --only {args.only}" if args.only else ""
    print(f"## Run of {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}\n")
    print(
        f"{args.rows:,} rows scored (8 numbers, 2 categories), trained on the first {train.stop:,}; "
        f"median of {args.runs} interleaved run(s) after {args.warmup} warm-up round(s); Parquet in, Parquet out."
    )
    print(
        f"{platform.machine()}, {len(__import__('os').sched_getaffinity(0))} cores, "
        f"Python {platform.python_version()}, scikit-learn {sklearn.__version__}, "
        f"duckdb {duckdb.__version__}, orbital 0.6."
    )
    print(
        f"Reproduce: `.venv/bin/python benchmarks/bench_scoring.py --rows {args.rows} --runs {args.runs} "
        f"--warmup {args.warmup}{only}`\n"
    )
    print(
        "| pipeline | contender | compile (s) | SQL size (KB) | run (s) "
        "| max abs diff of P(class 1) vs sklearn | rows with another class |"
    )
    print("|---|---|---|---|---|---|---|")
    for name, pipe in pipelines().items():
        if args.only and not any(part in name for part in args.only.split(",")):
            continue
        pipe.fit(frame.iloc[train][FEATURES], y[train])
        truth_path = DATA / "sklearn.parquet"
        contenders = {}
        compile_s, sql = timed(lambda pipe=pipe: compile_bigml(pipe, parquet))
        contenders["bigml_fs (DuckDB)"] = (
            compile_s,
            len(sql),
            lambda sql=sql: run_sql(sql, DATA / "bigml.parquet"),
            DATA / "bigml.parquet",
            ("prediction", "probability__{}"),
        )
        if not args.skip_orbital:
            try:
                # imported before its compile is timed, as bigml_fs is imported already
                import orbital.types  # noqa: F401

                compile_s, osql = timed(lambda pipe=pipe: compile_orbital(pipe))
                contenders["orbital 0.6 (DuckDB)"] = (
                    compile_s,
                    len(osql),
                    lambda osql=osql: run_sql(osql, DATA / "orbital.parquet", parquet),
                    DATA / "orbital.parquet",
                    ("output_label", "output_probability.{}"),
                )
            except Exception as exc:
                print(f"| {name} | orbital 0.6 | failed: {type(exc).__name__}: {str(exc)[:80]} | | | | |")
        contenders["scikit-learn (Python)"] = (
            None,
            None,
            lambda pipe=pipe, truth_path=truth_path: run_python(pipe, parquet, truth_path),
            truth_path,
            ("prediction", "probability__{}"),
        )
        times: dict[str, list[float]] = {k: [] for k in contenders}
        for run in range(args.warmup + args.runs):  # the first rounds are the warm-up
            for key, (_, _, fn, _, _) in contenders.items():
                seconds, _ = timed(fn)
                if run >= args.warmup:
                    times[key].append(seconds)
        truth = pq.read_table(truth_path)
        for key, (compile_s, size, _, path, (label, prob)) in contenders.items():
            diff, wrong = differences(path, truth, label, prob)
            comp = "" if compile_s is None else f"{compile_s:.3f}"
            kb = "" if size is None else f"{size / 1024:,.0f}"
            print(
                f"| {name} | {key} | {comp} | {kb} | {statistics.median(times[key]):.2f} | {diff:.2e} | {wrong:,} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
