"""Preprocessing steps as SQL expressions: imputers, scalers, encoders, column transformer, PCA.

Each function maps the feature columns entering a step to the columns leaving
it, in scikit-learn's output order. NULL plays NaN's part: scalers and PCA keep
it, imputers replace it, encoders treat it as the category NaN when NaN was
seen in training and as unknown otherwise, exactly as scikit-learn does.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sqlglot import exp

from bigml_fs.scoring.sql.core import Feature, Frame, UnsupportedStepError, add_all, f64, paren, to_double


def _is_nan(value: Any) -> bool:
    return value is None or (isinstance(value, (float, np.floating)) and np.isnan(value))


def _equals(feature: Feature, category: Any) -> exp.Expression:
    """``feature = category`` with NaN meaning NULL; numbers compared as doubles."""
    if _is_nan(category):
        return exp.Is(this=feature.expr.copy(), expression=exp.Null())
    if isinstance(category, (str, np.str_)):
        value: exp.Expression = feature.expr.copy()
        if feature.numeric:
            raise UnsupportedStepError(
                f"a text category ({category!r}) is compared with a numeric column; encode text columns only"
            )
        return exp.EQ(this=value, expression=exp.Literal.string(str(category)))
    if isinstance(category, (bool, np.bool_, int, np.integer, float, np.floating)):
        return exp.EQ(this=feature.double(), expression=f64(float(category)))
    raise UnsupportedStepError(
        f"category {category!r} of type {type(category).__name__} is not supported in scoring SQL"
    )


def _indicator(cond: exp.Expression) -> exp.Expression:
    return exp.Case(ifs=[exp.If(this=cond, true=f64(1.0))], default=f64(0.0))


def simple_imputer(step: Any, features: list[Feature]) -> list[Feature]:
    if not _is_nan(step.missing_values):
        raise UnsupportedStepError(
            f"SimpleImputer(missing_values={step.missing_values!r}) is not supported; only NaN/None (SQL NULL) missing "
            "values"
        )
    stats = step.statistics_
    out: list[Feature] = []
    for f, stat in zip(features, stats, strict=True):
        if isinstance(stat, (str, np.str_)):
            out.append(
                Feature(
                    exp.Coalesce(this=f.expr.copy(), expressions=[exp.Literal.string(str(stat))]),
                    numeric=False,
                    nullable=False,
                )
            )
        elif _is_nan(stat):
            if stats.dtype.kind == "O":  # text column whose statistic is missing: values pass through
                out.append(Feature(f.expr.copy(), numeric=False))
            elif getattr(step, "keep_empty_features", False):
                out.append(Feature(exp.Coalesce(this=f.double(), expressions=[f64(0.0)]), nullable=False))
            # else: scikit-learn drops a feature that was empty in training
        elif isinstance(stat, (int, float, np.integer, np.floating)) and not isinstance(stat, (bool, np.bool_)):
            out.append(Feature(exp.Coalesce(this=f.double(), expressions=[f64(float(stat))]), nullable=False))
        else:
            raise UnsupportedStepError(
                f"SimpleImputer fill value {stat!r} is not supported in scoring SQL; fill numbers with numbers and "
                "text with text"
            )
    indicator = getattr(step, "indicator_", None)
    if indicator is not None:
        for i in indicator.features_:
            out.append(Feature(_indicator(exp.Is(this=features[i].expr.copy(), expression=exp.Null())), nullable=False))
    return out


def standard_scaler(step: Any, features: list[Feature]) -> list[Feature]:
    out = []
    for i, f in enumerate(features):
        e = f.double()
        if step.mean_ is not None and step.with_mean:
            e = paren(exp.Sub(this=e, expression=f64(step.mean_[i])))
        if step.scale_ is not None and step.with_std:
            e = paren(exp.Div(this=e, expression=f64(step.scale_[i])))
        out.append(Feature(e, nullable=f.nullable))
    return out


def robust_scaler(step: Any, features: list[Feature]) -> list[Feature]:
    out = []
    for i, f in enumerate(features):
        e = f.double()
        if step.with_centering:
            e = paren(exp.Sub(this=e, expression=f64(step.center_[i])))
        if step.with_scaling:
            e = paren(exp.Div(this=e, expression=f64(step.scale_[i])))
        out.append(Feature(e, nullable=f.nullable))
    return out


def minmax_scaler(step: Any, features: list[Feature]) -> list[Feature]:
    out = []
    low, high = step.feature_range
    for i, f in enumerate(features):
        e: exp.Expression = paren(
            exp.Add(this=exp.Mul(this=f.double(), expression=f64(step.scale_[i])), expression=f64(step.min_[i]))
        )
        if step.clip:  # np.clip keeps NaN: a CASE keeps NULL on every engine
            e = exp.Case(
                ifs=[
                    exp.If(this=exp.LT(this=e.copy(), expression=f64(low)), true=f64(low)),
                    exp.If(this=exp.GT(this=e.copy(), expression=f64(high)), true=f64(high)),
                ],
                default=e,
            )
        out.append(Feature(e, nullable=f.nullable))
    return out


def one_hot_encoder(step: Any, features: list[Feature]) -> list[Feature]:
    infrequent = getattr(step, "_infrequent_enabled", False)
    drop_idx = step.drop_idx_
    out: list[Feature] = []
    for i, (f, cats) in enumerate(zip(features, step.categories_, strict=True)):
        rare = step.infrequent_categories_[i] if infrequent else None
        if rare is not None:
            if drop_idx is not None:
                raise UnsupportedStepError("OneHotEncoder with both infrequent categories and drop is not supported")
            rare_set = {str(c) for c in rare}
            frequent = [c for c in cats if str(c) not in rare_set]
            out += [Feature(_indicator(_equals(f, c)), nullable=False) for c in frequent]
            conds = [_equals(f, c) for c in rare]
            if step.handle_unknown == "infrequent_if_exist":
                known = [_equals(f, c) for c in cats]
                any_known = known[0]
                for k in known[1:]:
                    any_known = exp.Or(this=any_known, expression=k)
                conds.append(exp.Not(this=paren(exp.Coalesce(this=paren(any_known), expressions=[exp.false()]))))
            cond = conds[0]
            for c in conds[1:]:
                cond = exp.Or(this=cond, expression=c)
            out.append(Feature(_indicator(cond), nullable=False))
            continue
        skip = None if drop_idx is None else drop_idx[i]
        for j, c in enumerate(cats):
            if skip is not None and j == skip:
                continue
            out.append(Feature(_indicator(_equals(f, c)), nullable=False))
    return out


def ordinal_encoder(step: Any, features: list[Feature]) -> list[Feature]:
    if getattr(step, "_infrequent_enabled", False):
        raise UnsupportedStepError("OrdinalEncoder with infrequent categories is not supported")
    unknown = step.unknown_value if step.handle_unknown == "use_encoded_value" else np.nan
    missing = step.encoded_missing_value
    out = []
    for f, cats in zip(features, step.categories_, strict=True):
        ifs = []
        has_nan = any(_is_nan(c) for c in cats)
        for j, c in enumerate(cats):
            if _is_nan(c):
                ifs.append(exp.If(this=_equals(f, c), true=f64(missing)))
            else:
                ifs.append(exp.If(this=_equals(f, c), true=f64(float(j))))
        if not has_nan:  # NaN unseen in training is an unknown category
            ifs.append(exp.If(this=exp.Is(this=f.expr.copy(), expression=exp.Null()), true=f64(unknown)))
        nullable = bool(np.isnan(unknown)) or (has_nan and bool(np.isnan(missing)))
        out.append(Feature(exp.Case(ifs=ifs, default=f64(unknown)), nullable=nullable))
    return out


def pca(step: Any, features: list[Feature]) -> list[Feature]:
    comps = np.asarray(step.components_, dtype=np.float64)
    offsets = np.asarray(step.mean_, dtype=np.float64).reshape(1, -1) @ comps.T
    scale = None
    if step.whiten:
        scale = np.sqrt(step.explained_variance_)
        scale[scale < np.finfo(scale.dtype).eps] = np.finfo(scale.dtype).eps
    out = []
    for j in range(comps.shape[0]):
        terms = [exp.Mul(this=f.double(), expression=f64(w)) for f, w in zip(features, comps[j], strict=True)]
        e: exp.Expression = paren(exp.Sub(this=paren(add_all(terms)), expression=f64(offsets[0, j])))
        if scale is not None:
            e = paren(exp.Div(this=e, expression=f64(scale[j])))
        out.append(Feature(e, nullable=any(f.nullable for f in features)))
    return out


def _positions(spec: Any, names: list[str] | None, n: int) -> list[int]:
    """Column indices a ColumnTransformer entry selects (names, integers, a mask or a slice)."""
    if isinstance(spec, slice):
        if isinstance(spec.start, str) or isinstance(spec.stop, str):
            if names is None:
                raise UnsupportedStepError(
                    "a ColumnTransformer selects columns by name, but the columns have no names here"
                )
            start = names.index(spec.start) if spec.start is not None else 0
            stop = names.index(spec.stop) + 1 if spec.stop is not None else n
            return list(range(start, stop))
        return list(range(n))[spec]
    if isinstance(spec, (str, int, np.integer)):
        spec = [spec]
    items = list(spec)
    if not items:
        return []
    if all(isinstance(x, (bool, np.bool_)) for x in items):
        return [i for i, b in enumerate(items) if b]
    out = []
    for x in items:
        if isinstance(x, (str, np.str_)):
            if names is None or x not in names:
                raise UnsupportedStepError(
                    f"the pipeline uses column '{x}', which is not among the scoring input columns {names}"
                )
            out.append(names.index(str(x)))
        else:
            out.append(int(x))
    return out


def column_transformer(
    step: Any, features: list[Feature], names: list[str] | None, frame: Frame, compile_step: Any
) -> list[Feature]:
    out: list[Feature] = []
    for name, trans, spec in step.transformers_:
        idx = _positions(spec, names, len(features))
        if trans == "drop" or not idx:
            continue
        chosen = [features[i] for i in idx]
        if trans == "passthrough":
            out += [Feature(f.expr.copy(), f.numeric, f.nullable) for f in chosen]
        else:
            out += compile_step(trans, chosen, [names[i] for i in idx] if names else None, frame, nested=name)
    return out


def as_double(features: list[Feature]) -> list[Feature]:
    return [Feature(f.double(), nullable=f.nullable) if not f.numeric else f for f in features]


__all__ = [
    "as_double",
    "column_transformer",
    "minmax_scaler",
    "one_hot_encoder",
    "ordinal_encoder",
    "pca",
    "robust_scaler",
    "simple_imputer",
    "standard_scaler",
    "to_double",
]
