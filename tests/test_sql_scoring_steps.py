"""In-warehouse scoring: every preprocessing step equals scikit-learn, errors name what is unsupported,
and the same query renders for PostgreSQL and Spark (and runs on the real PostgreSQL)."""

from __future__ import annotations

import numpy as np
import pytest
import sqlglot
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from imblearn.over_sampling import RandomOverSampler
from imblearn.pipeline import Pipeline as ImbPipeline
from sklearn.compose import ColumnTransformer
from sklearn.decomposition import PCA
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import (
    FunctionTransformer,
    MinMaxScaler,
    OneHotEncoder,
    OrdinalEncoder,
    PolynomialFeatures,
    RobustScaler,
    StandardScaler,
)
from sqlglot import exp

from bigml_fs.errors import BigmlError
from bigml_fs.scoring.sql import compile_pipeline
from tests.sql_scoring_helpers import FEATURES, NUMERIC, TEXT, add_rows, assert_same, expected, frame_of, make_data

pytestmark = pytest.mark.filterwarnings("ignore")
SETTINGS = settings(
    max_examples=5, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)
seeds = st.integers(0, 2**31 - 1)


def _target(table, seed: int, kind: str = "multiclass"):
    X = frame_of(table)
    rng = np.random.default_rng(seed)
    score = (
        np.nan_to_num(X["n0"].to_numpy())
        + (X["c1"] == "b").to_numpy()
        - (X["c0"] == "c").to_numpy()
        + rng.normal(size=len(X)) * 0.3
    )
    if kind == "regression":
        return score
    return np.digitize(score, [-0.4, 0.7]).astype(np.int64)


def _scored(table):
    return add_rows(table, [[None, None, None], [3.0, -2.0, 0.0]], [["unseen", "zz"], [None, None]])


@SETTINGS
@given(
    seed=seeds,
    null_rate=st.sampled_from([0.0, 0.2]),
    num_impute=st.sampled_from(["mean", "median", "most_frequent", "constant"]),
    add_indicator=st.booleans(),
    scaler=st.sampled_from(
        [
            StandardScaler(),
            StandardScaler(with_mean=False),
            StandardScaler(with_std=False),
            MinMaxScaler(),
            MinMaxScaler(feature_range=(-1, 2), clip=True),
            RobustScaler(),
            RobustScaler(with_centering=False, quantile_range=(10, 90)),
        ]
    ),
)
def test_numeric_steps_equal_sklearn(seed, null_rate, num_impute, add_indicator, scaler):
    table, X = make_data(seed, 100, null_rate)
    pre = ColumnTransformer(
        [
            (
                "num",
                Pipeline(
                    [("impute", SimpleImputer(strategy=num_impute, add_indicator=add_indicator)), ("scale", scaler)]
                ),
                NUMERIC,
            )
        ],
        remainder="drop",
    )
    pipe = Pipeline([("pre", pre), ("estimator", LinearRegression())]).fit(X, _target(table, seed, "regression"))
    assert_same(pipe, _scored(table), "regression")


@SETTINGS
@given(
    seed=seeds,
    null_rate=st.sampled_from([0.0, 0.2]),
    impute=st.sampled_from(["none", "most_frequent", "constant"]),
    encoder=st.sampled_from(
        [
            OneHotEncoder(handle_unknown="ignore", sparse_output=False),
            OneHotEncoder(drop="first", handle_unknown="ignore", sparse_output=False),
            OneHotEncoder(drop="if_binary", handle_unknown="ignore", sparse_output=False),
            OneHotEncoder(handle_unknown="infrequent_if_exist", min_frequency=0.25, sparse_output=False),
            OneHotEncoder(handle_unknown="ignore", max_categories=2, sparse_output=False),
            OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1, encoded_missing_value=-2),
            OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=99),
        ]
    ),
)
def test_categorical_steps_equal_sklearn(seed, null_rate, impute, encoder):
    """Encoders on text with nulls (NaN as a category when seen) and unseen categories when scoring."""
    table, X = make_data(seed, 120, null_rate)
    steps = (
        []
        if impute == "none"
        else [("impute", SimpleImputer(strategy=impute, fill_value="__missing__" if impute == "constant" else None))]
    )
    cat = Pipeline([*steps, ("encode", encoder)])
    pre = ColumnTransformer([("cat", cat, TEXT)], remainder=SimpleImputer(strategy="median"))
    estimator = (
        HistGradientBoostingClassifier(max_iter=5, random_state=0)
        if isinstance(encoder, OrdinalEncoder)
        else LogisticRegression(max_iter=300)
    )
    pipe = Pipeline([("pre", pre), ("estimator", estimator)]).fit(X, _target(table, seed))
    assert_same(pipe, _scored(table), "classification")


@SETTINGS
@given(seed=seeds, n_components=st.integers(1, 4), whiten=st.booleans())
def test_pca_and_imblearn_pipeline_equal_sklearn(seed, n_components, whiten):
    """PCA after encoding, a sampler (acts in fit only) and a forest, in an imbalanced-learn Pipeline."""
    table, X = make_data(seed, 120, 0.1)
    pre = ColumnTransformer(
        [
            ("num", Pipeline([("impute", SimpleImputer()), ("scale", StandardScaler())]), NUMERIC),
            (
                "cat",
                Pipeline(
                    [
                        ("impute", SimpleImputer(strategy="most_frequent")),
                        ("encode", OneHotEncoder(handle_unknown="ignore")),
                    ]
                ),
                TEXT,
            ),
        ],
        sparse_threshold=0.0,
    )
    pipe = ImbPipeline(
        [
            ("pre", pre),
            ("reduce", PCA(n_components=n_components, whiten=whiten, random_state=0)),
            ("resample", RandomOverSampler(random_state=0)),
            ("estimator", LogisticRegression(max_iter=300)),
        ]
    )
    pipe.fit(X, _target(table, seed))
    assert_same(pipe, _scored(table), "classification")


def test_remainder_passthrough_function_transformer_and_bare_estimator():
    table, X = make_data(3, 100, 0.0)
    y = _target(table, 3, "regression")
    pre = ColumnTransformer(
        [
            ("scale", StandardScaler(), ["n1"]),
            ("id", FunctionTransformer(), ["n2"]),
            ("enc", OneHotEncoder(handle_unknown="ignore"), ["c0"]),
        ],
        remainder="passthrough",
        sparse_threshold=0.0,
    )
    pipe = Pipeline([("pre", pre), ("estimator", LinearRegression())]).fit(X[["n0", "n1", "n2", "c0"]], y)
    assert_same(pipe, table, "regression", features=["n0", "n1", "n2", "c0"])
    bare = RandomForestClassifier(n_estimators=5, max_depth=4, random_state=0).fit(
        X[NUMERIC].fillna(0), _target(table, 3)
    )
    assert_same(bare, _no_nulls(table), "classification", features=NUMERIC)


def _no_nulls(table):
    import pyarrow.compute as pc

    mask = pc.and_(pc.and_(pc.is_valid(table["n0"]), pc.is_valid(table["n1"])), pc.is_valid(table["n2"]))
    return table.filter(mask)


def test_string_labels_keep_their_type_and_probabilities_their_names():
    table, X = make_data(5, 80, 0.1)
    y = np.where(_target(table, 5) > 0, "fraud", "ok")
    pre = ColumnTransformer([("num", SimpleImputer(), NUMERIC), ("cat", OneHotEncoder(handle_unknown="ignore"), TEXT)])
    pipe = Pipeline([("pre", pre), ("estimator", RandomForestClassifier(n_estimators=4, random_state=0))]).fit(X, y)
    got = assert_same(pipe, table, "classification")
    assert list(got.columns) == ["row_id", "prediction", "probability__fraud", "probability__ok"]
    assert set(got["prediction"]) <= {"fraud", "ok"}


@pytest.mark.parametrize(
    ("estimator", "name"),
    [
        (KNeighborsClassifier(n_neighbors=3), "KNeighborsClassifier"),
        (Pipeline([("poly", PolynomialFeatures()), ("lr", LogisticRegression())]), "PolynomialFeatures"),
    ],
)
def test_unsupported_steps_are_named_with_the_supported_list(estimator, name):
    table, X = make_data(1, 60, 0.0)
    estimator.fit(X[NUMERIC], _target(table, 1))
    with pytest.raises(BigmlError) as err:
        compile_pipeline(estimator, exp.to_table("t"), NUMERIC, "classification", [])
    text = str(err.value)
    assert name in text and "RandomForestClassifier" in text and "OneHotEncoder" in text


def test_a_passthrough_column_named_like_a_score_is_an_error():
    table, X = make_data(1, 60, 0.0)
    model = LinearRegression().fit(X[NUMERIC].fillna(0), _target(table, 1, "regression"))
    with pytest.raises(BigmlError, match="prediction"):
        compile_pipeline(model, exp.to_table("t"), NUMERIC, "regression", ["prediction"])


def test_wrong_task_is_an_error():
    table, X = make_data(1, 60, 0.0)
    model = LinearRegression().fit(X[NUMERIC].fillna(0), _target(table, 1, "regression"))
    with pytest.raises(BigmlError, match="regression"):
        compile_pipeline(model, exp.to_table("t"), NUMERIC, "classification", [])


def _fitted_examples():
    table, X = make_data(11, 150, 0.15)
    y = _target(table, 11)
    pre = ColumnTransformer(
        [
            ("num", Pipeline([("impute", SimpleImputer()), ("scale", StandardScaler())]), NUMERIC),
            (
                "cat",
                Pipeline(
                    [
                        ("impute", SimpleImputer(strategy="constant", fill_value="__m")),
                        ("encode", OneHotEncoder(handle_unknown="ignore")),
                    ]
                ),
                TEXT,
            ),
        ]
    )
    raw = ColumnTransformer(
        [
            ("num", "passthrough", NUMERIC),
            ("cat", OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1), TEXT),
        ]
    )
    return (
        table,
        X,
        [
            Pipeline([("pre", pre), ("estimator", LogisticRegression(max_iter=300))]).fit(X, y),
            Pipeline(
                [("pre", pre), ("estimator", RandomForestClassifier(n_estimators=5, max_depth=5, random_state=0))]
            ).fit(X, y),
            Pipeline([("pre", raw), ("estimator", HistGradientBoostingClassifier(max_iter=5, random_state=0))]).fit(
                X, y
            ),
        ],
    )


@pytest.mark.parametrize("dialect", ["postgres", "spark", "duckdb"])
def test_query_renders_and_parses_per_dialect(dialect):
    _table, _X, pipes = _fitted_examples()
    for pipe in pipes:
        sql = compile_pipeline(pipe, exp.to_table("scored"), FEATURES, "classification", ["row_id"], dialect).sql(
            dialect
        )
        parsed = sqlglot.parse_one(sql, read=dialect)
        assert parsed.find(exp.Select) is not None
        forest = isinstance(pipe.steps[-1][1], RandomForestClassifier)
        if dialect == "postgres":
            assert "DOUBLE PRECISION" in sql
        four_bytes = {"postgres": "AS REAL)", "duckdb": "AS REAL)", "spark": "AS FLOAT)"}[dialect]
        assert (four_bytes in sql) == forest  # only sklearn trees compare float32-rounded inputs


def test_postgres_scores_equal_sklearn(postgres_schema):
    """The same queries run on the real PostgreSQL give scikit-learn's scores."""
    import psycopg

    info, schema = postgres_schema
    table, _X, pipes = _fitted_examples()
    scored = _scored(table)
    conninfo = f"host={info['host']} port={info['port']} user={info['user']} dbname={info['database']}"
    with psycopg.connect(conninfo, autocommit=True) as con:
        con.execute(
            f'CREATE TABLE "{schema}".scored '
            "(row_id BIGINT, n0 DOUBLE PRECISION, n1 DOUBLE PRECISION, n2 DOUBLE PRECISION, c0 TEXT, c1 TEXT)"
        )
        with con.cursor() as cur, cur.copy(f'COPY "{schema}".scored FROM STDIN') as copy:
            for row in scored.to_pylist():
                copy.write_row([row[c] for c in ["row_id", *FEATURES]])
        for pipe in pipes:
            sql = compile_pipeline(
                pipe, exp.table_("scored", db=schema, quoted=True), FEATURES, "classification", ["row_id"], "postgres"
            ).sql("postgres")
            cur = con.execute(sql + " ORDER BY 1")
            names = [d.name for d in cur.description]
            rows = cur.fetchall()
            want = expected(pipe, frame_of(scored), "classification")
            got = {n: np.array([r[i] for r in rows]) for i, n in enumerate(names)}
            assert list(got) == ["row_id", *want]
            assert (got["prediction"] == want["prediction"]).all()
            for name in want:
                if name != "prediction":
                    assert np.abs(got[name].astype(float) - want[name]).max() <= 1e-6, name
