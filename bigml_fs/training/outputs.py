"""The columns a model's scores come in: one contract for Python, HTTP and SQL scoring.

After the spine columns: ``prediction`` (classification: the class, typed like
the target; regression: DOUBLE; clustering: cluster id BIGINT; anomaly: 1
normal / -1 anomalous), then for a classifier with ``predict_proba`` one
``probability__<class>`` DOUBLE per class in ``classes_`` order, and for
anomaly ``anomaly_score`` = ``decision_function`` (negative = anomalous).
The in-warehouse compiler produces the same columns.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import pandas as pd

from bigml_fs.training.manifest import OutputColumn

PREDICTION = "prediction"
ANOMALY_SCORE = "anomaly_score"
PROBABILITY_PREFIX = "probability__"


def thread_limit() -> Any:
    """Cap the native thread pools (OpenMP/BLAS) while fitting and scoring.

    One thread by default: on a busy or small machine OpenMP's spinning
    threads make tree models 10-100x slower. ``BIGML_THREADS=N`` raises it.
    """
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=int(os.environ.get("BIGML_THREADS", "1")))


def estimator_of(pipeline: Any) -> Any:
    return pipeline.steps[-1][1]


def has_proba(pipeline: Any) -> bool:
    return hasattr(estimator_of(pipeline), "predict_proba")


def output_columns(task: str, classes: list[Any] | None, proba: bool, target_type: str | None) -> list[OutputColumn]:
    """Name and SQL type of each score column, in order (recorded in the manifest)."""
    if task == "classification":
        cols = [OutputColumn(name=PREDICTION, type=target_type or "VARCHAR")]
        if proba:
            cols += [OutputColumn(name=f"{PROBABILITY_PREFIX}{c}", type="DOUBLE") for c in classes or []]
        return cols
    if task == "regression":
        return [OutputColumn(name=PREDICTION, type="DOUBLE")]
    if task == "clustering":
        return [OutputColumn(name=PREDICTION, type="BIGINT")]
    return [OutputColumn(name=PREDICTION, type="BIGINT"), OutputColumn(name=ANOMALY_SCORE, type="DOUBLE")]


def score(pipeline: Any, X: pd.DataFrame, task: str) -> dict[str, np.ndarray]:
    """Score rows with the fitted pipeline; columns as in ``output_columns``."""
    with thread_limit():
        return _score(pipeline, X, task)


def _score(pipeline: Any, X: pd.DataFrame, task: str) -> dict[str, np.ndarray]:
    estimator = estimator_of(pipeline)
    out: dict[str, np.ndarray] = {}
    if task == "classification":
        out[PREDICTION] = np.asarray(pipeline.predict(X))
        if has_proba(pipeline):
            proba = np.asarray(pipeline.predict_proba(X), dtype=np.float64)
            for i, cls in enumerate(estimator.classes_):
                out[f"{PROBABILITY_PREFIX}{cls}"] = proba[:, i]
    elif task == "regression":
        out[PREDICTION] = np.asarray(pipeline.predict(X), dtype=np.float64)
    elif task == "clustering":
        out[PREDICTION] = np.asarray(pipeline.predict(X), dtype=np.int64)
    else:
        out[PREDICTION] = np.asarray(pipeline.predict(X), dtype=np.int64)
        out[ANOMALY_SCORE] = np.asarray(pipeline.decision_function(X), dtype=np.float64)
    return out


def decision_scores(pipeline: Any, X: pd.DataFrame) -> np.ndarray | None:
    """A classifier's continuous scores (probabilities, else decision_function) for ranking metrics."""
    if has_proba(pipeline):
        return np.asarray(pipeline.predict_proba(X), dtype=np.float64)
    if hasattr(estimator_of(pipeline), "decision_function"):
        return np.asarray(pipeline.decision_function(X), dtype=np.float64)
    return None
