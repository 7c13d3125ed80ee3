"""predict_online (what POST /predict/{model} returns) equals batch predict at the materialize time.

After ``materialize --end T``, online features equal a training-set row at
t = T (DESIGN, online values), so the same stored pipeline must give the same
scores online and in batch. The models here use window aggregates and static
attributes, which do not expire against today's clock like ttl'd values do (and no
counts: an online count for a key with no events reads null, the training set 0).
"""

from __future__ import annotations

import json
import logging
import warnings
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

with warnings.catch_warnings():  # starlette's notice that its TestClient will move to httpx2
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from bigml_fs import Project
from bigml_fs.scoring.online import MissingFeaturesError
from bigml_fs.scoring.predict import StaleModelError
from bigml_fs.serving.app import create_app
from tests.test_models import copy_example

T = datetime(2024, 3, 15, tzinfo=timezone.utc)
MODELS = """
models:
  - name: online_reg
    task: regression
    labels: {source: payments, target: amount, timestamp: ts}
    features: [customer_spend:amount_avg_30d, customer_spend:amount_sum_7d, \
customer_profile:credit_limit, customer_profile:segment]
    estimator: ridge
    preprocessing: {impute: median, scale: standard, encode: onehot}
  - name: online_clf
    task: classification
    labels: {source: labeled_payments, target: is_fraud, timestamp: ts}
    features: [customer_spend:amount_avg_30d, customer_spend:amount_max_7d, \
customer_profile:credit_limit, customer_profile:segment]
    estimator: random_forest
    params: {n_estimators: 10, max_depth: 4}
"""
POLICY = """
  - name: online_{policy}
    task: regression
    labels: {{source: payments, target: amount, timestamp: ts}}
    features: [customer_spend:amount_sum_7d, customer_profile:credit_limit]
    estimator: ridge
    missing: {policy}
"""
UNKNOWN = 999_999  # no customer has this id


@pytest.fixture(scope="module")
def project(example_project: Path, tmp_path_factory: pytest.TempPathFactory):
    root = copy_example(example_project, tmp_path_factory.mktemp("online"))
    (root / "models" / "online.yaml").write_text(MODELS + "".join(POLICY.format(policy=p) for p in ("null", "error")))
    with Project.load(root) as p:
        p.train("online_reg")
        p.train("online_clf")
        p.train("online_null")
        p.train("online_error")
        p.materialize(views=["customer_spend", "customer_profile"], end=T.isoformat())
        yield p


@pytest.mark.parametrize("model", ["online_reg", "online_clf"])
def test_online_scores_equal_batch_scores_at_materialize_time(project, model):
    ids = list(range(0, 70, 3))  # includes customers without recent payments and unknown ids
    online = project.predict_online(model, {"customer_id": ids})
    json.dumps(online)  # JSON-able as the HTTP app returns it
    assert online["model"] == model and online["version"] == 1
    assert set(online["features"]) == {f.split(":")[1] for f in project.catalog.models[model].features}
    spine = pa.table(
        {
            "customer_id": pa.array(ids, pa.int64()),
            "event_timestamp": pa.array([T] * len(ids), pa.timestamp("us", tz="UTC")),
        }
    )
    batch = project.predict(model, spine)
    features = project.training_set(features=list(project.catalog.models[model].features), spine=spine)
    for name, values in online["features"].items():
        expected = features.column(name).to_pylist()
        assert [v if v is None or isinstance(v, str) else pytest.approx(v, rel=1e-12) for v in expected] == values, name
    if model == "online_reg":
        np.testing.assert_allclose(online["predictions"], batch.column("prediction").to_numpy(), rtol=0, atol=1e-9)
    else:
        assert online["predictions"] == batch.column("prediction").to_pylist()
        for cls in ("0", "1"):
            np.testing.assert_allclose(
                [p[cls] for p in online["probabilities"]],
                batch.column(f"probability__{cls}").to_numpy(),
                rtol=0,
                atol=1e-12,
            )


def test_online_uses_promoted_version_and_named_version(project):
    from bigml_fs.training import registry

    project.train("online_reg")
    assert project.predict_online("online_reg", {"customer_id": [3]})["version"] == 2
    registry.promote(project.state_dir, "online_reg@v1")
    assert project.predict_online("online_reg", {"customer_id": [3]})["version"] == 1
    assert project.predict_online("online_reg@2", {"customer_id": [3]})["version"] == 2


def test_missing_features_are_listed_per_row_and_scored_by_default(project):
    online = project.predict_online("online_reg", {"customer_id": [3, UNKNOWN]})
    json.dumps(online)
    columns = {f.split(":")[1] for f in project.catalog.models["online_reg"].features}
    assert online["missing"][1] == dict.fromkeys(columns, "NOT_FOUND")
    assert not {"credit_limit", "segment"} & set(online["missing"][0])  # every customer has a profile
    assert all(p is not None for p in online["predictions"])  # missing: score (the default) scores anyway


def test_missing_null_gives_the_row_null_scores(project):
    online = project.predict_online("online_null", {"customer_id": [3, UNKNOWN]})
    assert online["missing"][1] == {"amount_sum_7d": "NOT_FOUND", "credit_limit": "NOT_FOUND"}
    assert online["predictions"][1] is None
    assert online["predictions"][0] is not None or online["missing"][0]


def test_missing_error_fails_the_request_naming_rows_and_features(project):
    with pytest.raises(MissingFeaturesError, match=r"row 1: amount_sum_7d NOT_FOUND, credit_limit NOT_FOUND"):
        project.predict_online("online_error", {"customer_id": [3, UNKNOWN]})
    client = TestClient(create_app(project))  # no `with`: the app's shutdown would close the shared project
    answer = client.post("/predict/online_error", json={"entities": {"customer_id": [3, UNKNOWN]}})
    assert answer.status_code == 422, answer.text
    assert "credit_limit NOT_FOUND" in answer.json()["detail"] and "row 1" in answer.json()["detail"]


def test_stale_warning_only_when_a_used_feature_changes(example_project, tmp_path, caplog):
    root = copy_example(example_project, tmp_path / "stale")
    (root / "models" / "online.yaml").write_text(MODELS)
    spine = pa.table(
        {"customer_id": pa.array([3], pa.int64()), "event_timestamp": pa.array([T], pa.timestamp("us", tz="UTC"))}
    )
    with Project.load(root) as p:
        p.train("online_reg")
    views = root / "features" / "customers.yaml"
    text = views.read_text()
    used = "{name: amount_sum_7d, agg: sum, expr: amount, window: 7d}"
    assert used in text
    views.write_text(text.replace(used, used + "\n      - {name: amount_min_7d, agg: min, expr: amount, window: 7d}"))
    caplog.set_level(logging.WARNING, logger="bigml_fs")
    with Project.load(root) as p:
        assert p.predict("online_reg", spine, strict=True).num_rows == 1  # an unrelated feature was added
    assert "earlier definition" not in caplog.text

    views.write_text(text.replace(used, "{name: amount_sum_7d, agg: sum, expr: amount * 2, window: 7d}"))
    with Project.load(root) as p:
        p.predict("online_reg", spine)
        assert "customer_spend:amount_sum_7d" in caplog.text and "earlier definition" in caplog.text
        with pytest.raises(StaleModelError, match="customer_spend:amount_sum_7d"):
            p.predict("online_reg", spine, strict=True)
