"""The PostgreSQL online store, in the exact tables Feast's ``PostgreSQLOnlineStore`` reads.

Feast 0.67's layout: in the schema ``db_schema``, one table per Feast view,
``{project}_{view}`` (entity_key BYTEA, feature_name TEXT, value BYTEA,
value_text TEXT, vector_value BYTEA, event_ts TIMESTAMPTZ, created_ts
TIMESTAMPTZ, PRIMARY KEY(entity_key, feature_name)), the index ``{table}_ek``
and, for views with string features, the full-text index ``{table}_fts_idx``.
Feast connects with ``search_path = db_schema, public``; a test keeps its
tables apart with its own schema, as Feast itself would.

Writes: one transaction per view. Each entity becomes one row of a temporary
table loaded by ``COPY ... (FORMAT BINARY)`` from bytes built column-wise
(encoding.py), then ``INSERT ... SELECT`` spreads it into one row per feature.
MVCC keeps readers on the previous values until the commit.
"""

from __future__ import annotations

import struct
from typing import Any

import numpy as np
import pyarrow as pa

from bigml_fs.core.timeutil import EVENT_TIMESTAMP
from bigml_fs.errors import EngineError
from bigml_fs.store.feast_types import STRING
from bigml_fs.store.naming import FeastPart
from bigml_fs.store.online import encoding
from bigml_fs.store.online.base import CREATED_TS, Found, OnlineStore, part_name_of, table_name
from bigml_fs.store.online.sqlite import data_types

PG_EPOCH_US = 946_684_800_000_000  # 2000-01-01 in Unix microseconds: COPY BINARY's timestamptz origin
COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
COPY_TRAILER = struct.pack(">h", -1)


def _field(array: pa.Array, n: int) -> list:
    """A COPY BINARY field: int32 length (-1 for null) and the bytes."""
    data = encoding._variable(array)
    lengths = encoding._lengths(data).astype(">i4")
    if array.null_count:
        lengths[~np.asarray(array.is_valid())] = -1
    return [encoding._fixed(lengths), data]


def _ts_field(column: pa.ChunkedArray | pa.Array | None, n: int) -> list:
    """A timestamptz field: int64 microseconds since 2000-01-01 (null: length -1)."""
    if column is None:
        return [encoding._const(struct.pack(">i", -1), n)]
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    micros = column.cast(pa.timestamp("us", tz="UTC")).cast(pa.int64())
    valid = np.asarray(micros.is_valid())
    values = np.asarray(micros.fill_null(0).to_numpy(zero_copy_only=False), dtype=np.int64) - PG_EPOCH_US
    lengths = np.where(valid, 8, -1).astype(">i4")
    return [encoding._fixed(lengths), encoding._fixed(values.astype(">i8"), valid)]


class PostgresOnlineStore(OnlineStore):
    """Feast's PostgreSQL layout in one schema."""

    def __init__(
        self, project: str, host: str, port: int, database: str, user: str, password: str | None, schema: str = "public"
    ):
        super().__init__(project)
        self.host, self.port, self.database, self.user, self.schema = host, port, database, user, schema
        self._password = password
        self._con: Any = None

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port}"

    def _connect(self) -> Any:
        import psycopg

        try:
            return psycopg.connect(
                host=self.host,
                port=self.port,
                dbname=self.database,
                user=self.user,
                password=self._password or None,
                connect_timeout=5,
                autocommit=True,
            )
        except psycopg.Error as exc:
            raise self._fail(exc) from None

    def _fail(self, exc: Exception) -> EngineError:
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if self._password:
            text = text.replace(self._password, "***")
        return EngineError(
            f"cannot use the PostgreSQL online store at {self.where} (database {self.database}, user {self.user}): "
            f"{text}"
        )

    @property
    def con(self) -> Any:
        if self._con is None or self._con.closed:
            self._con = self._connect()
        return self._con

    def ping(self) -> None:
        import psycopg

        try:
            self.con.execute("SELECT 1")
        except psycopg.Error as exc:
            raise self._fail(exc) from None

    def close(self) -> None:
        if self._con is not None:
            self._con.close()
            self._con = None

    def _ident(self, part: FeastPart | str) -> Any:
        from psycopg import sql

        return sql.Identifier(self.schema, table_name(self.project, part_name_of(part)))

    # --- write ------------------------------------------------------------

    def _ddl(self, cur: Any, part: FeastPart | str, has_strings: bool) -> None:
        """Feast's ``update()`` statements for one table (schema, table, key index, text index)."""
        from psycopg import sql

        name = table_name(self.project, part_name_of(part))
        cur.execute(
            sql.SQL("CREATE SCHEMA IF NOT EXISTS {} AUTHORIZATION {}").format(
                sql.Identifier(self.schema), sql.Identifier(self.user)
            )
        )
        table = self._ident(part)
        cur.execute(
            sql.SQL(
                "CREATE TABLE IF NOT EXISTS {} (entity_key BYTEA, feature_name TEXT, value BYTEA, value_text TEXT "
                "NULL, "
                "vector_value BYTEA NULL, event_ts TIMESTAMPTZ, created_ts TIMESTAMPTZ, PRIMARY KEY(entity_key, "
                "feature_name))"
            ).format(table)
        )
        cur.execute(
            sql.SQL("CREATE INDEX IF NOT EXISTS {} ON {} (entity_key)").format(sql.Identifier(f"{name}_ek"), table)
        )
        if has_strings:
            cur.execute(
                sql.SQL("CREATE INDEX IF NOT EXISTS {} ON {} USING GIN (to_tsvector('english', value_text))").format(
                    sql.Identifier(f"{name}_fts_idx"), table
                )
            )

    def write(self, part: FeastPart, data: pa.Table, replace: bool = False) -> int:
        import psycopg
        from psycopg import sql

        key_types, feat_types = data_types(part, data)
        features = list(feat_types)
        n = data.num_rows
        payload = b""
        if n:
            keys = encoding.entity_keys(data.select(list(part.join_keys)), key_types)
            order = encoding.sort_order(keys)
            keys = keys.take(order)
            data = data.take(order)
            segments = [
                encoding._const(struct.pack(">h", 3 + 2 * len(features)), n),
                *_field(keys, n),
                *_ts_field(data.column(EVENT_TIMESTAMP), n),
                *_ts_field(data.column(CREATED_TS) if CREATED_TS in data.column_names else None, n),
            ]
            for f in features:
                segments += _field(encoding.values(data.column(f), feat_types[f]), n)
                segments += _field(
                    pa.array(encoding.value_texts(data.column(f), feat_types[f]), pa.large_string()).cast(
                        pa.large_binary()
                    ),
                    n,
                )
            rows = encoding._concat(segments, n)
            offsets = np.frombuffer(rows.buffers()[1], dtype=np.int64)
            body = memoryview(rows.buffers()[2])[int(offsets[rows.offset]) : int(offsets[rows.offset + n])]
            payload = COPY_HEADER + bytes(body) + COPY_TRAILER
        table = self._ident(part)
        columns = sql.SQL("").join(sql.SQL(f", v{i} BYTEA, t{i} TEXT") for i in range(len(features)))
        try:
            con = self._connect()
            try:
                with con.transaction(), con.cursor() as cur:
                    self._ddl(cur, part, any(t is STRING for t in feat_types.values()))
                    if replace:
                        cur.execute(sql.SQL("DELETE FROM {}").format(table))
                    if n:
                        cur.execute(
                            sql.SQL(
                                "CREATE TEMP TABLE __bigml_load (k BYTEA, e TIMESTAMPTZ, c TIMESTAMPTZ{}) ON COMMIT "
                                "DROP"
                            ).format(columns)
                        )
                        with cur.copy("COPY __bigml_load FROM STDIN (FORMAT BINARY)") as copy:
                            copy.write(payload)
                        pairs = sql.SQL(", ").join(
                            sql.SQL("({}, {}, {})").format(
                                sql.Literal(f), sql.Identifier(f"v{i}"), sql.Identifier(f"t{i}")
                            )
                            for i, f in enumerate(features)
                        )
                        upsert = sql.SQL(
                            ""
                            if replace
                            else (
                                " ON CONFLICT (entity_key, feature_name) DO UPDATE SET value = EXCLUDED.value, "
                                "value_text = EXCLUDED.value_text, vector_value = EXCLUDED.vector_value, event_ts = "
                                "EXCLUDED.event_ts, created_ts = EXCLUDED.created_ts"
                            )
                        )
                        cur.execute(
                            sql.SQL(
                                "INSERT INTO {} (entity_key, feature_name, value, value_text, event_ts, created_ts) "
                                "SELECT l.k, f.name, f.value, f.text, l.e, l.c FROM __bigml_load l CROSS JOIN LATERAL "
                                "(VALUES {}) AS f(name, value, text) ORDER BY 1, 2{}"
                            ).format(table, pairs, upsert)
                        )
            finally:
                con.close()
        except psycopg.OperationalError as exc:
            raise self._fail(exc) from None
        return n

    def drop(self, part_name: str) -> None:
        import psycopg
        from psycopg import sql

        name = table_name(self.project, part_name_of(part_name))
        try:
            with self.con.transaction():
                self.con.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(self._ident(part_name)))
                self.con.execute(sql.SQL("DROP INDEX IF EXISTS {}").format(sql.Identifier(self.schema, f"{name}_ek")))
        except psycopg.OperationalError as exc:
            raise self._fail(exc) from None

    # --- read -------------------------------------------------------------

    def fetch(self, part: FeastPart, keys_bin: list[bytes | None], features: list[str]) -> dict[bytes, Found]:
        import psycopg
        from psycopg import sql

        unique = [k for k in dict.fromkeys(keys_bin) if k is not None]
        found: dict[bytes, Found] = {}
        if unique:
            query = sql.SQL(
                "SELECT entity_key, feature_name, value, (extract(epoch FROM event_ts) * 1000000)::bigint "
                "FROM {} WHERE entity_key = ANY(%s) AND feature_name = ANY(%s)"
            ).format(self._ident(part))
            try:
                rows = self.con.execute(query, (unique, features)).fetchall()
            except psycopg.errors.UndefinedTable:
                rows = []
            except psycopg.OperationalError as exc:
                self.close()
                raise self._fail(exc) from None
            for key, name, value, ts in rows:
                key = bytes(key)
                entry = found.get(key)
                if entry is None:
                    entry = found[key] = (ts, {})
                entry[1][name] = bytes(value) if value is not None else None
        return found
