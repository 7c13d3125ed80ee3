"""Engines: where SQL runs. Only DuckDB is built in so far."""

from __future__ import annotations

from pathlib import Path

from bigml_fs.engines.base import Engine
from bigml_fs.errors import EngineError
from bigml_fs.spec.schema import DuckDBEngineSpec, ProjectSpec


def connect(spec: ProjectSpec, root: Path, in_memory: bool = False) -> Engine:
    """Open the engine a project configures."""
    engine = spec.engine
    if isinstance(engine, DuckDBEngineSpec):
        from bigml_fs.engines.duckdb_engine import DuckDBEngine

        path = ":memory:" if in_memory else root / engine.path
        return DuckDBEngine(path, engine.threads, engine.memory_limit)
    raise EngineError(f"project.yaml: engine type '{engine.type}' is not supported by this version yet; use 'duckdb'")


__all__ = ["Engine", "connect"]
