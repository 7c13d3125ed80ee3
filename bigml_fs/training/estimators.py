"""Turn a model definition's estimator name into a configured scikit-learn object.

Short names come from ``spec/estimators.py`` (the one list ``validate`` checks);
a dotted path names any class. ``seed`` goes to every ``random_state`` so
training twice gives the same model.
"""

from __future__ import annotations

import importlib
from typing import Any

from bigml_fs.errors import BigmlError, did_you_mean
from bigml_fs.spec.estimators import ESTIMATORS, is_dotted_path
from bigml_fs.spec.schema import ModelSpec

# Defaults that make a short name mean what it says, or make its output usable.
DEFAULTS: dict[tuple[str, str], dict[str, Any]] = {
    ("classification", "lasso"): {"l1_ratio": 1.0, "solver": "saga", "max_iter": 2000},
    ("classification", "logistic_regression"): {"max_iter": 1000},
    ("anomaly", "local_outlier_factor"): {"novelty": True},  # so it can score new rows
}


class EstimatorError(BigmlError):
    """An estimator that cannot be imported or configured as written."""


def estimator_path(model: ModelSpec) -> str:
    """The dotted import path of the model's estimator."""
    return ESTIMATORS[model.task].get(model.estimator, model.estimator)


def estimator_class(model: ModelSpec) -> type:
    path = estimator_path(model)
    module_name, _, class_name = path.rpartition(".")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise EstimatorError(
            f"model '{model.name}': cannot import '{module_name}' for estimator '{model.estimator}': {exc}"
        ) from None
    cls = getattr(module, class_name, None)
    if not isinstance(cls, type):
        names = [n for n in dir(module) if not n.startswith("_")]
        raise EstimatorError(
            f"model '{model.name}': '{module_name}' has no class '{class_name}'{did_you_mean(class_name, names)}"
        )
    return cls


def make_estimator(model: ModelSpec, overrides: dict[str, Any] | None = None, classes: list[Any] | None = None) -> Any:
    """A fresh estimator with defaults, the YAML params, tuning overrides, seed and class_weight."""
    cls = estimator_class(model)
    if not (hasattr(cls, "fit") and hasattr(cls, "get_params")):
        raise EstimatorError(
            f"model '{model.name}': {estimator_path(model)} is not a scikit-learn estimator (it has no "
            "fit/get_params); name an estimator class"
        )
    try:
        accepted = set(cls().get_params())
    except TypeError:
        accepted = set()
    params: dict[str, Any] = {**DEFAULTS.get((model.task, model.estimator), {}), **model.params, **(overrides or {})}
    unknown = [k for k in params if k not in accepted]
    if unknown:
        raise EstimatorError(
            f"model '{model.name}': {cls.__name__} has no parameter "
            f"'{unknown[0]}'{did_you_mean(unknown[0], accepted)}; "
            f"it takes {', '.join(sorted(accepted)) or 'no parameters'}"
        )
    if "random_state" in accepted:
        params.setdefault("random_state", model.seed)
    if model.class_weight is not None:
        if "class_weight" not in accepted:
            raise EstimatorError(
                f"model '{model.name}': {cls.__name__} does not take class_weight; remove it or use 'resample: "
                f"{{method: under}}' instead"
            )
        params["class_weight"] = _class_weight(model, classes)
    try:
        return cls(**params)
    except (TypeError, ValueError) as exc:
        raise EstimatorError(f"model '{model.name}': cannot create {cls.__name__} with {params}: {exc}") from None


def _class_weight(model: ModelSpec, classes: list[Any] | None) -> Any:
    """``balanced``, or YAML's text keys mapped onto the target's classes (``{"1": 10}`` for an integer target)."""
    if not isinstance(model.class_weight, dict) or classes is None:
        return model.class_weight
    by_text = {str(c): c for c in classes}
    out = {}
    for key, weight in model.class_weight.items():
        if key not in by_text:
            raise EstimatorError(
                f"model '{model.name}': class_weight names class '{key}', which the target does not "
                f"have{did_you_mean(key, by_text)}; classes: {', '.join(by_text)}"
            )
        out[by_text[key]] = weight
    return out


def accepted_params(model: ModelSpec) -> set[str] | None:
    """The parameter names the model's estimator takes (its ``get_params()``), or None if it cannot be loaded."""
    try:
        cls = estimator_class(model)
        return set(cls().get_params())
    except (EstimatorError, TypeError, AttributeError):
        return None  # a class that cannot be imported or built is reported when training


def unknown_params(model: ModelSpec) -> list[tuple[tuple[str, ...], str]]:
    """``params`` and estimator keys of ``tuning.space`` the estimator does not take: (path in the model, message).

    What ``make_estimator`` refuses when training, found by ``validate`` before any data is read.
    """
    if model.estimator not in ESTIMATORS[model.task] and not is_dotted_path(model.estimator):
        return []  # an unknown estimator name is the catalog's error
    space = model.tuning.space if model.tuning else {}
    named = [(("params", k), k) for k in model.params]
    named += [
        (("tuning", "space", k), k.removeprefix("estimator__"))
        for k in space
        if "__" not in k.removeprefix("estimator__")
    ]
    if not named:
        return []
    accepted = accepted_params(model)
    if accepted is None:
        return []
    out = []
    for path, key in named:
        if key not in accepted:
            out.append(
                (
                    path,
                    f"{estimator_path(model).rpartition('.')[2]} has no parameter '{key}'"
                    f"{did_you_mean(key, accepted)}; it takes {', '.join(sorted(accepted)) or 'no parameters'}",
                )
            )
    return out
