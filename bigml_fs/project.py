"""The Project facade: one object that owns a loaded project, one method per user action.

The CLI, the HTTP app, tests and notebooks all go through it. It loads the
definitions, builds the typed ``Workspace`` (engine, catalog, paths, settings;
``workspace.py``) once, lazily, and hands it — or the narrower ``Paths`` — to
store/, training/ and scoring/, which never import this module. It keeps the
long-lived handles of a serving process: one online reader (one store
connection, the published state) and the loaded model versions.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bigml_fs.catalog import Catalog, FeatureRef
from bigml_fs.compiler.explain import training_plan, training_sql
from bigml_fs.compiler.sql_models import SqlModel
from bigml_fs.compiler.training_query import TrainingQuery
from bigml_fs.engines import Engine, connect
from bigml_fs.engines.dialects import Dialect, dialect_for
from bigml_fs.errors import DefinitionError, UsageError, did_you_mean
from bigml_fs.spec.loader import Definitions, load_definitions
from bigml_fs.spec.schema import ProjectSpec
from bigml_fs.training.training_set import SpineLike
from bigml_fs.workspace import Paths, Workspace, build_workspace

if TYPE_CHECKING:
    import pyarrow as pa

    from bigml_fs.scoring.online import ModelCache
    from bigml_fs.store.materialize import MaterializeReport
    from bigml_fs.store.online_read import OnlineReader, OnlineResponse
    from bigml_fs.store.plan import Plan
    from bigml_fs.store.state import ViewState
    from bigml_fs.training.registry import Version
    from bigml_fs.training.train import TrainResult


class Project:
    """A loaded bigml_fs project."""

    def __init__(self, definitions: Definitions, variables: dict[str, Any] | None = None, in_memory: bool = False):
        self.defs = definitions
        self.root = definitions.root
        self.variables = {**definitions.project.vars, **(variables or {})}
        self.paths = Paths(self.root, definitions.project)
        self._in_memory = in_memory
        self._engine: Engine | None = None
        self._workspace: Workspace | None = None
        self._online: OnlineReader | None = None
        self._models: ModelCache | None = None

    @classmethod
    def load(cls, path: str | Path = ".", variables: dict[str, Any] | None = None, in_memory: bool = False) -> Project:
        """Load and shape-check the definitions under ``path``."""
        return cls(load_definitions(Path(path)), variables, in_memory)

    @property
    def spec(self) -> ProjectSpec:
        return self.defs.project

    @property
    def state_dir(self) -> Path:
        """Where bigml_fs keeps what it writes (git-ignored): ``.bigml/`` beside project.yaml."""
        return self.paths.state_dir

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = connect(self.defs.project, self.root, in_memory=self._in_memory)
        return self._engine

    def close(self) -> None:
        if self._online is not None:
            self._online.close()
            self._online = None
        if self._engine is not None:
            self._engine.close()
            self._engine = None
            self._workspace = None

    def __enter__(self) -> Project:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- definitions --------------------------------------------------------

    @property
    def workspace(self) -> Workspace:
        """Sources and sql models registered in the engine, views and models resolved (built once)."""
        if self._workspace is None:
            self._workspace = build_workspace(self.defs, self.variables, self.engine, self.paths)
        return self._workspace

    @property
    def catalog(self) -> Catalog:
        return self.workspace.catalog

    @property
    def sql_models(self) -> dict[str, SqlModel]:
        return self.workspace.sql_models

    def validate(self) -> Catalog:
        """Check every definition and SQL file; raise DefinitionError listing all problems.

        Besides the catalog's checks, each model's ``params`` (and tuning space keys) must be parameters of its
        estimator, as training would find later.
        """
        from bigml_fs.training.estimators import unknown_params

        params = [
            self.defs.origin("model", model.name).problem(path, text)
            for model in self.defs.models.values()
            for path, text in unknown_params(model)
        ]
        try:
            catalog = self.catalog
        except DefinitionError as exc:
            if params:
                raise DefinitionError([*exc.problems, *params]) from None
            raise
        if params:
            raise DefinitionError(params)
        return catalog

    # --- compile ------------------------------------------------------------

    def compile_scoring(self, model: str, dialect: str | None = None) -> str:
        """In-warehouse scoring SQL of a registered model version (``MODEL`` or ``MODEL@V``) over
        its training-set query.
        """
        from bigml_fs.scoring.compile import scoring_sql

        return scoring_sql(self.workspace, model, dialect)

    def compile(self, name: str, dialect: str | None = None) -> str:
        """SQL of a sql model, a feature view (as of a spine) or a model's training set, in ``dialect``'s own plan."""
        catalog = self.catalog
        if name in self.sql_models:  # a plain transpile: any SQLGlot dialect
            return self.sql_models[name].sql(sqlglot_dialect(dialect) if dialect else self.engine.dialect)
        target = dialect_for(dialect) if dialect else self.engine.sql_dialect  # a plan: a dialect object bigml_fs knows
        if name in catalog.views:
            refs = [FeatureRef(name, f.name) for f in catalog.views[name].spec.features]
            return training_sql(catalog, refs, target)
        if name in catalog.models:
            model = catalog.models[name]
            refs = catalog.expand(list(model.features), f"model '{name}'")
            return training_sql(catalog, refs, target)
        known = [*self.sql_models, *catalog.views, *catalog.models]
        raise UsageError(
            f"nothing named '{name}' to compile{did_you_mean(name, known)}; give a sql model, feature view or model "
            "name"
        )

    def compile_plan(self, refs: list[FeatureRef], dialect: Dialect) -> TrainingQuery:
        """The training-set plan `compile` shows for ``refs`` in ``dialect`` (``compiler.explain.training_plan``)."""
        return training_plan(self.catalog, refs, dialect)

    # --- training sets ------------------------------------------------------

    def training_set(
        self,
        model: str | None = None,
        features: Iterable[str] | None = None,
        spine: SpineLike | None = None,
        timestamp: str | None = None,
        full_feature_names: bool = False,
        output: str | Path | None = None,
        strict: bool = False,
    ) -> pa.Table | int:
        """Point-in-time-correct features for each spine row.

        Give ``model`` (its labels are the spine unless ``spine`` is given) or
        ``features`` (``view:feature``/``view:*``) with a ``spine`` file, Arrow
        table or DataFrame. Returns Arrow, or writes ``output`` (Parquet) and
        returns its row count. A model feature that can read its own label
        warns; ``strict`` raises a DataError instead.
        """
        from bigml_fs.training.training_set import training_set

        out = Path(output) if output is not None else None
        features = list(features or [])
        return training_set(self.workspace, model, features, spine, timestamp, full_feature_names, out, strict)

    # --- materialize and online reads (bigml_fs/store) ----------------------

    def plan(
        self, views: Iterable[str] | None = None, end: Any = None, full_refresh: bool = False, start: Any = None
    ) -> Plan:
        """What ``materialize`` with the same arguments would add, recompute (and why) or drop, per view."""
        from bigml_fs.store.plan import plan

        return plan(self.workspace, list(views) if views else None, end=end, full_refresh=full_refresh, start=start)

    def materialize(
        self,
        views: Iterable[str] | None = None,
        start: Any = None,
        end: Any = None,
        full_refresh: bool = False,
        progress: Any = None,
    ) -> MaterializeReport:
        """Compute feature tables as of ``end``, publish them, register them in Feast, load the online store."""
        from bigml_fs.store.materialize import materialize

        views = list(views) if views else None
        report = materialize(self.workspace, views, start=start, end=end, full_refresh=full_refresh, progress=progress)
        if self._online is not None:
            self._online.reload()  # this process's reader sees the new run at once
        return report

    def view_states(self) -> dict[str, ViewState]:
        """Per view, what the last published materialize left (never opens the engine)."""
        from bigml_fs.store.state import view_states

        return view_states(self.paths)

    @property
    def online(self) -> OnlineReader:
        """The online reader: one store connection and the published state, kept for the project's life."""
        if self._online is None:
            from bigml_fs.store.online_read import OnlineReader

            self._online = OnlineReader(self.workspace)
        return self._online

    def online_features(
        self, features: Iterable[str], entities: Any, full_feature_names: bool = False
    ) -> OnlineResponse:
        """Online values for entity rows (a dict of key -> list, Arrow or pandas), checked against ttl now."""
        return self.online.read(list(features), entities, full_feature_names=full_feature_names)

    # --- models (bigml_fs/training, bigml_fs/scoring) -----------------------

    def train(self, model: str, end: Any = None, progress: Any = None, strict: bool = False) -> TrainResult:
        """Training set, fit, evaluate and register a new version of ``model``.

        A feature that can read its own label warns; ``strict`` raises a DataError instead.
        """
        from bigml_fs.training.train import train

        return train(self.workspace, model, end=end, progress=progress, strict=strict)

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

        return predict(
            self.workspace, model, spine, output, in_warehouse=in_warehouse, strict=strict, timestamp=timestamp
        )

    def predict_online(self, model: str, entities: Any) -> dict[str, Any]:
        """Online features for entity rows, then the model's scores (what ``POST /predict/{model}`` returns)."""
        from bigml_fs.scoring.online import ModelCache, predict_online

        if self._models is None:
            self._models = ModelCache(self.paths)
        return predict_online(self.online, self._models, model, entities)

    def model_names(self) -> list[str]:
        """Models with at least one registered version."""
        from bigml_fs.training import registry

        return registry.model_names(self.paths.state_dir)

    def model_versions(self, name: str) -> list[Version]:
        from bigml_fs.training import registry

        return registry.versions(self.paths.state_dir, name)

    def model_version(self, ref: str) -> Version:
        """``MODEL`` (promoted, else latest) or ``MODEL@V``."""
        from bigml_fs.training import registry

        return registry.resolve(self.paths.state_dir, ref)

    def promoted_version(self, name: str) -> int | None:
        """The version number promoted for ``name``, or None (the latest is used)."""
        from bigml_fs.training import registry

        return registry.promoted(self.paths.state_dir, name)

    def promote(self, ref: str) -> Version:
        """Make ``MODEL@V`` the version predict and serve use."""
        from bigml_fs.training import registry

        return registry.promote(self.paths.state_dir, ref)


# What the CLI and the HTTP app need besides the facade, importable from here so they never reach below it;
# loaded on first use (PEP 562) so that importing the facade stays cheap (no pyarrow for a DuckDB training set).
_FORWARDED = {
    "MaterializeFailed": "bigml_fs.store.materialize",
    "entities_from_file": "bigml_fs.store.online.entities",
    "entities_from_pairs": "bigml_fs.store.online.entities",
}


def __getattr__(name: str) -> Any:
    module = _FORWARDED.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)


def sqlglot_dialect(name: str) -> str:
    """``name`` if SQLGlot knows the dialect, else a usage error listing them."""
    from sqlglot.dialects.dialect import Dialect as SqlglotDialect

    try:
        SqlglotDialect.get_or_raise(name)
    except ValueError:
        known = sorted(d for d in SqlglotDialect.classes if d)
        raise UsageError(f"--dialect {name!r}: SQLGlot has no such dialect{did_you_mean(name, known)}") from None
    return name
