"""What ``compile`` prints: a training-set plan over a stand-in spine, in one dialect.

``compile VIEW|MODEL`` and ``compile MODEL --predict`` show the plan a
dialect's engine runs, over the spine relation ``__spine`` with the views'
keys and ``event_timestamp``. Each dialect has its own plan (built from its
``Dialect`` object), so nothing is transpiled from another engine's plan; a
compile-only dialect says so in the header.
"""

from __future__ import annotations

import sqlglot
from sqlglot import exp

from bigml_fs.catalog import Catalog, FeatureRef
from bigml_fs.compiler.sqlparts import ROW, TS
from bigml_fs.compiler.training_query import TrainingQuery, training_query
from bigml_fs.core.timeutil import EVENT_TIMESTAMP
from bigml_fs.engines.dialects import Dialect

SPINE = "__spine"


def training_plan(
    catalog: Catalog,
    refs: list[FeatureRef],
    dialect: Dialect,
    spine_columns: dict[str, str] | None = None,
    full_feature_names: bool = False,
) -> TrainingQuery:
    """The training-set plan for ``refs`` in ``dialect`` over the relation ``__spine``.

    ``spine_columns`` are those of the spine that was loaded (its columns with
    ``__row`` and ``__ts``); ``compile`` passes none and gets a stand-in spine
    of the views' keys and ``event_timestamp``. Feature expressions are read in
    the project's sql_dialect.
    """
    if spine_columns is None:
        spine_columns = {}
        for ref in refs:
            view = catalog.views[ref.view]
            spine_columns.update({k: view.columns[k] for k in view.keys})
        spine_columns.update({EVENT_TIMESTAMP: "TIMESTAMP WITH TIME ZONE", ROW: "BIGINT", TS: "BIGINT"})
    requested = [(r.view, r.feature) for r in refs]
    return training_query(
        exp.table_(SPINE), spine_columns, catalog.views, requested, catalog.sql_dialect, full_feature_names, dialect
    )


def header(dialect: Dialect) -> str:
    """Comment lines that say what the printed plan reads and, for a compile-only dialect, that it is not run here."""
    text = (
        "-- point-in-time query over the spine relation __spine "
        "(its columns, __row = spine order, __ts = time in UTC microseconds)\n"
    )
    if not dialect.runs_here:
        text += (
            f"-- {dialect.name}: compile-only, not run or tested here "
            "(bigml-fs runs and tests duckdb, postgres and spark)\n"
        )
    return text


def training_sql(catalog: Catalog, refs: list[FeatureRef], dialect: Dialect) -> str:
    """The SQL text ``compile`` prints for ``refs`` in ``dialect``, with its header."""
    plan = training_plan(catalog, refs, dialect)
    # read back in its own dialect: what is printed is known to parse there
    sql = sqlglot.transpile(plan.query.sql(dialect.name), read=dialect.name, write=dialect.name, pretty=True)[0]
    return header(dialect) + sql


__all__ = ["header", "training_plan", "training_sql"]
