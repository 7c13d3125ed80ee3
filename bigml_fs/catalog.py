"""Resolve definitions against each other and against the engine's schemas.

The catalog is the checked, ready-to-compile form of a project: every view
knows its source relation, key columns, time columns and column types; every
model's feature list is expanded. Resolving *is* validation: each broken
reference or missing column becomes a Problem with file, line and key.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError

from bigml_fs.core.digest import digest
from bigml_fs.core.types import logical_type
from bigml_fs.engines.base import Engine
from bigml_fs.errors import BigmlError, Problem, did_you_mean
from bigml_fs.spec.estimators import ESTIMATORS, METRICS, is_dotted_path
from bigml_fs.spec.loader import Definitions, Origin
from bigml_fs.spec.schema import FeatureSpec, FeatureViewSpec, ModelSpec

TIME_TYPES = ("TIMESTAMP", "DATE")
NUMERIC_AGGREGATIONS = ("sum", "avg", "stddev", "variance")
NON_NUMERIC = ("string", "binary")  # logical type families sum/avg/stddev/variance refuse


@dataclass(frozen=True)
class ResolvedView:
    """A feature view tied to its source relation and columns."""

    spec: FeatureViewSpec
    relation: exp.Table
    keys: tuple[str, ...]
    timestamp: str | None
    created: str | None
    columns: dict[str, str]
    fingerprint: str
    # feature name -> what decides its values (its spec, the view's source, keys, times, ttl, schema, upstream SQL),
    # so a model's stale check ignores features it does not use
    feature_fingerprints: dict[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def ttl(self) -> timedelta | None:
        return self.spec.ttl

    @property
    def latest_features(self) -> list[FeatureSpec]:
        return [f for f in self.spec.features if not f.is_window]

    @property
    def window_features(self) -> list[FeatureSpec]:
        return [f for f in self.spec.features if f.is_window]

    def feature(self, name: str) -> FeatureSpec:
        return next(f for f in self.spec.features if f.name == name)


@dataclass(frozen=True)
class FeatureRef:
    view: str
    feature: str

    def __str__(self) -> str:
        return f"{self.view}:{self.feature}"


@dataclass
class Catalog:
    views: dict[str, ResolvedView] = field(default_factory=dict)
    models: dict[str, ModelSpec] = field(default_factory=dict)
    relations: dict[str, exp.Table] = field(default_factory=dict)
    columns: dict[str, dict[str, str]] = field(default_factory=dict)
    sql_dialect: str = "duckdb"  # the dialect feature expressions are written in

    def expand(self, refs: list[str], where: str = "--features") -> list[FeatureRef]:
        """Turn ``view:feature``/``view:*`` strings into feature references."""
        out: list[FeatureRef] = []
        for text in refs:
            for item in [t.strip() for t in text.split(",") if t.strip()]:
                problem = self.expand_one(item, out)
                if problem:
                    raise BigmlError(f"{where}: {problem}")
        if not out:
            raise BigmlError(f"{where}: no features requested; give view:feature or view:*")
        return out

    def expand_one(self, item: str, out: list[FeatureRef]) -> str | None:
        """Append the references ``item`` names to ``out``; return a problem text or None."""
        view_name, sep, feature = item.partition(":")
        if not sep or not feature:
            return f"'{item}' is not view:feature or view:*"
        if view_name not in self.views:
            return f"unknown feature view '{view_name}'{did_you_mean(view_name, self.views)}"
        view = self.views[view_name]
        names = [f.name for f in view.spec.features]
        if feature == "*":
            out.extend(FeatureRef(view_name, n) for n in names if FeatureRef(view_name, n) not in out)
            return None
        if feature not in names:
            return f"view '{view_name}' has no feature '{feature}'{did_you_mean(feature, names)}"
        if FeatureRef(view_name, feature) not in out:
            out.append(FeatureRef(view_name, feature))
        return None


def is_time_type(dtype: str) -> bool:
    return dtype.upper().startswith(TIME_TYPES)


def build_catalog(
    defs: Definitions,
    engine: Engine,
    relations: dict[str, exp.Table],
    problems: list[Problem],
    dialect: str,
    upstream: dict[str, str] | None = None,
) -> Catalog:
    """Resolve views and models; append every problem found to ``problems``.

    ``upstream`` maps sql model names to their fingerprints, so a view's
    fingerprint changes when the SQL it reads from changes.
    """
    catalog = Catalog(relations=relations, sql_dialect=dialect)
    for name, relation in relations.items():
        try:
            catalog.columns[name] = engine.columns(exp.select("*").from_(relation).limit(0))
        except BigmlError as exc:
            kind = "source" if ("source", name) in defs.origins else "sql"
            problems.append(
                defs.origin(kind, name).problem("name" if kind == "source" else (), f"cannot read its columns: {exc}")
            )
    broken_sources = _check_sources(defs, catalog, problems)
    for view in defs.views.values():
        if view.source in broken_sources and not view.timestamp:
            continue  # the source's own mistake is reported at its line in project.yaml
        resolved = _resolve_view(defs, view, catalog, engine, problems, dialect, (upstream or {}).get(view.source, ""))
        if resolved:
            catalog.views[view.name] = resolved
    for model in defs.models.values():
        if _check_model(defs, model, catalog, problems):
            catalog.models[model.name] = model
    return catalog


def _check_sources(defs: Definitions, catalog: Catalog, problems: list[Problem]) -> set[str]:
    """A source's declared time columns must exist and hold times, whether or not a view uses it."""
    broken: set[str] = set()
    for source in defs.project.sources:
        columns = catalog.columns.get(source.name)
        if columns is None:
            continue
        origin = defs.origin("source", source.name)
        for key in ("timestamp", "created_timestamp"):
            column = getattr(source, key)
            if column is None:
                continue
            if column not in columns:
                problems.append(
                    origin.problem(
                        key,
                        f"source '{source.name}' has no column '{column}'{did_you_mean(column, columns)}; its columns: "
                        f"{', '.join(columns)}",
                    )
                )
                broken.add(source.name)
            elif not is_time_type(columns[column]):
                problems.append(
                    origin.problem(
                        key,
                        f"column '{column}' of source '{source.name}' is {columns[column]}, not a timestamp or date; "
                        "cast it in a sql/ model",
                    )
                )
                broken.add(source.name)
    return broken


def _resolve_view(
    defs: Definitions,
    view: FeatureViewSpec,
    catalog: Catalog,
    engine: Engine,
    problems: list[Problem],
    dialect: str,
    upstream: str,
) -> ResolvedView | None:
    origin = defs.origin("view", view.name)
    before = len(problems)
    entities = {e.name: e for e in defs.project.entities}
    keys: list[str] = []
    for i, ref in enumerate(view.entity_refs):
        entity = entities.get(ref.name)
        if entity is None:
            problems.append(
                origin.problem(
                    ("entities", i),
                    f"unknown entity '{ref.name}'{did_you_mean(ref.name, entities)}; declare it under 'entities:' in "
                    "project.yaml",
                )
            )
            continue
        for key in ref.keys:
            if key not in entity.join_keys:
                problems.append(
                    origin.problem(
                        ("entities", i, "keys", key),
                        f"entity '{ref.name}' has no join key '{key}'{did_you_mean(key, entity.join_keys)}",
                    )
                )
        for key in entity.join_keys:
            column = ref.keys.get(key, key)
            if column in keys:
                problems.append(
                    origin.problem(
                        ("entities", i),
                        f"key column '{column}' is used twice; map one entity's keys to other columns with keys: "
                        f"{{...}}",
                    )
                )
            keys.append(column)
    seen: set[str] = set()
    for i, feature in enumerate(view.features):
        if feature.name in seen:
            problems.append(
                origin.problem(
                    ("features", i, "name"), f"duplicate feature name '{feature.name}' in view '{view.name}'"
                )
            )
        seen.add(feature.name)

    source_spec = next((s for s in defs.project.sources if s.name == view.source), None)
    is_sql = view.source in defs.sql_files
    if source_spec is None and not is_sql:
        candidates = [s.name for s in defs.project.sources] + list(defs.sql_files)
        problems.append(
            origin.problem(
                "source",
                f"unknown source '{view.source}'{did_you_mean(view.source, candidates)}; name a source in project.yaml "
                "or a sql/ model",
            )
        )
        return None
    if source_spec is not None:
        timestamp = view.timestamp or source_spec.timestamp
        created = view.created_timestamp or source_spec.created_timestamp
    else:
        timestamp, created = view.timestamp, view.created_timestamp
        if timestamp is None:
            problems.append(
                origin.problem(
                    "timestamp",
                    f"a view over the sql model '{view.source}' needs 'timestamp:' (its event time column), or "
                    "'timestamp: none' for a static table",
                )
            )
    if timestamp == "none":
        timestamp, created = None, None
    if timestamp is None and not (is_sql and view.timestamp is None):  # a missing timestamp: reported above, once
        _check_static(origin, view, problems)

    columns = catalog.columns.get(view.source)
    if columns is None:
        return None
    for col, key in [(c, ("entities",)) for c in keys] + [
        (timestamp, ("timestamp",)),
        (created, ("created_timestamp",)),
    ]:
        if col is not None and col not in columns:
            problems.append(
                origin.problem(key, f"source '{view.source}' has no column '{col}'{did_you_mean(col, columns)}")
            )
    for col, key in ((timestamp, "timestamp"), (created, "created_timestamp")):
        if col in columns and not is_time_type(columns[col]):
            problems.append(
                origin.problem(
                    key,
                    f"column '{col}' of '{view.source}' is {columns[col]}, not a timestamp or date; cast it in a sql/ "
                    "model",
                )
            )
    relation = catalog.relations[view.source]
    for i, feature in enumerate(view.features):
        for attr in ("expr", "where"):
            text = feature.value_sql if attr == "expr" else feature.where
            if text is None or (attr == "expr" and feature.agg == "count" and feature.expr is None):
                continue
            message = _probe_expression(engine, relation, text, dialect, columns, view.source)
            if message:
                problems.append(
                    origin.problem(("features", i, attr if getattr(feature, attr) is not None else "name"), message)
                )
            elif attr == "expr" and feature.agg in NUMERIC_AGGREGATIONS:
                message = _numeric_aggregation(engine, relation, feature, dialect)
                if message:
                    problems.append(origin.problem(("features", i, "agg"), message))
    for i, check in enumerate(view.checks):
        for col in _check_columns(check):
            if col not in columns:
                problems.append(
                    origin.problem(
                        ("checks", i),
                        f"check names column '{col}' that '{view.source}' does not have{did_you_mean(col, columns)}",
                    )
                )
    if len(problems) > before:
        return None
    fingerprint = _fingerprint(view, columns, upstream)
    features = _feature_fingerprints(view, tuple(keys), timestamp, created, columns, upstream)
    return ResolvedView(view, relation, tuple(keys), timestamp, created, columns, fingerprint, features)


def _check_static(origin: Origin, view: FeatureViewSpec, problems: list[Problem]) -> None:
    if view.ttl is not None:
        problems.append(
            origin.problem(
                "ttl", f"view '{view.name}' is over a static source (no timestamp), so it cannot have a ttl; remove it"
            )
        )
    for i, feature in enumerate(view.features):
        if feature.is_window:
            problems.append(
                origin.problem(
                    ("features", i, "agg"),
                    f"feature '{feature.name}': a static source has no event time, so window aggregates are not "
                    "possible",
                )
            )


def _probe_expression(
    engine: Engine, relation: exp.Table, text: str, dialect: str, columns: dict[str, str], source: str
) -> str | None:
    try:
        parsed = sqlglot.parse_one(text, read=dialect)
    except ParseError as exc:
        first = exc.errors[0] if exc.errors else {}
        return f"invalid SQL expression {text!r}: {first.get('description', exc)}"
    lowered = {c.lower() for c in columns}
    for column in parsed.find_all(exp.Column):
        name = column.name
        if name and not column.table and name.lower() not in lowered:
            return (
                f"expression {text!r} names column '{name}' that '{source}' does not "
                f"have{did_you_mean(name, columns)}; its columns: {', '.join(columns)}"
            )
    try:
        engine.columns(exp.select(parsed).from_(relation).limit(0))
    except BigmlError as exc:
        return f"expression {text!r} does not compile against the source: {str(exc).splitlines()[0]}"
    return None


def _numeric_aggregation(engine: Engine, relation: exp.Table, feature: FeatureSpec, dialect: str) -> str | None:
    """``sum``/``avg``/``stddev``/``variance`` need numbers: a problem text when the expression is text or bytes."""
    try:
        value = exp.alias_(sqlglot.parse_one(feature.value_sql, read=dialect), "value")
        dtype = next(iter(engine.columns(exp.select(value).from_(relation).limit(0)).values()))
    except (BigmlError, ParseError, StopIteration):
        return None  # the expression's own problem is reported by _probe_expression
    if logical_type(dtype) not in NON_NUMERIC:
        return None
    return (
        f"feature '{feature.name}': 'agg: {feature.agg}' needs numbers, but {feature.value_sql!r} is {dtype}; "
        "aggregate a numeric expression, or use count, count_distinct, min, max, first or last"
    )


def _check_columns(check: object) -> list[str]:
    cols: list[str] = []
    for value in (getattr(check, "not_null", None), getattr(check, "unique", None)):
        cols.extend(value or [])
    for value in (getattr(check, "range", None), getattr(check, "accepted_values", None)):
        if value is not None:
            cols.append(value.column)
    return cols


def _check_model(defs: Definitions, model: ModelSpec, catalog: Catalog, problems: list[Problem]) -> bool:
    origin = defs.origin("model", model.name)
    before = len(problems)
    known = ESTIMATORS[model.task]
    if model.estimator not in known and not is_dotted_path(model.estimator):
        problems.append(
            origin.problem(
                "estimator",
                f"unknown {model.task} estimator '{model.estimator}'{did_you_mean(model.estimator, known)}; use one of "
                f"{', '.join(known)} or a dotted path like sklearn.ensemble.ExtraTreesClassifier",
            )
        )
    for i, metric in enumerate(model.metrics):
        if metric not in METRICS[model.task]:
            problems.append(
                origin.problem(
                    ("metrics", i),
                    f"unknown {model.task} metric '{metric}'{did_you_mean(metric, METRICS[model.task])}; use one of "
                    f"{', '.join(METRICS[model.task])}",
                )
            )
    labels = model.labels
    columns = catalog.columns.get(labels.source)
    defined = labels.source in defs.sql_files or ("source", labels.source) in defs.origins
    if labels.source not in catalog.relations and not defined:  # a defined but broken one is reported at its file
        candidates = list(catalog.relations)
        problems.append(
            origin.problem(
                ("labels", "source"),
                f"unknown labels source '{labels.source}'{did_you_mean(labels.source, candidates)}",
            )
        )
    elif columns is not None:
        for key in ("timestamp", "target"):
            col = getattr(labels, key)
            if col and col not in columns:
                problems.append(
                    origin.problem(
                        ("labels", key), f"'{labels.source}' has no column '{col}'{did_you_mean(col, columns)}"
                    )
                )
    for i, text in enumerate(model.features):
        found: list[FeatureRef] = []
        problem = catalog.expand_one(text, found) if ":" in text else f"'{text}' is not view:feature or view:*"
        if problem and text.partition(":")[0] in defs.views and text.partition(":")[0] not in catalog.views:
            continue  # the view itself is broken and reported already
        if problem:
            problems.append(origin.problem(("features", i), problem))
            continue
        view = catalog.views[found[0].view]
        missing = [k for k in view.keys if columns is not None and k not in columns]
        if missing:
            problems.append(
                origin.problem(
                    ("features", i),
                    f"labels '{labels.source}' lack the join key(s) {', '.join(missing)} of view '{view.name}'",
                )
            )
    return len(problems) == before


def _fingerprint(view: FeatureViewSpec, columns: dict[str, str], upstream: str) -> str:
    """Definition, source schema (as logical types) and upstream SQL (with its vars) in one hash."""
    logical = {name: logical_type(dtype) for name, dtype in columns.items()}
    return digest([view.model_dump(mode="json"), logical, upstream])


def _feature_fingerprints(
    view: FeatureViewSpec,
    keys: tuple[str, ...],
    timestamp: str | None,
    created: str | None,
    columns: dict[str, str],
    upstream: str,
) -> dict[str, str]:
    """Per feature: its own spec (not its description) and what the view gives every feature, not the others.

    The view's part is its source, entities, resolved key and time columns, ttl, source schema (as logical
    types) and upstream SQL; the view's ``fingerprint`` is unchanged by this.
    """
    logical = {name: logical_type(dtype) for name, dtype in columns.items()}
    shared = {
        "source": view.source,
        "entities": [e.model_dump(mode="json") for e in view.entity_refs],
        "keys": list(keys),
        "timestamp": timestamp,
        "created_timestamp": created,
        "ttl": view.model_dump(mode="json", include={"ttl"})["ttl"],
        "columns": logical,
        "upstream": upstream,
    }
    return {f.name: digest([f.model_dump(mode="json", exclude={"description"}), shared]) for f in view.features}
