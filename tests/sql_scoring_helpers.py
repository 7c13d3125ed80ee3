"""Shared helpers for the in-warehouse scoring tests: random data, the scikit-learn oracle, DuckDB runs."""

from __future__ import annotations

from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
from sqlglot import exp

from bigml_fs.scoring.sql import compile_pipeline

NUMERIC = ["n0", "n1", "n2"]
TEXT = ["c0", "c1"]
FEATURES = NUMERIC + TEXT


def make_data(seed: int, rows: int, null_rate: float) -> tuple[pa.Table, pd.DataFrame]:
    """Numbers (some repeated, some null) and text (some null); as Arrow (SQL NULLs) and as the pipeline's DataFrame."""
    rng = np.random.default_rng(seed)
    num = rng.normal(size=(rows, 3)) * np.array([1.0, 10.0, 0.1]) + np.array([0.0, 5.0, -1.0])
    num[:, 1] = np.round(num[:, 1], 1)  # repeated values make ties at thresholds
    num[rng.random((rows, 3)) < null_rate] = np.nan
    text = {c: rng.choice(["a", "b", "c", "d", "é x"][: 3 + i], size=rows).astype(object) for i, c in enumerate(TEXT)}
    for c in TEXT:
        text[c][rng.random(rows) < null_rate] = None
    return to_arrow(num, text), to_frame(num, text)


def to_arrow(num: np.ndarray, text: dict[str, np.ndarray]) -> pa.Table:
    cols: dict[str, Any] = {"row_id": pa.array(np.arange(len(num)), pa.int64())}
    for i, c in enumerate(NUMERIC):
        cols[c] = pa.array(num[:, i], pa.float64(), from_pandas=True)
    for c in TEXT:
        cols[c] = pa.array(list(text[c]), pa.string())
    return pa.table(cols)


def to_frame(num: np.ndarray, text: dict[str, np.ndarray]) -> pd.DataFrame:
    """What training/pipeline.frame() builds: float64 numbers with NaN, object text with NaN for null."""
    data: dict[str, Any] = {c: num[:, i].astype(np.float64) for i, c in enumerate(NUMERIC)}
    for c in TEXT:
        data[c] = np.array([np.nan if v is None else v for v in text[c]], dtype=object)
    return pd.DataFrame(data, columns=FEATURES)


def frame_of(table: pa.Table) -> pd.DataFrame:
    num = np.column_stack([table.column(c).to_numpy(zero_copy_only=False).astype(np.float64) for c in NUMERIC])
    text = {c: np.array(table.column(c).to_pylist(), dtype=object) for c in TEXT}
    return to_frame(num, text)


def add_rows(table: pa.Table, numbers: list[list[float | None]], texts: list[list[str | None]]) -> pa.Table:
    """Append rows (e.g. values exactly at thresholds, unseen categories)."""
    start = table.num_rows
    extra: dict[str, Any] = {"row_id": pa.array(np.arange(start, start + len(numbers)), pa.int64())}
    for i, c in enumerate(NUMERIC):
        extra[c] = pa.array([r[i] for r in numbers], pa.float64())
    for i, c in enumerate(TEXT):
        extra[c] = pa.array([r[i] for r in texts], pa.string())
    return pa.concat_tables([table, pa.table(extra)])


def run_sql(pipeline: Any, table: pa.Table, task: str, features: list[str] = FEATURES) -> tuple[pd.DataFrame, str]:
    query = compile_pipeline(pipeline, exp.to_table("scored"), features, task, ["row_id"])
    sql = query.sql("duckdb")
    con = duckdb.connect()
    con.register("scored", table)
    result = con.sql(sql).df().sort_values("row_id").reset_index(drop=True)
    con.close()
    return result, sql


def expected(pipeline: Any, X: pd.DataFrame, task: str) -> dict[str, np.ndarray]:
    from sklearn.pipeline import Pipeline

    from bigml_fs.training.outputs import score

    if not hasattr(pipeline, "steps"):  # a bare estimator: score it as a one-step pipeline
        pipeline = Pipeline([("estimator", pipeline)])
    return score(pipeline, X, task)


def assert_same(pipeline: Any, table: pa.Table, task: str, features: list[str] = FEATURES) -> pd.DataFrame:
    """The compiled SQL's scores equal scikit-learn's: classes identical, numbers within 1e-6."""
    got, _ = run_sql(pipeline, table, task, features)
    want = expected(pipeline, frame_of(table)[features], task)
    assert list(got.columns) == ["row_id", *want], (list(got.columns), list(want))
    for name, values in want.items():
        col = got[name].to_numpy()
        if name == "prediction" and task != "regression":
            mismatch = np.flatnonzero(np.asarray([a != b for a, b in zip(col, values, strict=True)]))
            assert mismatch.size == 0, (
                f"{name}: {mismatch.size} rows differ, first {mismatch[:5]}: "
                f"sql {col[mismatch[:5]]} sklearn {values[mismatch[:5]]}"
            )
        else:
            diff = np.abs(col.astype(np.float64) - values.astype(np.float64))
            assert np.all(np.isfinite(col.astype(np.float64))), f"{name}: non-finite SQL values"
            assert diff.max() <= 1e-6, f"{name}: max diff {diff.max()} at row {int(diff.argmax())}"
    return got


def threshold_rows(values: dict[int, list[float]]) -> list[list[float | None]]:
    """Rows whose numeric feature i sits exactly at, just below/above, and at the float32 rounding of each threshold."""
    rows: list[list[float | None]] = []
    for i, thresholds in values.items():
        for t in thresholds[:30]:
            for v in (
                t,
                float(np.float32(t)),
                float(np.nextafter(t, np.inf)),
                float(np.nextafter(t, -np.inf)),
                float(np.nextafter(np.float32(t), np.float32(np.inf))),
            ):
                row: list[float | None] = [0.5, 5.0, -1.0]
                row[i] = v
                rows.append(row)
    return rows


def tree_thresholds(trees: list[Any], n_numeric: int = 3) -> dict[int, list[float]]:
    out: dict[int, list[float]] = {i: [] for i in range(n_numeric)}
    for t in trees:
        tree = t.tree_
        for f, thr, left in zip(tree.feature, tree.threshold, tree.children_left, strict=True):
            if left >= 0 and f < n_numeric:
                out[int(f)].append(float(thr))
    return out
