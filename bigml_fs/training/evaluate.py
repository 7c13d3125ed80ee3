"""Metrics per task, on held-out rows, plus permutation importance.

Every metric that applies is computed; a metric that cannot be computed on
these rows (e.g. ROC AUC with one class in the test part) is ``None`` rather
than an error, so one odd fold never stops a training run.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from sklearn import metrics as skm

from bigml_fs.training.outputs import ANOMALY_SCORE, PREDICTION, decision_scores, score

# Metrics where lower is better (the rest: higher is better).
LOWER_IS_BETTER = {"log_loss", "brier", "rmse", "mse", "mae", "median_ae", "mape", "davies_bouldin"}
DEFAULT_OBJECTIVE = {
    "classification": "roc_auc",
    "regression": "rmse",
    "clustering": "silhouette",
    "anomaly": "average_precision",
}


def objective(task: str, wanted: list[str], binary: bool, has_target: bool = True) -> str:
    """The metric tuning optimises: the first one the model lists, else a sensible default."""
    if wanted:
        return wanted[0]
    if task == "classification" and not binary:
        return "f1_macro"
    if task == "anomaly" and not has_target:
        return "anomaly_rate"
    return DEFAULT_OBJECTIVE[task]


def better(metric: str, a: float | None, b: float | None) -> bool:
    """Is score ``a`` better than ``b`` for this metric (None is worst)?"""
    if a is None or (isinstance(a, float) and math.isnan(a)):
        return False
    if b is None or (isinstance(b, float) and math.isnan(b)):
        return True
    return a < b if metric in LOWER_IS_BETTER else a > b


def evaluate(pipeline: Any, X: pd.DataFrame, y: np.ndarray | None, task: str, seed: int = 0) -> dict[str, Any]:
    """All metrics of the task for these rows (JSON-able floats or None)."""
    if task == "classification":
        return classification_metrics(
            y, score(pipeline, X, task)[PREDICTION], decision_scores(pipeline, X), list(pipeline.classes_)
        )
    if task == "regression":
        return regression_metrics(y, score(pipeline, X, task)[PREDICTION])
    if task == "clustering":
        transformed = pipeline[:-1].transform(X)
        return clustering_metrics(transformed, score(pipeline, X, task)[PREDICTION], seed)
    out = score(pipeline, X, task)
    return anomaly_metrics(out[PREDICTION], out[ANOMALY_SCORE], y)


SCORE_BASED = {"roc_auc", "average_precision", "log_loss", "brier"}


def metric_value(
    pipeline: Any, X: pd.DataFrame, y: np.ndarray | None, task: str, metric: str, seed: int = 0
) -> float | None:
    """One metric, predicting only what it needs (used many times by CV and permutation importance)."""
    if task == "classification" and metric in SCORE_BASED:
        return classification_metrics(y, None, decision_scores(pipeline, X), list(pipeline.classes_)).get(metric)
    return evaluate(pipeline, X, y, task, seed).get(metric)


def _safe(fn: Callable[[], Any]) -> float | None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            value = float(fn())
    except (ValueError, IndexError, TypeError, ZeroDivisionError):
        return None
    return None if math.isnan(value) or math.isinf(value) else value


def classification_metrics(
    y: Any, pred: np.ndarray | None, scores: np.ndarray | None, classes: list[Any]
) -> dict[str, Any]:
    """All classification metrics; with ``pred`` None only the score-based ones."""
    binary = len(classes) == 2
    proba = scores if scores is not None and scores.ndim == 2 else None
    if pred is None:
        return _score_metrics(y, scores, proba, classes, binary)
    m: dict[str, Any] = {
        "accuracy": _safe(lambda: skm.accuracy_score(y, pred)),
        "balanced_accuracy": _safe(lambda: skm.balanced_accuracy_score(y, pred)),
    }
    if binary:
        pos = classes[1]
        m["f1"] = _safe(lambda: skm.f1_score(y, pred, pos_label=pos, zero_division=0))
        m["precision"] = _safe(lambda: skm.precision_score(y, pred, pos_label=pos, zero_division=0))
        m["recall"] = _safe(lambda: skm.recall_score(y, pred, pos_label=pos, zero_division=0))
    m.update(_score_metrics(y, scores, proba, classes, binary))
    for avg in ("macro", "weighted"):
        m[f"f1_{avg}"] = _safe(lambda avg=avg: skm.f1_score(y, pred, average=avg, zero_division=0))
        m[f"precision_{avg}"] = _safe(lambda avg=avg: skm.precision_score(y, pred, average=avg, zero_division=0))
        m[f"recall_{avg}"] = _safe(lambda avg=avg: skm.recall_score(y, pred, average=avg, zero_division=0))
    if not binary:
        m["f1"], m["precision"], m["recall"] = m["f1_macro"], m["precision_macro"], m["recall_macro"]
    return m


def _score_metrics(
    y: Any, scores: np.ndarray | None, proba: np.ndarray | None, classes: list[Any], binary: bool
) -> dict[str, Any]:
    m: dict[str, Any] = {}
    if binary and scores is not None:
        pos = classes[1]
        positive = scores[:, 1] if proba is not None else scores
        truth = np.asarray(y) == pos
        m["roc_auc"] = _safe(lambda: skm.roc_auc_score(truth, positive))
        m["average_precision"] = _safe(lambda: skm.average_precision_score(truth, positive))
        if proba is not None:
            m["brier"] = _safe(lambda: skm.brier_score_loss(truth, proba[:, 1]))
    elif proba is not None:
        m["roc_auc"] = _safe(lambda: skm.roc_auc_score(y, proba, multi_class="ovr", average="macro", labels=classes))
    if proba is not None:
        m["log_loss"] = _safe(lambda: skm.log_loss(y, proba, labels=classes))
    return m


def confusion(y: Any, pred: np.ndarray, classes: list[Any]) -> dict[str, Any]:
    matrix = skm.confusion_matrix(y, pred, labels=classes)
    return {"labels": [_jsonable(c) for c in classes], "matrix": matrix.tolist()}


def regression_metrics(y: Any, pred: np.ndarray) -> dict[str, Any]:
    return {
        "rmse": _safe(lambda: math.sqrt(skm.mean_squared_error(y, pred))),
        "mse": _safe(lambda: skm.mean_squared_error(y, pred)),
        "mae": _safe(lambda: skm.mean_absolute_error(y, pred)),
        "median_ae": _safe(lambda: skm.median_absolute_error(y, pred)),
        "mape": _safe(lambda: skm.mean_absolute_percentage_error(y, pred)),
        "r2": _safe(lambda: skm.r2_score(y, pred)),
        "explained_variance": _safe(lambda: skm.explained_variance_score(y, pred)),
    }


def clustering_metrics(transformed: np.ndarray, labels: np.ndarray, seed: int) -> dict[str, Any]:
    sample = min(len(labels), 5000)
    return {
        "silhouette": _safe(lambda: skm.silhouette_score(transformed, labels, sample_size=sample, random_state=seed)),
        "calinski_harabasz": _safe(lambda: skm.calinski_harabasz_score(transformed, labels)),
        "davies_bouldin": _safe(lambda: skm.davies_bouldin_score(transformed, labels)),
        "n_clusters": len(np.unique(labels)),
    }


def anomaly_metrics(pred: np.ndarray, score_values: np.ndarray, y: Any | None) -> dict[str, Any]:
    """Flagged share and score quantiles; with a target (truthy = anomalous), ranking quality of the score."""
    m: dict[str, Any] = {"anomaly_rate": _safe(lambda: float(np.mean(pred == -1)))}
    for q in (0.01, 0.05, 0.5, 0.95, 0.99):
        m[f"score_q{int(q * 100):02d}"] = _safe(lambda q=q: np.quantile(score_values, q))
    if y is not None:
        truth = anomalous(y)
        m["roc_auc"] = _safe(lambda: skm.roc_auc_score(truth, -score_values))
        m["average_precision"] = _safe(lambda: skm.average_precision_score(truth, -score_values))
    return m


def anomalous(y: Any) -> np.ndarray:
    values = np.asarray(y)
    if values.dtype == object:
        return np.array([bool(v) and str(v).lower() not in ("false", "0", "no") for v in values])
    return values.astype(bool)


def permutation_importances(
    pipeline: Any, X: pd.DataFrame, y: Any | None, task: str, metric: str, seed: int, max_rows: int = 2000
) -> list[dict[str, Any]]:
    """Drop in the objective metric when one raw feature is shuffled, on (a sample of) the test part."""
    if task in ("clustering",) or (task == "anomaly" and y is None) or len(X) < 2:
        return []
    from sklearn.inspection import permutation_importance

    if len(X) > max_rows:
        rows = np.random.default_rng(seed).choice(len(X), size=max_rows, replace=False)
        rows.sort()
        X, y = X.iloc[rows].reset_index(drop=True), np.asarray(y)[rows]

    def scorer(est: Any, Xs: pd.DataFrame, ys: Any) -> float:
        value = metric_value(est, Xs, ys, task, metric, seed)
        if value is None:
            return 0.0
        return -value if metric in LOWER_IS_BETTER else value

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = permutation_importance(pipeline, X, y, scoring=scorer, n_repeats=5, random_state=seed, n_jobs=1)
    rows_out = [
        {"feature": name, "importance": float(mean), "std": float(std)}
        for name, mean, std in zip(X.columns, result.importances_mean, result.importances_std, strict=True)
    ]
    return sorted(rows_out, key=lambda r: -r["importance"])


def _jsonable(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value
