"""PostgreSQL: sources read in place (``table:``) or loaded by streaming COPY.

The connection is opened through Ibis's postgres backend (it sets the session
TimeZone to UTC and the search_path to the project's schema). Loading,
fetching and writing go through its psycopg 3 connection directly: COPY and
server-side cursors stream record batches both ways, which Ibis does not
expose for raw SQL plans built elsewhere (our plans are SQLGlot ASTs).
"""

from __future__ import annotations

import glob
import hashlib
import io
import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from sqlglot import exp

from bigml_fs.engines.base import Engine
from bigml_fs.engines.dialects import POSTGRES
from bigml_fs.errors import EngineError

BATCH_ROWS = 100_000
# bookkeeping: which file (by size and mtime) each loaded table holds, and each model table's signature
LOADED = "bigml_loaded_sources"
SOURCE_PREFIX = "bigml_src_"
MODEL_PREFIX = "bigml_model_"  # tables of materialized='table' sql/ models
# a CSV read as DuckDB and Spark read it (README, "Engines"): an empty field, quoted or not, is NULL in every column
# (pyarrow's default keeps '' in text columns) and no other text is (its default also nulls NA, NULL, nan...)
CSV_CONVERT = pacsv.ConvertOptions(strings_can_be_null=True, quoted_strings_can_be_null=True, null_values=[""])

# PostgreSQL type OID -> the type name the compiler uses (DuckDB's spelling, shared by every engine)
_OID_TYPES = {
    16: "BOOLEAN",
    20: "BIGINT",
    21: "SMALLINT",
    23: "INTEGER",
    25: "VARCHAR",
    700: "FLOAT",
    701: "DOUBLE",
    1042: "VARCHAR",
    1043: "VARCHAR",
    1082: "DATE",
    1114: "TIMESTAMP",
    1184: "TIMESTAMP WITH TIME ZONE",
    17: "BLOB",
    19: "VARCHAR",
}
_ARROW_OF = {
    "BOOLEAN": pa.bool_(),
    "BIGINT": pa.int64(),
    "SMALLINT": pa.int16(),
    "INTEGER": pa.int32(),
    "VARCHAR": pa.string(),
    "FLOAT": pa.float32(),
    "DOUBLE": pa.float64(),
    "DATE": pa.date32(),
    "TIMESTAMP": pa.timestamp("us"),
    "TIMESTAMP WITH TIME ZONE": pa.timestamp("us", tz="UTC"),
    "BLOB": pa.binary(),
}


class PostgresEngine(Engine):
    dialect = "postgres"
    sql_dialect = POSTGRES

    def __init__(self, host: str, port: int, database: str, user: str, password_env: str | None, schema: str):
        try:
            import ibis
            import psycopg
        except ImportError:
            raise EngineError(
                "engine 'postgres' needs the PostgreSQL driver: pip install 'bigml-fs[postgres]'"
            ) from None
        password = None
        if password_env:
            password = os.environ.get(password_env)
            if password is None:
                raise EngineError(
                    f"project.yaml engine: the environment variable {password_env} (password_env) is not set"
                )
        self.schema = schema
        self._psycopg = psycopg
        try:
            backend = ibis.postgres.connect(
                host=host, port=port, user=user, password=password, database=database, schema=schema, connect_timeout=10
            )
        except psycopg.Error as exc:
            reason = str(exc).replace(password, "***") if password else str(exc)
            raise EngineError(
                f"cannot connect to PostgreSQL at {host}:{port} (database {database}, user {user}): "
                f"{reason.strip().splitlines()[-1]}"
            ) from None
        self.con = backend.con
        self._try_casts: set[str] = set()
        self._lookups: dict[str, exp.Table] = {}  # sql/ view models copied into indexed temp tables this session
        self.execute(f"CREATE SCHEMA IF NOT EXISTS {self._q(schema)}")
        self.execute(
            f"CREATE TABLE IF NOT EXISTS {self._q(schema)}.{LOADED} (name text PRIMARY KEY, signature text NOT NULL, "
            "loaded_at timestamptz NOT NULL DEFAULT now())"
        )

    # --- SQL ----------------------------------------------------------------

    def render(self, query: exp.Expression | str) -> str:
        if isinstance(query, str):
            return query
        if query.find(exp.TryCast):  # the spine's checks try casts; plans come in PostgreSQL's own form
            query = query.copy().transform(self._try_cast)
        return query.sql(dialect="postgres")

    def execute(self, query: exp.Expression | str) -> None:
        sql = self.render(query)
        try:
            with self.con.cursor() as cur:
                cur.execute(sql)
        except self._psycopg.Error as exc:
            raise EngineError(_clean(exc)) from None

    def to_arrow(self, query: exp.Expression | str) -> pa.Table:
        batches = [batch for _, batch in self._batches(query)]
        return pa.Table.from_batches(batches, schema=batches[0].schema)

    def columns(self, query: exp.Expression | str) -> dict[str, str]:
        try:
            with self.con.cursor() as cur:
                cur.execute(f"SELECT * FROM ({self.render(query)}) AS __q LIMIT 0")
                return {d.name: _type_name(d) for d in cur.description}
        except self._psycopg.Error as exc:
            raise EngineError(_clean(exc)) from None

    def copy_to_parquet(self, query: exp.Expression | str, path: Path) -> int:
        path.parent.mkdir(parents=True, exist_ok=True)
        rows, writer = 0, None
        try:
            for schema, batch in self._batches(query):
                if writer is None:
                    writer = pq.ParquetWriter(path, schema)
                writer.write_batch(batch)
                rows += batch.num_rows
            if writer is None:  # no batch at all: still write the (empty) schema
                schema = pa.schema([(n, _ARROW_OF.get(t, pa.string())) for n, t in self.columns(query).items()])
                writer = pq.ParquetWriter(path, schema)
        finally:
            if writer is not None:
                writer.close()
        return rows

    def create_temp_table(self, name: str, query: exp.Expression | str) -> exp.Table:
        table = exp.table_(name, quoted=True)
        # qualified with pg_temp so a same-named table in the project's schema is never dropped
        self.execute(f"DROP TABLE IF EXISTS pg_temp.{table.sql('postgres')}")
        self.execute(f"CREATE TEMP TABLE {table.sql('postgres')} AS {self.render(query)}")
        self.execute(f"ANALYZE pg_temp.{table.sql('postgres')}")
        return table

    def create_temp_view(self, name: exp.Table, query: exp.Expression | str) -> None:
        self.execute(f"DROP VIEW IF EXISTS pg_temp.{name.sql('postgres')} CASCADE")
        self.execute(f"CREATE TEMP VIEW {name.sql('postgres')} AS {self.render(query)}")

    def close(self) -> None:
        self.con.close()

    # --- loading ------------------------------------------------------------

    def register_file_source(self, name: str, path: Path | str) -> exp.Table:
        """Load a Parquet/CSV file (or glob) into ``bigml_src_<name>``, unless the same files are loaded already."""
        files = sorted(glob.glob(str(path)))
        if not files:
            raise EngineError(f"source '{name}': no file matches {path}")
        table = exp.table_(f"{SOURCE_PREFIX}{name}", db=self.schema, quoted=True)
        signature = json.dumps([[f, os.stat(f).st_size, os.stat(f).st_mtime_ns] for f in files])
        current = self._fetch_one(
            f"SELECT signature FROM {self._q(self.schema)}.{LOADED} WHERE name = %s", [table.name]
        )
        exists = self._fetch_one("SELECT to_regclass(%s)", [table.sql("postgres")])
        if current == signature and exists is not None:
            return table
        try:
            schema = _schema_of(files[0])
        except (pa.ArrowInvalid, OSError) as exc:
            raise EngineError(f"source '{name}': cannot read {files[0]}: {exc}") from None
        try:
            with self.con.transaction(), self.con.cursor() as cur:  # readers never see a half-loaded table
                cur.execute(f"DROP TABLE IF EXISTS {table.sql('postgres')} CASCADE")
                cur.execute(f"CREATE TABLE {table.sql('postgres')} ({_ddl(schema, name)})")
                self._copy(cur, table.sql("postgres"), [], _read_batches(files))
                cur.execute(
                    f"INSERT INTO {self._q(self.schema)}.{LOADED} (name, signature) VALUES (%s, %s) ON CONFLICT (name) "
                    "DO UPDATE SET signature = EXCLUDED.signature, loaded_at = now()",
                    [table.name, signature],
                )
        except self._psycopg.Error as exc:
            raise EngineError(f"source '{name}': cannot load {path} into PostgreSQL: {_clean(exc)}") from None
        self.execute(f"ANALYZE {table.sql('postgres')}")
        return table

    def create_model_table(self, name: str, query: exp.Expression | str, signature: str | None) -> exp.Table:
        """``bigml_model_<name>`` in the project's schema: built under a new name, then swapped in
        with its signature in one transaction.
        """
        table = exp.table_(f"{MODEL_PREFIX}{name}", db=self.schema, quoted=True)
        if signature is not None:
            current = self._fetch_one(
                f"SELECT signature FROM {self._q(self.schema)}.{LOADED} WHERE name = %s", [table.name]
            )
            if current == signature and self._fetch_one("SELECT to_regclass(%s)", [table.sql("postgres")]) is not None:
                return table
        build = exp.table_(f"bigml_build_{uuid.uuid4().hex[:12]}", db=self.schema, quoted=True)
        sql = self.render(query)
        try:
            with self.con.transaction(), self.con.cursor() as cur:  # readers see the old table until the commit
                cur.execute(f"CREATE TABLE {build.sql('postgres')} AS {sql}")
                cur.execute(f"DROP TABLE IF EXISTS {table.sql('postgres')} CASCADE")
                cur.execute(f"ALTER TABLE {build.sql('postgres')} RENAME TO {self._q(table.name)}")
                cur.execute(
                    f"INSERT INTO {self._q(self.schema)}.{LOADED} (name, signature) VALUES (%s, %s) ON CONFLICT (name) "
                    "DO UPDATE SET signature = EXCLUDED.signature, loaded_at = now()",
                    [table.name, signature or ""],  # "" never equals a signature: rebuilt next time
                )
        except self._psycopg.Error as exc:
            raise EngineError(_clean(exc)) from None
        self.execute(f"ANALYZE {table.sql('postgres')}")
        return table

    def load_arrow(self, name: str, table: pa.Table) -> exp.Table:
        target = exp.table_(name, quoted=True)
        self.execute(f"DROP TABLE IF EXISTS pg_temp.{target.sql('postgres')}")
        try:
            with self.con.cursor() as cur:
                cur.execute(f"CREATE TEMP TABLE {target.sql('postgres')} ({_ddl(table.schema, name)})")
                self._copy(cur, target.sql("postgres"), table.to_batches(max_chunksize=BATCH_ROWS), iter(()))
                cur.execute(f"ANALYZE pg_temp.{target.sql('postgres')}")
        except self._psycopg.Error as exc:
            raise EngineError(_clean(exc)) from None
        return target

    def lookup_relation(self, relation: exp.Table, columns: list[str]) -> exp.Table:
        """An index on (keys, time, created) for the LATERAL probes, so none of them scans the whole source.

        A table bigml-fs loaded or built gets the index itself. A sql/ model
        that is a view cannot be indexed: a LATERAL probe into it would run
        the view's query once per spine row (quadratic), so it is copied once
        per session into an indexed temp table, which the plan reads instead.
        Tables of others (``table:`` sources) are read as they are.
        """
        if relation.db == self.schema and relation.name.startswith((SOURCE_PREFIX, MODEL_PREFIX)):
            self._index(relation, columns)
            return relation
        if relation.db or not self._is_temp_view(relation.name):
            return relation
        copy = self._lookups.get(relation.name)
        if copy is None:
            copy = self.create_temp_table(
                f"bigml_lookup_{_digest([relation.name])}", exp.select("*").from_(relation.copy())
            )
            self._lookups[relation.name] = copy
        self._index(exp.table_(copy.name, db="pg_temp", quoted=True), columns)
        return copy

    def _index(self, table: exp.Table, columns: list[str]) -> None:
        parts = ", ".join(f"{exp.to_identifier(c, quoted=True).sql('postgres')} NULLS FIRST" for c in columns)
        self.execute(
            f'CREATE INDEX IF NOT EXISTS "bigml_ix_{_digest([table.name, columns])}" ON {table.sql("postgres")} '
            f"({parts})"
        )

    def _is_temp_view(self, name: str) -> bool:
        return (
            self._fetch_one(
                "SELECT count(*) FROM pg_class WHERE relnamespace = pg_my_temp_schema() AND relkind = 'v' AND relname "
                "= %s",
                [name],
            )
            > 0
        )

    # --- helpers ------------------------------------------------------------

    def _copy(self, cur: Any, target: str, head: list[pa.RecordBatch], rest: Iterator[pa.RecordBatch]) -> None:
        """Stream record batches as CSV into COPY: never a whole table in memory."""
        options = pacsv.WriteOptions(include_header=False)
        with cur.copy(f"COPY {target} FROM STDIN (FORMAT csv)") as copy:
            for batch in [*head, *rest]:
                if batch.num_rows == 0:
                    continue
                buffer = io.BytesIO()
                pacsv.write_csv(_csv_ready(batch), buffer, options)
                copy.write(buffer.getvalue())

    def _batches(self, query: exp.Expression | str) -> Iterator[tuple[pa.Schema, pa.RecordBatch]]:
        """Run a query on a server-side cursor; yield Arrow batches of ``BATCH_ROWS``."""
        sql = self.render(query)
        try:
            with self.con.transaction(), self.con.cursor(name="bigml_fetch") as cur:
                cur.execute(sql)
                schema = pa.schema([(d.name, _arrow_type(d)) for d in cur.description])
                yielded = False
                while rows := cur.fetchmany(BATCH_ROWS):
                    yielded = True
                    columns = list(zip(*rows, strict=True))
                    arrays = [_to_array(values, field.type) for values, field in zip(columns, schema, strict=True)]
                    yield schema, pa.RecordBatch.from_arrays(arrays, schema=schema)
                if not yielded:
                    yield schema, pa.RecordBatch.from_arrays([pa.array([], type=f.type) for f in schema], schema=schema)
        except self._psycopg.Error as exc:
            raise EngineError(_clean(exc)) from None

    def _fetch_one(self, sql: str, params: list[Any]) -> Any:
        with self.con.cursor() as cur:
            row = cur.execute(sql, params).fetchone()
        return row[0] if row else None

    def _try_cast(self, node: exp.Expression) -> exp.Expression:
        """PostgreSQL has no TRY_CAST: a pg_temp function per target type returns NULL where the cast fails."""
        if not isinstance(node, exp.TryCast):
            return node
        target = node.to.sql("postgres")
        slug = "bigml_try_" + hashlib.sha1(target.encode()).hexdigest()[:10]
        if slug not in self._try_casts:
            # PostgreSQL also reads words ('yesterday', 'epoch', 'infinity') as times: accept ISO 8601 dates only
            guard = (
                "IF v !~ '^\\s*[0-9]{4}-[0-9]{2}-[0-9]{2}' THEN RETURN NULL; END IF; "
                if target.upper().startswith(("TIMESTAMP", "DATE"))
                else ""
            )
            self.execute(
                f"CREATE OR REPLACE FUNCTION pg_temp.{slug}(v text) RETURNS {target} LANGUAGE plpgsql IMMUTABLE AS "
                f"$$ BEGIN {guard}RETURN v::{target}; EXCEPTION WHEN others THEN RETURN NULL; END $$"
            )
            self._try_casts.add(slug)
        return exp.Anonymous(this=f"pg_temp.{slug}", expressions=[exp.cast(node.this, exp.DataType.Type.TEXT)])

    @staticmethod
    def _q(name: str) -> str:
        return exp.to_identifier(name, quoted=True).sql("postgres")


def _digest(parts: list[Any]) -> str:
    return hashlib.sha1(json.dumps(parts).encode()).hexdigest()[:12]


def _is_csv(file: str) -> bool:
    return file.lower().endswith((".csv", ".csv.gz", ".tsv"))


def _schema_of(file: str) -> pa.Schema:
    return (
        pacsv.open_csv(file, convert_options=CSV_CONVERT).schema if _is_csv(file) else pq.ParquetFile(file).schema_arrow
    )


def _read_batches(files: list[str]) -> Iterator[pa.RecordBatch]:
    for file in files:
        if _is_csv(file):
            yield from pacsv.open_csv(file, convert_options=CSV_CONVERT)
        else:
            yield from pq.ParquetFile(file).iter_batches(batch_size=BATCH_ROWS)


def _csv_ready(batch: pa.RecordBatch) -> pa.RecordBatch:
    """Nanosecond times truncated to PostgreSQL's microseconds; dictionaries decoded."""
    arrays = []
    for array in batch.columns:
        if pa.types.is_dictionary(array.type):
            array = array.dictionary_decode()
        if pa.types.is_timestamp(array.type) and array.type.unit != "us":
            array = array.cast(pa.timestamp("us", tz=array.type.tz), safe=False)
        arrays.append(array)
    return pa.RecordBatch.from_arrays(arrays, names=batch.schema.names)


def _ddl(schema: pa.Schema, name: str) -> str:
    return ", ".join(
        f"{exp.to_identifier(f.name, quoted=True).sql('postgres')} {_pg_type(f.type, name, f.name)}" for f in schema
    )


def _pg_type(dtype: pa.DataType, name: str, column: str) -> str:
    if pa.types.is_dictionary(dtype):
        dtype = dtype.value_type
    checks = [
        (pa.types.is_boolean, "BOOLEAN"),
        (pa.types.is_int8, "SMALLINT"),
        (pa.types.is_int16, "SMALLINT"),
        (pa.types.is_int32, "INTEGER"),
        (pa.types.is_int64, "BIGINT"),
        (pa.types.is_uint8, "SMALLINT"),
        (pa.types.is_uint16, "INTEGER"),
        (pa.types.is_uint32, "BIGINT"),
        (pa.types.is_uint64, "NUMERIC(20, 0)"),
        (pa.types.is_float16, "REAL"),
        (pa.types.is_float32, "REAL"),
        (pa.types.is_float64, "DOUBLE PRECISION"),
        (pa.types.is_string, "TEXT"),
        (pa.types.is_large_string, "TEXT"),
        (pa.types.is_date, "DATE"),
    ]
    for check, pg in checks:
        if check(dtype):
            return pg
    if pa.types.is_timestamp(dtype):
        return "TIMESTAMPTZ" if dtype.tz else "TIMESTAMP"
    if pa.types.is_decimal(dtype):
        return f"NUMERIC({dtype.precision}, {dtype.scale})"
    raise EngineError(
        f"'{name}': column '{column}' has type {dtype}, which bigml-fs cannot load into PostgreSQL; cast it in the "
        "file or use a DuckDB engine"
    )


def _type_name(description: Any) -> str:
    if description.type_code == 1700:
        if description.precision is not None:
            return f"DECIMAL({description.precision},{description.scale or 0})"
        return "DOUBLE"  # an unconstrained numeric (e.g. a sum of integers) is read as a double
    return _OID_TYPES.get(description.type_code, "VARCHAR")


def _arrow_type(description: Any) -> pa.DataType:
    name = _type_name(description)
    if name.startswith("DECIMAL("):
        return pa.decimal128(description.precision, description.scale or 0)
    return _ARROW_OF.get(name, pa.string())


def _to_array(values: tuple, dtype: pa.DataType) -> pa.Array:
    if pa.types.is_floating(dtype):
        values = tuple(None if v is None else float(v) for v in values)
    elif pa.types.is_string(dtype):
        values = tuple(v if v is None or isinstance(v, str) else str(v) for v in values)
    return pa.array(values, type=dtype)


def _clean(exc: Exception) -> str:
    return str(exc).strip()
