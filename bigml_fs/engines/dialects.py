"""One ``Dialect`` object per engine: a small typed description of how its SQL differs.

The compiler builds one plan and asks the dialect wherever engines differ
(how to turn a time column into UTC microseconds, how to hash a row, which
latest-value strategy and which framed window aggregates it has); it never
compares engine names. This is SQLGlot's own design (its ``Dialect`` classes
carry each database's differences) applied to our plans: adding a warehouse
is adding an instance here, not a branch in every compiler function.

DuckDB, PostgreSQL and Spark run here and are tested against each other and
an oracle. Snowflake, BigQuery, Trino and Databricks are compile-only: their
plans are built from the same rules with SQL each warehouse documents, parsed
back by SQLGlot in tests, but never run here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Literal

from sqlglot import exp

from bigml_fs.errors import UsageError, did_you_mean


class Latest(str, Enum):
    """How latest values meet the spine: the one choice of plan a dialect makes for them."""

    ASOF = "asof"  # an as-of join on event time, then the matched rows' pick by created (DuckDB)
    LATERAL = "lateral"  # one index probe per spine row, LEFT JOIN LATERAL ... LIMIT 1 (PostgreSQL)
    CARRY = "carry"  # the last event carried forward over events and spine points (Spark, warehouses)


EpochSpelling = Literal["duckdb", "postgres", "spark", "snowflake", "bigquery", "trino"]
HashSpelling = Literal["hash", "md5_row", "xxhash64_flagged", "farm_fingerprint", "xxhash64_json"]
ZONED = ("TIMESTAMP WITH TIME ZONE", "TIMESTAMPTZ")


@dataclass(frozen=True)
class Dialect:
    """How one engine's SQL differs, and the SQL-building methods for those differences.

    ``latest`` is the latest-value strategy: ``asof`` (DuckDB: as-of join on
    the event time, then a pick by created among the matched rows),
    ``lateral`` (PostgreSQL: one index probe per spine row) or ``carry`` (the
    last event carried forward over a union of events and spine points).
    ``window_lookups`` are window aggregates computed per spine point by a
    lookup instead of a window frame: an index range probe where
    ``probes_by_index``, else a range join aggregated per point.
    """

    name: str  # the SQLGlot dialect name
    latest: Latest
    epoch: EpochSpelling
    hash: HashSpelling
    runs_here: bool = False  # run and tested here (else compile-only)
    probes_by_index: bool = False  # plans look rows up per spine point: relations need an index (PostgreSQL)
    window_lookups: frozenset[str] = frozenset()
    distinct_windows: bool = True  # COUNT(DISTINCT) over a frame; else size(collect_set(..)) (Spark)
    arg_windows: bool = True  # arg_min/arg_max over a frame; else min/max of a named_struct (Spark)
    carries_struct: bool = False  # carry: last(named_struct, true) carries the row; else the time, joined back
    avg_as_double: bool = False  # avg/stddev/variance of DECIMAL literals stay DECIMAL unless cast (Spark)
    qualify_needs_where: bool = False  # QUALIFY only after WHERE, GROUP BY or HAVING (BigQuery)

    def epoch_us(self, column: exp.Expression, dtype: str) -> exp.Expression:
        """Microseconds since 1970-01-01 UTC of a time column of type ``dtype``.

        Naive timestamps are UTC; a DATE is midnight UTC; text is parsed as
        ISO 8601 with its own offset; nanoseconds are truncated. Every engine
        session runs in UTC, which the casts rely on.
        """
        return _EPOCH[self.epoch](column, dtype.upper())

    def from_epoch_us(self, value: exp.Expression, dtype: str) -> exp.Expression:
        """The time ``value`` (UTC microseconds) as a value of the column type ``dtype``.

        Comparing a source's own time column with this keeps an index on it
        usable (index probes); exact below 2**53 µs (year 2255).
        """
        zoned = dtype.upper() in ZONED
        epoch = exp.cast(
            exp.Literal.string("1970-01-01 00:00:00+00" if zoned else "1970-01-01 00:00:00"),
            exp.DataType.Type.TIMESTAMPTZ if zoned else exp.DataType.Type.TIMESTAMP,
        )
        step = exp.Interval(this=exp.Literal.string("1"), unit=exp.var("MICROSECOND"))
        return exp.Add(this=epoch, expression=exp.Mul(this=exp.paren(value), expression=step))

    def row_hash(self, values: list[exp.Expression]) -> exp.Expression:
        """A hash of a row of values, equal for equal rows (nulls included): ambiguous ties show as min != max."""
        return _HASH[self.hash]([v.copy() for v in values])

    def qualify(self, query: exp.Select, condition: exp.Expression) -> exp.Select:
        """``QUALIFY condition`` (SQLGlot rewrites it into a subquery where a dialect lacks it)."""
        if self.qualify_needs_where and not query.args.get("where"):
            query = query.where(exp.true())
        return query.qualify(condition)


def _epoch_duckdb(column: exp.Expression, kind: str) -> exp.Expression:
    if kind.startswith("TIMESTAMP") and kind.endswith("_NS"):
        return exp.IntDiv(
            this=exp.Anonymous(this="epoch_ns", expressions=[column]), expression=exp.Literal.number(1000)
        )
    if kind.startswith("TIMESTAMP"):
        return exp.UnixMicros(this=column)
    if kind == "DATE":
        return exp.UnixMicros(this=exp.cast(column, exp.DataType.Type.TIMESTAMP))
    return exp.UnixMicros(this=exp.cast(column, exp.DataType.Type.TIMESTAMPTZ))


def _epoch_postgres(column: exp.Expression, kind: str) -> exp.Expression:
    # EXTRACT(EPOCH ...) is an exact numeric since PostgreSQL 14; a naive timestamp or a date counts as UTC
    source = column if kind.startswith(("TIMESTAMP", "DATE")) else exp.cast(column, exp.DataType.Type.TIMESTAMPTZ)
    product = exp.Mul(
        this=exp.Extract(this=exp.var("EPOCH"), expression=source), expression=exp.Literal.number(1_000_000)
    )
    return exp.cast(product, exp.DataType.Type.BIGINT)


def _epoch_spark(column: exp.Expression, kind: str) -> exp.Expression:
    # unix_micros takes Spark's session-zoned TIMESTAMP; casting NTZ, DATE or ISO text to it reads them as UTC
    return exp.UnixMicros(this=column if kind in ZONED else exp.cast(column, exp.DataType.Type.TIMESTAMPTZ))


def _epoch_snowflake(column: exp.Expression, kind: str) -> exp.Expression:
    # DATE_PART(EPOCH_MICROSECOND) of a TIMESTAMP_NTZ reads its wall clock as UTC; text keeps its own offset
    if kind in ZONED:
        source = column
    elif kind.startswith(("TIMESTAMP", "DATE")):
        source = exp.cast(column, exp.DataType.Type.TIMESTAMP)
    else:
        source = exp.Anonymous(this="TO_TIMESTAMP_TZ", expressions=[column])
    return exp.Anonymous(this="DATE_PART", expressions=[exp.var("EPOCH_MICROSECOND"), source])


def _epoch_bigquery(column: exp.Expression, kind: str) -> exp.Expression:
    # a BigQuery TIMESTAMP is an instant; DATETIME, DATE and ISO text cast to it as UTC (text with its offset)
    return exp.UnixMicros(this=column if kind in ZONED else exp.cast(column, exp.DataType.Type.TIMESTAMPTZ))


def _epoch_trino(column: exp.Expression, kind: str) -> exp.Expression:
    # to_unixtime is a double of seconds: rounding its microseconds is exact until 2106 (2**52 / 1e6 s past 1970)
    if kind in ZONED:
        source = column
    elif kind.startswith(("TIMESTAMP", "DATE")):
        naive = exp.cast(column, exp.DataType.build("TIMESTAMP(6)", dialect="trino"))
        source = exp.Anonymous(this="with_timezone", expressions=[naive, exp.Literal.string("UTC")])
    else:
        source = exp.Anonymous(this="from_iso8601_timestamp", expressions=[column])
    seconds = exp.Anonymous(this="to_unixtime", expressions=[source])
    micros = exp.Round(this=exp.Mul(this=seconds, expression=exp.Literal.number(1_000_000)))
    return exp.cast(micros, exp.DataType.Type.BIGINT)


_EPOCH: dict[str, Callable[[exp.Expression, str], exp.Expression]] = {
    "duckdb": _epoch_duckdb,
    "postgres": _epoch_postgres,
    "spark": _epoch_spark,
    "snowflake": _epoch_snowflake,
    "bigquery": _epoch_bigquery,
    "trino": _epoch_trino,
}


def _row(values: list[exp.Expression]) -> exp.Expression:
    return exp.Anonymous(this="ROW", expressions=values)


_HASH: dict[str, Callable[[list[exp.Expression]], exp.Expression]] = {
    # DuckDB's and Snowflake's hash take many arguments and hash a null as a value
    "hash": lambda values: exp.Anonymous(this="hash", expressions=values),
    # the text of a ROW tells NULL from '' and prints floats exactly
    "md5_row": lambda values: exp.Anonymous(this="md5", expressions=[exp.cast(_row(values), exp.DataType.Type.TEXT)]),
    # Spark's hashes skip nulls, so (NULL, 'a') and ('a', NULL) would collide without the null flags
    "xxhash64_flagged": lambda values: exp.Anonymous(
        this="xxhash64", expressions=[p for v in values for p in (v, exp.Is(this=v.copy(), expression=exp.Null()))]
    ),
    # the JSON text of a STRUCT tells NULL from '' (BigQuery's fingerprint takes one string)
    "farm_fingerprint": lambda values: exp.Anonymous(
        this="FARM_FINGERPRINT",
        expressions=[exp.Anonymous(this="TO_JSON_STRING", expressions=[exp.Struct(expressions=values)])],
    ),
    # Trino: a ROW cast to JSON text, hashed to a BIGINT
    "xxhash64_json": lambda values: exp.Anonymous(
        this="from_big_endian_64",
        expressions=[
            exp.Anonymous(
                this="xxhash64",
                expressions=[
                    exp.Anonymous(
                        this="to_utf8",
                        expressions=[
                            exp.Anonymous(
                                this="json_format", expressions=[exp.cast(_row(values), exp.DataType.Type.JSON)]
                            )
                        ],
                    )
                ],
            )
        ],
    ),
}

LOOKUP_AGGS = frozenset({"count_distinct", "first", "last"})

DUCKDB = Dialect("duckdb", latest=Latest.ASOF, epoch="duckdb", hash="hash", runs_here=True)
# no as-of join, IGNORE NULLS or DISTINCT window aggregates: index probes instead
POSTGRES = Dialect(
    "postgres",
    latest=Latest.LATERAL,
    epoch="postgres",
    hash="md5_row",
    runs_here=True,
    probes_by_index=True,
    window_lookups=LOOKUP_AGGS,
)
# no as-of join or DISTINCT window aggregates: the last event carried forward as a struct; collect_set
SPARK = Dialect(
    "spark",
    latest=Latest.CARRY,
    epoch="spark",
    hash="xxhash64_flagged",
    runs_here=True,
    distinct_windows=False,
    arg_windows=False,
    carries_struct=True,
    avg_as_double=True,
)
DATABRICKS = Dialect(
    "databricks",
    latest=Latest.CARRY,
    epoch="spark",
    hash="xxhash64_flagged",
    distinct_windows=False,
    arg_windows=False,
    carries_struct=True,
    avg_as_double=True,
)
# compile-only warehouses: the carried event time joined back, and range joins for the aggregates
# that have no framed form there (COUNT(DISTINCT) and arg_min/arg_max over a RANGE frame)
SNOWFLAKE = Dialect("snowflake", latest=Latest.CARRY, epoch="snowflake", hash="hash", window_lookups=LOOKUP_AGGS)
BIGQUERY = Dialect(
    "bigquery",
    latest=Latest.CARRY,
    epoch="bigquery",
    hash="farm_fingerprint",
    window_lookups=LOOKUP_AGGS,
    qualify_needs_where=True,
)
TRINO = Dialect("trino", latest=Latest.CARRY, epoch="trino", hash="xxhash64_json", window_lookups=LOOKUP_AGGS)

DIALECTS: dict[str, Dialect] = {d.name: d for d in (DUCKDB, POSTGRES, SPARK, SNOWFLAKE, BIGQUERY, TRINO, DATABRICKS)}


def dialect_for(name: str) -> Dialect:
    """The dialect object for a SQLGlot dialect name; an unknown one is a usage error (never DuckDB's plan)."""
    dialect = DIALECTS.get(name.lower())
    if dialect is None:
        tested = ", ".join(d.name for d in DIALECTS.values() if d.runs_here)
        compile_only = ", ".join(d.name for d in DIALECTS.values() if not d.runs_here)
        raise UsageError(
            f"unknown SQL dialect '{name}'{did_you_mean(name.lower(), DIALECTS)}; "
            f"known dialects: {tested} (run and tested here), {compile_only} (compile-only)"
        )
    return dialect


__all__ = [
    "BIGQUERY",
    "DATABRICKS",
    "DIALECTS",
    "DUCKDB",
    "POSTGRES",
    "SNOWFLAKE",
    "SPARK",
    "TRINO",
    "Dialect",
    "dialect_for",
]
