"""The SQLite online store, in the exact tables Feast's ``SqliteOnlineStore`` reads.

One table per Feast view, ``{project}_{view}``, created with Feast 0.67's DDL:
``(entity_key BLOB, feature_name TEXT, value BLOB, value_text TEXT, vector_value
BLOB, event_ts timestamp, created_ts timestamp, PRIMARY KEY(entity_key,
feature_name))`` plus the index ``{table}_ek``. One row per entity and feature;
``value`` is the ValueProto bytes, ``event_ts``/``created_ts`` are integer Unix
seconds (what Feast's registered sqlite3 datetime adapter stores and its
converter reads back), ``value_text`` is what Feast's ``extract_text_and_num``
gives.

Writes: values are encoded column-wise (encoding.py), bound into a narrow
temporary table (binding rows from Python is the cost, so each entity is one
row holding all its features, and each INSERT carries 1,024 rows), then moved into the
Feast table by ``INSERT ... SELECT`` in primary-key order, all in one
transaction. The database runs in WAL mode, so readers (``online``, ``serve``,
plain Feast) keep seeing the previous values of a view until that transaction
commits, never a mix.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from datetime import datetime, timedelta
from itertools import chain
from pathlib import Path

import numpy as np
import pyarrow as pa

from bigml_fs.core.timeutil import EVENT_TIMESTAMP
from bigml_fs.errors import EngineError
from bigml_fs.store.feast_types import FeastType, feast_type
from bigml_fs.store.naming import FeastPart
from bigml_fs.store.online import encoding
from bigml_fs.store.online.base import CREATED_TS, Found, OnlineStore, part_name_of, table_name

MAX_VARS = 30000  # below SQLite's default limit of 32,766 host parameters


def quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def feast_ddl(table: str) -> list[str]:
    """Feast 0.67's ``SqliteOnlineStore.update`` statements for one table (without value_num)."""
    return [
        f"CREATE TABLE IF NOT EXISTS {quote(table)} (entity_key BLOB, feature_name TEXT, value BLOB, value_text TEXT,  "
        "vector_value BLOB, event_ts timestamp, created_ts timestamp,  PRIMARY KEY(entity_key, feature_name))",
        f"CREATE INDEX IF NOT EXISTS {quote(table + '_ek')} ON {quote(table)} (entity_key);",
    ]


def local_is_utc() -> bool:
    """Whether this process's local time zone is UTC (then Feast's timestamp round trip is plain Unix time)."""
    return time.timezone == 0 and (not time.daylight or time.altzone == 0)


_EPOCH = datetime(1970, 1, 1)


def epoch_seconds(column: pa.ChunkedArray | pa.Array | None, n: int) -> list[int | None]:
    """What Feast's sqlite3 datetime adapter stores for each time: ``int(naive_utc.timestamp())``.

    That reads the naive UTC time as *local* time, so off UTC the stored integer
    is shifted by the local offset (and Feast's reader shifts it back); we store
    exactly the same integers, so Feast reads our times right on any machine.
    """
    if column is None:
        return [None] * n
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    micros = column.cast(pa.timestamp("us", tz="UTC")).cast(pa.int64())
    if not local_is_utc():
        return [
            None if m is None else int((_EPOCH + timedelta(microseconds=m)).timestamp()) for m in micros.to_pylist()
        ]
    if micros.null_count:
        return [None if m is None else (-(-m // 1_000_000) if m < 0 else m // 1_000_000) for m in micros.to_pylist()]
    return encoding._trunc_div(
        encoding._to_numpy(micros, np.int64), 1_000_000
    ).tolist()  # numpy, not pyarrow scalars: no pandas import


def stored_micros(value: int) -> int:
    """UTC microseconds of a stored ``event_ts`` (Feast's converter: ``datetime.fromtimestamp``, read as UTC)."""
    if local_is_utc():
        return value * 1_000_000
    return (datetime.fromtimestamp(value) - _EPOCH) // timedelta(microseconds=1)


def data_types(part: FeastPart, data: pa.Table) -> tuple[dict[str, FeastType], dict[str, FeastType]]:
    """Feast types of the key columns and of the feature columns of ``data``."""
    keys = {k: feast_type(data.schema.field(k).type, f"join key '{k}'") for k in part.join_keys}
    feats = {
        f: feast_type(data.schema.field(f).type, f"feature '{part.view.name}:{f}'")
        for f in part.feature_names
        if f in data.column_names
    }
    return keys, feats


LOAD_ROWS = 1024  # rows per INSERT of the load table


def _load(con: sqlite3.Connection, table: str, columns: list[list], n: int) -> None:
    """Insert ``n`` rows given as columns, in order, many rows per statement.

    Binding from Python is the cost of a bulk write; a multi-row ``VALUES`` runs
    the statement (step, reset, the executemany loop) once per ``LOAD_ROWS``
    rows instead of once per row, about a third faster for the same values.
    """
    width = len(columns)
    per = max(1, min(LOAD_ROWS, MAX_VARS // width))
    row = "(" + ", ".join("?" * width) + ")"
    flat = list(chain.from_iterable(zip(*columns, strict=True)))
    step = per * width
    full = (n // per) * step
    if full:
        con.executemany(
            f"INSERT INTO {table} VALUES {', '.join([row] * per)}", (flat[i : i + step] for i in range(0, full, step))
        )
    if full < len(flat):
        con.execute(f"INSERT INTO {table} VALUES {', '.join([row] * ((len(flat) - full) // width))}", flat[full:])


class SqliteOnlineStore(OnlineStore):
    """Feast's SQLite layout in one database file."""

    def __init__(self, project: str, path: str | Path):
        super().__init__(project)
        self.path = Path(path)
        self._con: sqlite3.Connection | None = None
        self._lock = threading.Lock()  # one connection, shared by the threads of a server

    @property
    def con(self) -> sqlite3.Connection:
        if self._con is None:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                con = sqlite3.connect(self.path, timeout=60, isolation_level=None, check_same_thread=False)
                con.execute("PRAGMA journal_mode=WAL")  # readers keep the last committed snapshot during a write
                con.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: atomic and never corrupt; no fsync per commit
                con.execute("PRAGMA temp_store=MEMORY")  # the load table of a write
                con.execute("PRAGMA cache_size=-131072")  # 128 MB of page cache for bulk writes
            except (sqlite3.Error, OSError) as exc:
                raise EngineError(f"cannot open the SQLite online store {self.path}: {exc}") from None
            self._con = con
        return self._con

    def ping(self) -> None:
        self.con.execute("SELECT 1").fetchone()

    def close(self) -> None:
        if self._con is not None:
            self._con.close()
            self._con = None

    def table(self, part: FeastPart | str) -> str:
        return table_name(self.project, part_name_of(part))

    # --- write ------------------------------------------------------------

    def write(self, part: FeastPart, data: pa.Table, replace: bool = False) -> int:
        key_types, feat_types = data_types(part, data)
        features = sorted(feat_types)  # primary-key order within an entity
        n = data.num_rows
        table = self.table(part)
        if n:
            keys = encoding.entity_keys(data.select(list(part.join_keys)), key_types)
            order = encoding._from_numpy(
                encoding.sort_order(keys).astype(np.int64), pa.int64()
            )  # primary-key order: the B-tree fills left to right
            keys_list = keys.take(order).to_pylist()
            data = data.take(order)
            columns: list[list] = [
                keys_list,
                epoch_seconds(data.column(EVENT_TIMESTAMP), n),
                epoch_seconds(data.column(CREATED_TS) if CREATED_TS in data.column_names else None, n),
            ]
            for f in features:
                columns.append(encoding.values(data.column(f), feat_types[f]).to_pylist())
                columns.append(encoding.value_texts(data.column(f), feat_types[f]))
        con = self.con
        tmp = quote("__bigml_load")
        feature_cols = [f"v{i}, t{i}" for i in range(len(features))]
        # replace: fill a fresh table and swap it in (cheaper than deleting every old row)
        target = table + "__bigml_new" if replace else table
        con.execute("BEGIN IMMEDIATE")
        try:
            if replace:
                con.execute(f"DROP TABLE IF EXISTS {quote(target)}")
                con.execute(feast_ddl(target)[0])
            else:
                for stmt in feast_ddl(table):
                    con.execute(stmt)
            if n:
                con.execute(f"DROP TABLE IF EXISTS temp.{tmp}")
                con.execute(
                    f"CREATE TEMP TABLE {tmp} (k BLOB, e INTEGER, c INTEGER{''.join(', ' + c for c in feature_cols)})"
                )
                _load(con, f"temp.{tmp}", columns, n)
                # CROSS JOIN fixes the loop order (entities outer, in key order; features inner, in
                # name order), so rows arrive in primary-key order without a sort
                names = ", ".join(f"(?, {i})" for i in range(len(features)))
                value = "CASE f.column2 " + " ".join(f"WHEN {i} THEN v{i}" for i in range(len(features))) + " END"
                text = "CASE f.column2 " + " ".join(f"WHEN {i} THEN t{i}" for i in range(len(features))) + " END"
                upsert = (
                    ""
                    if replace
                    else (
                        " ON CONFLICT(entity_key, feature_name) DO UPDATE SET value = excluded.value, value_text = "
                        "excluded.value_text, vector_value = excluded.vector_value, event_ts = excluded.event_ts, "
                        "created_ts = excluded.created_ts"
                    )
                )
                con.execute(
                    f"INSERT INTO {quote(target)} (entity_key, feature_name, value, value_text, event_ts, created_ts) "
                    f"SELECT k, f.column1, {value}, {text}, e, c FROM temp.{tmp} CROSS JOIN (VALUES {names}) AS f "
                    f"WHERE true{upsert}",
                    features,
                )
                con.execute(f"DROP TABLE temp.{tmp}")
            if replace:
                con.execute(f"DROP TABLE IF EXISTS {quote(table)}")
                con.execute(f"ALTER TABLE {quote(target)} RENAME TO {quote(table)}")
                con.execute(feast_ddl(table)[1])  # the key index, named as Feast names it
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        return n

    def drop(self, part_name: str) -> None:
        table = self.table(part_name)
        with self.con:
            self.con.execute(f"DROP TABLE IF EXISTS {quote(table)}")
            self.con.execute(f"DROP INDEX IF EXISTS {quote(table + '_ek')}")

    # --- read -------------------------------------------------------------

    def fetch(self, part: FeastPart, keys_bin: list[bytes | None], features: list[str]) -> dict[bytes, Found]:
        unique = [k for k in dict.fromkeys(keys_bin) if k is not None]
        found: dict[bytes, Found] = {}
        table = quote(self.table(part))
        con = self.con
        with self._lock:
            self._read_rows(con, table, self.table(part), unique, features, found)
        return found

    @staticmethod
    def _read_rows(
        con: sqlite3.Connection, table: str, name: str, unique: list[bytes], features: list[str], found: dict
    ) -> None:
        if not unique:
            return
        fmarks = ",".join("?" * len(features))
        step = MAX_VARS - len(features)
        chunked = len(unique) > step
        try:
            if chunked:
                con.execute("BEGIN")  # one snapshot for all chunks
            for i in range(0, len(unique), step):
                chunk = unique[i : i + step]
                rows = con.execute(
                    f"SELECT entity_key, feature_name, value, event_ts FROM {table} WHERE entity_key IN "
                    f"({','.join('?' * len(chunk))}) AND feature_name IN ({fmarks})",
                    [*chunk, *features],
                ).fetchall()
                for key, feature, value, ts in rows:
                    entry = found.get(key)
                    if entry is None:
                        entry = found[key] = (None if ts is None else stored_micros(int(ts)), {})
                    entry[1][feature] = value
        except sqlite3.OperationalError as exc:
            if "no such table" not in str(exc):
                raise EngineError(f"cannot read the SQLite online store table {name}: {exc}") from None
        finally:
            if chunked:
                con.execute("COMMIT")
