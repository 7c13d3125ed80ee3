"""A latest-value feature over the labels' own source and time reads the label: warn, or refuse with --strict."""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from pathlib import Path

import pyarrow as pa
import pytest
from typer.testing import CliRunner

from bigml_fs.cli.main import app
from bigml_fs.errors import DataError
from tests.helpers import load, micros_to_ts, write_project

S = 1_000_000
T0 = int(datetime(2024, 5, 1, tzinfo=timezone.utc).timestamp()) * S
N = 40

PROJECT = {
    "name": "leak",
    "entities": [{"name": "customer", "join_keys": ["customer_id"]}],
    "sources": [
        {"name": "events", "path": "data/events.parquet", "timestamp": "ts"},
        {"name": "profiles", "path": "data/profiles.parquet", "timestamp": "ts"},
    ],
}
FEATURES = """
feature_views:
  - name: ev
    entities: [customer]
    source: events
    features:
      - {name: last_y, expr: y}
      - {name: last_x1, expr: x1}
      - {name: n_1d, agg: count, window: 1d}
  - name: ev_windows
    entities: [customer]
    source: events
    features:
      - {name: y_sum_1d, agg: sum, expr: y, window: 1d}
  - name: profile
    entities: [customer]
    source: profiles
    features:
      - {name: age}
"""
MODELS = """
models:
  - name: leaky
    task: regression
    labels: {source: events, target: y, timestamp: ts}
    features: [ev:last_y, ev:last_x1, ev:n_1d, profile:age]
    estimator: linear_regression
    split: {by: time, test_fraction: 0.25}
  - name: safe
    task: regression
    labels: {source: events, target: y, timestamp: ts}
    features: [ev:n_1d, ev_windows:y_sum_1d, profile:age]
    estimator: linear_regression
    split: {by: time, test_fraction: 0.25}
"""


@pytest.fixture()
def root(tmp_path: Path) -> Path:
    events = pa.table(
        {
            "customer_id": pa.array([i % 4 for i in range(N)], type=pa.int64()),
            "ts": micros_to_ts([T0 + i * 3600 * S for i in range(N)]),
            "x1": [float(i % 7) for i in range(N)],
            "y": [float(i % 5) + 0.5 * (i % 7) for i in range(N)],
        }
    )
    profiles = pa.table(
        {
            "customer_id": pa.array(range(4), type=pa.int64()),
            "ts": micros_to_ts([T0 - 86400 * S] * 4),
            "age": [20.0, 30.0, 40.0, 50.0],
        }
    )
    return write_project(tmp_path / "p", PROJECT, FEATURES, MODELS, tables={"events": events, "profiles": profiles})


def _leak_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "bigml_fs" and "can read the label" in r.getMessage()]


def test_training_set_warns_naming_model_view_and_latest_features(root, caplog):
    with load(root) as project, caplog.at_level(logging.WARNING, logger="bigml_fs"):
        table = project.training_set("leaky")
    assert table.num_rows == N
    [message] = _leak_warnings(caplog)
    assert "model 'leaky'" in message and "view 'ev'" in message
    assert "'last_y'" in message and "'last_x1'" in message
    assert "n_1d" not in message and "profile" not in message  # windows and other sources are fine
    assert "Fix:" in message and "--strict" in message


def test_train_warns(root, caplog):
    with load(root) as project, caplog.at_level(logging.WARNING, logger="bigml_fs"):
        project.train("leaky")
    assert len(_leak_warnings(caplog)) == 1


def test_strict_refuses(root):
    with load(root) as project:
        with pytest.raises(DataError, match=r"view 'ev'.*can read the label"):
            project.training_set("leaky", strict=True)
        with pytest.raises(DataError, match=r"model 'leaky'.*view 'ev'"):
            project.train("leaky", strict=True)
        assert not project.model_versions("leaky")


def test_window_features_over_the_labels_source_do_not_warn(root, caplog):
    with load(root) as project, caplog.at_level(logging.WARNING, logger="bigml_fs"):
        project.training_set("safe", strict=True)
    assert _leak_warnings(caplog) == []


def test_cli_strict_exits_1(root, tmp_path):
    runner = CliRunner()
    out = tmp_path / "ts.parquet"
    for args in (["train", "leaky", "--strict"], ["training-set", "leaky", "--strict", "-o", str(out)]):
        result = runner.invoke(app, ["--project", str(root), *args], catch_exceptions=False)
        assert result.exit_code == 1, result.output
        assert "can read the label" in result.output and "Traceback" not in result.output
    assert not out.exists()
    result = runner.invoke(app, ["--project", str(root), "training-set", "leaky", "-o", str(out)])
    assert result.exit_code == 0 and "can read the label" in result.output
