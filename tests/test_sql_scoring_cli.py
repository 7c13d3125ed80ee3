"""`compile MODEL --predict`: the registered version's in-warehouse scoring SQL, per dialect; mistakes exit 1."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlglot
from sqlglot import exp
from typer.testing import CliRunner

from bigml_fs.cli.main import app
from tests.test_models import copy_example

runner = CliRunner()


def run(root: Path, *args: str):
    return runner.invoke(app, ["--project", str(root), *args], catch_exceptions=False)


@pytest.fixture(scope="module")
def root(example_project: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = copy_example(example_project, tmp_path_factory.mktemp("scoring_cli"))
    result = run(root, "train", "amount_regressor")
    assert result.exit_code == 0, result.output
    return root


@pytest.mark.parametrize("dialect", [None, "postgres", "spark"])
def test_compile_predict_prints_the_scoring_query(root, dialect):
    args = ["compile", "amount_regressor", "--predict"] + (["--dialect", dialect] if dialect else [])
    result = run(root, *args)
    assert result.exit_code == 0, result.output
    sql = result.stdout
    assert sql.startswith("-- scores of model amount_regressor@v1")
    query = sqlglot.parse_one(sql, read=dialect or "duckdb")
    outputs = [s.alias_or_name for s in query.expressions]
    assert outputs[-1] == "prediction" and "__row" in outputs
    assert "__spine" in {t.name for t in query.find_all(exp.Table)}
    assert "amount_avg_30d" in sql  # a model feature, computed by the point-in-time query


def test_compile_predict_of_an_unknown_version_exits_1(root):
    result = run(root, "compile", "amount_regressor@v7", "--predict")
    assert result.exit_code == 1 and "Traceback" not in result.output and "v7" in result.output
