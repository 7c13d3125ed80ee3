"""`bigml-fs serve` end to end: a real uvicorn process over a materialized example project.

The server runs as a user starts it (``python -m bigml_fs serve --token-env``)
on a free port of 127.0.0.1 and is reached with httpx. Its answers are
compared with Feast's own feature server (``feast.feature_server.get_app``)
over the Feast repo that materialize generated, on the same SQLite store.
"""

from __future__ import annotations

import http.client
import json
import shutil
import threading
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest

from benchmarks.bench_serving import bigml_serve_command, free_port, server_process
from bigml_fs.project import Project
from bigml_fs.store.naming import part_of

END = "2024-03-31T00:00:00Z"
END_DT = datetime(2024, 3, 31, tzinfo=timezone.utc)
TOKEN = "e2e-T0ken-0123456789"
TOKEN_ENV = "BIGML_E2E_SERVE_TOKEN"
AUTH = {"Authorization": f"Bearer {TOKEN}"}

# A small classifier (fast to train) whose features have no ttl, so its online
# features at END equal the training set's at END and so must its scores.
SERVE_MODEL = """models:
  - name: serve_check
    task: classification
    labels: {source: labeled_payments, target: is_fraud, timestamp: ts}
    features: [customer_profile:credit_limit, customer_profile:segment,
               customer_spend:amount_sum_7d, customer_spend:txn_count_1h]
    estimator: logistic_regression
    preprocessing: {impute: median, scale: standard, encode: onehot}
    split: {by: time, test_fraction: 0.2}
    metrics: [roc_auc]
"""


@pytest.fixture(scope="module")
def project_dir(example_project: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the example project, materialized as of END."""
    root = tmp_path_factory.mktemp("serve") / "project"
    shutil.copytree(example_project, root, ignore=shutil.ignore_patterns(".bigml"))
    (root / "models" / "serve_check.yaml").write_text(SERVE_MODEL)
    with Project.load(root) as project:
        project.materialize(end=END)
    return root


@pytest.fixture(scope="module")
def server(project_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """(base URL, stderr log file) of `bigml-fs serve --token-env` running on a free port."""
    port = free_port()
    log = tmp_path_factory.mktemp("serve-log") / "stderr.log"
    with (
        log.open("w") as stderr,
        server_process(
            bigml_serve_command(project_dir, port, "--token-env", TOKEN_ENV),
            f"http://127.0.0.1:{port}/health",
            env={TOKEN_ENV: TOKEN},
            stderr=stderr,
        ),
    ):
        yield f"http://127.0.0.1:{port}", log


@pytest.fixture(scope="module")
def client(server: tuple[str, Path]) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server[0], headers=AUTH, timeout=30) as c:
        yield c


@pytest.fixture(scope="module")
def feast_client(project_dir: Path) -> Iterator[Any]:
    """Feast's own feature server app, in process, over the generated repo."""
    import warnings

    warnings.filterwarnings("ignore")
    from fastapi.testclient import TestClient
    from feast import FeatureStore
    from feast.feature_server import get_app

    store = FeatureStore(repo_path=str(project_dir / ".bigml" / "feast"))
    with TestClient(get_app(store)) as c:
        yield c


@pytest.fixture(scope="module")
def catalog(project_dir: Path):
    with Project.load(project_dir, in_memory=True) as project:
        yield project.catalog


def feast_refs(catalog, refs: list[str]) -> list[str]:
    """The same features, named by the Feast view that holds each."""
    out = []
    for ref in refs:
        view, _, feature = ref.partition(":")
        resolved = catalog.views[view]
        names = [f.name for f in resolved.spec.features] if feature == "*" else [feature]
        out += [f"{part_of(resolved, name).name}:{name}" for name in names]
    return out


def columns(answer: dict[str, Any]) -> dict[str, dict[str, list]]:
    return dict(zip(answer["metadata"]["feature_names"], answer["results"], strict=True))


# --- shapes and parity with Feast ----------------------------------------------------

REQUESTS = [
    (
        ["customer_spend:*", "customer_profile:*", "customer_daily_spend:*"],
        {"customer_id": [1, 2, 3, 17, 40, 999_999, 2]},
    ),
    (["merchant_profile:*", "merchant_risk:*"], {"merchant_id": [1, 5, 20, 123_456]}),
    (["customer_profile:segment", "merchant_profile:risk_tier"], {"customer_id": [4, 5], "merchant_id": [6, 7]}),
    (["card_activity:*", "country_activity:*"], {"card_id": [1, 2, 3], "country": ["FR", "US", "ZZ"]}),
]


@pytest.mark.feast
@pytest.mark.parametrize(("features", "entities"), REQUESTS)
def test_features_equal_feasts_feature_server(
    client: httpx.Client, feast_client, catalog, features: list[str], entities: dict
) -> None:
    ours = client.post("/features", json={"features": features, "entities": entities})
    assert ours.status_code == 200, ours.text
    theirs = feast_client.post(
        "/get-online-features", json={"features": feast_refs(catalog, features), "entities": entities}
    )
    assert theirs.status_code == 200, theirs.text
    a, b = ours.json(), theirs.json()
    assert set(a) == set(b) == {"metadata", "results"}
    assert a["metadata"]["feature_names"][: len(entities)] == list(entities)  # join keys first, as in Feast
    # Feast orders the features of one view by set iteration (it changes with PYTHONHASHSEED);
    # bigml_fs keeps the requested order, which is one of Feast's possible orders.
    assert sorted(a["metadata"]["feature_names"]) == sorted(b["metadata"]["feature_names"])
    requested = [r.partition(":")[2] for r in feast_refs(catalog, features)]
    assert a["metadata"]["feature_names"] == list(entities) + requested
    now = datetime.now(timezone.utc)
    window_names = {f.name for v in catalog.views.values() for f in v.window_features}
    ttl_of = {f.name: v.ttl for v in catalog.views.values() for f in v.latest_features}
    for name, theirs_col in columns(b).items():
        ours_col = columns(a)[name]
        n = len(theirs_col["values"])
        assert len(ours_col["values"]) == len(ours_col["statuses"]) == len(ours_col["event_timestamps"]) == n
        for i in range(n):
            got = (ours_col["values"][i], ours_col["statuses"][i], ours_col["event_timestamps"][i])
            want = (theirs_col["values"][i], theirs_col["statuses"][i], theirs_col["event_timestamps"][i])
            if name in window_names:
                if want[1] == "NOT_FOUND":  # a key without events: Feast reads null, bigml_fs may give count 0
                    assert got[1] in ("NOT_FOUND", "PRESENT") and got[0] in (None, 0), (name, i, got, want)
                else:  # as of the last materialize, which is also the event time Feast reads
                    assert got == want, (name, i, got, want)
                continue
            ttl = ttl_of.get(name)
            stamped = datetime.fromisoformat(want[2].replace("Z", "+00:00"))
            if (
                ttl and want[1] == "PRESENT" and stamped < now - ttl
            ):  # Feast ignores ttl online (issue #6821); bigml_fs does not
                assert got[:2] == (None, "OUTSIDE_MAX_AGE"), (name, i, got, want)
            else:
                assert got == want, (name, i, got, want)


@pytest.mark.feast
def test_latest_values_within_ttl_equal_feasts_feature_server(project_dir: Path, feast_client, catalog) -> None:
    """Read as of END (inside every ttl) rather than today, so ttl'd latest values are compared, not skipped."""
    ttl_of = {f.name: v.ttl for v in catalog.views.values() for f in v.latest_features}
    compared = 0
    with Project.load(project_dir, in_memory=True) as project:
        for features, entities in REQUESTS:
            ours = project.online.read(features, entities, now=END_DT).to_dict()
            theirs = feast_client.post(
                "/get-online-features", json={"features": feast_refs(catalog, features), "entities": entities}
            )
            assert theirs.status_code == 200, theirs.text
            assert sorted(ours["metadata"]["feature_names"]) == sorted(theirs.json()["metadata"]["feature_names"])
            for name, theirs_col in columns(theirs.json()).items():
                if name not in ttl_of:  # keys and window features: compared by the test above
                    continue
                ours_col = columns(ours)[name]
                parts = ("values", "statuses", "event_timestamps")
                for i, want in enumerate(zip(*(theirs_col[k] for k in parts), strict=True)):
                    got = tuple(ours_col[k][i] for k in parts)
                    stamped = datetime.fromisoformat(want[2].replace("Z", "+00:00")) if want[2] else None
                    ttl = ttl_of[name]
                    if ttl and want[1] == "PRESENT" and stamped < END_DT - ttl:  # Feast ignores ttl online
                        assert got[:2] == (None, "OUTSIDE_MAX_AGE"), (name, i, got, want)
                        continue
                    assert got == want, (name, i, got, want)
                    compared += bool(ttl) and want[1] == "PRESENT"
    print(f"{compared} ttl'd latest values compared with Feast's")  # 20 on the 3,000-row example
    assert compared > 0, "no ttl'd latest value was compared"


def test_full_feature_names(client: httpx.Client) -> None:
    r = client.post(
        "/get-online-features",
        json={"features": ["customer_profile:segment"], "entities": {"customer_id": [1]}, "full_feature_names": True},
    )
    assert r.status_code == 200
    assert r.json()["metadata"]["feature_names"] == ["customer_id", "customer_profile__segment"]


def test_feature_service_is_a_models_feature_list(client: httpx.Client, catalog) -> None:
    entities = {"customer_id": [1, 2, 3]}
    by_service = client.post("/features", json={"feature_service": "serve_check", "entities": entities})
    by_list = client.post(
        "/features", json={"features": list(catalog.models["serve_check"].features), "entities": entities}
    )
    assert by_service.status_code == 200 and by_service.json() == by_list.json()
    r = client.post("/features", json={"feature_service": "serve_chek", "entities": entities})
    assert r.status_code == 400 and "did you mean 'serve_check'" in r.json()["detail"]


def test_window_features_are_as_of_the_last_materialize(client: httpx.Client) -> None:
    r = client.post(
        "/features",
        json={
            "features": ["customer_spend:txn_count_1h", "customer_spend:amount_sum_7d"],
            "entities": {"customer_id": [1, 2, 3]},
        },
    )
    for name in ("txn_count_1h", "amount_sum_7d"):
        col = columns(r.json())[name]
        assert set(col["statuses"]) <= {"PRESENT", "NOT_FOUND"}
        assert all(datetime.fromisoformat(ts.replace("Z", "+00:00")) <= END_DT for ts in col["event_timestamps"])


# --- errors ------------------------------------------------------------------------


def test_unknown_feature_and_view_are_400_with_did_you_mean(client: httpx.Client) -> None:
    r = client.post("/features", json={"features": ["customer_spend:last_amout"], "entities": {"customer_id": [1]}})
    assert r.status_code == 400
    assert "last_amout" in r.json()["detail"] and "last_amount" in r.json()["detail"]
    r = client.post("/features", json={"features": ["customer_spnd:last_amount"], "entities": {"customer_id": [1]}})
    assert r.status_code == 400
    assert "customer_spnd" in r.json()["detail"] and "customer_spend" in r.json()["detail"]


def test_malformed_bodies_are_422_naming_the_field(client: httpx.Client) -> None:
    r = client.post("/features", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 422
    r = client.post("/features", json={"features": "customer_spend:last_amount", "entities": {"customer_id": [1]}})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "features"]


def test_wrong_entity_type_names_key_and_type(client: httpx.Client) -> None:
    r = client.post("/features", json={"features": ["customer_profile:segment"], "entities": {"customer_id": ["one"]}})
    assert r.status_code == 422
    msg = r.json()["detail"][0]["msg"]
    assert "customer_id" in msg and "integer" in msg


def test_missing_entity_key_is_400(client: httpx.Client) -> None:
    r = client.post("/features", json={"features": ["customer_profile:segment"], "entities": {"merchant_id": [1]}})
    assert r.status_code == 400
    assert "customer_id" in r.json()["detail"]


# --- auth, health, logs -------------------------------------------------------------


def test_auth(server: tuple[str, Path]) -> None:
    base, _ = server
    body = {"features": ["customer_profile:segment"], "entities": {"customer_id": [1]}}
    assert httpx.post(f"{base}/features", json=body).status_code == 401
    r = httpx.post(f"{base}/features", json=body, headers={"Authorization": "Bearer not-the-token"})
    assert r.status_code == 401 and "WWW-Authenticate" in r.headers and TOKEN not in r.text
    assert httpx.post(f"{base}/features", json=body, headers=AUTH).status_code == 200
    assert httpx.post(f"{base}/predict/fraud_detector", json={"entities": {"customer_id": [1]}}).status_code == 401


def test_health_reports_store_and_views(server: tuple[str, Path], catalog) -> None:
    r = httpx.get(f"{server[0]}/health")  # no token needed
    assert r.status_code == 200
    health = r.json()
    assert health["status"] == "ok" and health["store"] == {"type": "sqlite", "reachable": True}
    assert set(health["views"]) == set(catalog.views)
    for state in health["views"].values():
        assert datetime.fromisoformat(state["end"].replace("Z", "+00:00")) == END_DT


def test_openapi_docs(client: httpx.Client) -> None:
    assert client.get("/docs").status_code == 200
    assert "/features" in client.get("/openapi.json").json()["paths"]


def test_log_lines_are_json_without_the_token(client: httpx.Client, server: tuple[str, Path]) -> None:
    client.post("/features", json={"features": ["customer_profile:segment"], "entities": {"customer_id": [1, 2, 3, 4]}})
    httpx.post(f"{server[0]}/features", json={}, headers={"Authorization": "Bearer leaked-guess"})
    text = server[1].read_text()
    assert TOKEN not in text and "leaked-guess" not in text
    lines = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    assert {"method": "POST", "route": "/features", "status": 200, "entities": 4} in [
        {k: v for k, v in line.items() if k != "ms"} for line in lines
    ]
    assert any(line["status"] == 401 for line in lines)


# --- predictions ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def trained(project_dir: Path) -> int:
    """serve_check trained once (the running server finds new versions in the registry)."""
    with Project.load(project_dir) as project:
        project.train("serve_check")
    return 1


def test_predict_equals_batch_scoring_at_the_materialize_time(
    client: httpx.Client, project_dir: Path, trained: int
) -> None:
    ids = [1, 2, 3, 17, 40, 999_999]
    r = client.post("/predict/serve_check", json={"entities": {"customer_id": ids}})
    assert r.status_code == 200, r.text
    answer = r.json()
    assert answer["model"] == "serve_check" and answer["version"] == 1
    assert len(answer["predictions"]) == len(answer["probabilities"]) == len(ids)
    import pyarrow as pa

    spine = pa.table(
        {
            "customer_id": pa.array(ids, pa.int64()),
            "event_timestamp": pa.array([END_DT] * len(ids), pa.timestamp("us", tz="UTC")),
        }
    )
    with Project.load(project_dir, in_memory=True) as project:
        batch = project.predict("serve_check", spine).to_pylist()
    for row, prediction, probabilities in zip(batch, answer["predictions"], answer["probabilities"], strict=True):
        assert prediction == row["prediction"]
        assert abs(sum(probabilities.values()) - 1) < 1e-9
        for label, p in probabilities.items():
            assert p == pytest.approx(row[f"probability__{label}"], abs=1e-12)
    online = client.post(
        "/features", json={"features": ["customer_spend:amount_sum_7d"], "entities": {"customer_id": ids}}
    ).json()
    assert answer["features"]["amount_sum_7d"] == online["results"][1]["values"]


def test_predict_errors(client: httpx.Client, trained: int) -> None:
    r = client.post("/predict/serve_chek", json={"entities": {"customer_id": [1]}})
    assert r.status_code == 404 and "did you mean 'serve_check'" in r.json()["detail"]
    r = client.post("/predict/serve_check", json={"entities": {"customer_id": [1]}, "version": 9})
    assert r.status_code == 404 and "9" in r.json()["detail"]
    assert client.post("/predict/serve_check@1", json={"entities": {"customer_id": [1]}}).status_code == 200
    r = client.post("/predict/fraud_detector", json={"entities": {"customer_id": [1]}})
    assert r.status_code == 404 and "train" in r.json()["detail"]  # defined but never trained
    r = client.post("/predict/serve_check", json={"entities": {"merchant_id": [1]}})
    assert r.status_code == 400 and "customer_id" in r.json()["detail"]
    assert client.post("/predict/serve_check", json={"entities": {"customer_id": ["x"]}}).status_code == 422


# --- load -----------------------------------------------------------------------------


def test_concurrent_clients_get_no_errors(server: tuple[str, Path]) -> None:
    """8 keep-alive clients x 250 requests at once: every answer is 200 and carries the asked keys."""
    port = int(server[0].rsplit(":", 1)[1])
    errors: list[str] = []
    counts = [0] * 8

    def worker(i: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        try:
            for j in range(250):
                ids = [(i * 7 + j) % 70 + 1, (j * 13) % 70 + 1]
                conn.request(
                    "POST",
                    "/features",
                    body=json.dumps(
                        {
                            "features": ["customer_spend:last_amount", "customer_profile:segment"],
                            "entities": {"customer_id": ids},
                        }
                    ),
                    headers=AUTH,
                )
                response = conn.getresponse()
                data = response.read()
                if response.status != 200 or json.loads(data)["results"][0]["values"] != ids:
                    errors.append(f"{response.status} {data[:200]!r}")
                counts[i] += 1
        finally:
            conn.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert errors == []
    assert counts == [250] * 8


@pytest.mark.slow
def test_several_worker_processes(project_dir: Path) -> None:
    """--workers 2: each worker process builds the app itself (token read from the same variable)."""
    port = free_port()
    command = bigml_serve_command(project_dir, port, "--workers", "2", "--token-env", TOKEN_ENV, "--quiet")
    with server_process(command, f"http://127.0.0.1:{port}/health", env={TOKEN_ENV: TOKEN}):
        body = {"features": ["customer_profile:segment"], "entities": {"customer_id": [1, 2]}}
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as c:
            answers = [c.post("/features", json=body, headers=AUTH) for _ in range(6)]
            assert c.post("/features", json=body).status_code == 401
    assert all(a.status_code == 200 and a.json()["results"][0]["values"] == [1, 2] for a in answers)


def test_materialize_runs_while_serving_and_the_server_sees_it(
    client: httpx.Client, server: tuple[str, Path], project_dir: Path
) -> None:
    """serve holds no lock on the warehouse: materialize can run beside it, and the next request reads the new state."""
    later = datetime(2024, 3, 31, 12, tzinfo=timezone.utc)
    with Project.load(project_dir) as project:
        project.materialize(views=["merchant_profile"], end=later)
    views = httpx.get(f"{server[0]}/health").json()["views"]
    assert datetime.fromisoformat(views["merchant_profile"]["end"].replace("Z", "+00:00")) == later
    assert datetime.fromisoformat(views["customer_profile"]["end"].replace("Z", "+00:00")) == END_DT
    assert (
        client.post(
            "/features", json={"features": ["merchant_profile:risk_tier"], "entities": {"merchant_id": [1]}}
        ).status_code
        == 200
    )
