"""Small SQLGlot builders shared by the feature and training-set compilers.

Every time comparison inside bigml_fs is done on BIGINT microseconds since
the epoch (UTC): integer ordering and frames behave the same on every engine
(Spark rejects mixed interval frame bounds) and are cheaper than timestamps.
How an engine spells those microseconds, or a row hash, is its ``Dialect``'s
business (``bigml_fs.engines.dialects``), not this module's.
"""

from __future__ import annotations

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


def parse_expr(text: str, dialect: str) -> exp.Expression:
    return sqlglot.parse_one(text, read=dialect)


def all_not_null(columns: list[exp.Expression]) -> exp.Expression:
    return exp.and_(*[exp.Not(this=exp.Is(this=c.copy(), expression=exp.Null())) for c in columns])
