"""Feast's online encodings, built column-wise with numpy instead of row by row.

Two byte formats matter, and both must equal Feast 0.67's output byte for byte:

* entity keys, ``serialize_entity_key(key, entity_key_serialization_version=3)``:
  ``<I n>``, then per join key in name order ``<I 2><I len>name``, then per value
  ``<I value_type><I len>bytes`` (int64 ``<q``, int32 ``<i``, strings UTF-8);
* feature values, ``ValueProto.SerializeToString()``: one oneof field, i.e. a tag
  byte and a varint, a fixed 4/8-byte payload or a length-prefixed payload; a
  null is the empty message ``b""``.

Every row is a concatenation of *segments* (constant bytes, fixed-width numbers,
varints, variable-length strings); ``_concat`` lays all rows' segments into one
buffer with vectorized scatters, so the cost is a few numpy passes over the
bytes, never a Python call per value. Decoding (the read path, a few hundred
values per request) is plain Python over the same layout.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from bigml_fs.store import feast_types as ft
from bigml_fs.store.feast_types import FeastType

# feast.ValueType numbers used in the entity key format
_KEY_VALUE_TYPE = {"int32": 3, "int64": 4, "string": 2, "bytes": 1}
_STRING_VALUE_TYPE = 2

# ValueProto field numbers and wire types
_FIELD = {
    "bytes_val": 1,
    "string_val": 2,
    "int32_val": 3,
    "int64_val": 4,
    "double_val": 5,
    "float_val": 6,
    "bool_val": 7,
    "unix_timestamp_val": 8,
}
_WIRE_VARINT, _WIRE_I64, _WIRE_LEN, _WIRE_I32 = 0, 1, 2, 5


def _tag(field: str, wire: int) -> int:
    return (_FIELD[field] << 3) | wire


# pyarrow imports pandas (~0.5 s, several seconds on a loaded machine) the first time
# pa.array, pa.scalar or Array.to_numpy runs, to check for pandas objects; the write
# path never needs pandas, so it moves data between numpy and Arrow through raw
# buffers (the helpers below) and makes its scalars from arrays.


def _bits(buffer: pa.Buffer, offset: int, n: int) -> np.ndarray:
    return np.unpackbits(np.frombuffer(buffer, dtype=np.uint8), bitorder="little")[offset : offset + n].astype(bool)


def _to_numpy(array: pa.Array | pa.ChunkedArray, dtype: str | np.dtype) -> np.ndarray:
    """The values of a fixed-width Arrow array (bool, integer, float) as ``dtype``; nulls read as 0."""
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks() if array.num_chunks != 1 else array.chunk(0)
    n, offset = len(array), array.offset
    validity, data = array.buffers()[:2]
    if data is None or not n:
        return np.zeros(n, dtype=dtype)
    if pa.types.is_boolean(array.type):
        values = _bits(data, offset, n).astype(dtype)
    else:
        width = array.type.bit_width // 8
        physical = np.frombuffer(data, dtype=f"<{'f' if pa.types.is_floating(array.type) else 'i'}{width}")
        values = physical[offset : offset + n].astype(dtype)  # a copy: the zeros below must not touch Arrow's buffer
    if array.null_count and validity is not None:
        values[~_bits(validity, offset, n)] = 0
    return values


def _from_numpy(values: np.ndarray, type: pa.DataType) -> pa.Array:
    """A fixed-width numpy array as an Arrow array of ``type`` (same width, no nulls)."""
    if values.dtype == np.bool_:
        bits = np.packbits(values, bitorder="little")
        return pa.Array.from_buffers(pa.bool_(), len(values), [None, pa.py_buffer(bits)])
    return pa.Array.from_buffers(type, len(values), [None, pa.py_buffer(np.ascontiguousarray(values))])


def _bytes_scalar(value: bytes) -> pa.Scalar:
    offsets = np.array([0, len(value)], dtype=np.int64)
    return pa.Array.from_buffers(pa.large_binary(), 1, [None, pa.py_buffer(offsets), pa.py_buffer(value)])[0]


def _string_scalar(value: str) -> pa.Scalar:
    return pa.Array.from_buffers(
        pa.large_binary(),
        1,
        [None, pa.py_buffer(np.array([0, len(value.encode())], np.int64)), pa.py_buffer(value.encode())],
    ).cast(pa.large_string())[0]


# A segment is a large_binary array without nulls (one piece per row) or a scalar (the
# same bytes in every row); Arrow's binary_join_element_wise concatenates them row-wise.
_Segment = pa.Array | pa.Scalar
_EMPTY = _bytes_scalar(b"")


def _present_mask(present: np.ndarray | None) -> pa.Array | None:
    return None if present is None else _from_numpy(np.asarray(present, dtype=bool), pa.bool_())


def _const(value: bytes, n: int, present: np.ndarray | None = None) -> _Segment:
    """The same bytes in every row (or only where ``present``)."""
    scalar = _bytes_scalar(value)
    mask = _present_mask(present)
    return scalar if mask is None else pc.if_else(mask, scalar, _EMPTY)


def _from_lengths(data: np.ndarray, lengths: np.ndarray) -> pa.Array:
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    return pa.Array.from_buffers(
        pa.large_binary(), len(lengths), [None, pa.py_buffer(offsets), pa.py_buffer(np.ascontiguousarray(data))]
    )


def _fixed(values: np.ndarray, present: np.ndarray | None = None) -> _Segment:
    """Fixed-width numbers, in the byte order of ``values``' dtype (give '<i8', '>i4', ...)."""
    width = values.dtype.itemsize
    values = np.ascontiguousarray(values)
    array = pa.Array.from_buffers(pa.binary(width), len(values), [None, pa.py_buffer(values.view(np.uint8))]).cast(
        pa.large_binary()
    )
    mask = _present_mask(present)
    return array if mask is None else pc.if_else(mask, array, _EMPTY)


def _varint(values: np.ndarray, present: np.ndarray | None = None) -> _Segment:
    """Protobuf varints of int64 values (negative numbers as 10-byte two's complement)."""
    u = np.asarray(values, dtype=np.int64).view(np.uint64)
    nbytes = np.ones(len(u), dtype=np.int64)
    for k in range(1, 10):  # one more byte per 7 bits above the first 7
        nbytes += u >= np.uint64(1 << (7 * k))
    if present is not None:
        nbytes[~present] = 0
    width = max(int(nbytes.max()), 1) if len(u) else 1
    shifts = np.arange(width, dtype=np.uint64) * np.uint64(7)
    groups = ((u[:, None] >> shifts[None, :]) & np.uint64(0x7F)).astype(np.uint8)
    cont = np.arange(width)[None, :] < (nbytes[:, None] - 1)
    groups |= cont.astype(np.uint8) << 7
    mask = np.arange(width)[None, :] < nbytes[:, None]
    return _from_lengths(groups[mask], nbytes)


def _variable(array: pa.Array | pa.ChunkedArray) -> pa.Array:
    """The raw bytes of a string/binary column (nulls as empty)."""
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if not pa.types.is_large_binary(array.type):
        array = array.cast(pa.large_binary())
    return array.fill_null(_EMPTY) if array.null_count else array


def _lengths(array: pa.Array) -> np.ndarray:
    """Byte length of each row of a large_binary array."""
    return _to_numpy(pc.binary_length(array), np.int64)


def _concat(segments: Sequence[_Segment], n: int) -> pa.LargeBinaryArray:
    """Row i = segment0 row i + segment1 row i + ...; one large_binary array."""
    if not any(isinstance(s, pa.Array) for s in segments):
        segments = [pa.repeat(segments[0], n), *segments[1:]]
    out = pc.binary_join_element_wise(*segments, _EMPTY)
    if isinstance(out, pa.ChunkedArray):
        out = out.combine_chunks()
    return out


# --- entity keys ------------------------------------------------------------


def _key_value_segments(array: pa.Array, ftype: FeastType) -> list[_Segment]:
    n = len(array)
    code = _KEY_VALUE_TYPE[ftype.name]
    if ftype.name in ("int64", "int32"):
        width = 8 if ftype.name == "int64" else 4
        values = _to_numpy(array, "<i8" if width == 8 else "<i4")
        return [_const(struct.pack("<II", code, width), n), _fixed(values)]
    var = _variable(array)
    return [_const(struct.pack("<I", code), n), _fixed(_lengths(var).astype("<u4")), var]


def entity_keys(keys: pa.Table, types: dict[str, FeastType]) -> pa.LargeBinaryArray:
    """``serialize_entity_key(..., entity_key_serialization_version=3)`` of every row of ``keys``.

    ``types`` gives each join key's Feast type; columns are cast to it first.
    Rows with a null key are the caller's business (they are never stored).
    """
    n = keys.num_rows
    names = sorted(keys.column_names)  # Feast sorts (join_key, value) pairs by key name
    header = struct.pack("<I", len(names))
    for name in names:
        raw = name.encode("utf8")
        header += struct.pack("<II", _STRING_VALUE_TYPE, len(raw)) + raw
    segments = [_const(header, n)]
    for name in names:
        ftype = types[name]
        segments += _key_value_segments(ft.to_canonical(keys.column(name), ftype), ftype)
    return _concat(segments, n)


def key_serializer(key_types: dict[str, FeastType]):
    """A function serializing one entity key (v3) from its values in ``key_types`` order; the small-request path.

    The header (key count and sorted key names) is built once; each row is one
    ``struct.pack`` per key.
    """
    names = list(key_types)
    order = sorted(range(len(names)), key=lambda i: names[i])
    header = struct.pack("<I", len(names))
    for i in order:
        raw = names[i].encode("utf8")
        header += struct.pack("<II", _STRING_VALUE_TYPE, len(raw)) + raw
    packers = []
    for i in order:
        ftype = key_types[names[i]]
        code = _KEY_VALUE_TYPE[ftype.name]
        if ftype.name == "int64":
            packers.append((i, struct.Struct("<IIq").pack, code, 8))
        elif ftype.name == "int32":
            packers.append((i, struct.Struct("<IIi").pack, code, 4))
        else:
            packers.append((i, None, code, 0))

    def pack_var(code: int, value: object) -> bytes:
        raw = value.encode("utf8") if isinstance(value, str) else bytes(value)  # type: ignore[arg-type]
        return struct.pack("<II", code, len(raw)) + raw

    if len(packers) == 1:
        _, pack, code, width = packers[0]
        if pack is not None:
            return lambda values: header + pack(code, width, values[0])
        return lambda values: header + pack_var(code, values[0])

    def serialize(values: list) -> bytes:
        parts = [header]
        for i, pack, code, width in packers:
            parts.append(pack(code, width, values[i]) if pack is not None else pack_var(code, values[i]))
        return b"".join(parts)

    return serialize


# --- feature values ---------------------------------------------------------


def values(array: pa.Array | pa.ChunkedArray, ftype: FeastType) -> pa.LargeBinaryArray:
    """``ValueProto`` bytes of each value, as Feast's materialize writes them (null: ``b""``)."""
    array = _nan_as_null(ft.to_canonical(array, ftype), ftype)
    n = len(array)
    present = _to_numpy(array.is_valid(), bool) if array.null_count else None
    field = ftype.proto_field
    if ftype.name in ("int32", "int64"):
        nums = _to_numpy(array, np.int64)
        segs = [_const(bytes([_tag(field, _WIRE_VARINT)]), n, present), _varint(nums, present)]
    elif ftype is ft.TIMESTAMP:
        micros = _to_numpy(array.cast(pa.int64()), np.int64)
        seconds = _trunc_div(micros, 1_000_000)
        segs = [_const(bytes([_tag(field, _WIRE_VARINT)]), n, present), _varint(seconds, present)]
    elif ftype.name == "float64":
        nums = _to_numpy(array, "<f8")
        segs = [_const(bytes([_tag(field, _WIRE_I64)]), n, present), _fixed(nums, present)]
    elif ftype.name == "float32":
        nums = _to_numpy(array, "<f4")
        segs = [_const(bytes([_tag(field, _WIRE_I32)]), n, present), _fixed(nums, present)]
    elif ftype.name == "bool":
        nums = _to_numpy(array, np.uint8)
        segs = [_const(bytes([_tag(field, _WIRE_VARINT)]), n, present), _fixed(nums, present)]
    else:  # string, bytes
        var = _variable(array)
        segs = [_const(bytes([_tag(field, _WIRE_LEN)]), n, present), _varint(_lengths(var), present), var]
    return _concat(segs, n)


def _trunc_div(values: np.ndarray, by: int) -> np.ndarray:
    """Integer division rounding toward zero, like Python's ``int(dt.timestamp())``."""
    q = np.abs(values) // by
    return np.where(values < 0, -q, q)


def _nan_as_null(array: pa.Array, ftype: FeastType) -> pa.Array:
    """Feast's encoder writes NaN as a null value (``pd.isnull``); so do we."""
    if ftype.name in ("float32", "float64") and len(array) and pc.any(pc.is_nan(array)).as_py():
        return pc.if_else(pc.is_nan(array), pa.nulls(1, array.type)[0], array)
    return array


def value_texts(array: pa.Array | pa.ChunkedArray, ftype: FeastType) -> list[str | None]:
    """The ``value_text`` column Feast's SQL stores write (``extract_text_and_num``)."""
    array = _nan_as_null(ft.to_canonical(array, ftype), ftype)
    if ftype is ft.STRING:
        return array.to_pylist()
    if ftype.name in ("int32", "int64"):
        return array.cast(pa.string()).to_pylist()
    if ftype.name in ("float32", "float64"):
        floats = array.cast(pa.float64()).to_pylist()
        return [None if v is None else repr(v) for v in floats] if array.null_count else list(map(repr, floats))
    if ftype is ft.BOOL:
        return pc.if_else(array, _string_scalar("True"), _string_scalar("False")).to_pylist()
    return [None] * len(array)


# --- decoding (read path) ---------------------------------------------------


def _read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, pos
        shift += 7


_UNPACK_D = struct.Struct("<d").unpack_from
_UNPACK_F = struct.Struct("<f").unpack_from


def decode_value(buf: bytes | None) -> object:
    """One ValueProto's Python value (None for a null or missing value).

    Handles the scalar fields Feast writes for the types in feast_types;
    timestamps come back as int seconds (the caller converts by the column type).
    """
    if not buf:
        return None
    tag = buf[0]
    field, wire = tag >> 3, tag & 7
    if wire == _WIRE_VARINT:
        value, _ = _read_varint(buf, 1)
        if field == 7:
            return bool(value)
        if value >= 1 << 63:
            value -= 1 << 64
        if field == 3 and value >= 1 << 31:  # int32 written unsigned-extended by other writers
            value -= 1 << 32
        return value
    if wire == _WIRE_I64:
        return _UNPACK_D(buf, 1)[0]
    if wire == _WIRE_I32:
        return _UNPACK_F(buf, 1)[0]
    if wire == _WIRE_LEN:
        length, pos = _read_varint(buf, 1)
        raw = buf[pos : pos + length]
        return raw.decode("utf8") if field == 2 else bytes(raw)
    return None


SMALL = 256  # below this many values, decoding one by one beats numpy's fixed costs


def decode_column(raw: Sequence[bytes | None], ftype: FeastType) -> pa.Array:
    """Decode ValueProto bytes (None or b"" for null) to an Arrow array of the feature's canonical type.

    Vectorized over the column: the bytes go into one Arrow binary array and the
    payloads are read with numpy at fixed positions after each tag. Values written
    in another field than ``ftype`` expects (another writer) are decoded one by one.
    """
    n = len(raw)
    if n <= SMALL:
        return _decode_slow(raw, ftype)
    array = pa.array([b or None for b in raw], pa.binary())  # b"" (a null value) as null
    offsets = np.frombuffer(array.buffers()[1], dtype=np.int32)[array.offset : array.offset + n + 1].astype(np.int64)
    buf = array.buffers()[2]
    data = np.frombuffer(buf, dtype=np.uint8) if buf is not None and n else np.zeros(1, np.uint8)
    lengths = np.diff(offsets)
    present = lengths > 0
    if not present.any():
        return pa.nulls(n, ftype.arrow)
    starts = offsets[:-1]
    field = _FIELD[ftype.proto_field]
    wire = {
        "int32": _WIRE_VARINT,
        "int64": _WIRE_VARINT,
        "bool": _WIRE_VARINT,
        "timestamp": _WIRE_VARINT,
        "float64": _WIRE_I64,
        "float32": _WIRE_I32,
    }.get(ftype.name, _WIRE_LEN)
    expected_tag = (field << 3) | wire
    tags = np.where(present, data[np.where(present, starts, 0)], expected_tag)
    if (tags != expected_tag).any():
        return _decode_slow(raw, ftype)
    mask = ~present if not present.all() else None
    if ftype.name in ("float64", "float32"):
        width = 8 if ftype.name == "float64" else 4
        idx = np.where(present, starts + 1, 0)[:, None] + np.arange(width)[None, :]
        values = (
            np.ascontiguousarray(data[np.minimum(idx, len(data) - 1)]).view("<f8" if width == 8 else "<f4").reshape(-1)
        )
        return pa.array(values, ftype.arrow, mask=mask)
    if wire == _WIRE_VARINT:
        width = int(lengths.max()) - 1
        idx = np.where(present, starts + 1, 0)[:, None] + np.arange(width)[None, :]
        groups = data[np.minimum(idx, len(data) - 1)].astype(np.uint64)
        within = np.arange(width)[None, :] < (lengths - 1)[:, None]
        groups = np.where(within, groups & np.uint64(0x7F), np.uint64(0))
        shifts = np.arange(width, dtype=np.uint64) * np.uint64(7)
        values = (
            np.bitwise_or.reduce(groups << shifts[None, :], axis=1).view(np.int64) if width else np.zeros(n, np.int64)
        )
        if ftype is ft.BOOL:
            return pa.array(values != 0, pa.bool_(), mask=mask)
        if ftype is ft.TIMESTAMP:
            return pa.array(values * 1_000_000, pa.int64(), mask=mask).cast(ftype.arrow)
        return pa.array(values.astype(np.int32) if ftype is ft.INT32 else values, ftype.arrow, mask=mask)
    # strings and bytes: tag, varint length, payload; short payloads (< 128 bytes) have a 2-byte header
    if (lengths[present] - 2 < 128).all():
        keep = np.ones(len(data), dtype=bool)  # drop each value's 2 header bytes, keep the payloads
        keep[starts[present]] = False
        keep[starts[present] + 1] = False
        payload = data[: int(offsets[-1])][keep[: int(offsets[-1])]]
        sliced = _from_lengths(payload, np.where(present, lengths - 2, 0)).cast(
            pa.large_string() if ftype is ft.STRING else pa.large_binary()
        )
        if mask is not None:
            sliced = pc.if_else(pa.array(present), sliced, pa.scalar(None, sliced.type))
        return sliced.cast(ftype.arrow)
    return _decode_slow(raw, ftype)


def _decode_slow(raw: Sequence[bytes | None], ftype: FeastType) -> pa.Array:
    decode = FAST_DECODERS.get(ftype.name, decode_value)
    items = [decode(b) if b else None for b in raw]
    if ftype is ft.TIMESTAMP:
        return pa.array([None if v is None else v * 1_000_000 for v in items], pa.int64()).cast(ftype.arrow)
    return pa.array(items, ftype.arrow)


def _fast_double(b: bytes) -> object:
    return _UNPACK_D(b, 1)[0] if b[0] == 0x29 and len(b) == 9 else decode_value(b)


def _fast_float(b: bytes) -> object:
    return _UNPACK_F(b, 1)[0] if b[0] == 0x35 and len(b) == 5 else decode_value(b)


def _fast_small_int(b: bytes) -> object:
    return b[1] if len(b) == 2 and b[0] in (0x18, 0x20, 0x40) else decode_value(b)


def _fast_string(b: bytes) -> object:
    return b[2:].decode("utf8") if b[0] == 0x12 and b[1] < 0x80 else decode_value(b)


FAST_DECODERS = {
    "float64": _fast_double,
    "float32": _fast_float,
    "int64": _fast_small_int,
    "int32": _fast_small_int,
    "timestamp": _fast_small_int,
    "string": _fast_string,
}


def infer_type(raw: Sequence[bytes | None]) -> FeastType | None:
    """The Feast type of stored values, from the first non-null one's field tag (None if all null)."""
    for b in raw:
        if b:
            field = b[0] >> 3
            for name, number in _FIELD.items():
                if number == field:
                    return ft.BY_PROTO_FIELD[name]
    return None


def sort_order(keys: pa.LargeBinaryArray) -> np.ndarray:
    """Indices that sort serialized keys bytewise (SQLite's BLOB order, PostgreSQL's bytea order)."""
    offsets = np.frombuffer(keys.buffers()[1], dtype=np.int64)[keys.offset : keys.offset + len(keys) + 1]
    lengths = np.diff(offsets)
    if len(keys) and (lengths == lengths[0]).all() and lengths[0] > 0 and not keys.null_count:
        width = int(lengths[0])
        data = np.frombuffer(keys.buffers()[2], dtype=np.uint8)[offsets[0] : offsets[-1]].reshape(-1, width)
        varying = data[:, (data != data[0]).any(axis=0)]  # constant columns (the key names) do not order
        if varying.shape[1] == 0:
            return np.arange(len(keys))
        pad = (-varying.shape[1]) % 8  # big-endian 8-byte words compare like memcmp
        words = np.ascontiguousarray(np.pad(varying, ((0, 0), (0, pad)))).view(">u8")
        return np.lexsort(words.T[::-1])
    return _to_numpy(pc.sort_indices(keys), np.int64)
