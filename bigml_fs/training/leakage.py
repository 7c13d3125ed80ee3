"""Label leakage: a latest-value feature read from the labels' own rows.

A latest-value feature takes the row with the greatest event time <= t. When
the spine is a model's labels and the feature's view reads the labels' own
source by the labels' own time column, the row stamped at the prediction time
t is the label's own row, so the feature can read the label. Window
aggregates cover [t - w, t) and never see that row.
"""

from __future__ import annotations

import logging

from bigml_fs.catalog import Catalog, FeatureRef
from bigml_fs.errors import DataError
from bigml_fs.spec.schema import ModelSpec

log = logging.getLogger("bigml_fs")


def check_label_leakage(catalog: Catalog, spec: ModelSpec, refs: list[FeatureRef], strict: bool = False) -> None:
    """Warn (or with ``strict`` raise DataError) for each view whose latest-value features can read the label."""
    leaking: dict[str, list[str]] = {}
    for ref in refs:
        view = catalog.views[ref.view]
        if view.spec.source != spec.labels.source or view.timestamp != spec.labels.timestamp:
            continue
        if view.feature(ref.feature).is_window:
            continue
        leaking.setdefault(ref.view, []).append(ref.feature)
    messages = [
        f"model '{spec.name}': view '{view}' reads the labels' own source '{spec.labels.source}' by their time column "
        f"'{spec.labels.timestamp}', so its latest-value feature(s) {', '.join(repr(f) for f in features)} take the "
        "row stamped at the prediction time, which is the label's own row: the feature can read the label. Fix: "
        "read these values from another source, shift the view's time column before the label time (e.g. in a "
        "sql/ model), or use window aggregates (they exclude the row at t)"
        for view, features in leaking.items()
    ]
    if not messages:
        return
    if strict:
        raise DataError("; ".join(messages))
    for message in messages:
        log.warning("%s (--strict refuses it)", message)
