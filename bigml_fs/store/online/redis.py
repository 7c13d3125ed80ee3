"""The Redis online store, in the exact keys Feast's ``RedisOnlineStore`` reads.

Feast 0.67's layout: one hash per entity key, named
``serialize_entity_key(key, v3) + project`` and shared by every Feast view over
the same join keys; in it, per view, the field ``mmh3("{view}:{feature}")``
(4 bytes, little-endian murmur3) holds the ValueProto bytes of each feature and
``_ts:{view}`` the event time as a ``google.protobuf.Timestamp``. A test keeps
its keys apart with its own Feast project name, as Feast itself would.

Writes build the RESP bytes of all ``HSET`` commands column-wise (encoding.py)
and send them down one socket in large chunks (pipelining without redis-py's
per-command packing); replies are counted, and any error reply is raised.
``replace`` deletes this view's fields from keys of the project that the new
data does not have (SCAN + pipelined HDEL). Redis has no transactions across
that many keys: readers may see a mix of old and new keys of one view until
the write ends (materialize promises one transaction per view only on SQLite
and PostgreSQL).
"""

from __future__ import annotations

import socket
import struct

import mmh3
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from bigml_fs.core.timeutil import EVENT_TIMESTAMP
from bigml_fs.errors import EngineError
from bigml_fs.store.naming import FeastPart
from bigml_fs.store.online import encoding
from bigml_fs.store.online.base import Found, OnlineStore, part_name_of
from bigml_fs.store.online.sqlite import data_types

CHUNK_BYTES = 4 << 20  # bytes of commands per socket write
SCAN_COUNT = 5000


def field_hash(view: str, feature: str) -> bytes:
    """Feast's ``_mmh3(f"{view}:{feature}")``: the unsigned murmur3 hash, 4 bytes little-endian."""
    return struct.pack("<I", mmh3.hash(f"{view}:{feature}", signed=False))


def ts_field(view: str) -> bytes:
    return f"_ts:{view}".encode()


def timestamp_protos(column: pa.ChunkedArray | pa.Array) -> pa.LargeBinaryArray:
    """``google.protobuf.Timestamp`` bytes (seconds = 1, nanos = 2; zero fields omitted) of each time."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    micros = np.asarray(
        column.cast(pa.timestamp("us", tz="UTC")).cast(pa.int64()).fill_null(0).to_numpy(zero_copy_only=False),
        dtype=np.int64,
    )
    seconds = np.floor_divide(micros, 1_000_000)
    nanos = (micros - seconds * 1_000_000) * 1000
    has_s, has_n = seconds != 0, nanos != 0
    n = len(micros)
    segments = [
        encoding._const(b"\x08", n, has_s),
        encoding._varint(seconds, has_s),
        encoding._const(b"\x10", n, has_n),
        encoding._varint(nanos, has_n),
    ]
    return encoding._concat(segments, n)


def _bulk(array: pa.LargeBinaryArray) -> list[encoding._Segment]:
    """RESP bulk strings ``$<len>\\r\\n<bytes>\\r\\n`` of each row."""
    n = len(array)
    data = encoding._variable(array)
    digits = pc.binary_length(data).cast(pa.string()).cast(pa.large_binary())
    return [encoding._const(b"$", n), digits, encoding._const(b"\r\n", n), data, encoding._const(b"\r\n", n)]


def _bulk_const(value: bytes, n: int) -> encoding._Segment:
    return encoding._const(b"$%d\r\n%s\r\n" % (len(value), value), n)


class _Raw:
    """A bare RESP connection for bulk writes: send many commands, count the replies."""

    def __init__(self, host: str, port: int, db: int, password: str | None, timeout: float = 60.0):
        self.where = f"{host}:{port}"
        try:
            self.sock = socket.create_connection((host, port), timeout=timeout)
        except OSError as exc:
            raise EngineError(f"cannot reach the Redis online store at {self.where}: {exc.strerror or exc}") from None
        if password:
            self.call(b"AUTH", password.encode())
        if db:
            self.call(b"SELECT", str(db).encode())

    def call(self, *args: bytes) -> None:
        self.sock.sendall(b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args))
        self.replies(1)

    def send(self, payload: memoryview | bytes) -> None:
        self.sock.sendall(payload)

    def replies(self, count: int) -> None:
        """Read the one-line replies (integers, statuses) of the last ``count`` commands; raise on an error reply.

        Replies are counted by their CRLFs in whole received chunks, not parsed one by one:
        every command sent here answers with one line, and the caller waits for all of them
        before sending more.
        """
        buf = bytearray()
        seen = 0
        while seen < count:
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise EngineError(f"the Redis online store at {self.where} closed the connection")
            seen += (buf[-1:] + chunk).count(b"\r\n")
            buf += chunk
        if buf.startswith(b"-") or b"\r\n-" in buf:
            start = 0 if buf.startswith(b"-") else buf.index(b"\r\n-") + 2
            message = bytes(buf[start + 1 : buf.index(b"\r\n", start)]).decode(errors="replace")
            if "AUTH" in message or "WRONGPASS" in message:
                raise EngineError(f"the Redis online store at {self.where} refused the password (check password_env)")
            raise EngineError(f"the Redis online store at {self.where} refused a write: {message}")

    def close(self) -> None:
        self.sock.close()


class RedisOnlineStore(OnlineStore):
    """Feast's Redis layout on one server."""

    def __init__(
        self, project: str, host: str = "127.0.0.1", port: int = 6379, db: int = 0, password: str | None = None
    ):
        super().__init__(project)
        self.host, self.port, self.db = host, port, db
        self._password = password
        self._client = None

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def client(self):
        if self._client is None:
            import redis

            self._client = redis.Redis(
                host=self.host, port=self.port, db=self.db, password=self._password, socket_connect_timeout=5
            )
        return self._client

    def _fail(self, exc: Exception) -> EngineError:
        text = type(exc).__name__
        if "auth" in str(exc).lower() or "password" in str(exc).lower():
            text = "authentication failed (check password_env)"
        return EngineError(f"cannot reach the Redis online store at {self.where}: {text}")

    def ping(self) -> None:
        import redis

        try:
            self.client.ping()
        except redis.RedisError as exc:
            raise self._fail(exc) from None

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    # --- write ------------------------------------------------------------

    def write(self, part: FeastPart, data: pa.Table, replace: bool = False) -> int:
        key_types, feat_types = data_types(part, data)
        features = list(feat_types)
        n = data.num_rows
        suffix = self.project.encode()
        keys = (
            encoding._concat(
                [
                    encoding._variable(encoding.entity_keys(data.select(list(part.join_keys)), key_types)),
                    encoding._const(suffix, n),
                ],
                n,
            )
            if n
            else pa.array([], pa.large_binary())
        )
        raw = _Raw(self.host, self.port, self.db, self._password)
        try:
            if n:
                segments = [encoding._const(b"*%d\r\n$4\r\nHSET\r\n" % (2 + 2 * (len(features) + 1)), n), *_bulk(keys)]
                for f in features:
                    segments.append(_bulk_const(field_hash(part.name, f), n))
                    segments += _bulk(encoding.values(data.column(f), feat_types[f]))
                segments.append(_bulk_const(ts_field(part.name), n))
                segments += _bulk(timestamp_protos(data.column(EVENT_TIMESTAMP)))
                commands = encoding._concat(segments, n)
                self._send(raw, commands)
            if replace:
                self._delete_absent(raw, part, set(keys.to_pylist()), features)
        except OSError as exc:
            raise EngineError(f"lost the Redis online store at {self.where}: {exc.strerror or exc}") from None
        finally:
            raw.close()
        return n

    @staticmethod
    def _send(raw: _Raw, commands: pa.LargeBinaryArray) -> None:
        """Send the commands in chunks of about CHUNK_BYTES, reading each chunk's replies."""
        offsets = np.frombuffer(commands.buffers()[1], dtype=np.int64)
        data = memoryview(commands.buffers()[2]) if commands.buffers()[2] is not None else memoryview(b"")
        n = len(commands)
        start = 0
        while start < n:
            stop = int(np.searchsorted(offsets, offsets[start] + CHUNK_BYTES, side="right")) - 1
            stop = min(max(stop, start + 1), n)
            raw.send(data[offsets[start] : offsets[stop]])
            raw.replies(stop - start)
            start = stop

    def _delete_absent(self, raw: _Raw, part: FeastPart, keep: set[bytes], features: list[str]) -> None:
        """HDEL this view's fields from every key of the project that is not in ``keep``."""
        fields = [field_hash(part.name, f) for f in {*features, *part.feature_names}] + [ts_field(part.name)]
        pattern = b"*" + _glob_escape(self.project.encode())
        suffix = self.project.encode()
        stale = [
            k for k in self.client.scan_iter(match=pattern, count=SCAN_COUNT) if k not in keep and owned(k, suffix)
        ]
        for i in range(0, len(stale), 10_000):
            batch = stale[i : i + 10_000]
            payload = b"".join(
                b"*%d\r\n$4\r\nHDEL\r\n$%d\r\n%s\r\n" % (2 + len(fields), len(k), k)
                + b"".join(b"$%d\r\n%s\r\n" % (len(f), f) for f in fields)
                for k in batch
            )
            raw.send(payload)
            raw.replies(len(batch))

    def drop(self, part_name: str) -> None:
        """Remove the view's ``_ts`` marker from every key (its feature fields go when it is rewritten).

        Only the view's name is known here, and feature fields are murmur hashes
        of ``view:feature``; without the marker both Feast's and our reader see
        the view's keys as absent.
        """
        import redis

        ts = ts_field(part_name_of(part_name))
        pattern = b"*" + _glob_escape(self.project.encode())
        try:
            suffix = self.project.encode()
            keys = [k for k in self.client.scan_iter(match=pattern, count=SCAN_COUNT) if owned(k, suffix)]
            for i in range(0, len(keys), 10_000):
                with self.client.pipeline(transaction=False) as pipe:
                    for k in keys[i : i + 10_000]:
                        pipe.hdel(k, ts)
                    pipe.execute()
        except redis.RedisError as exc:
            raise self._fail(exc) from None

    # --- read -------------------------------------------------------------

    def fetch(self, part: FeastPart, keys_bin: list[bytes | None], features: list[str]) -> dict[bytes, Found]:
        import redis

        suffix = self.project.encode()
        unique = [k for k in dict.fromkeys(keys_bin) if k is not None]
        fields = [field_hash(part.name, f) for f in features] + [ts_field(part.name)]
        try:
            with self.client.pipeline(transaction=False) as pipe:
                for k in unique:
                    pipe.hmget(k + suffix, fields)
                replies = pipe.execute()
        except redis.RedisError as exc:
            raise self._fail(exc) from None
        found: dict[bytes, Found] = {}
        for k, values in zip(unique, replies, strict=True):
            ts = values[-1]
            if ts is None:  # this view never wrote the key (or it was removed)
                continue
            found[k] = (
                _timestamp_micros(ts),
                {f: v for f, v in zip(features, values[:-1], strict=True) if v is not None},
            )
        return found


def _timestamp_micros(raw: bytes) -> int:
    """UTC microseconds of a serialized ``google.protobuf.Timestamp``."""
    seconds = nanos = 0
    pos = 0
    while pos < len(raw):
        tag = raw[pos]
        value, pos = encoding._read_varint(raw, pos + 1)
        if value >= 1 << 63:
            value -= 1 << 64
        if tag == 0x08:
            seconds = value
        elif tag == 0x10:
            nanos = value
    return seconds * 1_000_000 + nanos // 1000


def owned(key: bytes, suffix: bytes) -> bool:
    """Whether a Redis key is a serialized entity key (v3) followed by exactly this project's name.

    ``SCAN MATCH *project`` also returns keys of a project whose name merely ends
    the same way ("fraud" and "antifraud"); Feast's own cleanup has that flaw.
    """
    try:
        (count,) = struct.unpack_from("<I", key, 0)
        pos = 4
        for _ in range(2 * count):  # names, then values: <I type><I len><bytes>
            (length,) = struct.unpack_from("<I", key, pos + 4)
            pos += 8 + length
        return pos + len(suffix) == len(key) and key.endswith(suffix)
    except struct.error:
        return False


def _glob_escape(value: bytes) -> bytes:
    out = bytearray()
    for b in value:
        if b in b"*?[]\\":
            out += b"\\"
        out.append(b)
    return bytes(out)
