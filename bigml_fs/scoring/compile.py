"""``compile MODEL --predict``: the scoring SQL of a model's registered version, printed.

The query is the model's training-set query (over the spine relation
``__spine``, as ``compile MODEL`` prints it) wrapped by the compiled pipeline,
so what is printed is exactly what in-warehouse scoring runs over a spine.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bigml_fs.compiler.explain import training_plan
from bigml_fs.engines.dialects import dialect_for
from bigml_fs.scoring.sql import compile_pipeline

if TYPE_CHECKING:
    from bigml_fs.workspace import Workspace


def scoring_sql(ws: Workspace, model: str, dialect: str | None = None) -> str:
    """SQL text scoring every spine row with ``MODEL`` (promoted, else latest) or ``MODEL@V``."""
    from bigml_fs.scoring.predict import load

    loaded = load(ws.paths, model)
    catalog = ws.catalog
    refs = catalog.expand(loaded.refs, f"model {loaded.version.label}")
    target = dialect_for(dialect) if dialect else ws.engine.sql_dialect
    plan = training_plan(catalog, refs, target)
    # the spine's own columns and its order (__row); not the plan's internal __ columns
    passthrough = [
        c for c in plan.query.named_selects if c not in loaded.columns and (not c.startswith("__") or c == "__row")
    ]
    query = compile_pipeline(
        loaded.pipeline, plan.query, loaded.columns, loaded.manifest.task, passthrough, target.name
    )
    sql = query.sql(target.name, pretty=True)
    header = (
        f"-- scores of model {loaded.version.label} over its point-in-time query on the spine relation __spine (its "
        "columns, __row = spine order)\n"
    )
    return header + sql
