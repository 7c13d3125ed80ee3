"""predict_online (what POST /predict/{model} returns) equals batch predict at the materialize time.

After ``materialize --end T``, online features equal a training-set row at
t = T (DESIGN, online values), so the same stored pipeline must give the same
scores online and in batch. The models here use window aggregates and static
attributes, which do not expire against today's clock like ttl'd values do (and no
counts: an online count for a key with no events reads null, the training set 0).
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from bigml_fs import Project
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


@pytest.fixture(scope="module")
def project(example_project: Path, tmp_path_factory: pytest.TempPathFactory):
    root = copy_example(example_project, tmp_path_factory.mktemp("online"))
    (root / "models" / "online.yaml").write_text(MODELS)
    with Project.load(root) as p:
        p.train("online_reg")
        p.train("online_clf")
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
