"""Which relation a plan that probes rows per spine point reads.

A dialect whose plans look rows up per spine or change point
(``Dialect.probes_by_index``: PostgreSQL's LATERAL and range probes) needs an
index on (keys, event time, created), or an indexed copy of a sql/ view
model; the engine provides it (``Engine.lookup_relation``). The decision is
the plan's, so it lives beside the compiler, not in the catalog.
"""

from __future__ import annotations

import dataclasses

from bigml_fs.catalog import ResolvedView
from bigml_fs.engines.base import Engine


def probed_view(view: ResolvedView, engine: Engine) -> ResolvedView:
    """``view`` reading what ``engine``'s plans can probe by (keys, event time, created); else unchanged."""
    if view.timestamp is None or not engine.sql_dialect.probes_by_index:
        return view
    columns = [*view.keys, view.timestamp, *([view.created] if view.created else [])]
    probed = engine.lookup_relation(view.relation, columns)
    return view if probed is view.relation else dataclasses.replace(view, relation=probed)


__all__ = ["probed_view"]
