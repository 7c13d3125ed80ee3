"""Linear models: regression, logistic regression, linear SVMs, SGD.

The decision function is intercept + sum of coef * x; classes come from it the
way scikit-learn's predict does (binary: d > 0, else the first argmax), and
probabilities as in predict_proba (binary: expit, then 1 - p; multinomial: a
softmax with the row maximum subtracted first, so it cannot overflow; other
multiclass linear models: one-vs-rest expit normalised by its sum).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sqlglot import exp

from bigml_fs.scoring.sql.core import (
    EXP_CLAMP,
    Feature,
    Frame,
    Scores,
    UnsupportedStepError,
    add_all,
    argbest,
    expit,
    f64,
    greatest,
    label,
    paren,
)


def _decision(coef: np.ndarray, intercept: float, features: list[Feature]) -> exp.Expression:
    terms: list[exp.Expression] = [
        exp.Mul(this=f.double(), expression=f64(w)) for f, w in zip(features, coef, strict=True) if w != 0.0
    ]
    if not terms:
        return f64(intercept)
    return paren(exp.Add(this=paren(add_all(terms)), expression=f64(intercept)))


def decisions(est: Any, features: list[Feature]) -> list[exp.Expression]:
    coef = np.atleast_2d(np.asarray(est.coef_, dtype=np.float64))
    intercept = np.atleast_1d(np.asarray(est.intercept_, dtype=np.float64))
    if intercept.size == 1 and coef.shape[0] > 1:
        intercept = np.repeat(intercept, coef.shape[0])
    return [_decision(coef[k], float(intercept[k]), features) for k in range(coef.shape[0])]


def regressor(est: Any, features: list[Feature], frame: Frame) -> Scores:
    ds = decisions(est, features)
    if len(ds) != 1:
        raise UnsupportedStepError(f"{type(est).__name__} with several outputs is not supported in scoring SQL")
    return Scores(prediction=ds[0])


def binary_proba(frame: Frame, decision: str) -> tuple[dict[str, exp.Column], list[exp.Expression]]:
    """Stage expit(d) as pr1 (carrying d); probabilities [1 - pr1, pr1] as predict_proba builds them."""
    refs = frame.stage({"pr1": expit(exp.column(decision))}, keep=[decision])
    return refs, [exp.Sub(this=f64(1.0), expression=refs["pr1"].copy()), refs["pr1"]]


def softmax(frame: Frame, names: list[str]) -> tuple[dict[str, exp.Column], list[exp.Expression]]:
    """p_i = exp(d_i - max d) / sum_j exp(d_j - max d); stages the exponentials, carrying ``names``."""
    values = [exp.column(n) for n in names]
    top = greatest(*[v.copy() for v in values])
    named = {
        f"e{i}": exp.Exp(this=greatest(exp.Sub(this=v.copy(), expression=top.copy()), f64(-EXP_CLAMP)))
        for i, v in enumerate(values)
    }
    refs = frame.stage(named, keep=names)
    es = [refs[f"e{i}"] for i in range(len(names))]
    total = paren(add_all([e.copy() for e in es]))
    return refs, [exp.Div(this=e.copy(), expression=total.copy()) for e in es]


def ovr_proba(frame: Frame, names: list[str]) -> tuple[dict[str, exp.Column], list[exp.Expression]]:
    """One-vs-rest: expit per class divided by the row sum (uniform when the sum is 0)."""
    refs = frame.stage({f"q{i}": expit(exp.column(n)) for i, n in enumerate(names)}, keep=names)
    qs = [refs[f"q{i}"] for i in range(len(names))]
    total = paren(add_all([q.copy() for q in qs]))
    zero = exp.EQ(this=total.copy(), expression=f64(0.0))
    uniform = f64(1.0 / len(qs))
    return refs, [
        exp.Case(
            ifs=[exp.If(this=zero.copy(), true=uniform.copy())], default=exp.Div(this=q.copy(), expression=total.copy())
        )
        for q in qs
    ]


def classifier(est: Any, features: list[Feature], frame: Frame, proba: bool) -> Scores:
    classes = list(est.classes_)
    labels = [label(c) for c in classes]
    ds = decisions(est, features)
    names = [f"d{k}" for k in range(len(ds))]
    frame.stage(dict(zip(names, ds, strict=True)))
    if len(ds) == 1:
        probabilities = None
        refs = {"d0": exp.column("d0")}
        if proba:
            refs, probabilities = binary_proba(frame, "d0")
        prediction = exp.Case(
            ifs=[exp.If(this=exp.GT(this=refs["d0"].copy(), expression=f64(0.0)), true=labels[1])], default=labels[0]
        )
        return Scores(prediction=prediction, probabilities=probabilities)
    probabilities = None
    if proba:
        multinomial = type(est).__name__ == "LogisticRegression"
        _, probabilities = softmax(frame, names) if multinomial else ovr_proba(frame, names)
    return Scores(prediction=argbest([exp.column(n) for n in names], labels), probabilities=probabilities)
