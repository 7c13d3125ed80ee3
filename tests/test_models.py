"""train / registry / predict on the example project (3,000 generated payments).

Oracles are scikit-learn itself: metrics are recomputed from the stored
pipeline and the training set, predictions compared with ``pipeline.predict``.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from sklearn import metrics as skm

from bigml_fs import Project
from bigml_fs.errors import BigmlError, UsageError
from bigml_fs.scoring.predict import StaleModelError
from bigml_fs.training import registry
from bigml_fs.training.outputs import thread_limit
from bigml_fs.training.pipeline import frame

FAST = {"max_iter": 30, "max_leaf_nodes": 8}


def copy_example(src: Path, dst: Path, fast: bool = True, with_models: bool = False) -> Path:
    """A private copy of the example project (the session fixture stays untouched)."""
    dst.mkdir(parents=True, exist_ok=True)
    if with_models:
        shutil.copytree(src / ".bigml" / "models", dst / ".bigml" / "models")
    for part in ("project.yaml", "sql", "features", "models", "data"):
        if (src / part).is_dir():
            shutil.copytree(src / part, dst / part)
        else:
            shutil.copy(src / part, dst / part)
    if fast:
        path = dst / "models" / "fraud.yaml"
        doc = yaml.safe_load(path.read_text())
        for model in doc["models"]:
            if model["name"] == "fraud_detector":
                model["params"] = dict(FAST)
                model["tuning"]["n_iter"] = 2
                model["cv"]["folds"] = 2
            if model["name"] == "spend_anomaly":
                model["params"]["n_estimators"] = 30
        path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return dst


@pytest.fixture(scope="module")
def trained(example_project: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    root = copy_example(example_project, tmp_path_factory.mktemp("models"))
    results = {}
    with Project.load(root, in_memory=True) as project:
        for name in ("fraud_detector", "amount_regressor", "spend_anomaly"):
            results[name] = project.train(name)
    return root, results


def test_versions_are_complete(trained):
    root, results = trained
    for name, result in results.items():
        assert result.version == 1
        assert result.path == root / ".bigml" / "models" / name / "v1"
        for file in (registry.MODEL_FILE, registry.MANIFEST, registry.REPORT):
            assert (result.path / file).stat().st_size > 0
        manifest = json.loads((result.path / registry.MANIFEST).read_text())
        for key in (
            "fingerprints",
            "training_sql",
            "window",
            "rows",
            "params",
            "metrics",
            "features",
            "library_versions",
            "importances",
            "outputs",
        ):
            assert key in manifest, key
        assert (
            manifest["rows"]["train"]
            + manifest["rows"]["test"]
            + manifest["rows"]["dropped_null_target"]
            + manifest["rows"]["dropped_null_time"]
            == manifest["rows"]["total"]
        )
        assert "SELECT" in manifest["training_sql"].upper()
        assert set(manifest["fingerprints"]["views"]) == {f["view"] for f in manifest["features"]}
        html = (result.path / registry.REPORT).read_text()
        assert "data:image/png;base64," in html and "<script" not in html and "http" not in html
        # the summary's params row shows what the estimator got: the YAML params (and tuning's best over them)
        used = {**manifest["definition"].get("params", {}), **manifest["params"]}
        assert used and all(f"{k}={v}" in html for k, v in used.items())


def _training_frame(root: Path, result) -> tuple[pa.Table, dict]:
    manifest = result.manifest
    with Project.load(root, in_memory=True) as project:
        table = project.training_set(model=manifest.name)
    return table, manifest


def test_classification_metrics_match_sklearn_on_the_future(trained):
    root, results = trained
    result = results["fraud_detector"]
    table, m = _training_frame(root, result)
    times = pa.compute.cast(table.column("ts"), pa.int64()).to_numpy()
    boundary = int(pa.scalar(np.datetime64(m.window.boundary.replace("+00:00", ""), "us")).value)
    train, test = times < boundary, times >= boundary
    assert train.sum() == m.rows.train and test.sum() == m.rows.test
    assert times[train].max() < times[test].min()  # no test time earlier than a training time
    assert abs(test.sum() / len(times) - 0.2) < 0.05
    pipeline = registry.load_model(result.model_path)
    X = frame(table, m.features)
    y = table.column("is_fraud").to_numpy()
    proba = pipeline.predict_proba(X[test])[:, 1]
    assert result.metrics["roc_auc"] == pytest.approx(skm.roc_auc_score(y[test], proba), abs=1e-12)
    assert result.metrics["average_precision"] == pytest.approx(skm.average_precision_score(y[test], proba), abs=1e-12)
    assert result.metrics["f1"] == pytest.approx(skm.f1_score(y[test], pipeline.predict(X[test])), abs=1e-12)
    assert m.confusion_matrix.matrix == skm.confusion_matrix(y[test], pipeline.predict(X[test])).tolist()
    # tuning: every trial recorded, the best one's params are the fitted ones
    tuning = m.tuning
    assert len(tuning.trials) == 2 and all(len(t["fold_scores"]) == 2 for t in tuning.trials)
    best = max(tuning.trials, key=lambda t: t["score"])
    assert tuning.best_params == best["params"]
    assert pipeline[-1].get_params()["learning_rate"] == pytest.approx(best["params"]["learning_rate"])
    assert pipeline[-1].get_params()["random_state"] == 0 and pipeline[-1].class_weight == "balanced"
    assert {r.feature for r in m.importances} == {f.column for f in m.features}


def test_regression_metrics_match_sklearn(trained):
    root, results = trained
    result = results["amount_regressor"]
    table, m = _training_frame(root, result)
    table = table.filter(pa.compute.is_valid(table.column("amount")))
    assert table.num_rows == m.rows.train + m.rows.test
    pipeline = registry.load_model(result.model_path)
    times = pa.compute.cast(table.column("ts"), pa.int64()).to_numpy()
    test = times >= times[np.argsort(times)][len(times) - m.rows.test]
    pred = pipeline.predict(frame(table, m.features)[test])
    y = table.column("amount").to_numpy()[test]
    assert result.metrics["rmse"] == pytest.approx(np.sqrt(skm.mean_squared_error(y, pred)), rel=1e-12)
    assert result.metrics["r2"] == pytest.approx(skm.r2_score(y, pred), rel=1e-9, abs=1e-12)


def test_anomaly_without_target_reports_flag_share(trained):
    _, results = trained
    metrics = results["spend_anomaly"].metrics
    assert 0 <= metrics["anomaly_rate"] <= 0.2
    assert metrics["score_q01"] <= metrics["score_q50"] <= metrics["score_q99"]
    assert [c.model_dump() for c in results["spend_anomaly"].manifest.outputs] == [
        {"name": "prediction", "type": "BIGINT"},
        {"name": "anomaly_score", "type": "DOUBLE"},
    ]


def _spine(root: Path, n: int = 300) -> pa.Table:
    t = pq.read_table(root / "data" / "transactions.parquet").slice(100, n)
    return t.select(["txn_id", "customer_id", "card_id", "merchant_id", "country", "ts"])


@pytest.mark.parametrize("name", ["fraud_detector", "amount_regressor", "spend_anomaly"])
def test_predict_equals_pipeline_and_engine(trained, name):
    root, results = trained
    spine = _spine(root)
    with Project.load(root, in_memory=True) as project:
        python = project.predict(name, spine)
        engine = project.predict(name, spine, in_warehouse=True)
        features = project.training_set(features=[f.ref for f in results[name].manifest.features], spine=spine)
    pipeline = registry.load_model(results[name].model_path)
    X = frame(features, results[name].manifest.features)
    assert python.column_names[: spine.num_columns] == spine.column_names
    assert python.select(spine.column_names).equals(spine)  # spine columns kept, in spine order
    assert python.column_names == engine.column_names
    with thread_limit():  # the native thread count scoring runs with
        expected = pipeline.predict(X)
    # predict computed its own features in a second query; DuckDB's parallel window sums of doubles may differ
    # from this one's in the last bit (seen: amount_sum_7d by 1 ulp), so the scores agree to rounding, not bits
    np.testing.assert_allclose(python.column("prediction").to_numpy(), expected, rtol=1e-12, atol=0)
    for column in python.column_names[spine.num_columns :]:
        a, b = (
            python.column(column).to_numpy(zero_copy_only=False),
            engine.column(column).to_numpy(zero_copy_only=False),
        )
        if a.dtype.kind == "f":
            np.testing.assert_allclose(a, b, atol=1e-6, rtol=0)
        else:
            np.testing.assert_array_equal(a, b)
    if name == "fraud_detector":
        assert python.schema.field("prediction").type == pa.int64()
        np.testing.assert_allclose(
            python.column("probability__1").to_numpy(), pipeline.predict_proba(X)[:, 1], rtol=0, atol=0
        )


def test_determinism(trained, tmp_path):
    root, results = trained
    other = copy_example(root, tmp_path / "again", fast=False)
    with Project.load(other, in_memory=True) as project:
        again = project.train("fraud_detector")
        spine = _spine(other, 200)
        p2 = project.predict("fraud_detector", spine)
    first = results["fraud_detector"].manifest
    assert again.manifest.metrics == first.metrics
    assert again.manifest.params == first.params and again.manifest.estimator_params == first.estimator_params
    assert again.manifest.tuning == first.tuning and again.manifest.importances == first.importances
    with Project.load(root, in_memory=True) as project:
        p1 = project.predict("fraud_detector@v1", spine)
    assert p1.equals(p2)


def test_registry_resolve_promote_and_errors(trained, tmp_path):
    root, _ = trained
    state = tmp_path / ".bigml"
    shutil.copytree(root / ".bigml" / "models" / "amount_regressor", state / "models" / "amount_regressor")
    shutil.copytree(state / "models" / "amount_regressor" / "v1", state / "models" / "amount_regressor" / "v2")
    assert registry.resolve(state, "amount_regressor").number == 2  # latest
    assert registry.promote(state, "amount_regressor@v1").number == 1
    assert registry.resolve(state, "amount_regressor").number == 1  # promoted wins
    assert registry.resolve(state, "amount_regressor@2").number == 2
    with pytest.raises(BigmlError, match="did you mean 'amount_regressor'"):
        registry.resolve(state, "amount_regresor")
    with pytest.raises(BigmlError, match="no version v7; it has v1, v2"):
        registry.resolve(state, "amount_regressor@v7")
    with pytest.raises(UsageError, match="give the version"):
        registry.promote(state, "amount_regressor")
    # an in-progress (hidden) directory is never a version
    (state / "models" / "amount_regressor" / ".partial-999999").mkdir()
    assert [v.number for v in registry.versions(state, "amount_regressor")] == [1, 2]


def test_untrusted_type_in_model_file_is_refused(trained, tmp_path):
    _, results = trained
    src = results["amount_regressor"].model_path
    bad = tmp_path / "model.skops"
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(bad, "w") as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename == "schema.json":
                schema = json.loads(data)
                schema["__module__"], schema["__class__"] = "os", "system"
                data = json.dumps(schema).encode()
            zout.writestr(item, data)
    with pytest.raises(BigmlError, match=r"refusing to load .*os\.system"):
        registry.load_model(bad)
    assert registry.load_model(src) is not None


def test_killed_train_leaves_no_partial_version(trained, tmp_path):
    root, _ = trained
    project_dir = copy_example(root, tmp_path / "kill", fast=False, with_models=True)
    before = (project_dir / ".bigml" / "models" / "amount_regressor" / "v1" / "manifest.json").read_text()
    marker = tmp_path / "writing"
    script = f"""
import time, pathlib
import bigml_fs.training.report as report
real = report.render
def slow(*a, **k):
    pathlib.Path({str(marker)!r}).write_text("x")
    time.sleep(60)
    return real(*a, **k)
report.render = slow
from bigml_fs import Project
Project.load({str(project_dir)!r}, in_memory=True).train("amount_regressor")
"""
    proc = subprocess.Popen([sys.executable, "-c", script])
    try:
        deadline = time.time() + 60
        while not marker.exists() and time.time() < deadline and proc.poll() is None:
            time.sleep(0.1)
        assert marker.exists(), "train never reached the write step"
        models = project_dir / ".bigml" / "models" / "amount_regressor"
        assert any(p.name.startswith(".partial-") for p in models.iterdir())
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    state = project_dir / ".bigml"
    assert [v.number for v in registry.versions(state, "amount_regressor")] == [1]  # only the earlier version
    assert (state / "models" / "amount_regressor" / "v1" / "manifest.json").read_text() == before
    with Project.load(project_dir, in_memory=True) as project:
        assert project.train("amount_regressor").version == 2
    assert not any(p.name.startswith(".partial-") for p in (state / "models" / "amount_regressor").iterdir())


def test_changed_view_warns_and_strict_fails(trained, tmp_path, caplog):
    root, _ = trained
    project_dir = copy_example(root, tmp_path / "stale", fast=False, with_models=True)
    path = project_dir / "features" / "customers.yaml"
    path.write_text(path.read_text().replace("ttl: 30d", "ttl: 20d", 1))
    spine = _spine(project_dir, 50)
    with Project.load(project_dir, in_memory=True) as project:
        with caplog.at_level("WARNING", logger="bigml_fs"):
            project.predict("amount_regressor", spine)
        assert "customer_spend" in caplog.text and "fingerprint changed" in caplog.text
        with pytest.raises(StaleModelError, match="customer_spend"):
            project.predict("amount_regressor", spine, strict=True)


def test_end_limits_the_training_window(trained, tmp_path):
    root, _ = trained
    project_dir = copy_example(root, tmp_path / "end", fast=False)
    with Project.load(project_dir, in_memory=True) as project:
        result = project.train("amount_regressor", end="2024-02-15")
    window = result.manifest.window
    assert window.test_end <= "2024-02-15T00:00:00+00:00"
    assert result.manifest.rows.total < 3000


LEAK_SQL = """
SELECT t.customer_id, l.is_fraud, l.labeled_at
FROM {{ source('fraud_labels') }} AS l
JOIN {{ source('transactions') }} AS t USING (txn_id)
"""
LEAK_VIEW = """
feature_views:
  - name: customer_fraud
    entities: [customer]
    source: customer_labels
    timestamp: labeled_at
    features:
      - {name: last_label, expr: is_fraud}
      - {name: last_label_at, expr: labeled_at}
      - {name: frauds_30d, agg: sum, expr: is_fraud, window: 30d}
"""
LEAK_MODEL = """
models:
  - name: fraud_history
    task: classification
    labels: {source: labeled_payments, target: is_fraud, timestamp: ts}
    features: [customer_fraud:last_label, customer_fraud:frauds_30d, customer_spend:txn_count_1h]
    estimator: logistic_regression
    split: {by: time, test_fraction: 0.25}
"""


def test_labels_known_later_never_leak_into_training_rows(example_project, tmp_path):
    """A view over the label source, stamped when each label became known, only gives labels known by the prediction
    time."""
    root = copy_example(example_project, tmp_path / "leak", fast=False)
    (root / "sql" / "customer_labels.sql").write_text(LEAK_SQL)
    (root / "features" / "labels.yaml").write_text(LEAK_VIEW)
    (root / "models" / "leak.yaml").write_text(LEAK_MODEL)
    labels = (
        pq.read_table(root / "data" / "fraud_labels.parquet")
        .join(pq.read_table(root / "data" / "transactions.parquet").select(["txn_id", "customer_id"]), "txn_id")
        .to_pandas()
    )
    with Project.load(root, in_memory=True) as project:
        table = project.training_set(
            features=["customer_fraud:last_label_at", "customer_fraud:last_label", "customer_fraud:frauds_30d"],
            spine=project.training_set(model="fraud_history").select(["customer_id", "ts"]),
        )
        result = project.train("fraud_history")
    rows = table.to_pandas()
    assert (
        rows["last_label_at"].isna() | (rows["last_label_at"] <= rows["ts"])
    ).all()  # never a label from after the row's time
    by_customer = {c: g.sort_values("labeled_at") for c, g in labels.groupby("customer_id")}
    for row in rows.sample(300, random_state=0).itertuples():
        known = by_customer[row.customer_id]
        known = known[known.labeled_at <= row.ts]
        expected_last = None if known.empty else int(known.iloc[-1].is_fraud)
        window = known[known.labeled_at >= row.ts - np.timedelta64(30, "D")]
        window = window[window.labeled_at < row.ts]
        assert (None if np.isnan(row.last_label) else int(row.last_label)) == expected_last
        assert (0 if np.isnan(row.frauds_30d) else row.frauds_30d) == window.is_fraud.sum()
    # the row's own label (known days later) is not among them: some rows had a label pending at prediction time
    pending = labels.merge(rows[["customer_id", "ts"]].drop_duplicates(), on="customer_id")
    assert ((pending.labeled_at > pending.ts) & (pending.labeled_at - pending.ts < np.timedelta64(30, "D"))).any()
    window = result.manifest.window
    assert window.train_end < window.test_start == window.boundary
