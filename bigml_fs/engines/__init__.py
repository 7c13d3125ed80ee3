"""Engines: where SQL runs. DuckDB (embedded, default), PostgreSQL and Apache Spark."""

from __future__ import annotations

from pathlib import Path

from bigml_fs.engines.base import Engine
from bigml_fs.errors import EngineError
from bigml_fs.spec.schema import DuckDBEngineSpec, PostgresEngineSpec, ProjectSpec, SparkEngineSpec


def connect(spec: ProjectSpec, root: Path, in_memory: bool = False) -> Engine:
    """Open the engine a project configures."""
    engine = spec.engine
    if isinstance(engine, DuckDBEngineSpec):
        from bigml_fs.engines.duckdb_engine import DuckDBEngine

        path = ":memory:" if in_memory else root / engine.path
        return DuckDBEngine(path, engine.threads, engine.memory_limit)
    if isinstance(engine, PostgresEngineSpec):
        from bigml_fs.engines.postgres_engine import PostgresEngine

        return PostgresEngine(
            engine.host, engine.port, engine.database, engine.user, engine.password_env, engine.schema_
        )
    if isinstance(engine, SparkEngineSpec):
        from bigml_fs.engines.spark_engine import SparkEngine

        conf = dict(engine.conf)
        if not engine.master.startswith("sc://"):  # Spark's own tables go under .bigml/, not the project root
            conf.setdefault("spark.sql.warehouse.dir", str((root / ".bigml" / "spark-warehouse").resolve()))
        return SparkEngine(engine.master, conf)
    raise EngineError(f"project.yaml: engine type '{engine.type}' is not supported by this version yet; use 'duckdb'")


__all__ = ["Engine", "connect"]
