"""Feast's types, and the Feast type of an Arrow or engine SQL column type.

Which logical type a column is comes from the one table in core/types.py; this
module says how each logical type is typed in Feast and encoded in the online
store. Materialize (entity value types, FeatureView schemas), the online stores
(which ValueProto field a column is encoded into, how a key is serialized) and
online reads (which Arrow type a value decodes to) all go through here, so a
column is typed the same way everywhere. Feast itself is imported lazily: only
``FeastType.dtype`` / ``FeastType.value_type_enum`` need it, and importing
feast costs seconds that the online read path must not pay.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from bigml_fs.core import types
from bigml_fs.core.types import LogicalType
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
BY_NAME = {t.name: t for t in ALL}


def from_logical(logical: LogicalType) -> FeastType:
    """The Feast type a logical type (core/types.py) is stored as."""
    return BY_NAME[logical.feast]


def feast_type(arrow_type: pa.DataType, what: str = "column") -> FeastType:
    """The Feast type of an Arrow column (decimals read as doubles, dates as 00:00 UTC timestamps)."""
    logical = types.from_arrow(arrow_type)
    if logical is None:
        shown = arrow_type.value_type if pa.types.is_dictionary(arrow_type) else arrow_type
        raise DataError(
            f"{what} has Arrow type {shown}, which bigml_fs cannot store in Feast; "
            "cast it in the feature expr to a number, string, boolean or timestamp"
        )
    return from_logical(logical)


def feast_type_from_sql(sql_type: str, what: str = "column") -> FeastType:
    """The Feast type of an engine column type (the strings in ``ResolvedView.columns``)."""
    logical = types.from_sql(sql_type)
    if logical is None:
        raise DataError(
            f"{what} has SQL type {sql_type}, which bigml_fs cannot store in Feast; "
            "cast it to a number, string, boolean or timestamp"
        )
    return from_logical(logical)


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
