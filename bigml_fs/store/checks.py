"""A view's ``checks:`` (not_null, unique, range, accepted_values), run in the engine.

Each check is one COUNT query over the view's source plus, when it fails, one
example row, so a failing check costs two scans and never pulls the table
into Python. Materialize runs them before it writes anything of the view.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlglot import exp

from bigml_fs.catalog import ResolvedView
from bigml_fs.compiler.sqlparts import col
from bigml_fs.engines.base import Engine
from bigml_fs.errors import DataError
from bigml_fs.spec.schema import CheckSpec


@dataclass(frozen=True)
class CheckFailure:
    check: str
    bad_rows: int
    example: dict[str, Any]

    def __str__(self) -> str:
        shown = ", ".join(f"{k}={v!r}" for k, v in self.example.items())
        return f"check {self.check} failed on {self.bad_rows:,} row(s), e.g. {{{shown}}}"


def _literal(value: Any) -> exp.Expression:
    if isinstance(value, bool):
        return exp.Boolean(this=value)
    if isinstance(value, (int, float)):
        return exp.Literal.number(value)
    return exp.Literal.string(str(value))


def _bad_rows(check: CheckSpec, relation: exp.Expression) -> tuple[str, exp.Select]:
    """A label for the check and a SELECT of the rows that break it."""
    base = exp.select("*").from_(relation.copy())
    if check.not_null is not None:
        cond = exp.or_(*[exp.Is(this=col(c), expression=exp.Null()) for c in check.not_null])
        return f"not_null {check.not_null}", base.where(cond)
    if check.unique is not None:
        cols = [col(c) for c in check.unique]
        counted = exp.Window(this=exp.Count(this=exp.Star()), partition_by=[c.copy() for c in cols])
        inner = exp.select("*", exp.alias_(counted, "__dupes", quoted=True)).from_(relation.copy())
        query = (
            exp.select(exp.Star(**{"except": [col("__dupes")]}))
            .from_(inner.subquery("__u"))
            .where(exp.GT(this=col("__dupes"), expression=exp.Literal.number(1)))
        )
        return f"unique {check.unique}", query
    if check.range is not None:
        r = check.range
        conds: list[exp.Expression] = []
        if r.min is not None:
            conds.append(exp.LT(this=col(r.column), expression=exp.Literal.number(r.min)))
        if r.max is not None:
            conds.append(exp.GT(this=col(r.column), expression=exp.Literal.number(r.max)))
        bounds = ", ".join(f"{k}: {v}" for k, v in (("min", r.min), ("max", r.max)) if v is not None)
        return f"range {{column: {r.column}, {bounds}}}", base.where(exp.or_(*conds) if conds else exp.false())
    a = check.accepted_values
    assert a is not None
    cond = exp.and_(
        exp.Not(this=exp.Is(this=col(a.column), expression=exp.Null())),
        exp.Not(this=exp.In(this=col(a.column), expressions=[_literal(v) for v in a.values])),
    )
    return f"accepted_values {{column: {a.column}, values: {a.values}}}", base.where(cond)


def run_checks(engine: Engine, view: ResolvedView) -> list[CheckFailure]:
    """Every failing check of ``view``, with its count of bad rows and one example row."""
    failures: list[CheckFailure] = []
    for check in view.spec.checks:
        label, bad = _bad_rows(check, view.relation)
        count = engine.rows(exp.select(exp.Count(this=exp.Star()).as_("n")).from_(bad.subquery("__bad")))[0]["n"]
        if count:
            rows = engine.to_arrow(bad.limit(1)).to_pylist()
            failures.append(CheckFailure(label, int(count), rows[0] if rows else {}))
    return failures


def enforce_checks(engine: Engine, view: ResolvedView) -> None:
    """Raise DataError naming the view, each failing check, its bad-row count and an example row."""
    failures = run_checks(engine, view)
    if failures:
        details = "; ".join(str(f) for f in failures)
        raise DataError(
            f"view '{view.name}': {details}; fix the source data or the check in the view's checks: (nothing of this "
            "view was written)"
        )
