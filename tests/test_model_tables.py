"""sql/ models with config(materialized='table'): real tables, rebuilt only when their signature changes.

The same scenario runs on DuckDB (a warehouse file), PostgreSQL (the real
server, a schema per test) and, smaller, on Spark (the shared test JVM): the
table is a table of the engine, a second command reuses it, a new source file
or new SQL rebuilds it, and a view model over it reads it.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from bigml_fs import Project
from bigml_fs.compiler.sql_models import model_signature
from bigml_fs.errors import DefinitionError
from tests.helpers import micros_to_ts, write_project
from tests.test_engines import spark_jvm  # noqa: F401 - the one JVM of the test run

PROJECT = {
    "name": "t",
    "entities": [{"name": "user", "join_keys": ["user_id"]}],
    "sources": [{"name": "events", "path": "data/events.parquet", "timestamp": "ts"}],
}
SQL = {
    "totals": (
        "{{ config(materialized='table') }}\n"
        "SELECT user_id, sum(amount) AS total FROM {{ source('events') }} GROUP BY user_id\n"
    ),
    "doubled": "SELECT user_id, total * 2 AS total2 FROM {{ ref('totals') }}\n",
}
FEATURES = """
feature_views:
  - {name: tot, entities: [user], source: totals, timestamp: none, features: [{name: total}]}
  - {name: dbl, entities: [user], source: doubled, timestamp: none, features: [{name: total2}]}
"""
SPINE = pa.table(
    {"user_id": pa.array([1, 2], type=pa.int64()), "event_timestamp": micros_to_ts([1_714_521_600_000_000] * 2)}
)


def events(amounts: list[float]) -> pa.Table:
    n = len(amounts)
    return pa.table(
        {
            "user_id": pa.array([1 + i % 2 for i in range(n)], type=pa.int64()),
            "amount": amounts,
            "ts": micros_to_ts([1_714_000_000_000_000 + i for i in range(n)]),
        }
    )


def write_events(root: Path, amounts: list[float]) -> None:
    path = root / "data" / "events.parquet"
    before = path.stat().st_mtime_ns if path.exists() else 0
    pq.write_table(events(amounts), path)
    if path.stat().st_mtime_ns == before:  # a file system with coarse times: make the change visible
        os.utime(path, ns=(before + 1_000_000, before + 1_000_000))


@pytest.fixture(params=["duckdb", "postgres"])
def engine_block(request: pytest.FixtureRequest) -> dict:
    if request.param == "duckdb":
        return {"type": "duckdb", "path": ".bigml/warehouse.duckdb"}
    info, schema = request.getfixturevalue("postgres_schema")
    return {
        "type": "postgres",
        "host": info["host"],
        "port": info["port"],
        "database": info["database"],
        "user": info["user"],
        "schema": schema,
    }


def make(root: Path, engine: dict, sql: dict[str, str] | None = None) -> Path:
    root = write_project(root, {**PROJECT, "engine": engine}, FEATURES, sql=sql or SQL)
    (root / "data").mkdir(exist_ok=True)
    write_events(root, [1.0, 10.0, 2.0, 20.0])
    return root


def totals(root: Path) -> tuple[list, list]:
    with Project.load(root) as project:
        out = project.training_set(features=["tot:total", "dbl:total2"], spine=SPINE)
    return out.column("total").to_pylist(), out.column("total2").to_pylist()


def built_at(root: Path, engine: dict) -> object:
    """When the engine's bookkeeping says the table of 'totals' was last built (after this command resolved the
    project)."""
    with Project.load(root) as project:
        project.validate()
        if engine["type"] == "duckdb":
            rows = project.engine.to_arrow("SELECT built_at FROM bigml_models.__bigml_signatures WHERE name = 'totals'")
        else:
            rows = project.engine.to_arrow(
                f"""SELECT loaded_at FROM "{engine["schema"]}".bigml_loaded_sources WHERE name = 'bigml_model_totals'"""
            )
    assert rows.num_rows == 1
    return rows.column(0)[0].as_py()


def table_kind(root: Path, engine: dict) -> list:
    with Project.load(root) as project:
        project.validate()
        if engine["type"] == "duckdb":
            assert project.catalog.relations["totals"].sql("duckdb") == '"bigml_models"."totals"'
            sql = (
                "SELECT table_type FROM information_schema.tables "
                "WHERE table_schema = 'bigml_models' AND table_name = 'totals'"
            )
        else:
            sql = (
                "SELECT c.relkind::text AS kind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                f"WHERE n.nspname = '{engine['schema']}' AND c.relname = 'bigml_model_totals'"
            )
        return project.engine.to_arrow(sql).column(0).to_pylist()


def test_table_model_is_a_table_reused_until_its_data_or_sql_changes(tmp_path: Path, engine_block: dict):
    root = make(tmp_path / "p", engine_block)
    # (a) a real table of the engine, (e) the view model over it reads it
    assert totals(root) == ([3.0, 30.0], [6.0, 60.0])
    assert table_kind(root, engine_block) == (["BASE TABLE"] if engine_block["type"] == "duckdb" else ["r"])
    first = built_at(root, engine_block)
    # (b) another command, same files and SQL: the table is not rebuilt
    time.sleep(0.01)
    assert totals(root) == ([3.0, 30.0], [6.0, 60.0])
    assert built_at(root, engine_block) == first
    # (c) new values in the source file: rebuilt, and the training set shows them
    write_events(root, [3.0, 30.0, 4.0, 40.0, 5.0])
    assert totals(root) == ([12.0, 70.0], [24.0, 140.0])
    second = built_at(root, engine_block)
    assert second != first
    # (d) new SQL: rebuilt
    (root / "sql" / "totals.sql").write_text(SQL["totals"].replace("sum(amount)", "max(amount)"))
    assert totals(root) == ([5.0, 40.0], [10.0, 80.0])
    assert built_at(root, engine_block) != second


def test_a_table_over_a_database_table_is_rebuilt_every_time(tmp_path: Path):
    import duckdb

    root = tmp_path / "p"
    (root / ".bigml").mkdir(parents=True)
    with duckdb.connect(str(root / ".bigml" / "warehouse.duckdb")) as con:
        con.execute("CREATE TABLE ext AS SELECT 1::BIGINT AS user_id, 7.0::DOUBLE AS amount")
    spec = {**PROJECT, "sources": [{"name": "events", "table": "main.ext"}]}
    write_project(
        root,
        spec,
        (
            "feature_views:\n  - {name: tot, entities: [user], source: totals, timestamp: none, "
            "features: [{name: total}]}\n"
        ),
        sql={"totals": SQL["totals"]},
    )
    engine = {"type": "duckdb"}
    with Project.load(root) as project:
        assert project.training_set(features=["tot:total"], spine=SPINE).column("total").to_pylist() == [7.0, None]
    first = built_at(root, engine)
    time.sleep(0.01)
    assert built_at(root, engine) != first  # its changes cannot be seen: rebuilt by every command


def test_model_signature_follows_fingerprint_data_and_upstream():
    base = model_signature("fp", {"events": "[files]"}, {"up": "sig"})
    assert base == model_signature("fp", {"events": "[files]"}, {"up": "sig"})
    assert base != model_signature("fp2", {"events": "[files]"}, {"up": "sig"})
    assert base != model_signature("fp", {"events": "[other files]"}, {"up": "sig"})
    assert base != model_signature("fp", {"events": "[files]"}, {"up": "sig2"})
    assert model_signature("fp", {"events": None}, {}) is None
    assert model_signature("fp", {}, {"up": None}) is None


def test_materialized_must_be_view_or_table(tmp_path: Path):
    sql = {"totals": SQL["totals"].replace("'table'", "'incremental'")}
    root = make(tmp_path / "p", {"type": "duckdb"}, sql)
    with pytest.raises(DefinitionError) as info, Project.load(root, in_memory=True) as project:
        project.validate()
    assert "sql/totals.sql" in str(info.value) and "must be 'view' or 'table'" in str(info.value)


def test_a_table_the_engine_cannot_build_names_the_model_file(tmp_path: Path):
    sql = {
        "totals": (
            "{{ config(materialized='table') }}\nSELECT user_id, no_such_column AS total FROM {{ source('events') }}\n"
        ),
        "doubled": SQL["doubled"],
    }
    root = make(tmp_path / "p", {"type": "duckdb"}, sql)
    with pytest.raises(DefinitionError) as info, Project.load(root) as project:
        project.validate()
    assert "sql/totals.sql" in str(info.value) and "no_such_column" in str(info.value)


@pytest.mark.spark
def test_spark_table_model_is_parquet_reused_until_the_source_changes(tmp_path: Path, spark_jvm):  # noqa: F811
    engine = {"type": "spark", "master": "local[2]", "conf": {"spark.sql.shuffle.partitions": "2"}}
    root = make(tmp_path / "p", engine, {"totals": SQL["totals"], "doubled": SQL["doubled"]})
    models = root / ".bigml" / "spark-warehouse" / "bigml_models" / "totals"

    def files() -> tuple[list[str], dict[str, int]]:
        with Project.load(root) as project:
            out = project.training_set(features=["tot:total", "dbl:total2"], spine=SPINE)
            inputs = project.engine.spark.table("bigml_model__totals").inputFiles()
        assert all(str(models) in f for f in inputs) and inputs  # (a) the view reads the Parquet Spark wrote
        marks = {p.parent.name: p.stat().st_mtime_ns for p in models.glob("*/_SUCCESS")}
        return out.column("total").to_pylist() + out.column("total2").to_pylist(), marks

    values, marks = files()
    assert values == [3.0, 30.0, 6.0, 60.0] and len(marks) == 1
    assert files() == (values, marks)  # (b) reused: the same directory, not written again
    write_events(root, [3.0, 30.0, 4.0, 40.0, 5.0])
    values, new_marks = files()  # (c) rebuilt into a new directory; the old one is removed
    assert values == [12.0, 70.0, 24.0, 140.0] and len(new_marks) == 1 and new_marks.keys() != marks.keys()
