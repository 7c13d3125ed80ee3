"""In-warehouse scoring on Apache Spark (local) equals scikit-learn: FLOAT casts, 0-based arrays, NULLs."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import (
    GradientBoostingClassifier,
    HistGradientBoostingClassifier,
    IsolationForest,
    RandomForestClassifier,
)
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

from bigml_fs.scoring.sql import compile_pipeline
from tests.sql_scoring_helpers import (
    FEATURES,
    NUMERIC,
    TEXT,
    add_rows,
    expected,
    frame_of,
    make_data,
    threshold_rows,
    tree_thresholds,
)

pytestmark = [pytest.mark.spark, pytest.mark.slow, pytest.mark.filterwarnings("ignore")]


def test_spark_scores_equal_sklearn():
    from bigml_fs.engines.spark_engine import SparkEngine

    table, X = make_data(5, 300, 0.15)
    yb = (np.nan_to_num(X["n0"].to_numpy()) + (X["c0"] == "a").to_numpy() > 0.4).astype(int)
    y3 = np.digitize(np.nan_to_num(X["n1"].to_numpy()), [3, 6])
    pre = ColumnTransformer(
        [
            ("num", Pipeline([("i", SimpleImputer()), ("s", StandardScaler())]), NUMERIC),
            (
                "cat",
                Pipeline(
                    [
                        ("i", SimpleImputer(strategy="constant", fill_value="__m")),
                        ("e", OneHotEncoder(handle_unknown="ignore")),
                    ]
                ),
                TEXT,
            ),
        ]
    )
    raw = ColumnTransformer(
        [
            ("num", SimpleImputer(), NUMERIC),
            (
                "cat",
                OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1, encoded_missing_value=-2),
                TEXT,
            ),
        ]
    )
    nan = ColumnTransformer(
        [
            ("num", "passthrough", NUMERIC),
            ("cat", OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1), TEXT),
        ]
    )
    cases = [
        (Pipeline([("p", pre), ("e", LogisticRegression(max_iter=500))]).fit(X, y3), "classification"),
        (
            Pipeline([("p", raw), ("e", RandomForestClassifier(10, max_depth=6, random_state=0))]).fit(X, yb),
            "classification",
        ),
        (
            Pipeline([("p", raw), ("e", GradientBoostingClassifier(n_estimators=10, random_state=0))]).fit(X, y3),
            "classification",
        ),
        (
            Pipeline([("p", nan), ("e", HistGradientBoostingClassifier(max_iter=10, random_state=0))]).fit(X, yb),
            "classification",
        ),
        (Pipeline([("p", raw), ("e", IsolationForest(n_estimators=10, random_state=0))]).fit(X), "anomaly"),
    ]
    rows = threshold_rows(tree_thresholds(cases[1][0][-1].estimators_))
    scored = add_rows(add_rows(table, [[None, None, None]], [["unseen", None]]), rows, [["a", "b"]] * len(rows))
    engine = SparkEngine("local[1]")
    try:
        relation = engine.load_arrow("scored", scored)
        for pipe, task in cases:
            got = (
                engine.to_arrow(compile_pipeline(pipe, relation, FEATURES, task, ["row_id"], "spark"))
                .to_pandas()
                .sort_values("row_id")
            )
            want = expected(pipe, frame_of(scored), task)
            assert list(got.columns) == ["row_id", *want]
            assert (got["prediction"].to_numpy() == want["prediction"]).all(), type(pipe[-1]).__name__
            for name in want:
                if name != "prediction":
                    assert np.abs(got[name].to_numpy(np.float64) - want[name]).max() <= 1e-6, (
                        type(pipe[-1]).__name__,
                        name,
                    )
    finally:
        engine.close()
