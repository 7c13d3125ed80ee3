"""The command line: exit codes, no tracebacks, --json, init, and every command's --help."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from bigml_fs.cli.main import app

runner = CliRunner()
REPO = Path(__file__).resolve().parents[1]


def run(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


def test_validate_and_json(example_project):
    result = run("--project", str(example_project), "validate", "--json")
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["ok"] and payload["views"] == 7 and payload["models"] == 3


def test_broken_project_exits_1_without_traceback(example_project, tmp_path):
    broken = tmp_path / "broken"
    import shutil

    shutil.copytree(example_project, broken)
    text = (
        (broken / "features" / "customers.yaml")
        .read_text()
        .replace("ttl: 30d", "ttl: 30x")
        .replace("agg: sum", "agg: summ")
    )
    (broken / "features" / "customers.yaml").write_text(text)
    proc = subprocess.run(
        [sys.executable, "-m", "bigml_fs", "--project", str(broken), "validate"], capture_output=True, text=True
    )
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr + proc.stdout
    as_json = subprocess.run(
        [sys.executable, "-m", "bigml_fs", "--project", str(broken), "validate", "--json"],
        capture_output=True,
        text=True,
    )
    problems = json.loads(as_json.stdout)["problems"]
    assert as_json.returncode == 1 and {(p["file"], p["line"], p["key"]) for p in problems} >= {
        ("features/customers.yaml", 7, "feature_views[0].ttl")
    }
    assert (
        "features/customers.yaml:7" in proc.stderr
        and "unknown unit 'x'" in proc.stderr
        and "did you mean 'sum'" in proc.stderr
    )


def test_compile_prints_sql_in_any_dialect(example_project):
    result = run("--project", str(example_project), "compile", "payments", "--dialect", "spark")
    assert result.exit_code == 0 and "FROM src.transactions" in result.stdout
    unknown = run("--project", str(example_project), "compile", "paymnts")
    assert unknown.exit_code == 2 and "did you mean 'payments'" in unknown.stderr


def test_training_set_command_with_a_csv_spine(example_project, tmp_path):
    spine = tmp_path / "spine.csv"
    spine.write_text("customer_id,event_timestamp\n1,2024-02-01T00:00:00Z\n2,2024-02-01T00:00:00+02:00\n")
    out = tmp_path / "out.parquet"
    result = run(
        "--project",
        str(example_project),
        "training-set",
        "--features",
        "customer_spend:txn_count_1h,customer_profile:*",
        "--spine",
        str(spine),
        "-o",
        str(out),
        "--json",
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["rows"] == 2
    table = pq.read_table(out)
    assert table.column_names == [
        "customer_id",
        "event_timestamp",
        "txn_count_1h",
        "home_country",
        "segment",
        "credit_limit",
    ]


def test_training_set_bad_spine_is_exit_1(example_project, tmp_path):
    spine = tmp_path / "spine.parquet"
    pq.write_table(pa.table({"customer": [1]}), spine)
    result = run(
        "--project",
        str(example_project),
        "training-set",
        "--features",
        "customer_spend:*",
        "--spine",
        str(spine),
        "-o",
        str(tmp_path / "o.parquet"),
    )
    assert result.exit_code == 1
    assert "time column" in result.stderr or "lacks key column" in result.stderr


def test_var_override(example_project):
    result = run("--project", str(example_project), "--var", "min_amount=100000", "compile", "payments")
    assert "amount >= 100000" in result.stdout
    bad = run("--project", str(example_project), "--var", "nonsense", "validate")
    assert bad.exit_code == 2


def test_init_creates_a_valid_runnable_project(tmp_path):
    target = tmp_path / "new"
    result = run("init", str(target), "--rows", "500")
    assert result.exit_code == 0, result.output
    assert (target / "project.yaml").exists() and (target / "data" / "transactions.parquet").exists()
    assert run("--project", str(target), "validate").exit_code == 0
    again = run("init", str(target))
    assert again.exit_code == 1 and "not empty" in again.stderr


def test_init_blank_is_a_valid_empty_project(tmp_path):
    target = tmp_path / "blank"
    assert run("init", "--blank", str(target)).exit_code == 0
    assert not (target / "data").exists() and {"sql", "features", "models"} <= {p.name for p in target.iterdir()}
    result = run("--project", str(target), "validate", "--json")
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["ok"] and payload["views"] == 0 and payload["models"] == 0
    # the commented shapes in project.yaml are a valid project once uncommented
    text = (target / "project.yaml").read_text()
    uncommented = text.replace("entities: []\n#", "entities:\n").replace("sources: []\n#", "sources:\n")
    uncommented = uncommented.replace("\n#  ", "\n  ").replace("\n#    ", "\n    ")
    (target / "project.yaml").write_text(uncommented)
    (target / "data").mkdir()
    import pyarrow as pa
    import pyarrow.parquet as pq

    times = pa.array([0, 1], pa.timestamp("us", tz="UTC"))
    pq.write_table(
        pa.table({"customer_id": [1, 2], "ts": times, "ingested_at": times}), target / "data" / "transactions.parquet"
    )
    result = run("--project", str(target), "validate", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["sources"] == 1 and json.loads(result.stdout)["entities"] == 1


@pytest.mark.parametrize(
    "command",
    [
        "init",
        "validate",
        "compile",
        "plan",
        "materialize",
        "training-set",
        "train",
        "predict",
        "online",
        "serve",
        "generate-data",
        "models list",
        "models show",
    ],
)
def test_every_command_has_help_and_is_in_the_readme(command):
    result = run(*command.split(), "--help")
    assert result.exit_code == 0 and "Usage" in result.stdout
    assert f"bigml-fs {command}" in (REPO / "README.md").read_text()


def test_tables_are_whole_when_stdout_is_not_a_terminal(example_project):
    result = run("--project", str(example_project), "plan")
    assert result.exit_code == 0, result.output
    assert "customer_spend, customer_spend__windows" in result.stdout
    assert max(len(line) for line in result.stdout.splitlines()) > 80


@pytest.mark.parametrize("command", ["validate", "models list", "predict", "plan", ""])
def test_help_shows_flags_without_a_value(command):
    result = run(*command.split(), "--help")
    assert result.exit_code == 0
    assert "<bool>" not in result.stdout


def test_global_options_are_taken_after_the_command_too(example_project, tmp_path):
    after = run("validate", "--project", str(example_project), "--var", "min_amount=1", "-q", "--json")
    assert after.exit_code == 0, after.output
    assert json.loads(after.stdout)["ok"]
    before = run("-p", str(example_project), "--json", "-q", "validate")
    assert before.exit_code == 0 and json.loads(before.stdout)["ok"]
    compiled = run("compile", "payments", "-p", str(example_project), "--var", "min_amount=100000")
    assert compiled.exit_code == 0 and "amount >= 100000" in compiled.stdout
    listed = run("models", "list", "--json", "--project", str(example_project), "--quiet")
    assert listed.exit_code == 0 and json.loads(listed.stdout)["ok"]
    bad = run("validate", "-p", str(example_project), "--var", "nonsense")
    assert bad.exit_code == 2 and "NAME=VALUE" in bad.stderr


def test_a_var_not_declared_in_project_yaml_is_a_usage_error(example_project):
    for args in (("--var", "min_amont=3", "validate"), ("validate", "--var", "min_amont=3")):
        result = run("--project", str(example_project), *args)
        assert result.exit_code == 2, result.output
        assert "--var min_amont" in result.stderr and "did you mean 'min_amount'" in result.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["train", "fraud_detectr"],
        ["predict", "fraud_detectr", "--spine", "spine.csv"],
        ["models", "show", "fraud_detectr"],
        ["models", "promote", "fraud_detectr@v1"],
        ["training-set", "fraud_detectr"],
        ["compile", "fraud_detectr"],
        ["plan", "customer_spnd"],
        ["online", "-f", "customer_spnd:*", "-e", "customer_id=1"],
        ["online", "-f", "customer_spend:txn_count_1hh", "-e", "customer_id=1"],
        ["training-set", "-f", "customer_spnd:*", "--spine", "spine.csv"],
    ],
    ids=lambda args: " ".join(args[:2]),
)
def test_an_unknown_name_is_a_usage_error_from_every_command(example_project, args):
    result = run("--project", str(example_project), *args)
    assert result.exit_code == 2, result.output
    assert "did you mean" in result.stderr and "Traceback" not in result.output


def test_generate_data_ends_on_the_given_day_and_is_deterministic(tmp_path):
    import datetime as dt

    runs = []
    for name in ("a", "b"):
        result = run("generate-data", "--rows", "2000", "--end-day", "2025-01-10", "--out", str(tmp_path / name))
        assert result.exit_code == 0, result.output
        runs.append(tmp_path / name)
    ts = pq.read_table(runs[0] / "transactions.parquet").column("ts").to_pylist()
    assert max(ts).date() == dt.date(2025, 1, 10)
    assert (max(ts) - min(ts)).days == 89  # the same 90-day span as the original data set
    files = sorted(p.name for p in runs[0].glob("*.parquet"))
    assert files == sorted(p.name for p in runs[1].glob("*.parquet")) and len(files) == 5
    for name in files:
        assert (runs[0] / name).read_bytes() == (runs[1] / name).read_bytes(), name
    assert run("generate-data", "--end-day", "2025-13-01", "--out", str(tmp_path / "c")).exit_code == 2


def test_generate_data_ends_today_by_default(tmp_path):
    import datetime as dt

    before = dt.datetime.now(dt.timezone.utc).date()
    result = run("generate-data", "--rows", "2000", "--out", str(tmp_path), "--json")
    assert result.exit_code == 0, result.output
    after = dt.datetime.now(dt.timezone.utc).date()  # the same day unless the run crossed midnight (UTC)
    ts = pq.read_table(tmp_path / "transactions.parquet").column("ts").to_pylist()
    assert max(ts).date() in {before, after}
