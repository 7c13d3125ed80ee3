"""The same training-set cases on PostgreSQL and Spark as on DuckDB.

The hand-made cases of test_training_set.py and the oracle property test of
test_pit_oracle.py run here unchanged with an engine block written into each
test project (tests/helpers.ENGINE); the example project's training sets are
compared value by value with DuckDB's. PostgreSQL runs every case on the real
server (its own schema per test); Spark runs a subset on one shared JVM
(each engine opens its own session on it) to keep the suite fast.
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import pyarrow as pa
import pytest
import yaml
from hypothesis import HealthCheck, given, settings

from bigml_fs import Project
from bigml_fs.errors import BigmlError, EngineError
from tests import helpers
from tests.test_pit_oracle import SPINES, TTLS, WINDOWS, check_against_oracle, events_strategy, oracle_examples
from tests.test_training_set import (  # noqa: F401 - collected here again, on each engine
    project,
    test_a_null_spine_time_gives_null_features,
    test_ambiguous_ties_name_view_keys_and_time,
    test_bad_spines_are_clear_errors,
    test_csv_keys_keep_their_text_until_cast,
    test_csv_spine_empty_key_is_null,
    test_csv_spine_with_per_row_offsets_and_string_keys,
    test_latest_value_rules,
    test_mapped_entity_keys_use_the_mapped_spine_columns,
    test_multi_key_entities_match_on_every_key,
    test_naive_date_and_nanosecond_spine_times,
    test_output_file_matches_the_arrow_result,
    test_shared_feature_names_become_view__feature,
    test_spine_keys_are_cast_to_the_source_type,
    test_spine_order_columns_and_duplicates_are_kept,
    test_sql_and_expressions_are_transpiled_from_the_project_dialect,
    test_static_view_with_duplicate_keys_is_an_error,
    test_windows_exclude_t_and_include_t_minus_w,
)

# Spark starts slowly and runs each small query in about a second: these cases cover its plan's rules
SPARK_CASES = {
    "test_latest_value_rules",
    "test_windows_exclude_t_and_include_t_minus_w",
    "test_spine_order_columns_and_duplicates_are_kept",
    "test_mapped_entity_keys_use_the_mapped_spine_columns",
    "test_csv_spine_with_per_row_offsets_and_string_keys",
    "test_naive_date_and_nanosecond_spine_times",
    "test_ambiguous_ties_name_view_keys_and_time",
    "test_static_view_with_duplicate_keys_is_an_error",
    "test_output_file_matches_the_arrow_result",
    "test_engine_matches_oracle_spark",
    "test_example_project_equals_duckdb",
    "test_csv_empty_fields_are_null_on_every_engine",
}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "engine_name" not in metafunc.fixturenames:
        return
    name = metafunc.definition.name
    params = []
    if not name.endswith("_spark"):
        params.append(pytest.param("postgres", id="postgres"))
    if name in SPARK_CASES or name.endswith("_spark"):
        params.append(pytest.param("spark", id="spark", marks=pytest.mark.spark))
    metafunc.parametrize("engine_name", params)


@pytest.fixture(scope="session")
def spark_jvm():
    """Start Spark once per test run; every SparkEngine then opens a session on the same JVM."""
    from bigml_fs.engines.spark_engine import SparkEngine

    engine = SparkEngine("local[2]")
    yield
    engine.close()


@pytest.fixture
def engine_block(request: pytest.FixtureRequest, engine_name: str) -> dict:
    if engine_name == "postgres":
        info, schema = request.getfixturevalue("postgres_schema")
        return {
            "type": "postgres",
            "host": info["host"],
            "port": info["port"],
            "database": info["database"],
            "user": info["user"],
            "schema": schema,
        }
    request.getfixturevalue("spark_jvm")
    return {"type": "spark", "master": "local[2]", "conf": {"spark.sql.shuffle.partitions": "2"}}


@pytest.fixture(autouse=True)
def _on_engine(engine_block: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(helpers, "ENGINE", engine_block)


def _oracle_test(max_examples: int):
    @settings(
        max_examples=max_examples,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(raw=events_strategy, spine_raw=SPINES, ttl=TTLS, window=WINDOWS)
    @oracle_examples
    def run(tmp_path_factory, engine_block, raw, spine_raw, ttl, window):
        check_against_oracle(tmp_path_factory.mktemp("prop"), raw, spine_raw, ttl, window)

    return run


test_engine_matches_oracle = _oracle_test(40)
test_engine_matches_oracle_spark = _oracle_test(1)  # plus the 3 hand-picked examples; Spark takes seconds per case


def _example_on(engine_block: dict, source: Path, target: Path) -> Path:
    shutil.copytree(source, target)
    spec = yaml.safe_load((target / "project.yaml").read_text())
    spec["engine"] = engine_block
    (target / "project.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    return target


def _assert_same(expected: pa.Table, actual: pa.Table) -> None:
    assert actual.column_names == expected.column_names
    assert actual.num_rows == expected.num_rows
    for name in expected.column_names:
        for i, (a, b) in enumerate(
            zip(expected.column(name).to_pylist(), actual.column(name).to_pylist(), strict=True)
        ):
            if isinstance(a, float) and isinstance(b, float):
                assert abs(a - b) <= 1e-9 * max(abs(a), abs(b)) + 1e-12 or (math.isnan(a) and math.isnan(b)), (
                    name,
                    i,
                    a,
                    b,
                )
            else:
                assert a == b, (name, i, a, b)


def test_example_project_equals_duckdb(example_project: Path, engine_block: dict, tmp_path: Path):
    models = ["fraud_detector", "amount_regressor"]
    with Project.load(example_project, in_memory=True) as duck:
        expected = {m: duck.training_set(model=m) for m in models}
    with Project.load(_example_on(engine_block, example_project, tmp_path / "p")) as other:
        for model in models:
            _assert_same(expected[model], other.training_set(model=model))
        assert "LATERAL" in other.compile("customer_spend", dialect="postgres")
        assert "IGNORE NULLS" in other.compile("customer_spend", dialect="spark") or "LAST(" in other.compile(
            "customer_spend", dialect="spark"
        )


def test_postgres_reloads_a_source_only_when_its_file_changes(tmp_path: Path, engine_block: dict):
    table = pa.table({"user_id": pa.array([1], type=pa.int64()), "plan": ["free"]})
    spec = {
        "name": "t",
        "entities": [{"name": "user", "join_keys": ["user_id"]}],
        "sources": [{"name": "users", "path": "data/users.parquet"}],
    }
    root = helpers.write_project(
        tmp_path / "p",
        spec,
        "feature_views:\n  - {name: u, entities: [user], source: users, features: [{name: plan}]}\n",
        tables={"users": table},
    )
    spine = pa.table({"user_id": pa.array([1], type=pa.int64()), "event_timestamp": helpers.micros_to_ts([0])})
    with helpers.load(root) as p:
        assert p.training_set(features=["u:plan"], spine=spine).column("plan").to_pylist() == ["free"]
        loaded_at = (
            p.engine.to_arrow(f'SELECT loaded_at FROM "{engine_block["schema"]}".bigml_loaded_sources')
            .column(0)
            .to_pylist()
        )
    with helpers.load(root) as p:  # same file: not loaded again
        p.validate()
        assert (
            p.engine.to_arrow(f'SELECT loaded_at FROM "{engine_block["schema"]}".bigml_loaded_sources')
            .column(0)
            .to_pylist()
            == loaded_at
        )
    import pyarrow.parquet as pq

    pq.write_table(
        pa.table({"user_id": pa.array([1], type=pa.int64()), "plan": ["pro"]}), root / "data" / "users.parquet"
    )
    with helpers.load(root) as p:
        assert p.training_set(features=["u:plan"], spine=spine).column("plan").to_pylist() == ["pro"]


def test_postgres_errors_name_host_and_port_never_the_password(
    tmp_path: Path, engine_block: dict, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("BIGML_TEST_PGPASSWORD", "s3cret-value")
    block = {**engine_block, "port": 1, "password_env": "BIGML_TEST_PGPASSWORD"}
    root = helpers.write_project(tmp_path / "p", {"name": "t", "engine": block, "entities": [], "sources": []})
    with pytest.raises(EngineError) as info, Project.load(root) as p:
        p.validate()
    assert "127.0.0.1:1" in str(info.value) and "s3cret" not in str(info.value)
    monkeypatch.delenv("BIGML_TEST_PGPASSWORD")
    with pytest.raises(BigmlError, match="BIGML_TEST_PGPASSWORD"), Project.load(root) as p:
        p.validate()


def test_parquet_spine_keeps_its_columns(tmp_path: Path, engine_block: dict):
    from tests.test_engines_errors import check_parquet_spine_keeps_its_columns

    check_parquet_spine_keeps_its_columns(tmp_path)


def test_postgres_table_sources_are_read_in_place(tmp_path: Path, engine_block: dict):
    import psycopg

    schema = engine_block["schema"]
    with psycopg.connect(
        host=engine_block["host"],
        port=engine_block["port"],
        dbname=engine_block["database"],
        user=engine_block["user"],
        autocommit=True,
    ) as con:
        con.execute(f'CREATE TABLE "{schema}".clicks (user_id bigint, page text, ts timestamptz)')
        con.execute(
            f"""INSERT INTO "{schema}".clicks VALUES (1, 'a', '2024-05-01 00:00:00+00'), """
            "(1, 'b', '2024-05-01 00:01:00+00'), (2, 'x', '2024-05-01 00:00:00+00')"
        )
    spec = {
        "name": "t",
        "entities": [{"name": "user", "join_keys": ["user_id"]}],
        "sources": [{"name": "clicks", "table": f"{schema}.clicks", "timestamp": "ts"}],
    }
    features = (
        "feature_views:\n  - {name: c, entities: [user], source: clicks, "
        "features: [{name: page}, {name: n_1h, agg: count, window: 1h}]}\n"
    )
    root = helpers.write_project(tmp_path / "p", spec, features)
    t0 = 1714521600 * 1_000_000
    spine = pa.table(
        {
            "user_id": pa.array([1, 1, 2], type=pa.int64()),
            "event_timestamp": helpers.micros_to_ts([t0 + 30_000_000, t0 + 60_000_000, t0]),
        }
    )
    with helpers.load(root) as p:
        out = p.training_set(features=["c:*"], spine=spine).to_pylist()
        tables = (
            p.engine.to_arrow(
                f"SELECT count(*) AS n FROM pg_tables WHERE schemaname = '{schema}' AND tablename LIKE 'bigml_src_%'"
            )
            .column("n")
            .to_pylist()
        )
    assert [(r["page"], r["n_1h"]) for r in out] == [("a", 1), ("b", 1), ("x", 0)]
    assert tables == [0]  # nothing copied: the table is read where it is


def test_postgres_probes_an_indexed_copy_of_a_sql_view_model(tmp_path: Path, engine_block: dict):
    """A LATERAL probe into a view would run the view once per spine row: the plan reads an indexed temp copy
    instead."""
    t0 = 1714521600 * 1_000_000
    events = pa.table(
        {
            "user_id": pa.array([1, 1, 2, 2, 3], type=pa.int64()),
            "amount": [5.0, 7.0, 1.0, 2.0, 9.0],
            "ts": helpers.micros_to_ts([t0, t0 + 60_000_000, t0, t0 + 120_000_000, t0 + 10_000_000]),
        }
    )
    spec = {
        "name": "t",
        "entities": [{"name": "user", "join_keys": ["user_id"]}],
        "sources": [{"name": "events", "path": "data/events.parquet", "timestamp": "ts"}],
    }
    features = (
        "feature_views:\n  - {name: v, entities: [user], source: paid, timestamp: ts, ttl: 1d, "
        "features: [{name: doubled}, {name: n_1h, agg: count, window: 1h}]}\n"
    )
    sql = {"paid": "SELECT user_id, amount * 2 AS doubled, ts FROM {{ source('events') }} WHERE amount > 1"}
    spine = pa.table(
        {
            "user_id": pa.array([1, 2, 3, 1], type=pa.int64()),
            "event_timestamp": helpers.micros_to_ts([t0 + 90_000_000, t0 + 60_000_000, t0, t0 + 30_000_000]),
        }
    )
    duck_root = tmp_path / "duck"
    with Project.load(
        helpers.write_project(
            duck_root, {**spec, "engine": {"type": "duckdb"}}, features, sql=sql, tables={"events": events}
        ),
        in_memory=True,
    ) as duck:
        expected = duck.training_set(features=["v:*"], spine=spine)
    with helpers.load(helpers.write_project(tmp_path / "pg", spec, features, sql=sql, tables={"events": events})) as p:
        _assert_same(expected, p.training_set(features=["v:*"], spine=spine))
        copies = p.engine.rows(
            "SELECT indexname FROM pg_indexes WHERE schemaname = "
            "(SELECT nspname FROM pg_namespace WHERE oid = pg_my_temp_schema()) AND tablename LIKE 'bigml_lookup_%'"
        )
    assert len(copies) == 1  # the view model was copied once and indexed on (user_id, ts)


def test_csv_empty_fields_are_null_on_every_engine(tmp_path: Path, engine_block: dict):
    """Issue 14: an empty CSV field is NULL in text, number and time columns on every engine (PostgreSQL read
    ``128,,Z12`` as ''). DuckDB and Spark also read a quoted ``""`` as NULL, so PostgreSQL does too; ``NA`` and
    ``NULL`` stay text, as DuckDB and Spark read them."""
    csv = (
        "user_id,signup_channel,score,seen_at,ts\n"
        "126,web,1.5,2024-04-30 10:00:00Z,2024-05-01 00:00:00Z\n"
        '127,"",2.5,2024-04-30 11:00:00Z,2024-05-01 00:00:00Z\n'
        "128,,,,2024-05-01 00:00:00Z\n"
        "129,NA,3.5,2024-04-30 12:00:00Z,2024-05-01 00:00:00Z\n"
        "130,NULL,4.5,2024-04-30 13:00:00Z,2024-05-01 00:00:00Z\n"
    )
    spec = {
        "name": "t",
        "entities": [{"name": "user", "join_keys": ["user_id"]}],
        "sources": [{"name": "signups", "path": "data/signups.csv", "timestamp": "ts"}],
    }
    features = (
        "feature_views:\n  - {name: s, entities: [user], source: signups, "
        "features: [{name: signup_channel}, {name: score}, {name: seen_at}]}\n"
    )
    t0 = 1714521600 * 1_000_000
    spine = pa.table(
        {"user_id": pa.array(range(126, 131), type=pa.int64()), "event_timestamp": helpers.micros_to_ts([t0] * 5)}
    )
    tables = {}
    for name, block in (("duck", {"type": "duckdb"}), ("other", engine_block)):
        root = helpers.write_project(tmp_path / name, {**spec, "engine": block}, features)
        (root / "data").mkdir()
        (root / "data" / "signups.csv").write_text(csv)
        with helpers.load(root) as p:
            tables[name] = p.training_set(features=["s:*"], spine=spine)
    out = tables["other"].to_pylist()
    assert [r["signup_channel"] for r in out] == ["web", None, None, "NA", "NULL"]
    assert [r["score"] for r in out] == [1.5, 2.5, None, 3.5, 4.5]
    assert [r["seen_at"] is None for r in out] == [False, False, True, False, False]
    _assert_same(tables["duck"], tables["other"])
