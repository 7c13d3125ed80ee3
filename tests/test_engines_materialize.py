"""``materialize`` of the example project on PostgreSQL (and Spark) equals DuckDB's.

Only the engine block of project.yaml changes (issue 9): the published offline
Parquet tables (every Feast view, every change point) and the online values
must equal the DuckDB run's, value by value.
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from bigml_fs import Project
from bigml_fs.store import state
from bigml_fs.store.naming import feast_parts

END = "2024-04-01T00:00:00Z"


def _copy(source: Path, target: Path, engine_block: dict | None) -> Path:
    shutil.copytree(source, target, ignore=shutil.ignore_patterns(".bigml"))
    if engine_block is not None:
        spec = yaml.safe_load((target / "project.yaml").read_text())
        spec["engine"] = engine_block
        (target / "project.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    return target


def _published(root: Path) -> dict[str, pa.Table]:
    with Project.load(root) as project:
        current = state.offline_root(project.paths).resolve() / state.CURRENT
    return {p.stem: pq.read_table(p) for p in sorted(current.glob("*.parquet"))}


def _same_value(a: object, b: object) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or abs(a - b) <= 1e-9 * max(abs(a), abs(b)) + 1e-12
    return a == b


def _close(a: object, b: object) -> bool:
    """Equal nested JSON-like values, floats within 1e-9 relative."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b, strict=True))
    return _same_value(a, b)


def _assert_same(expected: pa.Table, actual: pa.Table, what: str) -> None:
    assert actual.column_names == expected.column_names, what
    assert actual.num_rows == expected.num_rows, what
    for name in expected.column_names:
        left, right = expected.column(name).to_pylist(), actual.column(name).to_pylist()
        bad = [(i, a, b) for i, (a, b) in enumerate(zip(left, right, strict=True)) if not _same_value(a, b)]
        assert not bad, (what, name, bad[:5])


def _online(root: Path, features: list[str], entities: dict) -> dict:
    with Project.load(root) as project:
        return project.online_features(features, entities).to_dict()


@pytest.fixture(scope="module")
def duckdb_run(example_project: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = _copy(example_project, tmp_path_factory.mktemp("duck") / "p", None)
    with Project.load(root) as project:
        project.materialize(end=END)
    return root


def _check_equals_duckdb(duckdb_run: Path, root: Path, first_end: str | None = None) -> None:
    """Materialize ``root`` at END (after a run at ``first_end``: incremental) and compare with DuckDB's full run."""
    with Project.load(root) as project:
        if first_end is not None:
            project.materialize(end=first_end)
        report = project.materialize(end=END)
        assert report.ok
        if first_end is not None:
            assert "update" in {v.action for v in report.views}, [(v.view, v.action, v.reason) for v in report.views]
    expected, actual = _published(duckdb_run), _published(root)
    assert sorted(actual) == sorted(expected) and expected
    for name, table in expected.items():
        assert table.num_rows > 0, name
        _assert_same(table, actual[name], name)
    with Project.load(duckdb_run) as project:
        requests = []
        for view in project.catalog.views.values():
            table = expected[feast_parts(view)[0].name]
            entities = {k: table.column(k).to_pylist()[:: max(1, table.num_rows // 15)] for k in view.keys}
            requests.append(([f"{view.name}:{f.name}" for f in view.spec.features], entities))
    present = 0  # latest values past their ttl (checked against now) read as null on both engines
    for features, entities in requests:
        online = _online(root, features, entities)
        reference = _online(duckdb_run, features, entities)
        assert _close(online, reference), (features, online, reference)
        present += sum(v is not None for result in online["results"][len(entities) :] for v in result["values"])
    assert present > 0


def test_postgres_materialize_equals_duckdb(duckdb_run: Path, postgres_schema, tmp_path: Path):
    info, schema = postgres_schema
    block = {
        "type": "postgres",
        "host": info["host"],
        "port": info["port"],
        "database": info["database"],
        "user": info["user"],
        "schema": schema,
    }
    # a first run at an earlier end, so the second is incremental: the previous Parquet rows read back on PostgreSQL
    _check_equals_duckdb(duckdb_run, _copy(duckdb_run, tmp_path / "p", block), first_end="2024-03-10T00:00:00Z")


@pytest.mark.spark
@pytest.mark.slow
def test_spark_materialize_equals_duckdb(duckdb_run: Path, tmp_path: Path):
    block = {"type": "spark", "master": "local[2]", "conf": {"spark.sql.shuffle.partitions": "2"}}
    _check_equals_duckdb(duckdb_run, _copy(duckdb_run, tmp_path / "p", block))


def test_postgres_predicts_with_a_model_trained_on_duckdb(duckdb_run: Path, postgres_schema, tmp_path: Path):
    info, schema = postgres_schema
    block = {
        "type": "postgres",
        "host": info["host"],
        "port": info["port"],
        "database": info["database"],
        "user": info["user"],
        "schema": schema,
    }
    duck = tmp_path / "duck"
    shutil.copytree(duckdb_run, duck)
    names = {"ts": "event_timestamp"}
    raw = pq.read_table(duck / "data" / "transactions.parquet").slice(0, 200)
    spine = raw.rename_columns([names.get(c, c) for c in raw.column_names]).select(
        ["customer_id", "card_id", "merchant_id", "country", "event_timestamp"]
    )
    with Project.load(duck) as project:
        project.train("amount_regressor")
        expected = project.predict("amount_regressor", spine)
    pg = tmp_path / "pg"
    shutil.copytree(duck, pg)  # the model registry (.bigml) comes along; only the engine block changes
    spec = yaml.safe_load((pg / "project.yaml").read_text())
    spec["engine"] = block
    (pg / "project.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    with Project.load(pg) as project:
        actual = project.predict("amount_regressor", spine)
    assert actual.num_rows == 200 and len(set(expected.column("prediction").to_pylist())) > 1
    _assert_same(expected, actual, "predictions")
