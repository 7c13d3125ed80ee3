"""DuckDB, embedded: the default engine, one file under ``.bigml/``."""

from __future__ import annotations

import glob
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
from sqlglot import exp

from bigml_fs.engines.base import SOURCE_SCHEMA, Engine
from bigml_fs.engines.dialects import DUCKDB
from bigml_fs.errors import EngineError

if TYPE_CHECKING:
    import pyarrow as pa

MODEL_SCHEMA = "bigml_models"  # tables of materialized='table' sql/ models
SIGNATURES = "__bigml_signatures"  # bookkeeping in MODEL_SCHEMA: the signature each model table was built with


class DuckDBEngine(Engine):
    dialect = "duckdb"
    sql_dialect = DUCKDB

    def __init__(self, path: Path | str = ":memory:", threads: int | None = None, memory_limit: str | None = None):
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        try:
            self.con = duckdb.connect(str(path))
        except duckdb.IOException as exc:
            raise EngineError(
                f"cannot open the DuckDB warehouse {path}: {exc}; is another bigml-fs command using it?"
            ) from None
        self.con.execute("SET TimeZone = 'UTC'")
        self.con.execute("SET enable_progress_bar = false")  # bigml-fs shows its own progress; DuckDB's would garble it
        if threads:
            self.con.execute(f"SET threads = {int(threads)}")
        if memory_limit:
            self.con.execute("SET memory_limit = ?", [memory_limit])
        self.con.execute(f"CREATE SCHEMA IF NOT EXISTS {SOURCE_SCHEMA}")

    def execute(self, query: exp.Expression | str) -> None:
        self._run(query).fetchall()  # DuckDB 2 keeps a result open until it is consumed

    def to_arrow(self, query: exp.Expression | str) -> pa.Table:
        rel = self._relation(query)
        try:
            return rel.to_arrow_table() if hasattr(rel, "to_arrow_table") else rel.arrow()
        except duckdb.Error as exc:
            raise EngineError(_clean(exc)) from None

    def rows(self, query: exp.Expression | str) -> list[dict[str, Any]]:
        cursor = self._run(query)  # plain Python rows: no pyarrow import for a count or an example row
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def file_columns(self, path: Path) -> list[str]:
        try:
            return list(self.columns(f"SELECT * FROM read_parquet({_quote(str(path))})"))
        except EngineError as exc:
            raise OSError(str(exc)) from None

    def columns(self, query: exp.Expression | str) -> dict[str, str]:
        rel = self._relation(query)
        return {name: str(dtype) for name, dtype in zip(rel.columns, rel.types, strict=True)}

    def register_file_source(self, name: str, path: Path | str) -> exp.Table:
        text = str(path)
        if not glob.glob(text):
            raise EngineError(f"source '{name}': no file matches {text}")
        reader = "read_csv_auto" if text.lower().endswith((".csv", ".csv.gz", ".tsv")) else "read_parquet"
        table = exp.table_(name, db=SOURCE_SCHEMA)
        self.execute(f"CREATE OR REPLACE VIEW {table.sql('duckdb')} AS SELECT * FROM {reader}({_quote(text)})")
        return table

    def load_arrow(self, name: str, table: pa.Table) -> exp.Table:
        self.con.register(f"__arrow_{name}", table)
        try:
            return self.create_temp_table(name, exp.select("*").from_(exp.table_(f"__arrow_{name}", quoted=True)))
        finally:
            self.con.unregister(f"__arrow_{name}")

    def load_parquet(self, name: str, path: Path, row_column: str) -> exp.Table:
        # DuckDB reads the file itself: handing it Arrow would import pandas (~0.4 s per process)
        reader = exp.Anonymous(
            this="read_parquet",
            expressions=[
                exp.Literal.string(str(path)),
                exp.EQ(this=exp.column("file_row_number"), expression=exp.true()),
            ],
        )
        query = exp.select(
            exp.Star(except_=[exp.column("file_row_number")]),
            exp.alias_(exp.column("file_row_number"), exp.to_identifier(row_column, quoted=True)),
        ).from_(reader)
        return self.create_temp_table(name, query)

    def copy_to_parquet(self, query: exp.Expression | str, path: Path) -> int:
        path.parent.mkdir(parents=True, exist_ok=True)
        written = self._run(f"COPY ({self.render(query)}) TO {_quote(str(path))} (FORMAT parquet)").fetchall()
        return int(written[0][0])

    def create_model_table(self, name: str, query: exp.Expression | str, signature: str | None) -> exp.Table:
        """``bigml_models.<name>``, kept in the warehouse file; rebuilt in one transaction when its
        signature changes.
        """
        table = exp.table_(name, db=MODEL_SCHEMA, quoted=True)
        book = exp.table_(SIGNATURES, db=MODEL_SCHEMA, quoted=True).sql("duckdb")
        self.execute(f"CREATE SCHEMA IF NOT EXISTS {MODEL_SCHEMA}")
        self.execute(
            f"CREATE TABLE IF NOT EXISTS {book} (name VARCHAR PRIMARY KEY, signature VARCHAR, built_at TIMESTAMPTZ NOT "
            "NULL)"
        )
        if signature is not None:
            current = self.con.execute(f"SELECT signature FROM {book} WHERE name = ?", [name]).fetchall()
            exists = self.con.execute(
                "SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ? AND "
                "table_type = 'BASE TABLE'",
                [MODEL_SCHEMA, name],
            ).fetchall()[0][0]
            if current and current[0][0] == signature and exists:
                return table
        self.con.begin()  # readers (and a crash) see the old table and signature or the new ones, never a mix
        try:
            self.execute(f"CREATE OR REPLACE TABLE {table.sql('duckdb')} AS {self.render(query)}")
            self.con.execute(f"INSERT OR REPLACE INTO {book} VALUES (?, ?, now())", [name, signature])
            self.con.commit()
        except duckdb.Error as exc:
            self.con.rollback()
            raise EngineError(_clean(exc)) from None
        except BaseException:
            self.con.rollback()
            raise
        return table

    def close(self) -> None:
        self.con.close()

    def _relation(self, query: exp.Expression | str) -> duckdb.DuckDBPyRelation:
        try:
            return self.con.sql(self.render(query))
        except duckdb.Error as exc:
            raise EngineError(_clean(exc)) from None

    def _run(self, query: exp.Expression | str) -> duckdb.DuckDBPyConnection:
        try:
            return self.con.execute(self.render(query))
        except duckdb.Error as exc:
            raise EngineError(_clean(exc)) from None


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _clean(exc: Exception) -> str:
    """DuckDB's message without its internal preamble."""
    return str(exc).strip()
