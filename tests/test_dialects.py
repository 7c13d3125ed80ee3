"""One Dialect object per engine: compile-only plans parse in their warehouse, and the compiler never asks names.

The compile-only dialects (Snowflake, BigQuery, Trino, Databricks) are not
run here; their plans are checked by SQLGlot parsing them back in their own
dialect and by golden files (``BIGML_UPDATE_GOLDEN=1`` accepts a deliberate
change).
"""

from __future__ import annotations

import ast
import os
import re
from pathlib import Path

import pytest
import sqlglot

from bigml_fs.engines.dialects import DIALECTS, dialect_for
from bigml_fs.errors import UsageError

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = Path(__file__).parent / "golden"
COMPILE_ONLY = sorted(name for name, d in DIALECTS.items() if not d.runs_here)
GOLDEN_NAMES = ("fraud_detector", "customer_spend", "card_activity")


@pytest.fixture(scope="module")
def project(example_project):
    from bigml_fs import Project

    with Project.load(example_project, in_memory=True) as project:
        yield project


def test_dialects_known_here():
    assert sorted(d.name for d in DIALECTS.values() if d.runs_here) == ["duckdb", "postgres", "spark"]
    assert COMPILE_ONLY == ["bigquery", "databricks", "snowflake", "trino"]
    assert dialect_for("Snowflake") is DIALECTS["snowflake"]


def test_unknown_dialect_is_a_usage_error_naming_the_known_ones():
    with pytest.raises(UsageError) as error:
        dialect_for("snowflak")
    text = str(error.value)
    assert "did you mean 'snowflake'" in text and all(name in text for name in DIALECTS)


@pytest.mark.parametrize("dialect", sorted(DIALECTS))
def test_every_view_and_model_plan_parses_back_in_its_dialect(project, dialect):
    catalog = project.catalog
    for name in [*catalog.views, *catalog.models]:
        sql = project.compile(name, dialect)
        assert sqlglot.parse_one(sql, read=dialect) is not None, name
        compile_only = "compile-only" in sql.splitlines()[1]
        assert compile_only == (not DIALECTS[dialect].runs_here), name


@pytest.mark.parametrize("name", GOLDEN_NAMES)
@pytest.mark.parametrize("dialect", COMPILE_ONLY)
def test_compile_only_plan_golden(project, name, dialect):
    sql = project.compile(name, dialect) + "\n"
    golden = GOLDEN / f"compile_{name}.{dialect}.sql"
    if os.environ.get("BIGML_UPDATE_GOLDEN") or not golden.exists():
        golden.write_text(sql)
    assert sql == golden.read_text()


def test_compile_only_plans_use_the_dialects_own_strategy(project):
    """No DuckDB-only steps (as-of joins, arg_max_null) in a warehouse that has none; Databricks gets Spark's plan."""
    for dialect in ("snowflake", "bigquery", "trino"):
        sql = project.compile("fraud_detector", dialect).upper()
        assert "ASOF" not in sql and "ARG_MAX_NULL" not in sql and "EPOCH_US(" not in sql, dialect
    refs = project.catalog.expand(list(project.catalog.models["fraud_detector"].features), "fraud_detector")
    spark, databricks = (project.compile_plan(refs, dialect_for(d)).query for d in ("spark", "databricks"))
    assert spark == databricks


def test_compile_cli_unknown_dialect_exits_2(example_project):
    from tests.test_cli import run

    result = run("--project", str(example_project), "compile", "fraud_detector", "--dialect", "foo")
    assert result.exit_code == 2 and "unknown SQL dialect 'foo'" in result.stderr
    assert all(name in result.stderr for name in DIALECTS)
    ok = run("--project", str(example_project), "compile", "customer_spend", "--dialect", "snowflake")
    assert ok.exit_code == 0 and "compile-only" in ok.stdout


def test_compiler_never_compares_engine_names():
    pattern = re.compile(r"(engine|dialect)\s*==|\bin\s*\(\s*[\"'](duckdb|postgres|spark)[\"']")
    hits = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in sorted((ROOT / "bigml_fs" / "compiler").rglob("*.py"))
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if pattern.search(line)
    ]
    assert hits == []


def test_engines_import_nothing_from_the_compiler():
    hits = []
    for path in sorted((ROOT / "bigml_fs" / "engines").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            hits += [
                f"{path.name}: {n}" for n in names if n == "bigml_fs.compiler" or n.startswith("bigml_fs.compiler.")
            ]
    assert hits == []


def test_a_sql_model_transpiles_to_any_sqlglot_dialect(example_project):
    """A sql/ model prints in any SQLGlot dialect (a plain transpile, no plan to build)."""
    from tests.test_cli import run

    ok = run("--project", str(example_project), "compile", "payments", "--dialect", "mysql")
    assert ok.exit_code == 0 and sqlglot.parse_one(ok.stdout, read="mysql") is not None
    bad = run("--project", str(example_project), "compile", "payments", "--dialect", "mysqll")
    assert bad.exit_code == 2 and "did you mean 'mysql'" in bad.stderr
