"""sql/ models: render, order by their ref() graph, parse and transpile.

Each file renders to one SELECT written in the project's ``sql_dialect``;
SQLGlot parses it (a syntax error names file:line) and renders it for the
engine. Dependencies form a DAG; a cycle is reported with its members.
"""

from __future__ import annotations

import graphlib
from dataclasses import dataclass, field
from typing import Any

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError

from bigml_fs.compiler.jinja_env import RenderResult, render_sql
from bigml_fs.core.digest import digest
from bigml_fs.errors import Problem, SqlModelError
from bigml_fs.spec.loader import SqlFile


@dataclass(frozen=True)
class SqlModel:
    """A rendered, parsed sql/ model."""

    name: str
    display: str
    rendered: str
    query: exp.Query
    neutral: str
    refs: tuple[str, ...]
    sources: tuple[str, ...]
    vars_used: dict[str, Any] = field(default_factory=dict)
    materialized: str = "view"

    @property
    def relation(self) -> exp.Table:
        return exp.table_(self.name, quoted=True)

    def sql(self, dialect: str) -> str:
        return self.query.sql(dialect=dialect, pretty=True)

    def fingerprint(self, upstream: dict[str, str]) -> str:
        """Hash of the engine-neutral rendering, its vars and its upstream models' fingerprints.

        ``neutral`` names each source ``__source__.<name>`` instead of the
        engine's relation, so the same project on DuckDB, PostgreSQL or Spark
        has the same fingerprints.
        """
        return digest([self.neutral, self.vars_used, self.materialized, [upstream[r] for r in self.refs]])


def model_signature(fingerprint: str, sources: dict[str, str | None], refs: dict[str, str | None]) -> str | None:
    """What a table model's contents depend on: its fingerprint and the data it reads.

    ``sources`` maps each source the model reads to its data signature (None
    when its changes cannot be seen, e.g. a database table), ``refs`` each
    model it ref()s to that model's own signature. None if any of them is
    None: such a table is rebuilt every time (as dbt does).
    """
    if any(sig is None for sig in [*sources.values(), *refs.values()]):
        return None
    return digest([fingerprint, sorted(sources.items()), sorted(refs.items())])


def build_sql_models(
    files: dict[str, SqlFile], sources: dict[str, str], variables: dict[str, Any], dialect: str, problems: list[Problem]
) -> dict[str, SqlModel]:
    """Render and parse every sql/ file; return the good ones in dependency order.

    Each file's error is appended to ``problems`` so one run reports them all.
    """
    relations = {name: exp.table_(name, quoted=True).sql(dialect) for name in files}
    neutral_sources = {name: f"__source__.{name}" for name in sources}
    rendered: dict[str, RenderResult] = {}
    neutral: dict[str, str] = {}
    for name, file in files.items():
        try:
            result = render_sql(file.display, file.text, sources, relations, variables)
            # again with engine-neutral source names: what the fingerprint hashes
            neutral[name] = render_sql(file.display, file.text, neutral_sources, relations, variables).sql
            rendered[name] = result
        except SqlModelError as exc:
            problems.append(exc.problem)
    try:
        order = _topological_order({name: r.refs for name, r in rendered.items()})
    except SqlModelError as exc:
        problems.append(exc.problem)
        return {}
    models: dict[str, SqlModel] = {}
    for name in order:
        if name not in rendered or any(ref not in models for ref in rendered[name].refs):
            continue
        result, file = rendered[name], files[name]
        try:
            query = parse_select(result.sql, file.display, dialect)
        except SqlModelError as exc:
            problems.append(exc.problem)
            continue
        models[name] = SqlModel(
            name=name,
            display=file.display,
            rendered=result.sql,
            query=query,
            neutral=neutral[name],
            refs=tuple(result.refs),
            sources=tuple(result.sources),
            vars_used=result.vars_used,
            materialized=result.config.get("materialized", "view"),
        )
    return models


def _topological_order(graph: dict[str, list[str]]) -> list[str]:
    sorter = graphlib.TopologicalSorter({name: sorted(deps) for name, deps in sorted(graph.items())})
    try:
        return list(sorter.static_order())
    except graphlib.CycleError as exc:
        cycle = exc.args[1]
        raise SqlModelError(
            "sql/", None, f"sql/ models form a cycle: {' -> '.join(cycle)}; a model cannot ref() itself through others"
        ) from None


def parse_select(sql: str, display: str, dialect: str) -> exp.Query:
    """Parse exactly one SELECT; errors name the file and line."""
    try:
        statements = [s for s in sqlglot.parse(sql, read=dialect) if s is not None]
    except ParseError as exc:
        first = exc.errors[0] if exc.errors else {}
        line = first.get("line", "?")
        desc = first.get("description", str(exc))
        raise SqlModelError(display, line, f"SQL syntax error ({dialect}): {desc}") from None
    if len(statements) != 1:
        raise SqlModelError(
            display,
            None,
            f"expected exactly one SELECT statement, found {len(statements)}; split it into several files",
        )
    query = statements[0]
    if not isinstance(query, exp.Query):
        raise SqlModelError(display, 1, f"a sql model must be a SELECT, found {query.key.upper()}")
    return query
