"""KMeans: the nearest centre by squared Euclidean distance, ties to the lowest index."""

from __future__ import annotations

from typing import Any

import numpy as np
from sqlglot import exp

from bigml_fs.scoring.sql.core import BIGINT, Feature, Frame, Scores, add_all, argbest, f64, paren


def kmeans(est: Any, features: list[Feature], frame: Frame, task: str, dialect: str) -> Scores:
    centers = np.asarray(est.cluster_centers_, dtype=np.float64)
    x = frame.stage({f"k{i}": f.double() for i, f in enumerate(features)})
    dists = {}
    for j, center in enumerate(centers):
        terms = []
        for i, c in enumerate(center):
            diff = paren(exp.Sub(this=x[f"k{i}"].copy(), expression=f64(c)))
            terms.append(exp.Mul(this=diff, expression=diff.copy()))
        dists[f"dist{j}"] = add_all(terms)
    refs = frame.stage(dists)
    labels: list[exp.Expression] = [exp.Cast(this=exp.Literal.number(j), to=BIGINT.copy()) for j in range(len(centers))]
    return Scores(prediction=argbest([refs[f"dist{j}"] for j in range(len(centers))], labels, maximum=False))
