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


def epoch_us(column: exp.Expression, dtype: str) -> exp.Expression:
    """Microseconds since 1970-01-01 UTC of a time column of type ``dtype``.

    Naive timestamps are UTC; a DATE is midnight UTC; text is parsed as ISO 8601
    with its own offset; nanoseconds are truncated to microseconds.
    """
    kind = dtype.upper()
    if kind.startswith("TIMESTAMP") and kind.endswith("_NS"):
        return exp.IntDiv(this=exp.Anonymous(this="epoch_ns", expressions=[column]), expression=exp.Literal.number(1000))
    if kind.startswith("TIMESTAMP"):
        return exp.UnixMicros(this=column)
    if kind == "DATE":
        return exp.UnixMicros(this=exp.cast(column, exp.DataType.Type.TIMESTAMP))
    return exp.UnixMicros(this=exp.cast(column, exp.DataType.Type.TIMESTAMPTZ))


def parse_expr(text: str, dialect: str) -> exp.Expression:
    return sqlglot.parse_one(text, read=dialect)


def all_not_null(columns: list[exp.Expression]) -> exp.Expression:
    return exp.and_(*[exp.Not(this=exp.Is(this=c.copy(), expression=exp.Null())) for c in columns])
