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
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from sqlglot import exp

from bigml_fs.catalog import Catalog, FeatureRef, ResolvedView
from bigml_fs.compiler.probes import probed_view
from bigml_fs.compiler.sqlparts import ROW, col
from bigml_fs.compiler.training_query import TrainingQuery, output_names, training_query
from bigml_fs.engines.base import Engine
from bigml_fs.engines.dialects import DUCKDB, Dialect
from bigml_fs.errors import DataError
from bigml_fs.training import spine as spine_io

if TYPE_CHECKING:
    import pyarrow as pa

log = logging.getLogger("bigml_fs")
RESULT = "__training_set"


def compile_training_query(
    catalog: Catalog,
    refs: list[FeatureRef],
    spine_columns: dict[str, str],
    full_feature_names: bool = False,
    engine: Dialect = DUCKDB,
) -> TrainingQuery:
    """The training-set AST with ``engine``'s plan (a SQLGlot dialect); feature expressions are read in the project's sql_dialect."""
    requested = [(r.view, r.feature) for r in refs]
    return training_query(
        exp.table_(spine_io.SPINE),
        spine_columns,
        catalog.views,
        requested,
        catalog.sql_dialect,
        full_feature_names,
        engine,
    )


def build_training_set(
    engine: Engine,
    catalog: Catalog,
    refs: list[FeatureRef],
    timestamp: str | None,
    full_feature_names: bool = False,
    output: Path | None = None,
) -> pa.Table | int:
    """Run the training set over the spine loaded in ``__spine_raw``.

    Returns the Arrow table, or with ``output`` writes Parquet in the engine and
    returns the row count.
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
                f"feature '{out.view}:{out.feature}' would overwrite the spine column '{out.name}'; rename the spine column or pass --full-feature-names"
            )
    _warn_skipped_rows(engine, views.values())

    catalog = _with_lookup_relations(engine, catalog, views.values())
    plan = compile_training_query(catalog, refs, spine_columns, full_feature_names, engine.sql_dialect)
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
        return write_atomically(engine, final, output)
    return engine.to_arrow(final)


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
        when = datetime.fromtimestamp(ts / 1e6, tz=timezone.utc).isoformat() if ts else "(static source)"
        key_text = ", ".join(f"{k}={v!r}" for k, v in row.items())
        raise DataError(
            f"view '{view}': source rows with {key_text} at {when} have the same event time and created timestamp but different values, "
            "so the latest value is ambiguous; deduplicate the source or add a created_timestamp that orders them"
        )


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
