"""Small SQLGlot builders shared by the feature and training-set compilers.

Every time comparison inside bigml_fs is done on BIGINT microseconds since
the epoch (UTC): integer ordering and frames behave the same on every engine
(Spark rejects mixed interval frame bounds) and are cheaper than timestamps.
"""

from __future__ import annotations

from datetime import timedelta

import sqlglot
from sqlglot import exp

ROW = "__row"
TS = "__ts"
CREATED = "__created"
MIN_BIGINT = -(2**63)


def col(name: str, table: str | None = None) -> exp.Column:
    return exp.column(name, table=table, quoted=True)


def ident(name: str) -> exp.Identifier:
    return exp.to_identifier(name, quoted=True)


def alias(expression: exp.Expression, name: str) -> exp.Alias:
    return exp.alias_(expression, ident(name))


def micros(delta: timedelta) -> int:
    return int(delta.total_seconds()) * 1_000_000 + delta.microseconds


def epoch_us(column: exp.Expression, dtype: str, engine: str = "duckdb") -> exp.Expression:
    """Microseconds since 1970-01-01 UTC of a time column of type ``dtype``, on ``engine``.

    Naive timestamps are UTC; a DATE is midnight UTC; text is parsed as ISO 8601
    with its own offset; nanoseconds are truncated to microseconds. Every
    engine session runs in UTC, which the casts below rely on.
    """
    kind = dtype.upper()
    if engine == "postgres":
        # EXTRACT(EPOCH ...) is an exact numeric since PostgreSQL 14; a naive timestamp or a date counts as UTC
        source = column if kind.startswith(("TIMESTAMP", "DATE")) else exp.cast(column, exp.DataType.Type.TIMESTAMPTZ)
        product = exp.Mul(
            this=exp.Extract(this=exp.var("EPOCH"), expression=source), expression=exp.Literal.number(1_000_000)
        )
        return exp.cast(product, exp.DataType.Type.BIGINT)
    if engine == "spark":
        # unix_micros takes Spark's session-zoned TIMESTAMP; casting NTZ, DATE or ISO text to it reads them as UTC
        zoned = kind in ("TIMESTAMP WITH TIME ZONE", "TIMESTAMPTZ")
        return exp.UnixMicros(this=column if zoned else exp.cast(column, exp.DataType.Type.TIMESTAMPTZ))
    if kind.startswith("TIMESTAMP") and kind.endswith("_NS"):
        return exp.IntDiv(
            this=exp.Anonymous(this="epoch_ns", expressions=[column]), expression=exp.Literal.number(1000)
        )
    if kind.startswith("TIMESTAMP"):
        return exp.UnixMicros(this=column)
    if kind == "DATE":
        return exp.UnixMicros(this=exp.cast(column, exp.DataType.Type.TIMESTAMP))
    return exp.UnixMicros(this=exp.cast(column, exp.DataType.Type.TIMESTAMPTZ))


def from_epoch_us(value: exp.Expression, dtype: str) -> exp.Expression:
    """PostgreSQL: the time ``value`` (UTC microseconds) as a value of the column type ``dtype``.

    Comparing a source's own time column with this keeps an index on it usable
    (LATERAL plans); the product is exact below 2**53 µs (year 2255).
    """
    zoned = dtype.upper() in ("TIMESTAMP WITH TIME ZONE", "TIMESTAMPTZ")
    epoch = exp.cast(
        exp.Literal.string("1970-01-01 00:00:00+00" if zoned else "1970-01-01 00:00:00"),
        exp.DataType.Type.TIMESTAMPTZ if zoned else exp.DataType.Type.TIMESTAMP,
    )
    return exp.Add(
        this=epoch,
        expression=exp.Mul(
            this=exp.paren(value), expression=exp.Interval(this=exp.Literal.string("1"), unit=exp.var("MICROSECOND"))
        ),
    )


def row_hash(values: list[exp.Expression], engine: str = "duckdb") -> exp.Expression:
    """A hash of a row of values, equal for equal rows (nulls included), to detect ambiguous ties by min == max."""
    if engine == "postgres":
        # the text of a ROW tells NULL from '' and prints floats exactly
        return exp.Anonymous(
            this="md5",
            expressions=[
                exp.cast(exp.Anonymous(this="ROW", expressions=[v.copy() for v in values]), exp.DataType.Type.TEXT)
            ],
        )
    if engine == "spark":
        # Spark's hashes skip nulls, so (NULL, 'a') and ('a', NULL) would collide without the null flags
        flagged = [part for v in values for part in (v.copy(), exp.Is(this=v.copy(), expression=exp.Null()))]
        return exp.Anonymous(this="xxhash64", expressions=flagged)
    return exp.Anonymous(this="hash", expressions=[v.copy() for v in values])


def parse_expr(text: str, dialect: str) -> exp.Expression:
    return sqlglot.parse_one(text, read=dialect)


def all_not_null(columns: list[exp.Expression]) -> exp.Expression:
    return exp.and_(*[exp.Not(this=exp.Is(this=c.copy(), expression=exp.Null())) for c in columns])
