"""Tree ensembles as nested CASE expressions, compared the way scikit-learn compares.

scikit-learn's trees (decision trees, forests, extra trees, gradient boosting,
isolation forest) cast X to float32 and compare it with float64 thresholds:
``x32 <= threshold``. The input stage therefore computes
``CAST(CAST(x AS REAL) AS DOUBLE)`` once per feature, and every split compares
that double with the exact threshold. HistGradientBoosting compares the float64
X itself. A NULL (NaN) goes where the fitted node's ``missing_go_to_left`` says.

A tree body is rendered straight to text (one ``CASE WHEN .. THEN .. ELSE ..
END`` per split, over plain column names and exponent-form number literals,
which read the same in DuckDB, PostgreSQL and Spark) and embedded in the
SQLGlot query as one node: building a SQLGlot node per split makes a 100-tree
forest take seconds to compile, text takes milliseconds. Leaf values are
precomputed in Python with the same numpy operations scikit-learn applies, and
trees are summed left to right in ``estimators_`` order, as scikit-learn does,
so the arithmetic matches bit for bit.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlglot import exp

from bigml_fs.scoring.sql.core import (
    DOUBLE,
    REAL,
    Feature,
    Frame,
    Scores,
    UnsupportedStepError,
    add_all,
    argbest,
    f64,
    label,
    num_text,
    paren,
)
from bigml_fs.scoring.sql.linear import binary_proba, softmax


def _version(text: str) -> tuple[int, int]:
    major, minor = text.split(".")[:2]
    return int(major), int("".join(ch for ch in minor if ch.isdigit()) or 0)


_SKLEARN = _version(__import__("sklearn").__version__)


@dataclass
class Splits:
    """One fitted tree: per node its feature, threshold, children (-1 at a leaf) and NaN direction."""

    feature: np.ndarray
    threshold: np.ndarray
    left: np.ndarray
    right: np.ndarray
    missing_left: np.ndarray | None

    @classmethod
    def of_sklearn(cls, tree: Any, features: list[int] | None = None, missing_values: bool = True) -> Splits:
        t = tree.tree_
        if t.n_outputs != 1:
            raise UnsupportedStepError(f"{type(tree).__name__} with several outputs is not supported in scoring SQL")
        feature = np.asarray(t.feature)
        if features is not None:  # bagging with feature subsets: tree feature i is input column features[i]
            feature = np.where(feature >= 0, np.asarray(features)[np.maximum(feature, 0)], feature)
        missing = getattr(t, "missing_go_to_left", None) if missing_values else None
        return cls(
            feature,
            np.asarray(t.threshold, dtype=np.float64),
            np.asarray(t.children_left),
            np.asarray(t.children_right),
            None if missing is None else np.asarray(missing, dtype=bool),
        )

    @classmethod
    def of_hist(cls, predictor: Any) -> Splits:
        nodes = predictor.nodes
        if nodes["is_categorical"].any():
            raise UnsupportedStepError(
                "HistGradientBoosting with categorical splits is not supported in scoring SQL; one-hot or "
                "ordinal-encode categories before it"
            )
        leaf = nodes["is_leaf"].astype(bool)
        left = np.where(leaf, -1, nodes["left"].astype(np.int64))
        right = np.where(leaf, -1, nodes["right"].astype(np.int64))
        return cls(
            nodes["feature_idx"].astype(np.int64),
            nodes["num_threshold"].astype(np.float64),
            left,
            right,
            nodes["missing_go_to_left"].astype(bool),
        )

    def used_features(self) -> set[int]:
        return {int(f) for f, lc in zip(self.feature, self.left, strict=True) if lc >= 0}


def case_text(tree: Splits, names: list[str], leaf: Callable[[int], str], nullable: list[bool] | None = None) -> str:
    """The tree as nested CASE text: ``x <= t`` goes left, NULL follows missing_go_to_left.

    A NULL fails ``x <= t`` and so goes right by itself; the explicit NULL test
    is only written where missing values go left and the feature can be NULL.
    """
    out: list[str] = []
    feature, threshold, left, right, missing = tree.feature, tree.threshold, tree.left, tree.right, tree.missing_left

    def visit(node: int) -> None:
        if left[node] < 0:
            out.append(leaf(node))
            return
        name = names[int(feature[node])]
        t = float(threshold[node])
        if t == math.inf:
            cond = f"{name} IS NOT NULL"
        elif t == -math.inf:
            cond = "FALSE"
        else:
            cond = f"{name} <= {num_text(t)}"
        if missing is not None and missing[node] and (nullable is None or nullable[int(feature[node])]):
            cond = f"({cond} OR {name} IS NULL)"
        out.append(f"CASE WHEN {cond} THEN ")
        visit(int(left[node]))
        out.append(" ELSE ")
        visit(int(right[node]))
        out.append(" END")

    visit(0)
    return "".join(out)


class Leaves:
    """Each tree's leaf as a staged column (one nested CASE per tree), and per-leaf values as array lookups.

    The nested CASE returns the position of the reached leaf; any number of
    per-leaf values (one per class) then cost one array lookup each instead of
    one more CASE tree each: in DuckDB a CASE node costs far more than a lookup
    (about 2.8x faster for a binary forest). Positions start at the dialect's
    array index offset (1 in DuckDB and PostgreSQL, 0 in Spark). With
    ``direct`` (one value per tree: regression, binary boosting, isolation
    forest) the CASE returns the value itself and there is no leaf stage.
    """

    def __init__(self, frame: Frame, trees: list[Splits], inputs: TreeInputs, offset: int, direct: bool = False):
        self.trees = trees
        self.names, self.nullable = inputs.names, inputs.nullable
        self.direct = direct  # one value per tree: the CASE returns it, no leaf stage
        self.positions = []
        named: dict[str, exp.Expression] = {}
        if direct:
            return
        for j, tree in enumerate(trees):
            leaves = np.flatnonzero(tree.left < 0)
            position = np.full(len(tree.left), -1, dtype=np.int64)
            position[leaves] = np.arange(offset, offset + len(leaves))
            self.positions.append(leaves)
            named[f"l{j}"] = paren(
                exp.Var(
                    this=case_text(tree, self.names, lambda n, position=position: str(int(position[n])), self.nullable)
                )
            )
        frame.stage(named)

    def value(self, j: int, per_node: np.ndarray) -> exp.Expression:
        """DOUBLE: ``per_node`` (indexed by node id) at the leaf tree ``j`` reached."""
        if self.direct:
            return exp.Cast(
                this=paren(
                    exp.Var(this=case_text(self.trees[j], self.names, lambda n: num_text(per_node[n]), self.nullable))
                ),
                to=DOUBLE.copy(),
            )
        leaves = self.positions[j]
        if len(leaves) == 1:
            return f64(float(per_node[leaves[0]]))
        array = exp.Array(expressions=[exp.Var(this=", ".join(num_text(per_node[n]) for n in leaves))])
        return exp.Cast(this=exp.Bracket(this=array, expressions=[exp.column(f"l{j}")]), to=DOUBLE.copy())

    def total(self, per_tree: list[np.ndarray], first: exp.Expression | None = None) -> exp.Expression:
        """((first + v0) + v1) + ...: the trees' values summed in order, as scikit-learn accumulates them."""
        terms = [self.value(j, values) for j, values in enumerate(per_tree)]
        return add_all([first, *terms] if first is not None else terms)


@dataclass
class TreeInputs:
    """The staged columns trees compare (by feature index) and whether each can be NULL."""

    names: list[str]
    nullable: list[bool]


def inputs(frame: Frame, features: list[Feature], trees: list[Splits], float32: bool) -> TreeInputs:
    """Stage the features the trees split on: float32-rounded doubles (or plain doubles for HGB)."""
    used = sorted(set().union(*(t.used_features() for t in trees))) if trees else []
    named = {}
    for i in used:
        e = features[i].double()
        if float32:
            e = exp.Cast(this=exp.Cast(this=e, to=REAL.copy()), to=DOUBLE.copy())
        named[f"t{i}"] = e
    if not named:  # a forest of stumps: keep one column so the stage is valid SQL
        named["t_"] = f64(0.0)
    frame.stage(named)
    return TreeInputs([f"t{i}" for i in range(len(features))], [f.nullable for f in features])


def index_offset(dialect: str) -> int:
    from sqlglot.dialects.dialect import Dialect

    return int(Dialect.get_or_raise(dialect).INDEX_OFFSET)


def _proba_values(tree: Any) -> np.ndarray:
    """Per node, the class probabilities DecisionTreeClassifier.predict_proba returns.

    Since scikit-learn 1.4 ``tree_.value`` holds the fractions and predict_proba
    returns them as they are; before, it divided by their sum (which can move
    the last bit, so the version decides).
    """
    proba = np.array(tree.tree_.value[:, 0, :], dtype=np.float64)[:, : tree.n_classes_]
    if _SKLEARN < (1, 4):
        normalizer = proba.sum(axis=1)[:, np.newaxis]
        normalizer[normalizer == 0.0] = 1.0
        proba /= normalizer
    return proba


def decision_tree(est: Any, features: list[Feature], frame: Frame, task: str, dialect: str) -> Scores:
    tree = Splits.of_sklearn(est)
    names = inputs(frame, features, [tree], float32=True)
    leaves = Leaves(frame, [tree], names, index_offset(dialect))
    if task != "classification":
        return Scores(prediction=leaves.value(0, est.tree_.value[:, 0, 0]))
    classes = list(est.classes_)
    proba = _proba_values(est)
    winner = np.argmax(np.asarray(est.tree_.value[:, 0, : est.n_classes_]), axis=1).astype(np.float64)
    named = {f"pr{k}": leaves.value(0, proba[:, k]) for k in range(len(classes))}
    named["cls"] = leaves.value(0, winner)
    refs = frame.stage(named)
    prediction = exp.Case(
        ifs=[
            exp.If(this=exp.EQ(this=refs["cls"].copy(), expression=f64(float(k))), true=label(c))
            for k, c in enumerate(classes)
        ]
    )
    return Scores(prediction=prediction, probabilities=[refs[f"pr{k}"] for k in range(len(classes))])


def forest(est: Any, features: list[Feature], frame: Frame, task: str, dialect: str) -> Scores:
    """RandomForest / ExtraTrees: the mean of the trees' (normalised) predictions."""
    trees = [Splits.of_sklearn(t) for t in est.estimators_]
    names = inputs(frame, features, trees, float32=True)
    leaves = Leaves(frame, trees, names, index_offset(dialect), direct=task != "classification")
    n = f64(float(len(trees)))
    if task != "classification":
        refs = frame.stage({"total": leaves.total([t.tree_.value[:, 0, 0] for t in est.estimators_])})
        return Scores(prediction=exp.Div(this=refs["total"], expression=n))
    classes = list(est.classes_)
    probas = [_proba_values(t) for t in est.estimators_]
    frame.stage({f"sum{k}": leaves.total([p[:, k] for p in probas]) for k in range(len(classes))})
    refs = frame.stage(
        {f"pr{k}": exp.Div(this=exp.column(f"sum{k}"), expression=n.copy()) for k in range(len(classes))}
    )
    probs = [refs[f"pr{k}"] for k in range(len(classes))]
    return Scores(prediction=argbest(probs, [label(c) for c in classes]), probabilities=probs)


def _gb_init(est: Any) -> np.ndarray:
    init = est.init_
    if not (isinstance(init, str) and init == "zero") and type(init).__name__ not in (
        "DummyClassifier",
        "DummyRegressor",
    ):
        raise UnsupportedStepError(
            f"GradientBoosting with init={type(init).__name__} is not supported in scoring SQL; use the default init"
        )
    x = np.zeros((1, est.n_features_in_), dtype=np.float32)
    return np.asarray(est._raw_predict_init(x), dtype=np.float64)[0]


def gradient_boosting(est: Any, features: list[Feature], frame: Frame, task: str, dialect: str) -> Scores:
    stages = est.estimators_  # shape (n_stages, K)
    # GradientBoosting's own tree walk has no NaN branch (NaN <= t is false: right), and it rejects NaN input
    trees = [[Splits.of_sklearn(t, missing_values=False) for t in row] for row in stages]
    names = inputs(frame, features, [t for row in trees for t in row], float32=True)
    init = _gb_init(est)
    lr = float(est.learning_rate)
    k_count = stages.shape[1]
    flat = [t for row in trees for t in row]
    leaves = Leaves(frame, flat, names, index_offset(dialect), direct=k_count == 1)
    raws = {}
    for k in range(k_count):
        terms = [f64(float(init[k]))]
        for i, row in enumerate(stages):
            scaled = np.array([lr * float(v) for v in row[k].tree_.value[:, 0, 0]])
            terms.append(leaves.value(i * k_count + k, scaled))
        raws[f"raw{k}"] = add_all(terms)
    frame.stage(raws)
    if task != "classification":
        return Scores(prediction=exp.column("raw0"))
    loss = type(est._loss).__name__
    if loss not in ("HalfBinomialLoss", "HalfMultinomialLoss"):
        raise UnsupportedStepError(
            f"GradientBoostingClassifier with loss {est.loss!r} is not supported in scoring SQL; use loss='log_loss'"
        )
    labels = [label(c) for c in est.classes_]
    if k_count == 1:
        refs, probs = binary_proba(frame, "raw0")
        return Scores(
            prediction=exp.Case(
                ifs=[exp.If(this=exp.GTE(this=refs["raw0"].copy(), expression=f64(0.0)), true=labels[1])],
                default=labels[0],
            ),
            probabilities=probs,
        )
    names_raw = list(raws)
    _, probs = softmax(frame, names_raw)
    return Scores(prediction=argbest([exp.column(n) for n in names_raw], labels), probabilities=probs)


def hist_gradient_boosting(est: Any, features: list[Feature], frame: Frame, task: str, dialect: str) -> Scores:
    if getattr(est, "is_categorical_", None) is not None and np.asarray(est.is_categorical_).any():
        raise UnsupportedStepError(
            "HistGradientBoosting with categorical_features is not supported in scoring SQL; one-hot or ordinal-encode "
            "categories before it"
        )
    predictors = est._predictors
    trees = [[Splits.of_hist(p) for p in row] for row in predictors]
    names = inputs(frame, features, [t for row in trees for t in row], float32=False)
    baseline = np.asarray(est._baseline_prediction, dtype=np.float64).reshape(-1)
    k_count = len(baseline)
    leaves = Leaves(frame, [t for row in trees for t in row], names, index_offset(dialect), direct=k_count == 1)
    raws = {}
    for k in range(k_count):
        terms = [f64(float(baseline[k]))]
        for i, row in enumerate(predictors):
            terms.append(leaves.value(i * k_count + k, row[k].nodes["value"].astype(np.float64)))
        raws[f"raw{k}"] = add_all(terms)
    frame.stage(raws)
    if task != "classification":
        link = type(est._loss.link).__name__
        if link == "IdentityLink":
            return Scores(prediction=exp.column("raw0"))
        if link == "LogLink":
            return Scores(prediction=exp.Exp(this=exp.column("raw0")))
        raise UnsupportedStepError(
            f"HistGradientBoostingRegressor with loss {est.loss!r} is not supported in scoring SQL"
        )
    labels = [label(c) for c in est.classes_]
    if k_count == 1:
        refs, probs = binary_proba(frame, "raw0")
        return Scores(
            prediction=exp.Case(
                ifs=[exp.If(this=exp.GT(this=refs["raw0"].copy(), expression=f64(0.0)), true=labels[1])],
                default=labels[0],
            ),
            probabilities=probs,
        )
    names_raw = list(raws)
    _, probs = softmax(frame, names_raw)
    return Scores(prediction=argbest([exp.column(n) for n in names_raw], labels), probabilities=probs)


def isolation_forest(est: Any, features: list[Feature], frame: Frame, task: str, dialect: str) -> Scores:
    """score_samples = -2 ** (-mean path length / c(max_samples)); decision = score - offset_."""
    from sklearn.ensemble._iforest import _average_path_length

    subsample = est._max_features != est.n_features_in_
    trees = [
        Splits.of_sklearn(t, list(f) if subsample else None)
        for t, f in zip(est.estimators_, est.estimators_features_, strict=True)
    ]
    names = inputs(frame, features, trees, float32=True)
    leaves = Leaves(frame, trees, names, index_offset(dialect), direct=True)
    per_tree = [
        np.asarray(lengths, dtype=np.float64) + np.asarray(averages, dtype=np.float64) - 1.0
        for lengths, averages in zip(est._decision_path_lengths, est._average_path_length_per_tree, strict=True)
    ]
    frame.stage({"depth": leaves.total(per_tree)})
    denominator = len(est.estimators_) * float(_average_path_length([est._max_samples])[0])
    if denominator == 0:
        ratio: exp.Expression = f64(1.0)
    else:
        ratio = exp.Div(this=exp.column("depth"), expression=f64(denominator))
    score = exp.Neg(this=exp.Pow(this=f64(2.0), expression=exp.Neg(this=paren(ratio))))
    refs = frame.stage({"anomaly": exp.Sub(this=score, expression=f64(float(est.offset_)))})
    prediction = exp.Case(
        ifs=[
            exp.If(
                this=exp.LT(this=refs["anomaly"].copy(), expression=f64(0.0)),
                true=exp.Cast(this=exp.Literal.number(-1), to=exp.DataType.build("bigint")),
            )
        ],
        default=exp.Cast(this=exp.Literal.number(1), to=exp.DataType.build("bigint")),
    )
    return Scores(prediction=prediction, anomaly_score=refs["anomaly"])
