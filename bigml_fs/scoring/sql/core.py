"""The query a compiled pipeline becomes: one CTE per stage, typed literals, shared math.

Every stage selects the carried (passthrough) columns plus its own outputs from
the previous stage, so each preprocessed feature is computed once and the
estimator reads plain column names. Numbers are written so every engine reads
them as the exact float64 scikit-learn holds: a shortest round-trip repr in
exponent form (``1.5e0``), which DuckDB and Spark parse as DOUBLE and PostgreSQL
as an exact NUMERIC, always wrapped in ``CAST(... AS DOUBLE)`` outside tree
bodies, so arithmetic happens in IEEE doubles as in numpy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlglot import exp

from bigml_fs.errors import BigmlError

DOUBLE = exp.DataType.build("double")
REAL = exp.DataType.build("float")  # 4-byte: REAL in DuckDB/PostgreSQL, FLOAT in Spark
BIGINT = exp.DataType.build("bigint")
EXP_CLAMP = 700.0  # exp() of more than ~709 overflows; PostgreSQL raises on over/underflow


class UnsupportedStepError(BigmlError):
    """A pipeline step or estimator the in-warehouse compiler cannot translate."""


def num_text(value: float) -> str:
    """Exact text of a finite float64: shortest round-trip repr in exponent form."""
    v = float(value)
    if not math.isfinite(v):
        raise UnsupportedStepError(f"cannot write the non-finite number {v!r} into scoring SQL")
    text = repr(v)
    return text if "e" in text else text + "e0"


def f64(value: float) -> exp.Expression:
    """A DOUBLE literal equal to ``value`` bit for bit on every engine."""
    v = float(value)
    if math.isnan(v):
        return exp.Cast(this=exp.Null(), to=DOUBLE.copy())
    if math.isinf(v):
        return exp.Cast(this=exp.Literal.string("Infinity" if v > 0 else "-Infinity"), to=DOUBLE.copy())
    text = num_text(abs(v))
    lit: exp.Expression = exp.Literal.number(text)
    if v < 0 or (v == 0 and math.copysign(1.0, v) < 0):
        lit = exp.Neg(this=lit)
    return exp.Cast(this=lit, to=DOUBLE.copy())


def label(value: Any) -> exp.Expression:
    """A class label literal typed like the target (text, integer, boolean or double)."""
    if isinstance(value, (bool, np.bool_)):
        return exp.Boolean(this=bool(value))
    if isinstance(value, (int, np.integer)):
        return exp.Cast(this=exp.Literal.number(int(value)), to=BIGINT.copy())
    if isinstance(value, (float, np.floating)):
        return f64(float(value))
    return exp.Literal.string(str(value))


def col(name: str) -> exp.Column:
    return exp.column(name)


def to_double(e: exp.Expression) -> exp.Expression:
    return exp.Cast(this=e, to=DOUBLE.copy())


def add_all(terms: list[exp.Expression]) -> exp.Expression:
    """((t0 + t1) + t2) + ...: left to right, the order numpy accumulates in."""
    out = terms[0]
    for t in terms[1:]:
        out = exp.Add(this=out, expression=t)
    return out


def paren(e: exp.Expression) -> exp.Expression:
    return exp.Paren(this=e)


def greatest(first: exp.Expression, *rest: exp.Expression) -> exp.Expression:
    """GREATEST as DuckDB, PostgreSQL and Spark run it natively (no NULL-propagation wrapper)."""
    return exp.Greatest(this=first, expressions=list(rest), ignore_nulls=True)


def least(first: exp.Expression, *rest: exp.Expression) -> exp.Expression:
    return exp.Least(this=first, expressions=list(rest), ignore_nulls=True)


def clamp(e: exp.Expression, low: float, high: float) -> exp.Expression:
    """``e`` limited to [low, high] so exp() can neither overflow nor (PostgreSQL) underflow."""
    return least(greatest(e, f64(low)), f64(high))


def expit(d: exp.Expression) -> exp.Expression:
    """1 / (1 + exp(-d)), the logistic function as scipy computes it (argument clamped)."""
    return exp.Div(
        this=f64(1.0),
        expression=paren(
            exp.Add(this=f64(1.0), expression=exp.Exp(this=clamp(exp.Neg(this=paren(d)), -EXP_CLAMP, EXP_CLAMP)))
        ),
    )


def argbest(values: list[exp.Expression], labels: list[exp.Expression], maximum: bool = True) -> exp.Expression:
    """The label of the first largest (or smallest) value, like numpy argmax/argmin."""
    if len(values) == 1:
        return labels[0]
    cmp = exp.GTE if maximum else exp.LTE
    ifs = []
    for i in range(len(values) - 1):
        conds = [cmp(this=values[i].copy(), expression=values[j].copy()) for j in range(i + 1, len(values))]
        cond = conds[0]
        for c in conds[1:]:
            cond = exp.And(this=cond, expression=c)
        ifs.append(exp.If(this=cond, true=labels[i].copy()))
    return exp.Case(ifs=ifs, default=labels[-1].copy())


@dataclass
class Feature:
    """One column of the feature matrix between steps: an expression and whether it is already DOUBLE."""

    expr: exp.Expression
    numeric: bool = True
    nullable: bool = True  # False after an imputer or encoder: trees then skip the NULL test

    def double(self) -> exp.Expression:
        return self.expr.copy() if self.numeric else to_double(self.expr.copy())


@dataclass
class Frame:
    """The query under construction: CTEs s0, s1, ... each one stage of the pipeline."""

    passthrough: list[str]
    ctes: list[tuple[str, exp.Select]] = field(default_factory=list)

    @classmethod
    def start(
        cls, source: exp.Expression, feature_columns: list[str], passthrough: list[str]
    ) -> tuple[Frame, list[Feature]]:
        frame = cls(passthrough=list(passthrough))
        if isinstance(source, exp.Table):
            relation: exp.Expression = source.copy()
            if not relation.alias:
                relation.set("alias", exp.TableAlias(this=exp.to_identifier("src")))
            alias = relation.alias
        else:
            query = source.subquery() if isinstance(source, exp.Query) else source
            relation = exp.alias_(query.copy(), "src", table=True)
            alias = "src"
        cols: list[exp.Expression] = [
            exp.alias_(exp.column(c, table=alias, quoted=True), f"p{i}") for i, c in enumerate(passthrough)
        ]
        cols += [exp.alias_(exp.column(c, table=alias, quoted=True), f"x{i}") for i, c in enumerate(feature_columns)]
        frame._push(exp.select(*cols).from_(relation))
        return frame, [Feature(col(f"x{i}"), numeric=False) for i in range(len(feature_columns))]

    @property
    def relation(self) -> str:
        return self.ctes[-1][0]

    def _push(self, select: exp.Select) -> None:
        self.ctes.append((f"s{len(self.ctes)}", select))

    def stage(
        self,
        named: dict[str, exp.Expression],
        keep: list[str] = (),  # type: ignore[assignment]
    ) -> dict[str, exp.Column]:
        """A new CTE computing ``named`` from the previous one (carrying ``keep``); returns references."""
        carried = [col(f"p{i}") for i in range(len(self.passthrough))] + [col(k) for k in keep]
        select = exp.select(*carried, *[exp.alias_(e, n) for n, e in named.items()]).from_(self.relation)
        self._push(select)
        return {**{k: col(k) for k in keep}, **{n: col(n) for n in named}}

    def stage_features(self, features: list[Feature], prefix: str = "f") -> list[Feature]:
        refs = self.stage({f"{prefix}{i}": f.expr for i, f in enumerate(features)})
        return [Feature(ref, f.numeric, f.nullable) for ref, f in zip(refs.values(), features, strict=True)]

    def finish(self, outputs: list[tuple[str, exp.Expression]]) -> exp.Select:
        """SELECT passthrough columns under their own names, then the score columns."""
        cols = [exp.alias_(col(f"p{i}"), name, quoted=True) for i, name in enumerate(self.passthrough)]
        cols += [exp.alias_(e, name, quoted=True) for name, e in outputs]
        select = exp.select(*cols).from_(self.relation)
        for name, cte in self.ctes:
            select = select.with_(name, as_=cte, copy=False)
        return select


@dataclass
class Scores:
    """What an estimator compiles to, as expressions over the frame's last stage."""

    prediction: exp.Expression
    probabilities: list[exp.Expression] | None = None
    anomaly_score: exp.Expression | None = None
