"""End to end: materialize the example project, then `bigml-fs online` (typer's CliRunner)."""

from __future__ import annotations

import json
import shutil
from datetime import datetime, timezone
from pathlib import Path

import pyarrow as pa
import pytest
from typer.testing import CliRunner

from bigml_fs import Project
from bigml_fs.cli.main import app

END = "2024-03-15T00:00:00Z"
T = datetime(2024, 3, 15, tzinfo=timezone.utc)
runner = CliRunner()


@pytest.fixture(scope="module")
def project_dir(example_project: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("online") / "project"
    shutil.copytree(example_project, root, ignore=shutil.ignore_patterns(".bigml"))
    with Project.load(root) as project:
        project.materialize(end=END)
    return root


def _online(root: Path, *args: str):
    return runner.invoke(app, ["--project", str(root), "online", *args], catch_exceptions=False)


def test_online_cli_json_equals_training_set_at_end(project_dir):
    with Project.load(project_dir) as project:
        ids = pa.table({"customer_id": [1, 2, 3, 999_999]}).column("customer_id").to_pylist()
        spine = pa.table(
            {"customer_id": ids, "event_timestamp": pa.array([T] * len(ids), pa.timestamp("us", tz="UTC"))}
        )
        features = ["customer_spend:*", "customer_profile:*"]
        expected = project.training_set(features=features, spine=spine)
    args = [a for i in ids for a in ("--entity", f"customer_id={i}")]
    result = _online(project_dir, "-f", ",".join(features), *args, "--json")
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    names = payload["metadata"]["feature_names"]
    assert names[0] == "customer_id"
    columns = dict(zip(names, payload["results"], strict=True))
    checked = 0
    for name in expected.column_names:
        if name in ("customer_id", "event_timestamp"):
            continue
        got, want = columns[name], expected.column(name).to_pylist()
        for value, status, w in zip(got["values"], got["statuses"], want, strict=True):
            if status == "OUTSIDE_MAX_AGE":  # customer_spend's 30d ttl has long passed today
                assert value is None
                continue
            if status == "NOT_FOUND":
                # a key without events: nothing is stored online and the training set gives null
                assert value is None and w is None, name
                continue
            assert status == "PRESENT"
            assert value == pytest.approx(w, rel=1e-9, abs=1e-12) if isinstance(w, float) else value == w, name
            checked += 1
    assert checked >= 10
    # the latest-value features of customer_spend are expired now, its windows are not
    assert set(columns["last_amount"]["statuses"]) <= {"OUTSIDE_MAX_AGE", "NOT_FOUND"}
    assert "PRESENT" in columns["amount_sum_7d"]["statuses"]
    assert columns["amount_sum_7d"]["event_timestamps"][0] == "2024-03-15T00:00:00Z"
    # a key that never had an event: counts are 0 (as in training sets), other aggregates null
    assert columns["txn_count_1h"]["values"][-1] == 0 and columns["txn_count_1h"]["statuses"][-1] == "PRESENT"
    assert columns["merchants_7d"]["values"][-1] == 0
    assert columns["amount_sum_7d"]["values"][-1] is None and columns["amount_sum_7d"]["statuses"][-1] == "NOT_FOUND"


def test_online_cli_table_and_errors(project_dir, tmp_path):
    result = _online(
        project_dir, "-f", "customer_profile:segment", "--entity", "customer_id=1", "--entity", "customer_id=424242"
    )
    assert result.exit_code == 0, result.output
    assert "segment" in result.output and "NOT_FOUND" in result.output
    # entities from a file
    path = tmp_path / "entities.csv"
    path.write_text("customer_id\n1\n2\n")
    result = _online(project_dir, "-f", "customer_profile:segment", "--entities", str(path), "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["results"][1]["statuses"] == ["PRESENT", "PRESENT"]
    # a wrong key type, an unknown feature (a usage error: exit 2), a missing key: clear messages, no traceback
    result = _online(project_dir, "-f", "customer_profile:segment", "--entity", "customer_id=abc")
    assert result.exit_code == 1
    assert "entity key 'customer_id' must be an integer" in result.output and "Traceback" not in result.output
    result = _online(project_dir, "-f", "customer_profile:segmnt", "--entity", "customer_id=1")
    assert result.exit_code == 2 and "did you mean 'segment'" in result.output
    result = _online(project_dir, "-f", "customer_profile:segment", "--entity", "merchant_id=1")
    assert result.exit_code == 1 and "customer_id" in result.output
    result = _online(project_dir, "-f", "customer_profile:segment")
    assert result.exit_code == 2


def test_online_before_any_materialize_warns(example_project, tmp_path):
    root = tmp_path / "fresh"
    shutil.copytree(example_project, root, ignore=shutil.ignore_patterns(".bigml"))
    result = _online(root, "-f", "customer_profile:segment", "--entity", "customer_id=1")
    assert result.exit_code == 0
    assert "NOT_FOUND" in result.output and "nothing is materialized" in result.output
