"""One scikit-learn Pipeline per model: every transformation lives inside it.

Training, batch scoring, HTTP scoring and in-engine SQL scoring all start from
the same fitted object, so they transform features the same way. The input is
a DataFrame with the model's feature columns (numbers as float64, text as
object with NaN for null); see ``frame()``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa
from sklearn.compose import ColumnTransformer
from sklearn.decomposition import PCA
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import MinMaxScaler, OneHotEncoder, OrdinalEncoder, RobustScaler, StandardScaler

from bigml_fs.errors import BigmlError
from bigml_fs.spec.schema import ModelSpec
from bigml_fs.training.estimators import make_estimator

if TYPE_CHECKING:
    from bigml_fs.training.manifest import FeatureColumn

NUMERIC = "numeric"
CATEGORICAL = "categorical"
MISSING = "__missing__"
SCALERS = {"standard": StandardScaler, "minmax": MinMaxScaler, "robust": RobustScaler}


def column_kind(name: str, dtype: pa.DataType) -> str:
    """numeric or categorical, from a training-set column's Arrow type."""
    if (
        pa.types.is_integer(dtype)
        or pa.types.is_floating(dtype)
        or pa.types.is_boolean(dtype)
        or pa.types.is_decimal(dtype)
        or pa.types.is_null(dtype)
    ):
        return NUMERIC
    if pa.types.is_string(dtype) or pa.types.is_large_string(dtype) or pa.types.is_dictionary(dtype):
        return CATEGORICAL
    raise BigmlError(
        f"feature '{name}' has type {dtype}, which a model cannot use directly; derive a number or a category from it "
        "in the view (e.g. an age in seconds)"
    )


def frame(table: pa.Table, features: list[FeatureColumn]) -> pd.DataFrame:
    """The pipeline's input: feature columns in manifest order, numbers float64, text object with NaN for null."""
    data: dict[str, Any] = {}
    for feature in features:
        name = feature.column
        column = table.column(name)
        if feature.kind == NUMERIC:
            data[name] = column.cast(pa.float64()).to_numpy(zero_copy_only=False).astype(np.float64)
        else:
            values = column.cast(pa.string()).to_numpy(zero_copy_only=False).astype(object)
            values[pd.isna(values)] = np.nan  # SimpleImputer finds NaN, not None, in object columns
            data[name] = values
    return pd.DataFrame(data, columns=[f.column for f in features])


def build_pipeline(
    model: ModelSpec,
    features: list[FeatureColumn],
    overrides: dict[str, Any] | None = None,
    classes: list[Any] | None = None,
) -> Any:
    """Preprocess (per column kind), optional PCA, optional resampling (fit only), then the estimator."""
    prep = model.preprocessing
    numeric = [f.column for f in features if f.kind == NUMERIC]
    categorical = [f.column for f in features if f.kind == CATEGORICAL]
    parts: list[tuple[str, Any, list[str]]] = []
    if numeric:
        steps: list[tuple[str, Any]] = []
        if prep.impute != "none":
            steps.append(
                ("impute", SimpleImputer(strategy=prep.impute, fill_value=0 if prep.impute == "constant" else None))
            )
        if prep.scale != "none":
            steps.append(("scale", SCALERS[prep.scale]()))
        parts.append((NUMERIC, Pipeline(steps) if steps else "passthrough", numeric))
    if categorical:
        if prep.encode == "none":
            raise BigmlError(
                f"model '{model.name}': feature(s) {', '.join(categorical)} are text; set preprocessing.encode to "
                "onehot or ordinal"
            )
        steps = []
        if prep.impute != "none":
            strategy = "most_frequent" if prep.impute == "most_frequent" else "constant"
            steps.append(
                ("impute", SimpleImputer(strategy=strategy, fill_value=MISSING if strategy == "constant" else None))
            )
        if prep.encode == "onehot":
            steps.append(("encode", OneHotEncoder(handle_unknown="ignore", sparse_output=False)))
        else:
            steps.append(("encode", OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1)))
        parts.append((CATEGORICAL, Pipeline(steps), categorical))
    steps = [("preprocess", ColumnTransformer(parts, remainder="drop", sparse_threshold=0.0))]
    if prep.reduce is not None:
        steps.append(("reduce", PCA(n_components=prep.reduce.pca, random_state=model.seed)))
    estimator_overrides = {
        k.removeprefix("estimator__"): v
        for k, v in (overrides or {}).items()
        if "__" not in k or k.startswith("estimator__")
    }
    estimator = make_estimator(model, estimator_overrides, classes)
    if model.resample is not None:
        from imblearn.pipeline import Pipeline as ImbPipeline

        steps.append(("resample", _sampler(model, len(classes or [0, 1]))))
        steps.append(("estimator", estimator))
        pipeline: Any = ImbPipeline(steps)
    else:
        steps.append(("estimator", estimator))
        pipeline = Pipeline(steps)
    other = {k: v for k, v in (overrides or {}).items() if "__" in k and not k.startswith("estimator__")}
    if other:
        try:
            pipeline.set_params(**other)
        except ValueError as exc:
            raise BigmlError(f"model '{model.name}': tuning space: {exc}") from None
    return pipeline


def _sampler(model: ModelSpec, n_classes: int) -> Any:
    from imblearn.over_sampling import SMOTE, RandomOverSampler
    from imblearn.under_sampling import RandomUnderSampler

    resample = model.resample
    assert resample is not None
    if n_classes > 2 and resample.ratio != 1.0:
        raise BigmlError(
            f"model '{model.name}': resample.ratio applies to two classes; with {n_classes} classes use ratio: 1.0 "
            "(balance all)"
        )
    strategy: Any = resample.ratio if n_classes <= 2 else "auto"
    cls = {"under": RandomUnderSampler, "over": RandomOverSampler, "smote": SMOTE}[resample.method]
    return cls(sampling_strategy=strategy, random_state=model.seed)
