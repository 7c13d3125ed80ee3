"""The typed workspace the ``Project`` facade hands down: paths, engine, catalog, settings.

Nothing below the facade imports ``Project``: store/, training/, scoring/ take
a ``Workspace`` (or the narrower ``Paths``) and never call back up. Building
one is the real work of opening a project — registering file sources in the
engine, creating sql/ models (views, or tables rebuilt when their signature
changes), resolving every view and model against the engine's schemas — so
it lives here, below the facade, and a failure is a ``DefinitionError`` that
lists every problem at once.
"""

from __future__ import annotations

import glob
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlglot import exp

from bigml_fs.catalog import Catalog, build_catalog
from bigml_fs.compiler.sql_models import SqlModel, build_sql_models, model_signature
from bigml_fs.engines.base import SOURCE_SCHEMA, Engine
from bigml_fs.errors import BigmlError, DefinitionError, Problem
from bigml_fs.spec.loader import Definitions
from bigml_fs.spec.schema import ProjectSpec, SourceSpec

STATE_DIR = ".bigml"


@dataclass(frozen=True)
class Paths:
    """Where a project's files are: every relative path in project.yaml is relative to ``root``."""

    root: Path
    spec: ProjectSpec

    def resolve(self, path: str | Path) -> Path:
        """A path from project.yaml (or the command line) made absolute against the project root."""
        path = Path(path)
        return path if path.is_absolute() else self.root / path

    @property
    def state_dir(self) -> Path:
        """What bigml_fs writes (git-ignored): ``.bigml/`` beside project.yaml."""
        return self.root / STATE_DIR

    @property
    def offline(self) -> Path:
        """The offline store (``offline_store.path``): run directories and the published ``current``."""
        return self.resolve(self.spec.offline_store.path)

    @property
    def registry(self) -> Path:
        """The Feast registry file (``registry:``)."""
        return self.resolve(self.spec.registry)

    @property
    def feast_repo(self) -> Path:
        """The Feast repo bigml_fs writes (``feature_store.yaml`` and the registry's definitions)."""
        return self.state_dir / "feast"

    @property
    def models(self) -> Path:
        """Registered model versions: ``.bigml/models/NAME/vN/``."""
        return self.state_dir / "models"

    @property
    def tmp(self) -> Path:
        """Scratch files of one command (e.g. in-warehouse scoring's features)."""
        return self.state_dir / "tmp"


@dataclass(frozen=True)
class Workspace:
    """A resolved project: what store/, training/ and scoring/ work on."""

    spec: ProjectSpec
    paths: Paths
    engine: Engine
    catalog: Catalog
    sql_models: dict[str, SqlModel]
    variables: dict[str, Any]

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def sql_dialect(self) -> str:
        """The dialect feature expressions and sql/ files are written in."""
        return self.catalog.sql_dialect


def build_workspace(defs: Definitions, variables: dict[str, Any], engine: Engine, paths: Paths) -> Workspace:
    """Register sources and sql/ models in ``engine`` and resolve the catalog; raise every problem at once."""
    problems: list[Problem] = []
    catalog, models = _resolve(defs, variables, engine, paths, problems)
    if problems:
        raise DefinitionError(problems)
    return Workspace(defs.project, paths, engine, catalog, models, variables)


def _resolve(
    defs: Definitions, variables: dict[str, Any], engine: Engine, paths: Paths, problems: list[Problem]
) -> tuple[Catalog, dict[str, SqlModel]]:
    dialect = defs.project.sql_dialect
    relations = _register_sources(defs, engine, paths, problems)
    source_sql = {name: relation.sql(dialect) for name, relation in relations.items()}
    for source in defs.project.sources:  # a broken source still renders, so its models report their own problems
        source_sql.setdefault(source.name, exp.table_(source.name, db=SOURCE_SCHEMA).sql(dialect))
    models = build_sql_models(defs.sql_files, source_sql, variables, dialect, problems)
    fingerprints: dict[str, str] = {}
    for name, model in models.items():
        fingerprints[name] = model.fingerprint(fingerprints)
    data = {source.name: data_signature(source, paths) for source in defs.project.sources}
    signatures: dict[str, str | None] = {}
    for name, model in models.items():
        signatures[name] = model_signature(
            fingerprints[name], {s: data.get(s) for s in model.sources}, {r: signatures[r] for r in model.refs}
        )
        if any(s not in relations for s in model.sources) or any(r not in relations for r in model.refs):
            continue  # what it reads is broken and reported already: one cause, one message
        try:
            relations[name] = _create_model(engine, model, signatures[name])
        except BigmlError as exc:
            what = "build this model's table" if model.materialized == "table" else "create this model"
            problems.append(Problem(model.display, None, "", f"the engine cannot {what}: {str(exc).splitlines()[0]}"))
    return build_catalog(defs, engine, relations, problems, dialect, fingerprints), models


def _register_sources(defs: Definitions, engine: Engine, paths: Paths, problems: list[Problem]) -> dict[str, exp.Table]:
    relations: dict[str, exp.Table] = {}
    for source in defs.project.sources:
        if source.table:
            relations[source.name] = exp.to_table(source.table)
            continue
        try:
            relations[source.name] = engine.register_file_source(source.name, paths.resolve(source.path))
        except BigmlError:
            problems.append(
                defs.origin("source", source.name).problem(
                    "path",
                    f"source '{source.name}': no file matches {source.path}; "
                    "check the path (relative to the project) or generate the data",
                )
            )
    return relations


def _create_model(engine: Engine, model: SqlModel, signature: str | None) -> exp.Table:
    """Create a sql/ model in the engine; return the relation readers use."""
    if model.materialized == "table":
        table = engine.create_model_table(model.name, model.query, signature)
        engine.create_temp_view(model.relation, exp.select("*").from_(table.copy()))  # what ref() in other models reads
        return table
    engine.create_temp_view(model.relation, model.query)
    return model.relation


def data_signature(source: SourceSpec, paths: Paths) -> str | None:
    """The files a file source reads, with size and mtime; None for a database table (its changes cannot be seen)."""
    if source.table or "://" in str(source.path):
        return None
    files = []
    for file in sorted(glob.glob(str(paths.resolve(source.path)))):
        stat = os.stat(file)
        files.append([file, stat.st_size, stat.st_mtime_ns])
    return json.dumps(files)
