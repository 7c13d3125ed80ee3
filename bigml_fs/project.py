"""The Project facade: one object that owns a loaded project.

The CLI, the HTTP app, tests and notebooks all go through it:
``load -> validate -> compile -> training_set``. It opens the engine lazily,
registers sources and sql/ models there, and resolves the catalog once.
"""

from __future__ import annotations

import glob
import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlglot
from sqlglot import exp

from bigml_fs.catalog import Catalog, FeatureRef, build_catalog
from bigml_fs.compiler.sql_models import SqlModel, build_sql_models, model_signature
from bigml_fs.engines import Engine, connect
from bigml_fs.engines.base import SOURCE_SCHEMA
from bigml_fs.errors import BigmlError, DefinitionError, Problem, UsageError, did_you_mean
from bigml_fs.spec.loader import Definitions, load_definitions
from bigml_fs.training import spine as spine_io
from bigml_fs.training.training_set import build_training_set, compile_training_query

if TYPE_CHECKING:
    import pyarrow as pa

    from bigml_fs.spec.schema import SourceSpec

SpineLike = "str | Path | pa.Table | pd.DataFrame"


class Project:
    """A loaded bigml_fs project."""

    def __init__(self, definitions: Definitions, variables: dict[str, Any] | None = None, in_memory: bool = False):
        self.defs = definitions
        self.root = definitions.root
        self.variables = {**definitions.project.vars, **(variables or {})}
        self._in_memory = in_memory
        self._engine: Engine | None = None
        self._catalog: Catalog | None = None
        self._sql_models: dict[str, SqlModel] = {}

    @classmethod
    def load(cls, path: str | Path = ".", variables: dict[str, Any] | None = None, in_memory: bool = False) -> Project:
        """Load and shape-check the definitions under ``path``."""
        return cls(load_definitions(Path(path)), variables, in_memory)

    @property
    def spec(self):
        return self.defs.project

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = connect(self.defs.project, self.root, in_memory=self._in_memory)
        return self._engine

    def close(self) -> None:
        if self._engine is not None:
            self._engine.close()
            self._engine = None

    def __enter__(self) -> Project:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- definitions --------------------------------------------------------

    @property
    def catalog(self) -> Catalog:
        """Sources and sql models registered in the engine, views and models resolved."""
        if self._catalog is None:
            problems: list[Problem] = []
            self._catalog = self._resolve(problems)
            if problems:
                self._catalog = None
                raise DefinitionError(problems)
        return self._catalog

    def validate(self) -> Catalog:
        """Check every definition and SQL file; raise DefinitionError listing all problems."""
        return self.catalog

    def _resolve(self, problems: list[Problem]) -> Catalog:
        engine = self.engine
        dialect = self.defs.project.sql_dialect
        relations: dict[str, exp.Table] = {}
        source_sql: dict[str, str] = {}
        for source in self.defs.project.sources:
            origin = self.defs.origin("source", source.name)
            if source.table:
                relation = exp.to_table(source.table)
            else:
                path = Path(source.path)
                full = path if path.is_absolute() else self.root / path
                try:
                    relation = engine.register_file_source(source.name, full)
                except BigmlError:
                    problems.append(
                        origin.problem(
                            "path",
                            f"source '{source.name}': no file matches {source.path}; check the path (relative to the project) or generate the data",
                        )
                    )
                    continue
            relations[source.name] = relation
            source_sql[source.name] = relation.sql(dialect)
        for source in self.defs.project.sources:
            if source.name not in relations:
                source_sql.setdefault(source.name, exp.table_(source.name, db=SOURCE_SCHEMA).sql(dialect))
        self._sql_models = build_sql_models(self.defs.sql_files, source_sql, self.variables, dialect, problems)
        fingerprints: dict[str, str] = {}
        for name, model in self._sql_models.items():
            fingerprints[name] = model.fingerprint(fingerprints)
        data = {source.name: self._data_signature(source) for source in self.defs.project.sources}
        signatures: dict[str, str | None] = {}
        for name, model in self._sql_models.items():
            signatures[name] = model_signature(
                fingerprints[name], {s: data.get(s) for s in model.sources}, {r: signatures[r] for r in model.refs}
            )
            if any(s not in relations for s in model.sources):
                continue
            try:
                if model.materialized == "table":
                    table = engine.create_model_table(name, model.query, signatures[name])
                    engine.create_temp_view(
                        model.relation, exp.select("*").from_(table.copy())
                    )  # what ref() in other models reads
                else:
                    table = model.relation
                    engine.create_temp_view(model.relation, model.query)
            except BigmlError as exc:
                what = "build this model's table" if model.materialized == "table" else "create this model"
                problems.append(
                    Problem(model.display, None, "", f"the engine cannot {what}: {str(exc).splitlines()[0]}")
                )
                continue
            relations[name] = table
        return build_catalog(self.defs, engine, relations, problems, dialect, fingerprints)

    def _data_signature(self, source: SourceSpec) -> str | None:
        """The files a file source reads, with size and mtime; None for a database table (its changes cannot be seen)."""
        if source.table or "://" in str(source.path):
            return None
        path = Path(source.path)
        full = path if path.is_absolute() else self.root / path
        files = []
        for file in sorted(glob.glob(str(full))):
            stat = os.stat(file)
            files.append([file, stat.st_size, stat.st_mtime_ns])
        return json.dumps(files)

    @property
    def sql_models(self) -> dict[str, SqlModel]:
        self.catalog  # noqa: B018 - resolves the models
        return self._sql_models

    # --- compile ------------------------------------------------------------

    def compile_scoring(self, model: str, dialect: str | None = None) -> str:
        """In-warehouse scoring SQL of a registered model version (``MODEL`` or ``MODEL@V``) over its training-set query."""
        from bigml_fs.scoring.compile import scoring_sql

        return scoring_sql(self, model, dialect)

    def compile(self, name: str, dialect: str | None = None) -> str:
        """SQL of a sql model, a feature view (as of a spine) or a model's training set."""
        catalog = self.catalog
        dialect = dialect or self.engine.dialect
        if name in self.sql_models:
            return self.sql_models[name].sql(dialect)
        if name in catalog.views:
            refs = [FeatureRef(name, f.name) for f in catalog.views[name].spec.features]
            return self._training_sql(refs, dialect)
        if name in catalog.models:
            model = catalog.models[name]
            refs = catalog.expand(list(model.features), f"model '{name}'")
            return self._training_sql(refs, dialect)
        known = [*self.sql_models, *catalog.views, *catalog.models]
        raise UsageError(
            f"nothing named '{name}' to compile{did_you_mean(name, known)}; give a sql model, feature view or model name"
        )

    def compile_plan(self, refs: list[FeatureRef], dialect: str) -> tuple[Any, str]:
        """The training-set plan `compile` shows, over a spine of the views' keys and ``event_timestamp``; returns (plan, engine planned for).

        duckdb, postgres and spark each get the plan their engine runs; another
        dialect gets this engine's plan, to be transpiled.
        """
        from bigml_fs.compiler.features import ENGINES

        catalog = self.catalog
        columns: dict[str, str] = {}
        for ref in refs:
            view = catalog.views[ref.view]
            columns.update({k: view.columns[k] for k in view.keys})
        columns.update({"event_timestamp": "TIMESTAMP WITH TIME ZONE", "__row": "BIGINT", "__ts": "BIGINT"})
        planned_for = dialect if dialect in ENGINES else self.engine.dialect
        return compile_training_query(catalog, refs, columns, engine=planned_for), planned_for

    def _training_sql(self, refs: list[FeatureRef], dialect: str) -> str:
        plan, planned_for = self.compile_plan(refs, dialect)
        sql = sqlglot.transpile(plan.query.sql(planned_for), read=planned_for, write=dialect, pretty=True)[0]
        header = "-- point-in-time query over the spine relation __spine (its columns, __row = spine order, __ts = time in UTC microseconds)\n"
        if dialect != planned_for:
            header += f"-- planned for the {planned_for} engine and rendered as {dialect}; engine-specific steps (e.g. ASOF JOIN) need that engine's own plan\n"
        return header + sql

    # --- training sets ------------------------------------------------------

    def training_set(
        self,
        model: str | None = None,
        features: Iterable[str] | None = None,
        spine: SpineLike | None = None,
        timestamp: str | None = None,
        full_feature_names: bool = False,
        output: str | Path | None = None,
    ) -> pa.Table | int:
        """Point-in-time-correct features for each spine row.

        Give ``model`` (its labels are the spine unless ``spine`` is given) or
        ``features`` (``view:feature``/``view:*``) with a ``spine`` file, Arrow
        table or DataFrame. Returns Arrow, or writes ``output`` (Parquet) and
        returns its row count.
        """
        catalog = self.catalog
        if model is not None and features:
            raise UsageError("give either a model or --features, not both")
        if model is not None:
            if model not in catalog.models:
                raise UsageError(f"unknown model '{model}'{did_you_mean(model, catalog.models)}")
            spec = catalog.models[model]
            refs = catalog.expand(list(spec.features), f"model '{model}'")
            if spine is None:
                spine_io.load_spine_relation(self.engine, catalog.relations[spec.labels.source], spec.labels.timestamp)
                timestamp = spec.labels.timestamp
        else:
            if not features:
                raise UsageError("give a model name or --features view:feature,... with --spine FILE")
            refs = catalog.expand(list(features))
        if spine is not None:
            self._load_spine(spine, [k for ref in refs for k in catalog.views[ref.view].keys])
        elif model is None:
            raise UsageError("--features needs --spine FILE (Parquet or CSV with the join keys and a time column)")
        out = Path(output) if output is not None else None
        return build_training_set(self.engine, catalog, refs, timestamp, full_feature_names, out)

    def _load_spine(self, spine: SpineLike, key_columns: list[str]) -> None:
        if isinstance(spine, (str, Path)):  # a file: the engine reads it (DuckDB needs no pyarrow for it)
            spine_io.load_spine_file(self.engine, Path(spine), key_columns)
            return
        import pyarrow as pa  # an in-memory spine is Arrow or pandas: pyarrow is loaded already

        if type(spine).__module__.startswith("pandas"):  # a DataFrame; pandas is imported only when used
            spine = pa.Table.from_pandas(spine, preserve_index=False)
        if not isinstance(spine, pa.Table):
            raise UsageError(
                f"a spine is a file path, an Arrow table or a pandas DataFrame, not {type(spine).__name__}"
            )
        spine_io.load_spine_table(self.engine, spine)

    # --- state, materialize and online reads (bigml_fs/store) ---------------

    @property
    def state_dir(self) -> Path:
        """Where bigml_fs keeps what it writes (git-ignored): ``.bigml/`` beside project.yaml."""
        return self.root / ".bigml"

    def plan(self, views: Iterable[str] | None = None, end: Any = None) -> Any:
        """What ``materialize`` would add, recompute (and why) or drop, per view."""
        from bigml_fs.store.plan import plan

        return plan(self, views=list(views) if views else None, end=end)

    def materialize(
        self,
        views: Iterable[str] | None = None,
        start: Any = None,
        end: Any = None,
        full_refresh: bool = False,
        progress: Any = None,
    ) -> Any:
        """Compute feature tables as of ``end``, publish them, register them in Feast, load the online store."""
        from bigml_fs.store.materialize import materialize

        return materialize(
            self,
            views=list(views) if views else None,
            start=start,
            end=end,
            full_refresh=full_refresh,
            progress=progress,
        )

    def online_features(self, features: Iterable[str], entities: Any, full_feature_names: bool = False) -> Any:
        """Online values for entity rows (a dict of key -> list, Arrow or pandas), checked against ttl now."""
        from bigml_fs.store.online_read import online_features

        return online_features(self, list(features), entities, full_feature_names=full_feature_names)

    # --- models (bigml_fs/training, bigml_fs/scoring) -----------------------

    def train(self, model: str, end: Any = None, progress: Any = None) -> Any:
        """Training set, fit, evaluate and register a new version of ``model``."""
        from bigml_fs.training.train import train

        return train(self, model, end=end, progress=progress)

    def predict(
        self,
        model: str,
        spine: Any,
        output: str | Path | None = None,
        in_warehouse: bool = False,
        strict: bool = False,
        timestamp: str | None = None,
    ) -> Any:
        """Point-in-time features at each spine row, then the model's scores (``MODEL`` or ``MODEL@V``)."""
        from bigml_fs.scoring.predict import predict

        return predict(self, model, spine, output=output, in_warehouse=in_warehouse, strict=strict, timestamp=timestamp)

    def predict_online(self, model: str, entities: Any) -> Any:
        """Online features for entity rows, then the model's scores (what ``POST /predict/{model}`` returns)."""
        from bigml_fs.scoring.online import predict_online

        return predict_online(self, model, entities)
