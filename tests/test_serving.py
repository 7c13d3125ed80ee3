"""The HTTP app in process, over a fake backend: routes, statuses, auth, errors, logs.

The end-to-end tests against a real materialized project and a real uvicorn
are in test_serving_e2e.py; these pin the app's own behaviour (what it does
with a backend's answers and errors) without a store.
"""

from __future__ import annotations

import json
import logging
import warnings
from datetime import datetime, timezone
from typing import Any

import pytest

with warnings.catch_warnings():  # starlette's notice that its TestClient will move to httpx2
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from bigml_fs.core.timeutil import timestamp_text
from bigml_fs.errors import BigmlError, EngineError, UsageError
from bigml_fs.serving.access import ACCESS_LOGGER
from bigml_fs.serving.app import create_app
from bigml_fs.serving.backend import UnknownModel
from bigml_fs.serving.entities import entity_problems
from bigml_fs.store import feast_types as ft
from bigml_fs.store.online.response import OnlineResponse

TOKEN = "t0p-s3cret-value"
VALUES = {1: 10.5, 2: None}
TS = datetime(2024, 5, 1, 12, 0, 0, 250000, tzinfo=timezone.utc)


class FakeBackend:
    """Serves one feature, spend:amount, keyed by customer_id (an integer)."""

    def __init__(self, reachable: bool = True):
        self.reachable = reachable
        self.calls: list[tuple] = []

    def features(self, features, feature_service, entities, full_feature_names) -> dict[str, Any]:
        self.calls.append(("features", list(features), feature_service, entities, full_feature_names))
        for ref in features:
            if ref != "spend:amount":
                raise UsageError(f"unknown feature '{ref}' (did you mean 'spend:amount'?)")
        if not self.reachable:
            raise EngineError("cannot reach the online store at 127.0.0.1:1")
        keys = entities["customer_id"]
        name = "spend__amount" if full_feature_names else "amount"
        found = [k in VALUES for k in keys]
        ts_us = int(TS.timestamp()) * 1_000_000 + TS.microsecond
        return OnlineResponse(
            ["customer_id", name],
            [keys, [VALUES.get(k) for k in keys]],
            [ft.INT64, ft.FLOAT64],
            [["PRESENT"] * len(keys), ["PRESENT" if f else "NOT_FOUND" for f in found]],
            [[None] * len(keys), [ts_us if f else None for f in found]],
            key_count=1,
        ).to_dict()

    def predict(self, model, entities) -> dict[str, Any]:
        self.calls.append(("predict", model, entities))
        if model.partition("@")[0] != "fraud":
            raise UnknownModel(f"unknown model '{model}' (did you mean 'fraud'?)")
        return {"model": model, "version": 1, "predictions": [0 for _ in entities["customer_id"]]}

    def health(self):
        return self.reachable, {
            "store": {"type": "fake", "reachable": self.reachable},
            "views": {"spend": {"end": "2024-05-01T00:00:00+00:00"}},
        }

    def entity_problems(self, entities):
        return entity_problems(entities, {"customer_id": ("integer", "BIGINT")})


@pytest.fixture
def backend() -> FakeBackend:
    return FakeBackend()


@pytest.fixture
def client(backend: FakeBackend):
    with TestClient(create_app(backend=backend)) as c:
        yield c


@pytest.fixture
def secured(backend: FakeBackend):
    with TestClient(create_app(backend=backend, token=TOKEN)) as c:
        yield c


def body(**extra: Any) -> dict[str, Any]:
    return {"features": ["spend:amount"], "entities": {"customer_id": [1, 2, 3]}, **extra}


@pytest.mark.parametrize("path", ["/features", "/get-online-features"])
def test_features_answer_feast_json(client: TestClient, backend: FakeBackend, path: str) -> None:
    r = client.post(path, json=body())
    assert r.status_code == 200
    assert r.json() == {
        "metadata": {"feature_names": ["customer_id", "amount"]},
        "results": [
            {"values": [1, 2, 3], "statuses": ["PRESENT"] * 3, "event_timestamps": ["1970-01-01T00:00:00Z"] * 3},
            {
                "values": [10.5, None, None],
                "statuses": ["PRESENT", "PRESENT", "NOT_FOUND"],
                "event_timestamps": ["2024-05-01T12:00:00.250Z", "2024-05-01T12:00:00.250Z", "1970-01-01T00:00:00Z"],
            },
        ],
    }
    assert backend.calls == [("features", ["spend:amount"], None, {"customer_id": [1, 2, 3]}, False)]


def test_full_feature_names_and_feature_service_are_passed_on(client: TestClient, backend: FakeBackend) -> None:
    r = client.post("/features", json=body(full_feature_names=True))
    assert r.json()["metadata"]["feature_names"] == ["customer_id", "spend__amount"]
    client.post("/features", json={"feature_service": "svc", "entities": {"customer_id": [1]}})
    assert backend.calls[-1][1:3] == ([], "svc")


def test_unknown_feature_is_400_with_the_backend_message(client: TestClient) -> None:
    r = client.post("/features", json=body(features=["spend:amout"]))
    assert r.status_code == 400
    assert "spend:amout" in r.json()["detail"] and "did you mean" in r.json()["detail"]


@pytest.mark.parametrize(
    ("payload", "loc"),
    [
        ({"features": "spend:amount", "entities": {"customer_id": [1]}}, ["body", "features"]),
        ({"features": ["spend:amount"]}, ["body", "entities"]),
        ({"features": ["spend:amount"], "entities": {"customer_id": 1}}, ["body", "entities", "customer_id"]),
        ({"features": ["spend:amount"], "entities": {"customer_id": [[1]]}}, ["body", "entities", "customer_id", 0]),
        (
            {"features": ["spend:amount"], "entities": {"customer_id": [1]}, "full_feature_name": True},
            ["body", "full_feature_name"],
        ),
        (
            {"features": ["spend:amount"], "entities": {"customer_id": [1]}, "full_feature_names": "maybe"},
            ["body", "full_feature_names"],
        ),
    ],
)
def test_malformed_body_is_422_naming_the_field(client: TestClient, payload: dict, loc: list) -> None:
    r = client.post("/features", json=payload)
    assert r.status_code == 422
    assert any(e["loc"][: len(loc)] == loc for e in r.json()["detail"]), r.json()


def test_json_body_is_read_whatever_the_content_type(client: TestClient) -> None:
    """`curl -d '{...}'` sends application/x-www-form-urlencoded; the body is still JSON."""
    r = client.post(
        "/features", content=json.dumps(body()).encode(), headers={"content-type": "application/x-www-form-urlencoded"}
    )
    assert r.status_code == 200 and r.json()["results"][0]["values"] == [1, 2, 3]


def test_invalid_json_is_422(client: TestClient) -> None:
    r = client.post("/features", content=b'{"features": [', headers={"content-type": "application/json"})
    assert r.status_code == 422
    assert r.json()["detail"][0]["type"] == "json_invalid"


def test_entity_of_the_wrong_type_is_422_naming_key_and_type(client: TestClient, backend: FakeBackend) -> None:
    r = client.post("/features", json=body(entities={"customer_id": [1, "abc"]}))
    assert r.status_code == 422
    [problem] = r.json()["detail"]
    assert problem["loc"] == ["body", "entities", "customer_id", 1]
    assert (
        "customer_id" in problem["msg"]
        and "integer" in problem["msg"]
        and "BIGINT" in problem["msg"]
        and "'abc'" in problem["msg"]
    )
    assert backend.calls == []  # refused before the store is touched


def test_entity_lists_of_different_lengths_are_422(client: TestClient) -> None:
    r = client.post("/features", json=body(entities={"customer_id": [1, 2], "other": ["a"]}))
    assert r.status_code == 422
    assert "customer_id: 2" in r.json()["detail"][0]["msg"] and "other: 1" in r.json()["detail"][0]["msg"]


def test_unreachable_store_is_503(backend: FakeBackend) -> None:
    backend.reachable = False
    with TestClient(create_app(backend=backend)) as c:
        assert c.post("/features", json=body()).status_code == 503
        r = c.get("/health")
    assert r.status_code == 503
    assert r.json()["status"] == "unavailable" and r.json()["store"]["reachable"] is False


def test_health(client: TestClient) -> None:
    r = client.get("/health")
    assert r.status_code == 200
    assert r.json() == {
        "status": "ok",
        "store": {"type": "fake", "reachable": True},
        "views": {"spend": {"end": "2024-05-01T00:00:00+00:00"}},
    }


def test_predict_route(client: TestClient, backend: FakeBackend) -> None:
    r = client.post("/predict/fraud", json={"entities": {"customer_id": [1, 2]}})
    assert r.status_code == 200 and r.json()["predictions"] == [0, 0]
    client.post("/predict/fraud", json={"entities": {"customer_id": [1]}, "version": 3})
    assert backend.calls[-1][1] == "fraud@3"
    r = client.post("/predict/frod", json={"entities": {"customer_id": [1]}})
    assert r.status_code == 404 and "did you mean 'fraud'" in r.json()["detail"]
    assert client.post("/predict/fraud", json={"entities": {"customer_id": ["x"]}}).status_code == 422


def test_other_user_errors_are_400(backend: FakeBackend) -> None:
    def broken(*args: Any) -> dict:
        raise BigmlError("the model 'fraud' has no registered version; run bigml-fs train fraud")

    backend.predict = broken  # type: ignore[method-assign]
    with TestClient(create_app(backend=backend)) as c:
        r = c.post("/predict/fraud", json={"entities": {"customer_id": [1]}})
    assert r.status_code == 400 and "no registered version" in r.json()["detail"]


def test_openapi_docs(client: TestClient) -> None:
    assert client.get("/docs").status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/health", "/features", "/get-online-features", "/predict/{model}"} <= set(paths)
    schema = paths["/features"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert {"entities", "features", "feature_service", "full_feature_names"} <= set(schema["properties"])
    assert (
        "entities"
        in paths["/predict/{model}"]["post"]["requestBody"]["content"]["application/json"]["schema"]["properties"]
    )


# --- auth ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({}, "missing bearer token"),
        ({"Authorization": f"Basic {TOKEN}"}, "not a bearer token"),
        ({"Authorization": "Bearer wrong"}, "invalid bearer token"),
        ({"Authorization": f"Bearer {TOKEN}x"}, "invalid bearer token"),
        ({"Authorization": "Bearer "}, "not a bearer token"),
    ],
)
def test_auth_refuses_without_the_token(secured: TestClient, backend: FakeBackend, headers: dict, reason: str) -> None:
    for method, path in [
        ("post", "/features"),
        ("post", "/get-online-features"),
        ("post", "/predict/fraud"),
    ]:
        r = secured.request(method.upper(), path, json=body() if method == "post" else None, headers=headers)
        assert r.status_code == 401, path
        assert reason in r.json()["detail"]
        assert r.headers["www-authenticate"].startswith("Bearer")
        assert TOKEN not in r.text
    assert backend.calls == []


def test_auth_accepts_the_token_and_health_is_open(secured: TestClient) -> None:
    assert secured.post("/features", json=body(), headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    assert secured.post("/features", json=body(), headers={"Authorization": f"bearer {TOKEN}"}).status_code == 200
    assert secured.get("/health").status_code == 200
    schema = secured.get("/openapi.json", headers={"Authorization": f"Bearer {TOKEN}"}).json()
    assert schema["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"


def test_one_json_log_line_per_request_without_the_token(secured: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger=ACCESS_LOGGER):
        secured.post("/features", json=body(), headers={"Authorization": f"Bearer {TOKEN}"})
        secured.post("/features", json=body(), headers={"Authorization": "Bearer nope"})
        secured.post("/features", json=body(features=["x:y"]), headers={"Authorization": f"Bearer {TOKEN}"})
        secured.post(
            "/predict/fraud", json={"entities": {"customer_id": [1, 2]}}, headers={"Authorization": f"Bearer {TOKEN}"}
        )
        secured.get("/health")
    records = [r for r in caplog.records if r.name == ACCESS_LOGGER]
    lines = [json.loads(r.getMessage()) for r in records]
    assert [(line["route"], line["status"], line["entities"]) for line in lines] == [
        ("/features", 200, 3),
        ("/features", 401, None),
        ("/features", 400, 3),
        ("/predict/fraud", 200, 2),
        ("/health", 200, None),
    ]
    assert lines[3]["model"] == "fraud"
    assert all(isinstance(line["ms"], float) and line["ms"] >= 0 for line in lines)
    assert all(TOKEN not in r.getMessage() and "nope" not in r.getMessage() for r in caplog.records)


def test_docs_and_schema_need_no_token_and_load_nothing_from_a_cdn(secured: TestClient) -> None:
    import re

    docs = secured.get("/docs")
    assert docs.status_code == 200 and "swagger-ui" in docs.text
    urls = re.findall(r"""(?:src|href|url)\s*[=:]\s*['"]([^'"]+)['"]""", docs.text)
    assert urls and not [u for u in urls if re.match(r"(https?:)?//", u)], urls
    assert not re.search(r"https?://", docs.text)
    assets = [u for u in urls if u.endswith((".js", ".css"))]
    assert len(assets) == 2
    for url in assets:
        assert secured.get(url).status_code == 200, url
    assert secured.get("/openapi.json").status_code == 200
    assert secured.get("/redoc", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 404  # no ReDoc (CDN)
    r = secured.post("/features", json=body())
    assert r.status_code == 401 and r.json()["error"] == "AuthenticationError"


def test_every_error_body_names_an_error_type_ending_in_error(secured: TestClient) -> None:
    auth = {"Authorization": f"Bearer {TOKEN}"}
    bodies = [
        secured.post("/features", json=body()),  # 401
        secured.post("/features", json=body(features=["spend:amout"]), headers=auth),  # 400
        secured.post("/predict/frod", json={"entities": {"customer_id": [1]}}, headers=auth),  # 404
        secured.post("/features", json={"features": "x", "entities": {}}, headers=auth),  # 422, pydantic
        secured.post("/features", json=body(entities={"customer_id": ["x"]}), headers=auth),  # 422, entity types
    ]
    assert [r.status_code for r in bodies] == [401, 400, 404, 422, 422]
    names = [r.json()["error"] for r in bodies]
    assert names == ["AuthenticationError", "UsageError", "UnknownModelError", "ValidationError", "ValidationError"]


def test_entities_as_a_list_of_rows_are_columns(client: TestClient, backend: FakeBackend) -> None:
    r = client.post("/features", json=body(entities=[{"customer_id": 1}, {"customer_id": 2}]))
    assert r.status_code == 200 and r.json()["results"][0]["values"] == [1, 2]
    assert backend.calls[-1][3] == {"customer_id": [1, 2]}
    r = client.post("/predict/fraud", json={"entities": [{"customer_id": 1}]})
    assert r.status_code == 200 and backend.calls[-1] == ("predict", "fraud", {"customer_id": [1]})
    for entities, said in [
        ([1, 2], '[{"key": value}, ...]'),
        ([{"customer_id": 1}, {"customer_ids": 2}], "entities[1]"),
        ([{"customer_id": [1]}], "customer_id"),
    ]:
        r = client.post("/features", json=body(entities=entities))
        assert r.status_code == 422 and r.json()["detail"][0]["loc"][:2] == ["body", "entities"]
        assert said in json.dumps(r.json()["detail"]) or said in r.json()["detail"][0]["msg"], r.json()


def test_missing_join_key_hint_never_names_a_key_the_request_gave(
    example_project, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    from bigml_fs.project import Project
    from bigml_fs.serving.backend import ProjectBackend

    root = tmp_path / "project"
    shutil.copytree(example_project, root, ignore=shutil.ignore_patterns(".bigml"))
    project = Project.load(root, in_memory=True)
    monkeypatch.setattr(project, "online_features", lambda *a, **k: None)  # the start-up warm-up
    monkeypatch.setattr(project, "predict_online", lambda *a, **k: None)
    backend = ProjectBackend(project)
    monkeypatch.setattr(project, "online_features", lambda *a, **k: pytest.fail("the store was read"))
    try:
        fraud = list(project.catalog.models["fraud_detector"].features)
        given = {"customer_id": [1], "merchant_id": [7], "country": ["FR"]}  # card_id missing, all given are valid
        with pytest.raises(BigmlError) as caught:
            backend.features(fraud, None, given, False)
        assert "card_id" in str(caught.value) and "did you mean" not in str(caught.value)
        misspelt = {**given, "card_idd": [12]}
        with pytest.raises(BigmlError, match=r"card_id \(did you mean 'card_idd'\?\)"):
            backend.features(fraud, None, misspelt, False)
    finally:
        backend.close()


# --- Feast JSON details ------------------------------------------------------------


def test_timestamp_text_matches_feasts_adaptive_precision() -> None:
    base = datetime(2024, 5, 1, 12, 0, 0, tzinfo=timezone.utc)
    assert timestamp_text(base) == "2024-05-01T12:00:00Z"
    assert timestamp_text(base.replace(microsecond=120000)) == "2024-05-01T12:00:00.120Z"
    assert timestamp_text(base.replace(microsecond=123456)) == "2024-05-01T12:00:00.123456Z"
    assert timestamp_text(base.replace(tzinfo=None)) == "2024-05-01T12:00:00Z"
    assert timestamp_text(int(base.timestamp() * 1_000_000) + 1) == "2024-05-01T12:00:00.000001Z"
    assert timestamp_text(None) == timestamp_text(0) == "1970-01-01T00:00:00Z"
    assert timestamp_text(-1_500_000) == "1969-12-31T23:59:58.500Z"


def test_non_finite_floats_are_strings_as_in_feast() -> None:
    values = [float("nan"), float("inf"), float("-inf"), 1.5, None]
    response = OnlineResponse(["x"], [values], [ft.FLOAT64], [["PRESENT"] * 5], [[None] * 5])
    assert response.to_dict()["results"][0]["values"] == ["NaN", "Infinity", "-Infinity", 1.5, None]


# --- the real backend's start-up ------------------------------------------------------


def test_backend_connects_reads_and_loads_every_model_at_start_up(
    example_project, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    from bigml_fs.project import Project
    from bigml_fs.serving.backend import ProjectBackend

    root = tmp_path / "project"
    shutil.copytree(
        example_project, root, ignore=shutil.ignore_patterns(".bigml")
    )  # the store file is created here, not in the shared copy
    project = Project.load(root, in_memory=True)
    reads: list[tuple] = []
    scored: list[tuple] = []
    monkeypatch.setattr(
        project,
        "online_features",
        lambda features, entities, full_feature_names=False: reads.append((features, entities)),
    )
    monkeypatch.setattr(project, "predict_online", lambda model, entities: scored.append((model, entities)))
    backend = ProjectBackend(project)
    try:
        assert len(reads) == 1 and all(values == [None] for values in reads[0][1].values())  # one read of a null key
        assert sorted(m for m, _ in scored) == sorted(project.catalog.models)
        fraud = dict(scored)["fraud_detector"]
        assert set(fraud) == {"customer_id", "merchant_id", "card_id", "country"} and all(
            v == [None] for v in fraud.values()
        )
        ok, details = backend.health()
        assert ok and details["store"] == {"type": "sqlite", "reachable": True}
        assert details["views"] == {} and details["never_materialized"] == sorted(project.catalog.views)
    finally:
        backend.close()


def test_response_json_handles_numpy_datetimes_and_big_integers() -> None:
    import numpy as np

    from bigml_fs.serving.app import _dumps

    content = {
        "a": np.int64(3),
        "b": np.float64(0.25),
        "c": np.array([1, 2]),
        "d": datetime(2024, 5, 1, tzinfo=timezone.utc),
        "e": 2**70,
        "f": "é",
    }
    decoded = json.loads(_dumps(content))
    assert (
        decoded["a"] == 3
        and decoded["b"] == 0.25
        and decoded["c"] == [1, 2]
        and decoded["e"] == 2**70
        and decoded["f"] == "é"
    )
    assert decoded["d"].startswith("2024-05-01T00:00:00")


def test_unreachable_redis_gives_503_naming_host_and_port_never_the_password(
    example_project, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    import yaml

    from benchmarks.bench_serving import free_port
    from bigml_fs.project import Project

    root = tmp_path / "project"
    shutil.copytree(example_project, root, ignore=shutil.ignore_patterns(".bigml"))
    port = free_port()  # nobody listens there
    spec = yaml.safe_load((root / "project.yaml").read_text())
    spec["online_store"] = {
        "type": "redis",
        "host": "127.0.0.1",
        "port": port,
        "password_env": "BIGML_TEST_REDIS_PASSWORD",
    }
    (root / "project.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    monkeypatch.setenv("BIGML_TEST_REDIS_PASSWORD", "pa55-w0rd-secret")
    with TestClient(create_app(Project.load(root, in_memory=True))) as c:
        health = c.get("/health")
        features = c.post(
            "/features", json={"features": ["customer_profile:segment"], "entities": {"customer_id": [1]}}
        )
    assert health.status_code == 503 and health.json()["store"]["reachable"] is False
    assert f"127.0.0.1:{port}" in health.json()["store"]["error"]
    assert features.status_code == 503 and f"127.0.0.1:{port}" in features.json()["detail"]
    assert "pa55-w0rd-secret" not in health.text + features.text


# --- the serve command's own checks (before anything is loaded) -----------------------


def test_serve_refuses_a_port_in_use_and_an_unknown_host(tmp_path) -> None:
    import socket

    from typer.testing import CliRunner

    from bigml_fs.cli.main import app

    runner = CliRunner()
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = runner.invoke(app, ["--project", str(tmp_path), "serve", "--port", str(port)])
    assert result.exit_code == 1 and f"127.0.0.1:{port}" in result.output and "--port" in result.output
    result = runner.invoke(app, ["--project", str(tmp_path), "serve", "--host", "no-such-host.invalid"])
    assert result.exit_code == 1 and "--host no-such-host.invalid" in result.output


def test_serve_refuses_an_unset_token_variable(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from benchmarks.bench_serving import free_port
    from bigml_fs.cli.main import app
    from bigml_fs.cli.serve_commands import read_token

    monkeypatch.delenv("BIGML_TEST_UNSET_TOKEN", raising=False)
    result = CliRunner().invoke(
        app, ["--project", str(tmp_path), "serve", "--port", str(free_port()), "--token-env", "BIGML_TEST_UNSET_TOKEN"]
    )
    assert result.exit_code == 2 and "BIGML_TEST_UNSET_TOKEN" in result.output and "Traceback" not in result.output
    monkeypatch.setenv("BIGML_TEST_SET_TOKEN", "  abc  ")
    assert read_token("BIGML_TEST_SET_TOKEN") == "abc" and read_token(None) is None
