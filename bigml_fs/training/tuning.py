"""Cross-validation and hyper-parameter search over the model's YAML space.

Each candidate is scored by the same CV folds (expanding-window by time, or
seeded random folds), on one metric (the model's first listed metric, else a
default per task). Grid, random (seeded numpy) and bayes (optuna TPE, seeded)
are sequential, so the same data and seed give the same trials and winner.
"""

from __future__ import annotations

import itertools
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from bigml_fs.errors import BigmlError
from bigml_fs.spec.schema import ModelSpec, SearchRange
from bigml_fs.training.evaluate import LOWER_IS_BETTER, better, metric_value
from bigml_fs.training.pipeline import build_pipeline

if TYPE_CHECKING:
    from bigml_fs.training.manifest import FeatureColumn

Folds = list[tuple[np.ndarray, np.ndarray]]


@dataclass
class Trial:
    params: dict[str, Any]
    score: float | None
    fold_scores: list[float | None]


@dataclass
class SearchResult:
    metric: str
    best_params: dict[str, Any]
    trials: list[Trial] = field(default_factory=list)

    @property
    def best(self) -> Trial | None:
        best: Trial | None = None
        for trial in self.trials:
            if best is None or better(self.metric, trial.score, best.score):
                best = trial
        return best


def fit(pipeline: Any, X: pd.DataFrame, y: np.ndarray | None, task: str, model_name: str) -> Any:
    """Fit, turning sklearn's complaints about the data into a BigmlError that says what to change."""
    try:
        if task in ("classification", "regression"):
            pipeline.fit(X, y)
        else:
            pipeline.fit(X)
    except ValueError as exc:
        text = str(exc).splitlines()[0]
        hint = (
            "; set preprocessing.impute (e.g. median) or pick an estimator that accepts missing values"
            if "NaN" in text
            else ""
        )
        raise BigmlError(
            f"model '{model_name}': fitting {type(pipeline.steps[-1][1]).__name__} failed: {text}{hint}"
        ) from None
    return pipeline


def cv_score(
    model: ModelSpec,
    features: list[FeatureColumn],
    X: pd.DataFrame,
    y: np.ndarray | None,
    folds: Folds,
    metric: str,
    params: dict[str, Any],
    classes: list[Any] | None,
) -> Trial:
    """Fit a fresh pipeline per fold and score the held-out block."""
    scores: list[float | None] = []
    for train, test in folds:
        pipeline = build_pipeline(model, features, params, classes)
        fit(pipeline, X.iloc[train], None if y is None else y[train], model.task, model.name)
        scores.append(
            metric_value(pipeline, X.iloc[test], None if y is None else y[test], model.task, metric, model.seed)
        )
    valid = [s for s in scores if s is not None]
    mean = float(np.mean(valid)) if valid else None
    return Trial(dict(params), mean, scores)


def candidates(model: ModelSpec) -> list[dict[str, Any]]:
    """Grid: every combination; random: ``n_iter`` seeded draws."""
    tuning = model.tuning
    assert tuning is not None
    if tuning.method == "grid":
        keys = list(tuning.space)
        return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*(tuning.space[k] for k in keys))]
    rng = np.random.default_rng(model.seed)
    return [{k: _draw(rng, v) for k, v in tuning.space.items()} for _ in range(tuning.n_iter)]


def _draw(rng: np.random.Generator, value: SearchRange | list[Any]) -> Any:
    if isinstance(value, list):
        return value[int(rng.integers(len(value)))]
    if value.log:
        drawn = math.exp(rng.uniform(math.log(value.low), math.log(value.high)))
    else:
        drawn = rng.uniform(value.low, value.high)
    return round(drawn) if value.integer else float(drawn)


def search(
    model: ModelSpec,
    features: list[FeatureColumn],
    X: pd.DataFrame,
    y: np.ndarray | None,
    folds: Folds,
    metric: str,
    classes: list[Any] | None,
    progress: Callable[[str], None] | None = None,
) -> SearchResult:
    """Run the model's tuning; every trial recorded, best by the CV mean of ``metric``."""
    tuning = model.tuning
    assert tuning is not None
    result = SearchResult(metric, {})
    if tuning.method == "bayes":
        _bayes(model, features, X, y, folds, metric, classes, result, progress)
    else:
        todo = candidates(model)
        for i, params in enumerate(todo, 1):
            if progress:
                progress(f"tuning: trial {i}/{len(todo)}")
            result.trials.append(cv_score(model, features, X, y, folds, metric, params, classes))
    best = result.best
    if best is None or best.score is None:
        raise BigmlError(
            f"model '{model.name}': no tuning trial gave a {metric} score on the CV folds (e.g. a fold with one "
            "class); use more data, fewer folds or another metric"
        )
    result.best_params = best.params
    return result


def _bayes(
    model: ModelSpec,
    features: list[FeatureColumn],
    X: pd.DataFrame,
    y: np.ndarray | None,
    folds: Folds,
    metric: str,
    classes: list[Any] | None,
    result: SearchResult,
    progress: Callable[[str], None] | None,
) -> None:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    logging.getLogger("optuna").setLevel(logging.WARNING)
    tuning = model.tuning
    assert tuning is not None
    direction = "minimize" if metric in LOWER_IS_BETTER else "maximize"

    def objective(trial: Any) -> float:
        params = {k: _suggest(trial, k, v) for k, v in tuning.space.items()}
        if progress:
            progress(f"tuning: trial {trial.number + 1}/{tuning.n_iter}")
        scored = cv_score(model, features, X, y, folds, metric, params, classes)
        result.trials.append(scored)
        if scored.score is None:
            return math.inf if direction == "minimize" else -math.inf
        return scored.score

    study = optuna.create_study(direction=direction, sampler=optuna.samplers.TPESampler(seed=model.seed))
    study.optimize(objective, n_trials=tuning.n_iter, n_jobs=1)


def _suggest(trial: Any, name: str, value: SearchRange | list[Any]) -> Any:
    if isinstance(value, list):
        return value[trial.suggest_categorical(name + "#index", list(range(len(value))))]
    if value.integer:
        return trial.suggest_int(name, int(value.low), int(value.high), log=value.log)
    return trial.suggest_float(name, value.low, value.high, log=value.log)


def check_space(model: ModelSpec, features: list[FeatureColumn], classes: list[Any] | None) -> None:
    """Fail before any fitting when a tuning key is not a parameter of the pipeline."""
    if model.tuning is None:
        return
    first = {k: (v[0] if isinstance(v, list) else v.low) for k, v in model.tuning.space.items()}
    try:
        build_pipeline(model, features, first, classes)
    except BigmlError as exc:
        raise BigmlError(f"{exc} (in tuning.space)") from None
