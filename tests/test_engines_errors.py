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


@pytest.mark.parametrize(("module", "engine", "extra"), [("psycopg", "postgres", "postgres"), ("pyspark.sql", "spark", "spark")])
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
    [("duckdb", ["ASOF LEFT JOIN"]), ("postgres", ["LEFT JOIN LATERAL", "LIMIT 1", "EXTRACT(EPOCH"]), ("spark", ["LAST(", "IGNORE NULLS", "COLLECT_SET", "UNIX_MICROS"])],
)
def test_compile_prints_the_plan_of_each_engine(example_project, dialect: str, marks: list[str]):
    with load(example_project) as project:
        sql = project.compile("customer_spend", dialect=dialect)
    for mark in marks:
        assert mark in sql, (dialect, mark)
    assert "planned for the" not in sql  # its own plan, not DuckDB's transpiled
    sqlglot.parse_one(sql, read=dialect)  # valid in that dialect
    if dialect != "duckdb":
        assert "ASOF" not in sql and "ARG_MIN" not in sql.upper() and "HASH(" not in sql.upper().replace("XXHASH64(", "")
