"""Engine set-up errors and per-dialect plans, without starting a server or a JVM."""

from __future__ import annotations

import sys

import pytest
import sqlglot

from bigml_fs.errors import EngineError
from tests.helpers import load


def test_spark_without_java_says_so(monkeypatch: pytest.MonkeyPatch):
    from bigml_fs.engines import spark_engine

    monkeypatch.setattr(spark_engine.shutil, "which", lambda name: None)
    monkeypatch.delenv("JAVA_HOME", raising=False)
    with pytest.raises(EngineError, match="needs Java"):
        spark_engine.SparkEngine("local[1]")


def test_spark_connect_without_its_client_names_the_extra(monkeypatch: pytest.MonkeyPatch):
    from bigml_fs.engines import spark_engine

    monkeypatch.setitem(sys.modules, "grpc", None)
    with pytest.raises(EngineError, match=r"pyspark\[connect\]"):
        spark_engine.SparkEngine("sc://127.0.0.1:15002")


@pytest.mark.parametrize(
    ("module", "engine", "extra"), [("psycopg", "postgres", "postgres"), ("pyspark.sql", "spark", "spark")]
)
def test_a_missing_driver_names_the_extra(monkeypatch: pytest.MonkeyPatch, module: str, engine: str, extra: str):
    monkeypatch.setitem(sys.modules, module, None)
    if engine == "postgres":
        from bigml_fs.engines.postgres_engine import PostgresEngine

        with pytest.raises(EngineError, match=rf"pip install 'bigml-fs\[{extra}\]'"):
            PostgresEngine("127.0.0.1", 5432, "test", "postgres", None, "public")
    else:
        from bigml_fs.engines.spark_engine import SparkEngine

        with pytest.raises(EngineError, match=rf"pip install 'bigml-fs\[{extra}\]'"):
            SparkEngine("local[1]")


@pytest.mark.parametrize(
    ("dialect", "marks"),
    [
        ("duckdb", ["ASOF LEFT JOIN"]),
        ("postgres", ["LEFT JOIN LATERAL", "LIMIT 1", "EXTRACT(EPOCH"]),
        ("spark", ["LAST(", "IGNORE NULLS", "COLLECT_SET", "UNIX_MICROS"]),
    ],
)
def test_compile_prints_the_plan_of_each_engine(example_project, dialect: str, marks: list[str]):
    with load(example_project) as project:
        sql = project.compile("customer_spend", dialect=dialect)
    for mark in marks:
        assert mark in sql, (dialect, mark)
    assert "planned for the" not in sql  # its own plan, not DuckDB's transpiled
    sqlglot.parse_one(sql, read=dialect)  # valid in that dialect
    if dialect != "duckdb":
        assert (
            "ASOF" not in sql and "ARG_MIN" not in sql.upper() and "HASH(" not in sql.upper().replace("XXHASH64(", "")
        )


def check_parquet_spine_keeps_its_columns(tmp_path) -> None:
    """A Parquet spine file comes back with exactly its own columns, in its row order, plus the features."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from tests.helpers import micros_to_ts, write_project

    users = pa.table({"user_id": pa.array([1, 2], type=pa.int64()), "plan": ["free", "pro"]})
    spec = {
        "name": "t",
        "entities": [{"name": "user", "join_keys": ["user_id"]}],
        "sources": [{"name": "users", "path": "data/users.parquet"}],
    }
    root = write_project(
        tmp_path / "p",
        spec,
        "feature_views:\n  - {name: u, entities: [user], source: users, features: [{name: plan}]}\n",
        tables={"users": users},
    )
    spine = pa.table(
        {
            "note": ["b", "a", "c"],
            "user_id": pa.array([2, 1, 2], type=pa.int64()),
            "event_timestamp": micros_to_ts([0, 0, 0]),
        }
    )
    pq.write_table(spine, tmp_path / "spine.parquet")
    with load(root) as project:
        out = project.training_set(features=["u:plan"], spine=tmp_path / "spine.parquet")
    assert out.column_names == ["note", "user_id", "event_timestamp", "plan"]
    assert out.column("note").to_pylist() == ["b", "a", "c"] and out.column("plan").to_pylist() == [
        "pro",
        "free",
        "pro",
    ]


def test_parquet_spine_keeps_its_columns_on_duckdb(tmp_path):
    check_parquet_spine_keeps_its_columns(tmp_path)
