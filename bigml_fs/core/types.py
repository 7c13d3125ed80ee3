"""The one table of logical column types: every engine's spelling, Feast's type, Arrow's type.

Engines spell the same column differently (a Parquet int64 is BIGINT in
DuckDB, PostgreSQL and Spark, INT8 in a PostgreSQL catalog; text is VARCHAR,
TEXT or STRING; a UTC time is TIMESTAMP WITH TIME ZONE, TIMESTAMPTZ or
TIMESTAMP_LTZ). Fingerprints, the Feast schema, the online encoders, the HTTP
entity checks and the SQL scoring casts all ask this module, so a column is
typed the same way everywhere.

``family`` is what fingerprints hash: integers of any width are one family,
so moving a project to another engine changes no fingerprint.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class LogicalType:
    name: str  # int32 | int64 | float32 | float64 | decimal | string | binary | boolean | date | timestamp
    family: str  # fingerprint family (stable across engines and widths)
    spellings: tuple[str, ...]  # engine type names (upper case, no parameters) that read as this type
    sql: str  # how bigml_fs writes it in SQL it generates (DuckDB spelling; SQLGlot transpiles it)
    feast: str  # name of the store.feast_types.FeastType it is stored as
    arrow: str  # pyarrow factory name of its canonical Arrow type
    json_kind: str | None  # the JSON kind an HTTP request value of this type must be (None: not checked)

    def arrow_type(self) -> Any:
        """The canonical Arrow type (pyarrow is imported only when asked: a DuckDB training set never needs it)."""
        import pyarrow as pa

        if self.name == "timestamp":
            return pa.timestamp("us", tz="UTC")
        return getattr(pa, self.arrow)()


INT32 = LogicalType(
    "int32",
    "integer",
    ("TINYINT", "SMALLINT", "INTEGER", "INT", "INT1", "INT2", "INT4", "UTINYINT", "USMALLINT", "SHORT", "BYTE",
     "SIGNED", "SERIAL", "SMALLSERIAL"),
    "INTEGER", "int32", "int32", "integer",
)  # fmt: skip
INT64 = LogicalType(
    "int64",
    "integer",
    ("BIGINT", "INT8", "INT16", "INT32", "INT64", "INT128", "LONG", "UINTEGER", "UBIGINT", "HUGEINT", "UHUGEINT",
     "BIGSERIAL"),
    "BIGINT", "int64", "int64", "integer",
)  # fmt: skip
FLOAT32 = LogicalType("float32", "float32", ("FLOAT", "FLOAT4", "REAL"), "FLOAT", "float32", "float32", "number")
FLOAT64 = LogicalType(
    "float64", "float64", ("DOUBLE", "FLOAT8", "DOUBLE PRECISION", "FLOAT64"), "DOUBLE", "float64", "float64", "number"
)
DECIMAL = LogicalType("decimal", "decimal", ("DECIMAL", "NUMERIC"), "DOUBLE", "float64", "float64", "number")
STRING = LogicalType(
    "string",
    "string",
    ("VARCHAR", "TEXT", "STRING", "CHAR", "BPCHAR", "NVARCHAR", "CHARACTER VARYING", "CHARACTER", "NAME", "UUID",
     "ENUM"),
    "VARCHAR", "string", "string", "string",
)  # fmt: skip
BINARY = LogicalType(
    "binary", "binary", ("BLOB", "BINARY", "VARBINARY", "BYTEA", "BYTES"), "BLOB", "bytes", "binary", None
)
BOOLEAN = LogicalType("boolean", "boolean", ("BOOLEAN", "BOOL"), "BOOLEAN", "bool", "bool_", "boolean")
DATE = LogicalType("date", "date", ("DATE",), "DATE", "timestamp", "date32", "string")
TIMESTAMP = LogicalType(
    "timestamp", "timestamp", ("TIMESTAMP", "DATETIME"), "TIMESTAMPTZ", "timestamp", "timestamp", "string"
)

ALL = (INT32, INT64, FLOAT32, FLOAT64, DECIMAL, STRING, BINARY, BOOLEAN, DATE, TIMESTAMP)
_BY_SPELLING = {spelling: t for t in ALL for spelling in t.spellings}


def _base(sql_type: str) -> tuple[str, str]:
    """(normalised full name, name without parameters) of an engine type."""
    name = " ".join(sql_type.upper().split())
    return name, name.split("(", 1)[0].strip()


@functools.lru_cache(maxsize=1024)
def from_sql(sql_type: str) -> LogicalType | None:
    """The logical type of an engine column type; None if unknown.

    E.g. ``BIGINT``, ``TIMESTAMP WITH TIME ZONE``, ``varchar(20)``.
    """
    _, base = _base(sql_type)
    if base.startswith(("TIMESTAMP", "DATETIME")):  # with or without time zone, _NS, _LTZ: naive means UTC here
        return TIMESTAMP
    return _BY_SPELLING.get(base)


def logical_type(sql_type: str) -> str:
    """The fingerprint family of an engine column type; an unknown type is its upper-cased name."""
    found = from_sql(sql_type)
    return found.family if found is not None else _base(sql_type)[0]


def from_arrow(arrow_type: Any) -> LogicalType | None:
    """The logical type of an Arrow type (dictionaries by their values); None if bigml_fs has no logical type for it."""
    import pyarrow as pa

    t = arrow_type
    if pa.types.is_dictionary(t):
        return from_arrow(t.value_type)
    checks = (
        (INT32, (pa.types.is_int8, pa.types.is_int16, pa.types.is_int32, pa.types.is_uint8, pa.types.is_uint16)),
        (INT64, (pa.types.is_int64, pa.types.is_uint32, pa.types.is_uint64)),
        (FLOAT32, (pa.types.is_float16, pa.types.is_float32)),
        (FLOAT64, (pa.types.is_float64,)),
        (DECIMAL, (pa.types.is_decimal,)),
        (STRING, (pa.types.is_string, pa.types.is_large_string, pa.types.is_string_view)),
        (
            BINARY,
            (pa.types.is_binary, pa.types.is_large_binary, pa.types.is_fixed_size_binary, pa.types.is_binary_view),
        ),
        (BOOLEAN, (pa.types.is_boolean,)),
        (DATE, (pa.types.is_date,)),
        (TIMESTAMP, (pa.types.is_timestamp,)),
    )
    for logical, tests in checks:
        if any(test(t) for test in tests):
            return logical
    return None


# The SQL type a model records for an Arrow column (its scoring SQL casts inputs to it): exact widths, not families.
_ARROW_SQL = {
    "int8": "TINYINT", "int16": "SMALLINT", "int32": "INTEGER", "int64": "BIGINT", "double": "DOUBLE", "float": "FLOAT",
    "bool": "BOOLEAN", "string": "VARCHAR", "large_string": "VARCHAR",
}  # fmt: skip


def sql_name(arrow_type: Any) -> str:
    """The SQL type name (DuckDB spelling) of an Arrow column type, as recorded in a model's manifest."""
    return _ARROW_SQL.get(str(arrow_type), str(arrow_type).upper())
