"""In-warehouse scoring: a fitted scikit-learn pipeline compiled to one SQL query.

``compile_pipeline`` walks the pipeline (scikit-learn or imbalanced-learn;
samplers only act in fit, so they are skipped), turns every step into SQL
expressions over the previous step's columns (one CTE per step, so each
preprocessed feature is computed once), and ends with the estimator's scores in
the output contract of ``bigml_fs.training.outputs``: the passthrough columns,
``prediction``, ``probability__<class>`` per class for classifiers with
``predict_proba``, and ``anomaly_score`` for anomaly detectors. The query is a
SQLGlot expression; render it with ``.sql(dialect)``.

Results equal scikit-learn's to 1e-6 with identical classes: the SQL compares
and computes the way scikit-learn does (see ``trees`` and ``core``). Anything
the compiler does not know is an ``UnsupportedStepError`` naming the step and
listing what is supported.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlglot import exp

from bigml_fs.errors import BigmlError
from bigml_fs.scoring.sql import cluster, linear, preprocessing, trees
from bigml_fs.scoring.sql.core import Feature, Frame, Scores, UnsupportedStepError

TASKS = ("classification", "regression", "clustering", "anomaly")

# Step name -> fn(step, features) -> features
TRANSFORMERS: dict[str, Callable[[Any, list[Feature]], list[Feature]]] = {
    "SimpleImputer": preprocessing.simple_imputer,
    "StandardScaler": preprocessing.standard_scaler,
    "MinMaxScaler": preprocessing.minmax_scaler,
    "RobustScaler": preprocessing.robust_scaler,
    "OneHotEncoder": preprocessing.one_hot_encoder,
    "OrdinalEncoder": preprocessing.ordinal_encoder,
    "PCA": preprocessing.pca,
}
CONTAINERS = ("Pipeline", "ColumnTransformer")

LINEAR_REGRESSORS = ("LinearRegression", "Ridge", "Lasso", "ElasticNet", "LinearSVR", "SGDRegressor")
LINEAR_CLASSIFIERS = ("LogisticRegression", "LinearSVC", "SGDClassifier")
ESTIMATORS: dict[str, tuple[tuple[str, ...], Callable[..., Scores]]] = {
    **{
        name: (("regression",), lambda est, f, frame, task, dialect: linear.regressor(est, f, frame))
        for name in LINEAR_REGRESSORS
    },
    **{
        name: (
            ("classification",),
            lambda est, f, frame, task, dialect: linear.classifier(est, f, frame, _has_proba(est)),
        )
        for name in LINEAR_CLASSIFIERS
    },
    "DecisionTreeClassifier": (("classification",), trees.decision_tree),
    "DecisionTreeRegressor": (("regression",), trees.decision_tree),
    "RandomForestClassifier": (("classification",), trees.forest),
    "RandomForestRegressor": (("regression",), trees.forest),
    "ExtraTreesClassifier": (("classification",), trees.forest),
    "ExtraTreesRegressor": (("regression",), trees.forest),
    "GradientBoostingClassifier": (("classification",), trees.gradient_boosting),
    "GradientBoostingRegressor": (("regression",), trees.gradient_boosting),
    "HistGradientBoostingClassifier": (("classification",), trees.hist_gradient_boosting),
    "HistGradientBoostingRegressor": (("regression",), trees.hist_gradient_boosting),
    "KMeans": (("clustering",), cluster.kmeans),
    "IsolationForest": (("anomaly",), trees.isolation_forest),
}


def supported() -> str:
    """The list printed in every 'not supported' message."""
    steps = sorted(
        set(TRANSFORMERS) | set(CONTAINERS) | {"FunctionTransformer (identity)", "imblearn samplers (skipped)"}
    )
    return f"steps: {', '.join(steps)}; estimators: {', '.join(sorted(ESTIMATORS))}"


def _unsupported(what: Any, where: str = "") -> UnsupportedStepError:
    name = type(what).__name__
    place = f" (step '{where}')" if where else ""
    return UnsupportedStepError(
        f"in-warehouse scoring does not support {name}{place}; supported {supported()}. Score this model in Python "
        "instead (predict without --in-warehouse)"
    )


def _has_proba(est: Any) -> bool:
    try:
        return hasattr(est, "predict_proba")
    except Exception:
        return False


def _is_sampler(step: Any) -> bool:
    return hasattr(step, "fit_resample")


def _transform(
    step: Any, features: list[Feature], names: list[str] | None, frame: Frame, nested: str = ""
) -> list[Feature]:
    """Features out of one fitted transformer (recursing into pipelines and column transformers)."""
    if step is None or (isinstance(step, str) and step == "passthrough"):
        return features
    kind = type(step).__name__
    if kind == "Pipeline":
        for step_name, sub in step.steps:
            if _is_sampler(sub):
                continue
            features = _transform(sub, features, names, frame, nested=step_name)
            names = None
        return features
    if kind == "ColumnTransformer":
        return preprocessing.column_transformer(step, features, names, frame, _transform)
    if kind == "FunctionTransformer" and step.func is None:
        return features
    fn = TRANSFORMERS.get(kind)
    if fn is None:
        raise _unsupported(step, nested)
    return fn(step, features)


def compile_pipeline(
    pipeline: Any,
    source: exp.Expression,
    feature_columns: list[str],
    task: str,
    passthrough: list[str],
    dialect: str = "duckdb",
) -> exp.Select:
    """One SELECT scoring every row of ``source`` with the fitted ``pipeline``.

    ``feature_columns`` are the pipeline's input columns in the order it was fit
    on; ``passthrough`` columns of ``source`` come first in the result.
    ``dialect`` is where the query will run: render the result with it. Only
    the tree leaf positions depend on it (array indexes start at 1 in DuckDB
    and PostgreSQL, 0 in Spark); the rest is dialect-neutral (see ``core`` for
    how numbers are written).
    """
    if task not in TASKS:
        raise UnsupportedStepError(f"unknown task '{task}'; expected one of {', '.join(TASKS)}")
    steps = list(pipeline.steps) if type(pipeline).__name__ == "Pipeline" else [("estimator", pipeline)]
    steps = [
        (n, s)
        for n, s in steps
        if s is not None and not (isinstance(s, str) and s == "passthrough") and not _is_sampler(s)
    ]
    if not steps:
        raise UnsupportedStepError("the pipeline has no estimator to score with")
    est_name, estimator = steps[-1]
    entry = ESTIMATORS.get(type(estimator).__name__)
    if entry is None:
        raise _unsupported(estimator, est_name)
    tasks, fn = entry
    if task not in tasks:
        raise UnsupportedStepError(
            f"{type(estimator).__name__} cannot score a {task} model (it is for {', '.join(tasks)})"
        )
    frame, features = Frame.start(source, feature_columns, passthrough)
    names: list[str] | None = list(feature_columns)
    for step_name, step in steps[:-1]:
        features = _transform(step, features, names, frame, nested=step_name)
        names = None
        features = frame.stage_features(features)
    scores = fn(estimator, features, frame, task, dialect)
    outputs: list[tuple[str, exp.Expression]] = [("prediction", scores.prediction)]
    if scores.probabilities is not None:
        outputs += [(f"probability__{c}", p) for c, p in zip(estimator.classes_, scores.probabilities, strict=True)]
    if scores.anomaly_score is not None:
        outputs.append(("anomaly_score", scores.anomaly_score))
    clash = sorted({name for name, _ in outputs} & set(passthrough))
    if clash:
        raise BigmlError(
            f"the scored rows already have column(s) {', '.join(clash)}, which scoring would overwrite; rename them in "
            "the spine"
        )
    return frame.finish(outputs)


__all__ = ["UnsupportedStepError", "compile_pipeline", "supported"]
