"""What the HTTP app asks of a project: online features, predictions, health.

``ProjectBackend`` does it over a loaded ``Project``; the app depends only on
the ``Backend`` protocol. Everything costly — the catalog, the online reader
with its one store connection and the published state, the key types, the
served model versions — is prepared once at start-up so a request only reads
the store.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Protocol

from bigml_fs.errors import BigmlError, UsageError, did_you_mean
from bigml_fs.serving.entities import entity_problems, key_kinds

if TYPE_CHECKING:
    from bigml_fs.catalog import Catalog
    from bigml_fs.spec.schema import ModelSpec, ProjectSpec
    from bigml_fs.store.online_read import OnlineReader

log = logging.getLogger(__name__)


class UnknownModelError(BigmlError):
    """``/predict/{model}`` names a model the project does not define (HTTP 404)."""


UnknownModel = UnknownModelError  # the former name


class Backend(Protocol):
    def features(
        self, features: list[str], feature_service: str | None, entities: dict[str, list[Any]], full_feature_names: bool
    ) -> dict[str, Any]:
        """Feast feature-server JSON for the entity rows."""

    def predict(self, model: str, entities: dict[str, list[Any]]) -> dict[str, Any]:
        """Online features and the model's scores, JSON-able."""

    def health(self) -> tuple[bool, dict[str, Any]]:
        """(store reachable, details to show)."""

    def entity_problems(self, entities: dict[str, list[Any]]) -> list[dict[str, Any]]:
        """422 details for badly typed entity values ([] when fine)."""


class ServedProject(Protocol):
    """What the server needs of a project: the part of the ``Project`` facade it calls, nothing more."""

    @property
    def spec(self) -> ProjectSpec: ...

    @property
    def catalog(self) -> Catalog: ...

    @property
    def online(self) -> OnlineReader: ...

    def online_features(self, features: list[str], entities: Any, full_feature_names: bool = False) -> Any: ...

    def predict_online(self, model: str, entities: Any) -> dict[str, Any]: ...

    def view_states(self) -> dict[str, Any]: ...

    def close(self) -> None: ...


class ProjectBackend:
    """The backend over a real project: its catalog, online store and model registry."""

    def __init__(self, project: ServedProject):
        self.project = project
        catalog = project.catalog  # resolve definitions once, at start-up (raises DefinitionError)
        self._models = dict(catalog.models)
        self._kinds = key_kinds(catalog)
        self._join_keys = {key for view in catalog.views.values() for key in view.keys}
        self._warm_up(catalog)

    def _warm_up(self, catalog: Catalog) -> None:
        """Connect and run one read (a null key: nothing found) so the first request pays no lazy imports."""
        try:
            self.project.online.store.ping()
        except BigmlError as exc:  # an unreachable store is reported by /health, not fatal at start
            log.warning("online store not reachable at start-up: %s", exc)
            return
        view = next(iter(catalog.views.values()), None)
        try:
            if view is not None:
                self.project.online_features(
                    [f"{view.name}:{view.spec.features[0].name}"], {key: [None] for key in view.keys}
                )
        except Exception as exc:  # a warm-up only: requests report their own errors
            log.warning("warm-up read failed: %s", exc)
        for name, spec in self._models.items():
            self._load_model(catalog, name, spec)

    def _load_model(self, catalog: Catalog, name: str, spec: ModelSpec) -> None:
        """Score one empty row now, so the served version is loaded before the first request.

        Loading a version (skops, scikit-learn imports) takes seconds, and a request
        blocks the server while it runs. Models never trained are skipped quietly;
        a new version trained later is loaded by its first request.
        """
        try:
            keys = dict.fromkeys(
                key for ref in catalog.expand(list(spec.features)) for key in catalog.views[ref.view].keys
            )
            self.project.predict_online(name, {key: [None] for key in keys})
            log.info("model %s loaded", name)
        except BigmlError as exc:
            log.debug("model %s not loaded at start-up: %s", name, exc)
        except Exception as exc:  # a warm-up only: its request will report the error
            log.warning("model %s could not be loaded at start-up: %s", name, exc)

    # --- features -------------------------------------------------------

    def features(
        self, features: list[str], feature_service: str | None, entities: dict[str, list[Any]], full_feature_names: bool
    ) -> dict[str, Any]:
        if feature_service is not None:
            if features:
                raise UsageError("give either 'features' or 'feature_service', not both")
            features = self._service_features(feature_service)
        elif not features:
            raise UsageError(
                "no features requested: give 'features' (view:feature or view:*) or 'feature_service' (a model name)"
            )
        else:
            # a mistake is named after the request field, not the CLI option
            self.project.catalog.expand(features, where="features")
        self._check_keys(features, entities)
        return self.project.online_features(features, entities, full_feature_names=full_feature_names).to_dict()

    def _service_features(self, name: str) -> list[str]:
        """A feature service is a model's feature list (the Feast repo's services are named after models)."""
        if name not in self._models:
            raise UsageError(
                f"unknown feature_service '{name}'{did_you_mean(name, self._models)}; "
                f"a feature service is a model name: {', '.join(sorted(self._models)) or '(none defined)'}"
            )
        return list(self._models[name].features)

    def entity_problems(self, entities: dict[str, list[Any]]) -> list[dict[str, Any]]:
        return entity_problems(entities, self._kinds)

    def _check_keys(self, features: list[str], entities: dict[str, list[Any]]) -> None:
        """Refuse entities lacking a join key ``features`` need, before the store is read.

        A did-you-mean names only a given key that is no join key of the project:
        a given key that is itself valid (``customer_id`` when ``card_id`` is
        missing) is not a misspelling of the missing one.
        """
        catalog = self.project.catalog
        needed = dict.fromkeys(key for ref in catalog.expand(list(features)) for key in catalog.views[ref.view].keys)
        missing = [key for key in needed if key not in entities]
        if not missing:
            return
        strays = [key for key in entities if key not in self._join_keys]
        hints = "".join(did_you_mean(key, strays) for key in missing)
        raise UsageError(
            f"entities lack the join key(s) {', '.join(missing)}{hints}; the features need {', '.join(needed)}; "
            f"given: {', '.join(entities) or 'none'}"
        )

    # --- predictions ----------------------------------------------------

    def predict(self, model: str, entities: dict[str, list[Any]]) -> dict[str, Any]:
        name = model.partition("@")[0]
        if name not in self._models:
            known = sorted(self._models)
            raise UnknownModelError(
                f"unknown model '{name}'{did_you_mean(name, known)}; models: {', '.join(known) or '(none defined)'}"
            )
        return self.project.predict_online(model, entities)

    # --- health ---------------------------------------------------------

    def health(self) -> tuple[bool, dict[str, Any]]:
        spec = self.project.spec.online_store
        store: dict[str, Any] = {"type": spec.type, "reachable": True}
        try:
            self.project.online.store.ping()
        except BigmlError as exc:
            store.update(reachable=False, error=str(exc))
        views: dict[str, Any] = {}
        try:
            shown = ("end", "watermark", "finished_at", "rows", "online_rows")
            views = {name: {k: getattr(state, k) for k in shown} for name, state in self.project.view_states().items()}
        except (OSError, ValueError) as exc:  # an unreadable state file is reported, not fatal
            log.warning("cannot read materialize state: %s", exc)
            views = {}
        never = sorted(set(self.project.catalog.views) - set(views))
        return store["reachable"], {"store": store, "views": views, "never_materialized": never}

    def close(self) -> None:
        self.project.close()  # closes the online reader's store connection too
