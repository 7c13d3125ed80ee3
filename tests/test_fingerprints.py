"""Fingerprints do not depend on the engine: the same project on DuckDB and PostgreSQL has the same ones."""

from __future__ import annotations

import shutil
from pathlib import Path

import pyarrow as pa
import pytest
import yaml

from bigml_fs import Project
from bigml_fs.core.types import logical_type
from tests.helpers import write_project


def copy_with_engine(source: Path, target: Path, engine: dict | None) -> Path:
    shutil.copytree(source, target)
    if engine is not None:
        spec = yaml.safe_load((target / "project.yaml").read_text())
        spec["engine"] = engine
        (target / "project.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    return target


def fingerprints(root: Path) -> dict[str, str]:
    """Every view's and every sql model's fingerprint."""
    with Project.load(root, in_memory=True) as project:
        out = {f"view:{name}": view.fingerprint for name, view in project.catalog.views.items()}
        models: dict[str, str] = {}
        for name, model in project.sql_models.items():
            models[name] = model.fingerprint(models)
    return {**out, **{f"sql:{k}": v for k, v in models.items()}}


def test_duckdb_and_postgres_give_equal_fingerprints_and_changes_still_show(
    example_project: Path, tmp_path: Path, postgres_schema
):
    info, schema = postgres_schema
    engine = {
        "type": "postgres",
        "host": info["host"],
        "port": info["port"],
        "database": info["database"],
        "user": info["user"],
        "schema": schema,
    }
    duck = fingerprints(copy_with_engine(example_project, tmp_path / "duck", None))
    pg_root = copy_with_engine(example_project, tmp_path / "pg", engine)
    assert fingerprints(pg_root) == duck
    assert len([k for k in duck if k.startswith("sql:")]) == 4 and len(duck) > 4

    # a feature definition changes its view only
    views = pg_root / "features" / "customers.yaml"
    text = views.read_text()
    assert "window: 7d" in text
    views.write_text(text.replace("window: 7d", "window: 8d", 1))
    changed = fingerprints(pg_root)
    assert [k for k in duck if changed[k] != duck[k]] and all(
        k.startswith("view:") for k in duck if changed[k] != duck[k]
    )
    views.write_text(text)

    # a sql model's SQL changes it, the models over it and the views over them
    payments = pg_root / "sql" / "payments.sql"
    payments.write_text(
        payments.read_text().replace("amount >= {{ var('high_amount') }}", "amount > {{ var('high_amount') }}")
    )
    changed = fingerprints(pg_root)
    differ = {k for k in duck if changed[k] != duck[k]}
    assert {
        "sql:payments",
        "sql:customer_daily",
        "sql:labeled_payments",
    } <= differ and "sql:merchant_chargebacks" not in differ
    assert any(k.startswith("view:") for k in differ)


def test_columns_the_engines_type_differently_give_equal_fingerprints(tmp_path: Path, postgres_schema):
    """DuckDB reads these Parquet columns as TINYINT, UINTEGER, TIMESTAMP_NS.

    PostgreSQL loads them as SMALLINT, BIGINT, TIMESTAMP.
    """
    info, schema = postgres_schema
    table = pa.table(
        {
            "user_id": pa.array([1, 2], type=pa.int8()),
            "n": pa.array([1, 2], type=pa.uint32()),
            "ts": pa.array([0, 1_000], type=pa.timestamp("ns")),
        }
    )
    spec = {
        "name": "t",
        "entities": [{"name": "user", "join_keys": ["user_id"]}],
        "sources": [{"name": "events", "path": "data/events.parquet", "timestamp": "ts"}],
    }
    features = "feature_views:\n  - {name: e, entities: [user], source: events, features: [{name: n}]}\n"
    duck = fingerprints(write_project(tmp_path / "duck", spec, features, tables={"events": table}))
    engine = {
        "type": "postgres",
        "host": info["host"],
        "port": info["port"],
        "database": info["database"],
        "user": info["user"],
        "schema": schema,
    }
    with Project.load(
        write_project(tmp_path / "pg", {**spec, "engine": engine}, features, tables={"events": table})
    ) as project:
        assert project.catalog.columns["events"] == {"user_id": "SMALLINT", "n": "BIGINT", "ts": "TIMESTAMP"}
        assert project.catalog.views["e"].fingerprint == duck["view:e"]


@pytest.mark.parametrize(
    ("names", "family"),
    [
        (["TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UBIGINT", "int4"], "integer"),
        (["FLOAT", "REAL"], "float32"),
        (["DOUBLE", "double precision"], "float64"),
        (["DECIMAL(18,3)", "NUMERIC(20, 0)", "DECIMAL"], "decimal"),
        (["VARCHAR", "TEXT", "STRING", "VARCHAR(10)"], "string"),
        (["TIMESTAMP", "TIMESTAMP WITH TIME ZONE", "TIMESTAMPTZ", "TIMESTAMP_NS", "timestamp_ntz"], "timestamp"),
        (["DATE"], "date"),
        (["BOOLEAN"], "boolean"),
        (["BLOB", "BINARY", "BYTEA"], "binary"),
        (["interval"], "INTERVAL"),
    ],
)
def test_engine_type_names_map_to_logical_families(names: list[str], family: str):
    assert {logical_type(n) for n in names} == {family}
