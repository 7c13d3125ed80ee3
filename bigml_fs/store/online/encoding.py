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
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from bigml_fs.store import feast_types as ft
from bigml_fs.store.feast_types import FeastType

# feast.ValueType numbers used in the entity key format
_KEY_VALUE_TYPE = {"int32": 3, "int64": 4, "string": 2, "bytes": 1}
_STRING_VALUE_TYPE = 2

# ValueProto field numbers and wire types
_FIELD = {"bytes_val": 1, "string_val": 2, "int32_val": 3, "int64_val": 4, "double_val": 5, "float_val": 6, "bool_val": 7, "unix_timestamp_val": 8}
_WIRE_VARINT, _WIRE_I64, _WIRE_LEN, _WIRE_I32 = 0, 1, 2, 5


def _tag(field: str, wire: int) -> int:
    return (_FIELD[field] << 3) | wire


@dataclass
class _Segment:
    """One piece of every row: ``lengths[i]`` bytes of ``data`` for row i, rows laid out in order."""

    data: np.ndarray  # uint8, the rows' bytes back to back
    lengths: np.ndarray  # int64 per row


def _const(value: bytes, n: int, present: np.ndarray | None = None) -> _Segment:
    """The same bytes in every row (or only where ``present``)."""
    lengths = np.full(n, len(value), dtype=np.int64)
    if present is not None:
        lengths[~present] = 0
    rows = int(lengths.astype(bool).sum()) if present is not None else n
    data = np.tile(np.frombuffer(value, dtype=np.uint8), rows) if value else np.empty(0, np.uint8)
    return _Segment(data, lengths)


def _fixed(values: np.ndarray, present: np.ndarray | None = None) -> _Segment:
    """Fixed-width little-endian numbers (``values`` already of the wanted dtype)."""
    width = values.dtype.itemsize
    values = values.astype(values.dtype.newbyteorder("<"), copy=False)
    if present is not None:
        values = values[present]
    data = np.ascontiguousarray(values).view(np.uint8).reshape(-1)
    n = len(present) if present is not None else len(values)
    lengths = np.full(n, width, dtype=np.int64)
    if present is not None:
        lengths[~present] = 0
    return _Segment(data, lengths)


def _varint(values: np.ndarray, present: np.ndarray | None = None) -> _Segment:
    """Protobuf varints of int64 values (negative numbers as 10-byte two's complement)."""
    u = values.astype(np.int64, copy=False).view(np.uint64)
    if present is not None:
        u = u[present]
    nbytes = np.ones(len(u), dtype=np.int64)
    for k in range(1, 10):  # one more byte per 7 bits above the first 7
        nbytes += u >= np.uint64(1 << (7 * k))
    width = int(nbytes.max()) if len(u) else 1
    shifts = np.arange(width, dtype=np.uint64) * np.uint64(7)
    groups = ((u[:, None] >> shifts[None, :]) & np.uint64(0x7F)).astype(np.uint8)
    cont = np.arange(width)[None, :] < (nbytes[:, None] - 1)
    groups |= cont.astype(np.uint8) << 7
    mask = np.arange(width)[None, :] < nbytes[:, None]
    data = groups[mask]
    n = len(present) if present is not None else len(u)
    lengths = np.zeros(n, dtype=np.int64)
    if present is not None:
        lengths[present] = nbytes
    else:
        lengths[:] = nbytes
    return _Segment(data, lengths)


def _binary_parts(array: pa.Array) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(data bytes, start offsets, lengths) of a string/binary array; nulls have length 0."""
    if not pa.types.is_large_binary(array.type):
        array = array.cast(pa.large_binary())
    offsets_buf, data_buf = array.buffers()[1], array.buffers()[2]
    offsets = np.frombuffer(offsets_buf, dtype=np.int64)[array.offset : array.offset + len(array) + 1]
    data = np.frombuffer(data_buf, dtype=np.uint8) if data_buf is not None else np.empty(0, np.uint8)
    lengths = np.diff(offsets)
    if array.null_count:
        lengths = np.where(np.asarray(array.is_valid()), lengths, 0)
    return data, offsets[:-1], lengths


def _variable(array: pa.Array) -> _Segment:
    """The raw bytes of a string/binary column."""
    data, starts, lengths = _binary_parts(array)
    total = int(lengths.sum())
    if total == 0:
        return _Segment(np.empty(0, np.uint8), lengths)
    # gather each row's slice: index = start[row] + position within the row
    row_of_byte = np.repeat(np.arange(len(lengths)), lengths)
    first = np.cumsum(lengths) - lengths
    idx = starts[row_of_byte] + (np.arange(total) - first[row_of_byte])
    return _Segment(data[idx], lengths)


def _uniform_width(seg: _Segment, n: int) -> int | None:
    """The segment's width when it is the same for every row, else None."""
    if n == 0:
        return 0
    w = int(seg.lengths[0])
    return w if len(seg.data) == w * n and (seg.lengths == w).all() else None


def _concat(segments: Sequence[_Segment], n: int) -> pa.LargeBinaryArray:
    """Row i = segment0 row i + segment1 row i + ...; one LargeBinary array."""
    widths = [_uniform_width(seg, n) for seg in segments]
    if all(w is not None for w in widths):  # every row has the same layout: fill a 2-D matrix
        total = sum(widths)
        matrix = np.empty((n, total), dtype=np.uint8)
        col = 0
        for seg, w in zip(segments, widths, strict=True):
            matrix[:, col : col + w] = seg.data.reshape(n, w)
            col += w
        offsets = np.arange(n + 1, dtype=np.int64) * total
        return pa.Array.from_buffers(pa.large_binary(), n, [None, pa.py_buffer(offsets), pa.py_buffer(matrix)])
    lengths = np.zeros(n, dtype=np.int64)
    for seg in segments:
        lengths += seg.lengths
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    out = np.empty(int(offsets[-1]), dtype=np.uint8)
    pos = offsets[:-1].copy()  # where the next segment of each row goes
    for seg in segments:
        if len(seg.data):
            has = seg.lengths > 0
            rows_len = seg.lengths[has]
            dest_start = pos[has]
            first = np.cumsum(rows_len) - rows_len
            shift = np.repeat(dest_start - first, rows_len)
            out[np.arange(len(seg.data)) + shift] = seg.data
        pos += seg.lengths
    return pa.Array.from_buffers(pa.large_binary(), n, [None, pa.py_buffer(offsets), pa.py_buffer(out)])


# --- entity keys ------------------------------------------------------------


def _key_value_segments(array: pa.Array, ftype: FeastType) -> list[_Segment]:
    n = len(array)
    code = _KEY_VALUE_TYPE[ftype.name]
    if ftype.name in ("int64", "int32"):
        width = 8 if ftype.name == "int64" else 4
        values = np.asarray(array.fill_null(0).to_numpy(zero_copy_only=False), dtype=np.int64 if width == 8 else np.int32)
        return [_const(struct.pack("<II", code, width), n), _fixed(values)]
    var = _variable(array)
    lens = np.asarray(var.lengths, dtype="<u4")
    return [_const(struct.pack("<I", code), n), _fixed(lens), var]


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


# --- feature values ---------------------------------------------------------


def values(array: pa.Array | pa.ChunkedArray, ftype: FeastType) -> pa.LargeBinaryArray:
    """``ValueProto`` bytes of each value, as Feast's materialize writes them (null: ``b""``)."""
    array = ft.to_canonical(array, ftype)
    n = len(array)
    present = np.asarray(array.is_valid()) if array.null_count else None
    field = ftype.proto_field
    if ftype.name in ("int32", "int64"):
        nums = np.asarray(array.fill_null(0).to_numpy(zero_copy_only=False), dtype=np.int64)
        segs = [_const(bytes([_tag(field, _WIRE_VARINT)]), n, present), _varint(nums, present)]
    elif ftype is ft.TIMESTAMP:
        micros = np.asarray(array.cast(pa.int64()).fill_null(0).to_numpy(zero_copy_only=False), dtype=np.int64)
        seconds = _trunc_div(micros, 1_000_000)
        segs = [_const(bytes([_tag(field, _WIRE_VARINT)]), n, present), _varint(seconds, present)]
    elif ftype.name == "float64":
        nums = np.asarray(array.fill_null(0).to_numpy(zero_copy_only=False), dtype="<f8")
        segs = [_const(bytes([_tag(field, _WIRE_I64)]), n, present), _fixed(nums, present)]
    elif ftype.name == "float32":
        nums = np.asarray(array.fill_null(0).to_numpy(zero_copy_only=False), dtype="<f4")
        segs = [_const(bytes([_tag(field, _WIRE_I32)]), n, present), _fixed(nums, present)]
    elif ftype.name == "bool":
        nums = np.asarray(array.fill_null(False).to_numpy(zero_copy_only=False), dtype=np.uint8)
        segs = [_const(bytes([_tag(field, _WIRE_VARINT)]), n, present), _fixed(nums, present)]
    else:  # string, bytes
        var = _variable(array)
        segs = [_const(bytes([_tag(field, _WIRE_LEN)]), n, present), _varint(var.lengths, present), var]
    return _concat(segs, n)


def _trunc_div(values: np.ndarray, by: int) -> np.ndarray:
    """Integer division rounding toward zero, like Python's ``int(dt.timestamp())``."""
    q = np.abs(values) // by
    return np.where(values < 0, -q, q)


def value_texts(array: pa.Array | pa.ChunkedArray, ftype: FeastType) -> list[str | None]:
    """The ``value_text`` column Feast's SQL stores write (``extract_text_and_num``)."""
    array = ft.to_canonical(array, ftype)
    if ftype is ft.STRING:
        return array.to_pylist()
    if ftype.name in ("int32", "int64"):
        return array.cast(pa.string()).to_pylist()
    if ftype.name in ("float32", "float64"):
        return [None if v is None else repr(v) for v in array.cast(pa.float64()).to_pylist()]
    if ftype is ft.BOOL:
        return pc.if_else(array, "True", "False").to_pylist()
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


def decode_column(raw: Sequence[bytes | None], ftype: FeastType) -> pa.Array:
    """Decode ValueProto bytes to an Arrow array of the feature's canonical type."""
    items = [decode_value(b) for b in raw]
    if ftype is ft.TIMESTAMP:
        return pa.array([None if v is None else v * 1_000_000 for v in items], pa.int64()).cast(ftype.arrow)
    return pa.array(items, ftype.arrow)


def infer_type(raw: Sequence[bytes | None]) -> FeastType | None:
    """The Feast type of stored values, from the first non-null one's field tag (None if all null)."""
    for b in raw:
        if b:
            field = b[0] >> 3
            for name, number in _FIELD.items():
                if number == field:
                    return ft.BY_PROTO_FIELD[name]
    return None
