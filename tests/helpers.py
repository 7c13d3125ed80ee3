"""Build small throwaway projects for tests."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from bigml_fs import Project

# tests/test_engines.py sets an engine block here to run the same cases on PostgreSQL and Spark
ENGINE: dict | None = None


def write_project(
    root: Path,
    project: dict,
    features: str = "",
    models: str = "",
    sql: dict[str, str] | None = None,
    tables: dict[str, pa.Table] | None = None,
) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    if ENGINE is not None and "engine" not in project:
        project = {**project, "engine": ENGINE}
    (root / "project.yaml").write_text(yaml.safe_dump(project, sort_keys=False))
    if features:
        (root / "features").mkdir(exist_ok=True)
        (root / "features" / "views.yaml").write_text(textwrap.dedent(features))
    if models:
        (root / "models").mkdir(exist_ok=True)
        (root / "models" / "models.yaml").write_text(textwrap.dedent(models))
    for name, text in (sql or {}).items():
        (root / "sql").mkdir(exist_ok=True)
        (root / "sql" / f"{name}.sql").write_text(textwrap.dedent(text))
    for name, table in (tables or {}).items():
        (root / "data").mkdir(exist_ok=True)
        pq.write_table(table, root / "data" / f"{name}.parquet")
    return root


def load(root: Path) -> Project:
    return Project.load(root, in_memory=True)


def micros_to_ts(values: list[int | None]) -> pa.Array:
    return pa.array(values, type=pa.timestamp("us", tz="UTC"))
