"""The one mapping between Arrow types, engine SQL types and Feast types.

Materialize (entity value types, FeatureView schemas), the online stores
(which ValueProto field a column is encoded into, how a key is serialized) and
online reads (which Arrow type a value decodes to) all go through here, so a
column is typed the same way everywhere. Feast itself is imported lazily: only
``FeastType.dtype`` / ``FeastType.value_type_enum`` need it, and importing
feast costs seconds that the online read path must not pay.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from bigml_fs.errors import DataError


@dataclass(frozen=True)
class FeastType:
    """How one column is typed in Feast and encoded in the online store."""

    name: str  # our short name: int32, int64, float32, float64, string, bytes, bool, timestamp
    value_type: str  # feast.ValueType member name: INT64, DOUBLE, ...
    feast_dtype: str  # feast.types name: Int64, Float64, ...
    proto_field: str  # ValueProto oneof field: int64_val, double_val, ...
    arrow: pa.DataType  # canonical Arrow type values are cast to before encoding / after decoding
    key_ok: bool  # Feast's entity key serialization supports it

    @property
    def dtype(self) -> Any:
        """The ``feast.types`` object for a ``Field(dtype=...)``."""
        import feast.types

        return getattr(feast.types, self.feast_dtype)

    @property
    def value_type_enum(self) -> Any:
        """The ``feast.ValueType`` member for an ``Entity(value_type=...)``."""
        from feast.value_type import ValueType

        return ValueType[self.value_type]


INT32 = FeastType("int32", "INT32", "Int32", "int32_val", pa.int32(), True)
INT64 = FeastType("int64", "INT64", "Int64", "int64_val", pa.int64(), True)
FLOAT32 = FeastType("float32", "FLOAT", "Float32", "float_val", pa.float32(), False)
FLOAT64 = FeastType("float64", "DOUBLE", "Float64", "double_val", pa.float64(), False)
STRING = FeastType("string", "STRING", "String", "string_val", pa.string(), True)
BYTES = FeastType("bytes", "BYTES", "Bytes", "bytes_val", pa.binary(), True)
BOOL = FeastType("bool", "BOOL", "Bool", "bool_val", pa.bool_(), False)
# Feast stores UNIX_TIMESTAMP values as whole seconds (its own encoder truncates).
TIMESTAMP = FeastType(
    "timestamp", "UNIX_TIMESTAMP", "UnixTimestamp", "unix_timestamp_val", pa.timestamp("us", tz="UTC"), False
)

ALL = (INT32, INT64, FLOAT32, FLOAT64, STRING, BYTES, BOOL, TIMESTAMP)
BY_PROTO_FIELD = {t.proto_field: t for t in ALL}
BY_VALUE_TYPE = {t.value_type: t for t in ALL}


def feast_type(arrow_type: pa.DataType, what: str = "column") -> FeastType:
    """The Feast type of an Arrow column (decimals read as doubles, dates as 00:00 UTC timestamps)."""
    t = arrow_type
    if pa.types.is_dictionary(t):
        return feast_type(t.value_type, what)
    if (
        pa.types.is_int8(t)
        or pa.types.is_int16(t)
        or pa.types.is_int32(t)
        or pa.types.is_uint8(t)
        or pa.types.is_uint16(t)
    ):
        return INT32
    if pa.types.is_int64(t) or pa.types.is_uint32(t) or pa.types.is_uint64(t):
        return INT64
    if pa.types.is_float16(t) or pa.types.is_float32(t):
        return FLOAT32
    if pa.types.is_float64(t) or pa.types.is_decimal(t):
        return FLOAT64
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return STRING
    if (
        pa.types.is_binary(t)
        or pa.types.is_large_binary(t)
        or pa.types.is_fixed_size_binary(t)
        or pa.types.is_binary_view(t)
    ):
        return BYTES
    if pa.types.is_boolean(t):
        return BOOL
    if pa.types.is_timestamp(t) or pa.types.is_date(t):
        return TIMESTAMP
    raise DataError(
        f"{what} has Arrow type {t}, which bigml_fs cannot store in Feast; cast it in the feature expr to a number, string, boolean or timestamp"
    )


def key_type(arrow_type: pa.DataType, key: str) -> FeastType:
    """The Feast type of a join key; only integers, strings and bytes can be entity keys."""
    t = feast_type(arrow_type, f"join key '{key}'")
    if not t.key_ok:
        raise DataError(
            f"join key '{key}' has type {arrow_type}; Feast entity keys must be integers or strings; cast the key in a sql/ model"
        )
    return t


_SQL_PATTERNS: list[tuple[str, FeastType]] = [
    (r"(TINYINT|SMALLINT|INT2|INT1|UTINYINT|USMALLINT|INTEGER|INT4|INT|SIGNED)$", INT32),
    (r"(BIGINT|INT8|LONG|UINTEGER|UBIGINT|HUGEINT|UHUGEINT)$", INT64),
    (r"(REAL|FLOAT4|FLOAT)$", FLOAT32),
    (r"(DOUBLE|DOUBLE PRECISION|FLOAT8|NUMERIC|DECIMAL)(\(.*\))?$", FLOAT64),
    (r"(VARCHAR|TEXT|STRING|CHAR|BPCHAR|NVARCHAR|CHARACTER VARYING|UUID|ENUM)(\(.*\))?$", STRING),
    (r"(BLOB|BYTEA|BINARY|VARBINARY)$", BYTES),
    (r"(BOOLEAN|BOOL)$", BOOL),
    (r"(TIMESTAMP|DATETIME|DATE|TIMESTAMPTZ).*$", TIMESTAMP),
]


def feast_type_from_sql(sql_type: str, what: str = "column") -> FeastType:
    """The Feast type of an engine column type (the strings in ``ResolvedView.columns``)."""
    known = _from_sql_cached(sql_type)
    if known is not None:
        return known
    raise DataError(
        f"{what} has SQL type {sql_type}, which bigml_fs cannot store in Feast; cast it to a number, string, boolean or timestamp"
    )


@functools.lru_cache(maxsize=512)
def _from_sql_cached(sql_type: str) -> FeastType | None:
    text = re.sub(r"\s+", " ", sql_type.strip().upper())
    for pattern, ftype in _SQL_PATTERNS:
        if re.match(pattern, text):
            return ftype
    return None


def to_canonical(array: pa.Array | pa.ChunkedArray, ftype: FeastType) -> pa.Array:
    """Cast a column to the Arrow type its Feast type is encoded from (one chunk)."""
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks() if array.num_chunks != 1 else array.chunk(0)
    if pa.types.is_dictionary(array.type):
        array = array.dictionary_decode()
    if ftype is TIMESTAMP and pa.types.is_timestamp(array.type) and array.type.tz is None:
        array = pc.assume_timezone(array, "UTC")  # naive times are UTC
    if array.type != ftype.arrow:
        array = array.cast(ftype.arrow, safe=ftype is not TIMESTAMP)
    return array
