"""Every short estimator name, per task, on small generated data; resampling, PCA, tuning methods.

Each model is trained through ``Project.train`` and scored through
``Project.predict``; the oracle is the stored pipeline's own ``predict`` on
the training-set features, and, for estimators the SQL compiler supports,
in-warehouse scoring must equal it (1e-6, identical classes).
"""

from __future__ import annotations

from datetime import datetime, timezone

import numpy as np
import pyarrow as pa
import pytest

from bigml_fs import Project
from bigml_fs.errors import BigmlError, DefinitionError
from bigml_fs.scoring.sql import ESTIMATORS as SQL_ESTIMATORS
from bigml_fs.training import registry
from bigml_fs.training.pipeline import frame
from tests.helpers import micros_to_ts, write_project

S = 1_000_000
T0 = int(datetime(2024, 5, 1, tzinfo=timezone.utc).timestamp()) * S
N = 360

PROJECT = {
    "name": "gen",
    "entities": [{"name": "customer", "join_keys": ["customer_id"]}],
    "sources": [{"name": "events", "path": "data/events.parquet", "timestamp": "ts"}],
}
FEATURES = """
feature_views:
  - name: ev
    entities: [customer]
    source: events
    features:
      - {name: x1}
      - {name: x2}
      - {name: cat}
      - {name: n_1d, agg: count, window: 1d}
"""

CLASSIFIERS = [
    "logistic_regression",
    "lasso",
    "ridge",
    "linear_svm",
    "svm",
    "decision_tree",
    "random_forest",
    "extra_trees",
    "gradient_boosting",
    "hist_gradient_boosting",
    "knn",
    "mlp",
    "naive_bayes",
]
REGRESSORS = [
    "linear_regression",
    "ridge",
    "lasso",
    "elastic_net",
    "linear_svm",
    "svm",
    "decision_tree",
    "random_forest",
    "extra_trees",
    "gradient_boosting",
    "hist_gradient_boosting",
    "knn",
    "mlp",
]
CLUSTERERS = ["kmeans", "minibatch_kmeans", "gaussian_mixture"]
DETECTORS = ["isolation_forest", "one_class_svm", "local_outlier_factor"]
SMALL = {
    "random_forest": "{n_estimators: 8, max_depth: 4}",
    "extra_trees": "{n_estimators: 8, max_depth: 4}",
    "gradient_boosting": "{n_estimators: 10}",
    "hist_gradient_boosting": "{max_iter: 10}",
    "mlp": "{hidden_layer_sizes: [8], max_iter: 300}",
    "isolation_forest": "{n_estimators: 20}",
    "kmeans": "{n_clusters: 3, n_init: 2}",
    "minibatch_kmeans": "{n_clusters: 3, n_init: 2}",
    "gaussian_mixture": "{n_components: 3}",
}


def events() -> pa.Table:
    rng = np.random.default_rng(7)
    x1 = rng.normal(size=N)
    x2 = np.where(rng.random(N) < 0.1, np.nan, rng.normal(size=N))
    cat = rng.choice(["a", "b", "c"], size=N).astype(object)
    cat[rng.random(N) < 0.1] = None
    signal = x1 + 0.5 * np.nan_to_num(x2) + (cat == "a") * 0.8 + rng.normal(scale=0.5, size=N)
    return pa.table(
        {
            "customer_id": pa.array(rng.integers(0, 30, size=N), type=pa.int64()),
            "ts": micros_to_ts([T0 + i * 600 * S for i in range(N)]),
            "x1": x1,
            "x2": pa.array(x2, from_pandas=True),
            "cat": pa.array(cat, type=pa.string()),
            "y_bin": pa.array((signal > 0.3).astype(np.int64)),
            "y_multi": pa.array(
                np.where(signal < -0.3, "lo", np.where(signal < 0.8, "mid", "hi")).astype(object), type=pa.string()
            ),
            "y_reg": signal * 10,
        }
    )


def model_yaml(
    name: str, task: str, estimator: str, target: str | None, extra: str = "", prep: str | None = None
) -> str:
    params = SMALL.get(estimator, "{}")
    target_line = f", target: {target}" if target else ""
    return f"""
  - name: {name}
    task: {task}
    labels: {{source: events, timestamp: ts{target_line}}}
    features: [ev:*]
    estimator: {estimator}
    params: {params}
    preprocessing: {prep or "{impute: median, scale: standard, encode: onehot}"}
    split: {{by: time, test_fraction: 0.25}}
{extra}"""


def all_models() -> dict[str, tuple[str, str]]:
    out = {}
    for est in CLASSIFIERS:
        out[f"c_{est}"] = ("classification", est, "y_bin")
    out["c_multi_logistic"] = ("classification", "logistic_regression", "y_multi")
    out["c_multi_forest"] = ("classification", "random_forest", "y_multi")
    out["c_multi_hgb"] = ("classification", "hist_gradient_boosting", "y_multi")
    for est in REGRESSORS:
        out[f"r_{est}"] = ("regression", est, "y_reg")
    for est in CLUSTERERS:
        out[f"k_{est}"] = ("clustering", est, None)
    for est in DETECTORS:
        out[f"a_{est}"] = ("anomaly", est, "y_bin")
    return out


EXTRA = {
    "x_smote_pca": (
        "classification",
        "logistic_regression",
        "y_bin",
        "    resample: {method: smote, ratio: 0.8}\n    class_weight: balanced\n",
    ),
    "x_under_ordinal": ("classification", "decision_tree", "y_multi", "    resample: {method: under, ratio: 1.0}\n"),
    "x_grid": (
        "classification",
        "decision_tree",
        "y_bin",
        (
            "    cv: {folds: 3, by: time}\n"
            "    tuning: {method: grid, space: {max_depth: [2, 3], min_samples_leaf: [1, 5]}}\n"
            "    metrics: [average_precision]\n"
        ),
    ),
    "x_bayes": (
        "regression",
        "ridge",
        "y_reg",
        (
            "    cv: {folds: 3, by: random}\n"
            "    tuning: {method: bayes, n_iter: 4, space: {alpha: {low: 0.01, high: 10, log: true}}}\n"
        ),
    ),
    "x_random_split": (
        "classification",
        "logistic_regression",
        "y_multi",
        "    cv: {folds: 3, by: random}\n",
    ),  # split made random below
}


PREP = {
    "x_smote_pca": "{impute: median, scale: standard, encode: onehot, reduce: {pca: 3}}",
    "x_under_ordinal": "{impute: median, scale: none, encode: ordinal}",
}


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory):
    models = {**all_models(), **{k: v[:3] for k, v in EXTRA.items()}}
    text = "models:" + "".join(
        model_yaml(n, *spec, EXTRA[n][3] if n in EXTRA else "", PREP.get(n)) for n, spec in models.items()
    )
    head, _, tail = text.partition("name: x_random_split")
    text = (
        head
        + "name: x_random_split"
        + tail.replace("split: {by: time, test_fraction: 0.25}", "split: {by: random, test_fraction: 0.25}", 1)
    )
    root = write_project(tmp_path_factory.mktemp("gen"), PROJECT, FEATURES, models=text, tables={"events": events()})
    with Project.load(root, in_memory=True) as p:
        yield p


def spine() -> pa.Table:
    rng = np.random.default_rng(11)
    return pa.table(
        {
            "customer_id": pa.array(
                list(rng.integers(0, 32, size=60)), type=pa.int64()
            ),  # 30, 31: never seen -> null features
            "event_timestamp": micros_to_ts([T0 + int(v) * S for v in rng.integers(0, N * 600 + 86400, size=60)]),
        }
    )


def check_scores(project: Project, name: str) -> dict:
    result = project.train(name)
    manifest = result.manifest
    s = spine()
    python = project.predict(name, s)
    features = project.training_set(features=[f.ref for f in manifest.features], spine=s)
    pipeline = registry.load_model(result.model_path)
    X = frame(features, manifest.features)
    assert python.select(s.column_names).equals(s)
    assert python.column_names[2:] == [c.name for c in manifest.outputs]
    np.testing.assert_array_equal(python.column("prediction").to_numpy(zero_copy_only=False), pipeline.predict(X))
    if type(pipeline[-1]).__name__ in SQL_ESTIMATORS:
        engine = project.predict(name, s, in_warehouse=True)
        assert engine.column_names == python.column_names
        for column in python.column_names[2:]:
            a, b = (
                python.column(column).to_numpy(zero_copy_only=False),
                engine.column(column).to_numpy(zero_copy_only=False),
            )
            if a.dtype.kind == "f":
                np.testing.assert_allclose(b, a, atol=1e-6, rtol=0, err_msg=f"{name}.{column}")
            else:
                np.testing.assert_array_equal(a, b, err_msg=f"{name}.{column}")
    else:
        with pytest.raises(BigmlError, match=type(pipeline[-1]).__name__):
            project.predict(name, s, in_warehouse=True)
    return manifest


# Names whose sklearn class another parametrized case already covers (same family) run under -m slow too.
SECONDARY = {
    "c_lasso",
    "c_ridge",
    "c_svm",
    "c_mlp",
    "c_knn",
    "r_lasso",
    "r_elastic_net",
    "r_linear_svm",
    "r_svm",
    "r_mlp",
    "r_knn",
    "k_minibatch_kmeans",
    "a_one_class_svm",
}


def cases(prefix: str) -> list:
    return [pytest.param(n, marks=pytest.mark.slow) if n in SECONDARY else n for n in all_models() if n[0] in prefix]


@pytest.mark.parametrize("name", cases("c"))
def test_classifiers(project, name):
    m = check_scores(project, name)
    assert m.metrics["accuracy"] > 0.55, m.metrics
    assert m.confusion_matrix.labels == m.classes
    probabilities = [c.name for c in m.outputs if c.name.startswith("probability__")]
    assert probabilities in ([], [f"probability__{c}" for c in m.classes])
    if "multi" in name:
        assert m.classes == ["hi", "lo", "mid"] and {"f1_macro", "f1_weighted"} <= set(m.metrics)


@pytest.mark.parametrize("name", cases("r"))
def test_regressors(project, name):
    m = check_scores(project, name)
    if name not in ("r_svm", "r_knn", "r_linear_svm"):
        assert m.metrics["r2"] > 0.3, m.metrics


@pytest.mark.parametrize("name", cases("ka"))
def test_unsupervised(project, name):
    m = check_scores(project, name)
    if name.startswith("k_"):
        assert m.metrics["n_clusters"] >= 2 and m.metrics["silhouette"] is not None
    else:
        assert m.metrics["roc_auc"] is not None and "anomaly_rate" in m.metrics


def test_resample_and_pca(project):
    m = check_scores(project, "x_smote_pca")
    pipeline = registry.load_model(registry.resolve(project.state_dir, "x_smote_pca").path / registry.MODEL_FILE)
    assert [n for n, _ in pipeline.steps] == ["preprocess", "reduce", "resample", "estimator"]
    assert type(pipeline.named_steps["resample"]).__name__ == "SMOTE"
    assert m.rows.train + m.rows.test == N  # resampling never changes the recorded parts
    check_scores(project, "x_under_ordinal")


def test_grid_tuning_tries_every_combination(project):
    m = check_scores(project, "x_grid")
    trials = m.tuning.trials
    assert sorted((t["params"]["max_depth"], t["params"]["min_samples_leaf"]) for t in trials) == [
        (2, 1),
        (2, 5),
        (3, 1),
        (3, 5),
    ]
    assert m.objective == "average_precision" and m.cv.folds == 3
    assert m.tuning.best_params == max(trials, key=lambda t: t["score"])["params"]


def test_bayes_tuning_is_deterministic(project):
    first = check_scores(project, "x_bayes")
    second = project.train("x_bayes").manifest
    assert first.tuning.trials == second.tuning.trials and len(first.tuning.trials) == 4
    assert first.metrics == second.metrics
    assert first.tuning.best_params == min(first.tuning.trials, key=lambda t: t["score"])["params"]  # rmse: lower wins


def test_random_split_is_stratified(project):
    m = project.train("x_random_split").manifest
    assert m.split.by == "random" and m.window.boundary is None
    assert m.rows.test == pytest.approx(N * 0.25, abs=1)


def test_time_folds_never_test_the_past():
    from bigml_fs.training.split import split_by_time, time_folds

    times = np.repeat(np.arange(50), 3)[::-1].copy()  # ties, reverse order
    parts = split_by_time(times, 0.2)
    assert times[parts.train].max() < times[parts.test].min() == parts.boundary
    for train, test in time_folds(times[parts.train], 4):
        assert times[parts.train][train].max() < times[parts.train][test].min()


@pytest.mark.parametrize(
    ("snippet", "message"),
    [
        ("tuning: {method: grid, space: {alpha: {low: 0.1, high: 1}}}", "grid' needs a list"),
        ("tuning: {method: bayesian, space: {alpha: [1]}}", "method"),
        ("resample: {method: smote, ratio: 2}", "ratio"),
        ("preprocessing: {reduce: {pca: 0}}", "pca"),
        ("preprocessing: {reduce: {pcaa: 2}}", "pcaa"),
    ],
)
def test_model_spec_errors_name_the_file_and_line(tmp_path, snippet, message):
    if snippet.startswith("preprocessing: "):
        text = "models:" + model_yaml("m", "regression", "ridge", "y_reg", prep=snippet.removeprefix("preprocessing: "))
    else:
        text = "models:" + model_yaml("m", "regression", "ridge", "y_reg").replace(
            "    split:", f"    {snippet}\n    split:"
        )
    root = write_project(tmp_path / "bad", PROJECT, FEATURES, models=text, tables={"events": events()})
    with pytest.raises(DefinitionError) as info:
        Project.load(root, in_memory=True).validate()
    assert "models/models.yaml:" in str(info.value) and message in str(info.value)


def test_bad_params_and_class_weight_are_clear(tmp_path):
    text = (
        "models:"
        + model_yaml("m", "classification", "knn", "y_bin", "    class_weight: balanced\n")
        + model_yaml("p", "regression", "ridge", "y_reg").replace("params: {}", "params: {alpah: 1}")
    )
    root = write_project(tmp_path / "bad", PROJECT, FEATURES, models=text, tables={"events": events()})
    with Project.load(root, in_memory=True) as p:
        with pytest.raises(BigmlError, match="does not take class_weight"):
            p.train("m")
        with pytest.raises(BigmlError, match="did you mean 'alpha'"):
            p.train("p")
        assert registry.versions(p.state_dir, "m") == [] and registry.versions(p.state_dir, "p") == []


def not_trusted(x):
    """A function skops would have to import from a test module: never loadable."""
    return x


def test_units_class_weight_dotted_paths_and_untrusted_dump():
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer

    from bigml_fs.spec.schema import ModelSpec
    from bigml_fs.training.manifest import FeatureColumn
    from bigml_fs.training.pipeline import build_pipeline

    def spec(**kw):
        base = {
            "name": "m",
            "task": "classification",
            "labels": {"source": "s", "target": "y", "timestamp": "ts"},
            "features": ["v:*"],
            "estimator": "logistic_regression",
        }
        return ModelSpec(**{**base, **kw})

    features = [
        FeatureColumn.model_construct(column="a", kind="numeric"),
        FeatureColumn.model_construct(column="b", kind="categorical"),
    ]
    pipeline = build_pipeline(spec(class_weight={"1": 5.0}), features, classes=[0, 1])
    assert pipeline[-1].class_weight == {1: 5.0} and pipeline[-1].random_state == 0
    with pytest.raises(BigmlError, match="class '2', which the target does not have"):
        build_pipeline(spec(class_weight={"2": 5.0}), features, classes=[0, 1])
    assert (
        type(build_pipeline(spec(estimator="sklearn.ensemble.ExtraTreesClassifier", seed=3), features)[-1]).__name__
        == "ExtraTreesClassifier"
    )
    assert (
        build_pipeline(spec(estimator="sklearn.ensemble.ExtraTreesClassifier", seed=3), features)[-1].random_state == 3
    )
    with pytest.raises(BigmlError, match="not a scikit-learn estimator"):
        build_pipeline(spec(estimator="collections.OrderedDict"), features)
    with pytest.raises(
        BigmlError, match="has no class 'RandomForrestClassifier'.*did you mean 'RandomForestClassifier'"
    ):
        build_pipeline(spec(estimator="sklearn.ensemble.RandomForrestClassifier"), features)
    with pytest.raises(BigmlError, match="ratio applies to two classes"):
        build_pipeline(spec(resample={"method": "under", "ratio": 0.5}), features, classes=["a", "b", "c"])
    with pytest.raises(BigmlError, match="are text; set preprocessing.encode"):
        build_pipeline(spec(preprocessing={"encode": "none"}), features)
    bad = Pipeline([("odd", FunctionTransformer(not_trusted)), ("estimator", FunctionTransformer())]).fit(
        np.zeros((2, 1))
    )
    with pytest.raises(registry.UntrustedModelError, match="not_trusted"):
        registry.dump_model(bad)
