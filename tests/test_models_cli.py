"""`train`, `predict`, `models list|show|promote` on the command line (exit codes, --json, no tracebacks)."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from bigml_fs.cli.main import app
from tests.test_models import copy_example

runner = CliRunner()


def run(root: Path, *args: str):
    return runner.invoke(app, ["--project", str(root), *args], catch_exceptions=False)


@pytest.fixture(scope="module")
def root(example_project: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_example(example_project, tmp_path_factory.mktemp("cli"))


def test_train_predict_models_commands(root, tmp_path):
    result = run(root, "train", "amount_regressor")
    assert result.exit_code == 0, result.output
    assert "rmse" in result.output and "Report:" in result.output and "report.html" in result.output
    payload = json.loads(run(root, "train", "amount_regressor", "--json").stdout)
    assert (
        payload["ok"]
        and payload["version"] == 2
        and payload["metrics"]["rmse"] > 0
        and Path(payload["report"]).exists()
    )

    listed = json.loads(run(root, "models", "list", "--json").stdout)["versions"]
    assert [(v["model"], v["version"], v["in_use"]) for v in listed] == [
        ("amount_regressor", 1, False),
        ("amount_regressor", 2, True),
    ]
    assert run(root, "models", "promote", "amount_regressor@v1").exit_code == 0
    shown = json.loads(run(root, "models", "show", "amount_regressor", "--json").stdout)
    assert shown["promoted"] and shown["manifest"]["version"] == 1
    assert "amount_avg_30d" in run(root, "models", "show", "amount_regressor@2").output

    spine = tmp_path / "spine.parquet"
    pq.write_table(
        pq.read_table(root / "data" / "transactions.parquet").select(["customer_id", "ts"]).slice(0, 100), spine
    )
    for extra, name in (([], "py.parquet"), (["--in-warehouse"], "sql.parquet"), ([], "py.csv")):
        out = tmp_path / name
        result = run(root, "predict", "amount_regressor", "--spine", str(spine), "-o", str(out), "--json", *extra)
        assert result.exit_code == 0, result.output
        payload = json.loads(result.stdout)
        assert payload["rows"] == 100 and payload["version"] == 1  # the promoted version
    py, sql = pq.read_table(tmp_path / "py.parquet"), pq.read_table(tmp_path / "sql.parquet")
    assert py.column_names == ["customer_id", "ts", "prediction"] == sql.column_names
    assert (
        max(
            abs(a - b)
            for a, b in zip(py.column("prediction").to_pylist(), sql.column("prediction").to_pylist(), strict=True)
        )
        < 1e-6
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["train", "fraud_detectr"], "did you mean 'fraud_detector'"),
        (["models", "show", "amount_regresor"], "did you mean 'amount_regressor'"),
        (["models", "show", "amount_regressor@v9"], "no version v9"),
        (["models", "promote", "amount_regressor"], "give the version"),
        (["train", "amount_regressor", "--end", "yesterday"], "not an ISO 8601 time"),
    ],
)
def test_mistakes_exit_without_traceback(root, args, message):
    if not (root / ".bigml" / "models" / "amount_regressor").exists():
        run(root, "train", "amount_regressor")
    result = run(root, *args)
    assert result.exit_code in (1, 2)
    assert message in result.output and "Traceback" not in result.output


def test_predict_unknown_model_names_train(root, tmp_path):
    spine = tmp_path / "spine.csv"
    spine.write_text("customer_id,ts\n1,2024-02-01T00:00:00Z\n")
    result = run(root, "predict", "spend_anomaly", "--spine", str(spine), "-o", str(tmp_path / "o.parquet"))
    assert result.exit_code == 1 and "bigml-fs train spend_anomaly" in result.output
