"""sql/ models: Jinja functions, the ref() DAG, and transpilation golden cases."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlglot

from bigml_fs.compiler.jinja_env import render_sql
from bigml_fs.compiler.sql_models import build_sql_models
from bigml_fs.errors import SqlModelError
from bigml_fs.spec.loader import SqlFile

GOLDEN = Path(__file__).parent / "golden"


def files(**texts: str) -> dict[str, SqlFile]:
    return {name: SqlFile(name, Path(f"sql/{name}.sql"), f"sql/{name}.sql", text) for name, text in texts.items()}


def test_jinja_functions_render_and_record_dependencies():
    result = render_sql(
        "sql/m.sql",
        (
            "{{ config(materialized='table') }}SELECT * FROM {{ source('orders') }} JOIN {{ ref('users') }} USING (id) "
            "WHERE a > {{ var('min') }} AND b = {{ var('flag', 1) }}"
        ),
        sources={"orders": "src.orders"},
        models={"users": '"users"'},
        variables={"min": 5},
    )
    assert result.sql == 'SELECT * FROM src.orders JOIN "users" USING (id) WHERE a > 5 AND b = 1'
    assert result.sources == ["orders"] and result.refs == ["users"]
    assert result.vars_used == {"min": 5, "flag": 1}
    assert result.config == {"materialized": "table"}


def test_var_overrides_win_over_project_vars(tmp_path):
    problems: list = []
    models = build_sql_models(files(m="SELECT {{ var('n') }} AS n"), {}, {"n": 7}, "duckdb", problems)
    assert not problems and models["m"].rendered == "SELECT 7 AS n"


def test_models_come_in_dependency_order():
    problems: list = []
    models = build_sql_models(
        files(c="SELECT * FROM {{ ref('b') }}", a="SELECT 1 AS x", b="SELECT * FROM {{ ref('a') }}"),
        {},
        {},
        "duckdb",
        problems,
    )
    assert not problems
    assert list(models) == ["a", "b", "c"]
    assert models["c"].refs == ("b",)


def test_a_cycle_names_its_members():
    problems: list = []
    build_sql_models(
        files(a="SELECT * FROM {{ ref('b') }}", b="SELECT * FROM {{ ref('a') }}"), {}, {}, "duckdb", problems
    )
    assert len(problems) == 1 and "cycle" in problems[0].text and "a" in problems[0].text and "b" in problems[0].text


def test_fingerprint_follows_upstream_and_vars():
    def fp(var_value: int) -> str:
        problems: list = []
        models = build_sql_models(
            files(a="SELECT {{ var('n') }} AS x", b="SELECT * FROM {{ ref('a') }}"),
            {},
            {"n": var_value},
            "duckdb",
            problems,
        )
        prints: dict[str, str] = {}
        for name, model in models.items():
            prints[name] = model.fingerprint(prints)
        return prints["b"]

    assert fp(1) == fp(1) and fp(1) != fp(2)


def test_parse_error_has_the_line():
    problems: list = []
    build_sql_models(files(a="SELECT 1\nFROM x\nWHERE (a"), {}, {}, "duckdb", problems)
    assert problems[0].file == "sql/a.sql" and problems[0].line == 3


def test_sandbox_blocks_python_internals():
    with pytest.raises(SqlModelError, match="unsafe"):
        render_sql("sql/m.sql", "{{ ''.__class__.__mro__[1].__subclasses__() }}", {}, {}, {})


def _golden_cases() -> list[tuple[str, str, str, str]]:
    cases = []
    for line in (GOLDEN / "transpile.txt").read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        dialects, source, expected = (part.strip() for part in line.split(" | "))
        read, write = (d.strip() for d in dialects.split("->"))
        cases.append((read, write, source, expected))
    return cases


@pytest.mark.parametrize(("read", "write", "source", "expected"), _golden_cases())
def test_transpile_golden(read, write, source, expected):
    assert sqlglot.transpile(source, read=read, write=write)[0] == expected


@pytest.mark.parametrize(
    ("name", "dialect"), [("customer_spend", "duckdb"), ("payments", "postgres"), ("fraud_detector", "duckdb")]
)
def test_compiled_sql_golden(example_project, name, dialect):
    """The SQL `compile` prints; set BIGML_UPDATE_GOLDEN=1 to accept a deliberate change."""
    import os

    from bigml_fs import Project

    with Project.load(example_project, in_memory=True) as project:
        sql = project.compile(name, dialect) + "\n"
    golden = GOLDEN / f"compile_{name}.{dialect}.sql"
    if os.environ.get("BIGML_UPDATE_GOLDEN") or not golden.exists():
        golden.write_text(sql)
    assert sql == golden.read_text()
