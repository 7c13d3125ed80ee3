"""Build point-in-time-correct training sets in the engine.

Spine in, one row per spine row out, in the spine's order, with the spine's
columns unchanged and one column per requested feature. The heavy lifting is
one SQL query (``compiler/training_query.py``); this module loads the spine,
checks the inputs, runs the query and reports ambiguous ties.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypeAlias

from sqlglot import exp

from bigml_fs.catalog import Catalog, FeatureRef, ResolvedView
from bigml_fs.compiler.explain import header, training_plan
from bigml_fs.compiler.probes import probed_view
from bigml_fs.compiler.sqlparts import ROW, col
from bigml_fs.compiler.training_query import TrainingQuery, output_names
from bigml_fs.core.timeutil import iso
from bigml_fs.engines.base import Engine
from bigml_fs.engines.dialects import Dialect
from bigml_fs.errors import AmbiguousTie, DataError, UsageError, did_you_mean
from bigml_fs.training import spine as spine_io
from bigml_fs.training.leakage import check_label_leakage

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

    from bigml_fs.workspace import Workspace

log = logging.getLogger("bigml_fs")
RESULT = "__training_set"
SpineLike: TypeAlias = "str | Path | pa.Table | pd.DataFrame"


@dataclass(frozen=True)
class TrainingSet:
    """What ``build_training_set`` ran and produced: the Arrow table (or rows written) and the plan."""

    data: pa.Table | int
    plan: TrainingQuery

    def sql(self, dialect: Dialect) -> str:
        """The query that ran, in ``dialect`` (the engine's), with ``compile``'s header (what ``__spine`` is)."""
        return header(dialect) + self.plan.query.sql(dialect.name, pretty=True)


def training_set(
    ws: Workspace,
    model: str | None,
    features: list[str],
    spine: SpineLike | None,
    timestamp: str | None,
    full_feature_names: bool,
    output: Path | None,
    strict: bool = False,
) -> pa.Table | int:
    """Point-in-time-correct features for each spine row (``Project.training_set``).

    ``model``: its features, and its labels (every column) as the spine unless
    ``spine`` is given; else ``features`` (``view:feature``/``view:*``) over
    ``spine``. Returns Arrow, or writes ``output`` (Parquet) and returns its row count.
    Over a model's labels, a feature that can read the label warns (``strict``: a DataError; ``leakage.py``).
    """
    catalog = ws.catalog
    if model is not None and features:
        raise UsageError("give either a model or --features, not both")
    if model is not None:
        if model not in catalog.models:
            raise UsageError(f"unknown model '{model}'{did_you_mean(model, catalog.models)}")
        spec = catalog.models[model]
        refs = catalog.expand(list(spec.features), f"model '{model}'")
        if spine is None:
            check_label_leakage(catalog, spec, refs, strict)
            spine_io.load_labels_spine(ws.engine, catalog, spec)
            timestamp = spec.labels.timestamp
    else:
        if not features:
            raise UsageError("give a model name or --features view:feature,... with --spine FILE")
        refs = catalog.expand(list(features))
    if spine is not None:
        load_spine(ws.engine, spine, [k for ref in refs for k in catalog.views[ref.view].keys])
    elif model is None:
        raise UsageError("--features needs --spine FILE (Parquet or CSV with the join keys and a time column)")
    return build_training_set(ws.engine, catalog, refs, timestamp, full_feature_names, output).data


def load_spine(engine: Engine, spine: SpineLike, key_columns: list[str]) -> None:
    """A spine file (read by the engine), Arrow table or pandas DataFrame, loaded with its row order."""
    if isinstance(spine, (str, Path)):  # a file: the engine reads it (DuckDB needs no pyarrow for it)
        spine_io.load_spine_file(engine, Path(spine), key_columns)
        return
    import pyarrow as pa  # an in-memory spine is Arrow or pandas: pyarrow is loaded already

    if type(spine).__module__.startswith("pandas"):  # a DataFrame; pandas is imported only when used
        spine = pa.Table.from_pandas(spine, preserve_index=False)
    if not isinstance(spine, pa.Table):
        raise UsageError(f"a spine is a file path, an Arrow table or a pandas DataFrame, not {type(spine).__name__}")
    spine_io.load_spine_table(engine, spine)


def build_training_set(
    engine: Engine,
    catalog: Catalog,
    refs: list[FeatureRef],
    timestamp: str | None,
    full_feature_names: bool = False,
    output: Path | None = None,
) -> TrainingSet:
    """Run the training set over the spine loaded in ``__spine_raw``.

    Its ``data`` is the Arrow table, or with ``output`` the row count of the
    Parquet file written in the engine; its ``plan`` is the query that ran.
    """
    views = {r.view: catalog.views[r.view] for r in refs}
    required = {name: list(v.keys) for name, v in views.items()}
    spine_columns = spine_io.prepare_spine(engine, timestamp, required)
    key_types = {(k, v.columns[k]) for v in views.values() for k in v.keys}
    spine_io.check_key_casts(engine, spine_columns, key_types)
    user_columns = [c for c in spine_columns if c not in (ROW, "__ts")]
    for out in output_names([(r.view, r.feature) for r in refs], full_feature_names):
        if out.name in user_columns:
            raise DataError(
                f"feature '{out.view}:{out.feature}' would overwrite the spine column '{out.name}'; rename the spine "
                "column or pass --full-feature-names"
            )
    _warn_skipped_rows(engine, views.values())

    catalog = _with_lookup_relations(engine, catalog, views.values())
    plan = training_plan(catalog, refs, engine.sql_dialect, spine_columns, full_feature_names)
    unordered = plan.query.copy()
    unordered.set("order", None)  # the output orders by __row once, when it is written
    engine.create_temp_table(RESULT, unordered)
    _raise_on_ambiguity(engine, plan, catalog)
    final = (
        exp.select(*[col(c) for c in user_columns], *[col(o.name) for o in plan.outputs])
        .from_(RESULT)
        .order_by(col(ROW))
    )
    if output is not None:
        return TrainingSet(write_atomically(engine, final, output), plan)
    return TrainingSet(engine.to_arrow(final), plan)


def write_atomically(engine: Engine, query: exp.Select, output: Path) -> int:
    """Write beside the target, then rename: a failed run never leaves half a file or loses the old one."""
    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_name(f".{output.name}.partial")
    try:
        rows = engine.copy_to_parquet(query, partial)
        os.replace(partial, output)
    finally:
        partial.unlink(missing_ok=True)
    return rows


def _raise_on_ambiguity(engine: Engine, plan: TrainingQuery, catalog: Catalog) -> None:
    if not plan.ambiguity:
        return
    found = engine.rows(exp.select(*[exp.Max(this=col(c)).as_(c) for c in plan.ambiguity]).from_(RESULT))[0]
    for column, view in plan.ambiguity.items():
        ts = found[column]
        if ts is None:
            continue
        keys = catalog.views[view].keys
        # the matched source keys where the plan keeps them (mapped spine columns may be named otherwise)
        selected = (
            [col(c).as_(k) for c, k in zip(plan.ambiguity_keys[column], keys, strict=True)]
            if column in plan.ambiguity_keys
            else [col(k) for k in keys]
        )
        row = engine.rows(
            exp.select(*selected)
            .from_(RESULT)
            .where(exp.EQ(this=col(column), expression=exp.Literal.number(ts)))
            .limit(1)
        )[0]
        raise AmbiguousTie(view, row, iso(ts) if ts else "(static source)")


def _warn_skipped_rows(engine: Engine, views: Iterable[ResolvedView]) -> None:
    for view in views:
        required = [col(k) for k in view.keys] + ([col(view.timestamp)] if view.timestamp else [])
        nulls = exp.or_(*[exp.Is(this=c, expression=exp.Null()) for c in required])
        query = exp.select(exp.Count(this=exp.Star()).as_("n")).from_(view.relation.copy()).where(nulls)
        skipped = engine.rows(query)[0]["n"]
        if skipped:
            log.warning("view '%s': skipped %d source row(s) with a null key or event time", view.name, skipped)


def _with_lookup_relations(engine: Engine, catalog: Catalog, views: Iterable[ResolvedView]) -> Catalog:
    """The catalog with each requested view reading what the engine's plan can probe (``ResolvedView.probed_by``)."""
    return dataclasses.replace(catalog, views={**catalog.views, **{v.name: probed_view(v, engine) for v in views}})
