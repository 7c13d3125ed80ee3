"""``train``, ``predict`` and ``predict --in-warehouse`` on PostgreSQL and Spark (issue 14).

The example project with only its engine block changed trains a small
classifier: its training metrics equal DuckDB's training of the same model (the
training sets are equal), and the engine's in-warehouse scores equal Python's.
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from bigml_fs import Project

MODEL = "engine_check"
MODEL_YAML = f"""models:
  - name: {MODEL}
    task: classification
    labels: {{source: labeled_payments, target: is_fraud, timestamp: ts}}
    features: [customer_profile:credit_limit, customer_profile:segment, customer_spend:amount_sum_7d,
               customer_spend:txn_count_1h, merchant_profile:risk_tier]
    estimator: logistic_regression
    preprocessing: {{impute: median, scale: standard, encode: onehot}}
    split: {{by: time, test_fraction: 0.2}}
    class_weight: balanced
    metrics: [roc_auc, average_precision, f1]
"""
END = "2024-04-01T00:00:00Z"


def _copy(source: Path, target: Path, engine_block: dict | None) -> Path:
    shutil.copytree(source, target, ignore=shutil.ignore_patterns(".bigml"))
    (target / "models" / f"{MODEL}.yaml").write_text(MODEL_YAML)
    if engine_block is not None:
        spec = yaml.safe_load((target / "project.yaml").read_text())
        spec["engine"] = engine_block
        (target / "project.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    return target


def _spine(root: Path) -> pa.Table:
    t = pq.read_table(root / "data" / "transactions.parquet").slice(100, 300)
    return t.select(["txn_id", "customer_id", "card_id", "merchant_id", "country", "ts"])


def _numbers(metrics: Any, path: str = "") -> dict[str, Any]:
    """The metrics flattened to path -> leaf value."""
    if isinstance(metrics, dict):
        return {k: v for key, value in metrics.items() for k, v in _numbers(value, f"{path}.{key}").items()}
    if isinstance(metrics, list):
        return {k: v for i, value in enumerate(metrics) for k, v in _numbers(value, f"{path}[{i}]").items()}
    return {path: metrics}


def _assert_metrics_equal(expected: dict, actual: dict) -> None:
    want, got = _numbers(expected), _numbers(actual)
    assert sorted(got) == sorted(want)
    floats = 0
    for key, a in want.items():
        b = got[key]
        if isinstance(a, float) and isinstance(b, float):
            floats += 1
            same = (math.isnan(a) and math.isnan(b)) or abs(a - b) <= 1e-9 * max(abs(a), abs(b))
            assert same, (key, a, b)
        else:
            assert a == b, (key, a, b)
    assert floats >= 3, want  # roc_auc, average_precision and f1 at least


@pytest.fixture(scope="module")
def duckdb_trained(example_project: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = _copy(example_project, tmp_path_factory.mktemp("duck-train") / "p", None)
    with Project.load(root) as project:
        return project.train(MODEL, end=END).metrics


def _check_engine(duckdb_trained: dict, root: Path) -> None:
    spine = _spine(root)
    with Project.load(root) as project:
        result = project.train(MODEL, end=END)
        python = project.predict(MODEL, spine)
        engine = project.predict(MODEL, spine, in_warehouse=True)
    _assert_metrics_equal(duckdb_trained, result.metrics)
    assert python.num_rows == engine.num_rows == spine.num_rows
    assert python.column_names == engine.column_names
    scores = python.column_names[spine.num_columns :]
    assert "prediction" in scores and "probability__1" in scores, scores
    assert python.select(spine.column_names).equals(engine.select(spine.column_names))
    assert python.column("prediction").to_pylist() == engine.column("prediction").to_pylist()
    for column in scores:
        if column.startswith("probability__"):
            a, b = python.column(column).to_numpy(), engine.column(column).to_numpy()
            assert len(set(a.round(6))) > 10, column  # scores that vary, not a constant model
            np.testing.assert_allclose(b, a, atol=1e-6, rtol=0, err_msg=column)


def test_postgres_train_and_predict_in_warehouse(
    duckdb_trained: dict, example_project: Path, postgres_schema, tmp_path: Path
):
    info, schema = postgres_schema
    block = {
        "type": "postgres",
        "host": info["host"],
        "port": info["port"],
        "database": info["database"],
        "user": info["user"],
        "schema": schema,
    }
    _check_engine(duckdb_trained, _copy(example_project, tmp_path / "p", block))


@pytest.mark.spark
@pytest.mark.slow
def test_spark_train_and_predict_in_warehouse(duckdb_trained: dict, example_project: Path, tmp_path: Path):
    # the same local[2] block as the other engine tests: SparkEngine reuses the process's one SparkContext
    block = {"type": "spark", "master": "local[2]", "conf": {"spark.sql.shuffle.partitions": "2"}}
    _check_engine(duckdb_trained, _copy(example_project, tmp_path / "p", block))
