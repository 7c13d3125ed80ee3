"""Shared fixtures: a copy of the example project with small generated data."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bigml_fs.example.generate import END_DAY, generate

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def example_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The repository's example project, copied, with 3,000 generated transactions."""
    root = tmp_path_factory.mktemp("example")
    for part in ("project.yaml", "sql", "features", "models"):
        src = REPO / part
        if src.is_dir():
            shutil.copytree(src, root / part)
        else:
            shutil.copy(src, root / part)
    generate(root / "data", rows=3000, end_day=END_DAY)  # the fixed 2024 dates the tests rely on
    return root


# CI explores the same examples every run (a landing must not depend on luck);
# local runs draw new random cases each time, which is how new edge cases are found.
from hypothesis import settings as _hypothesis_settings  # noqa: E402

_hypothesis_settings.register_profile("ci", derandomize=True, print_blob=True)
if __import__("os").environ.get("CI"):
    _hypothesis_settings.load_profile("ci")


@pytest.fixture
def postgres_schema():
    """A fresh PostgreSQL schema on the real server (dropped afterwards); yields (connection info dict, schema)."""
    from tests.services import POSTGRES, require, unique_name

    require("PostgreSQL", POSTGRES["host"], POSTGRES["port"])
    import psycopg

    schema = unique_name("bigml_test")
    conninfo = f"host={POSTGRES['host']} port={POSTGRES['port']} user={POSTGRES['user']} dbname={POSTGRES['database']}"
    with psycopg.connect(conninfo, autocommit=True) as con:
        con.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield dict(POSTGRES), schema
    finally:
        with psycopg.connect(conninfo, autocommit=True) as con:
            con.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture
def redis_prefix():
    """A unique key prefix on the real Redis server (its keys deleted afterwards).

    Yields (connection info dict, prefix).
    """
    from tests.services import REDIS, require, unique_name

    require("Redis", REDIS["host"], REDIS["port"])
    import redis

    prefix = unique_name("bigml_test")
    client = redis.Redis(host=REDIS["host"], port=REDIS["port"])
    try:
        yield dict(REDIS), prefix
    finally:
        keys = list(client.scan_iter(match=f"*{prefix}*".encode(), count=1000))
        if keys:
            client.delete(*keys)
        client.close()
