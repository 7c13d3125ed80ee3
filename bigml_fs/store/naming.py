"""How a bigml_fs feature view maps onto Feast feature views.

A view of one kind keeps its name; a view with both latest-value and window
features becomes two Feast views, ``<view>`` (latest values, the view's ttl)
and ``<view>__windows`` (window change points, no ttl). Materialize, the Feast
repo, the online stores and online reads all name things through here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from bigml_fs.catalog import ResolvedView
from bigml_fs.spec.schema import FeatureSpec

WINDOWS_SUFFIX = "__windows"


@dataclass(frozen=True)
class FeastPart:
    """One Feast feature view: a bigml_fs view's latest-value or window features."""

    view: ResolvedView
    name: str
    kind: str  # "latest" | "static" | "windows"
    features: tuple[FeatureSpec, ...]

    @property
    def ttl(self) -> timedelta | None:
        """The Feast ttl: the view's for latest values, none for static views and window tables."""
        return self.view.ttl if self.kind == "latest" else None

    @property
    def join_keys(self) -> tuple[str, ...]:
        return self.view.keys

    @property
    def feature_names(self) -> list[str]:
        return [f.name for f in self.features]


def feast_parts(view: ResolvedView) -> list[FeastPart]:
    """The Feast views one bigml_fs view becomes (one or two)."""
    latest, windows = tuple(view.latest_features), tuple(view.window_features)
    parts: list[FeastPart] = []
    if latest:
        parts.append(FeastPart(view, view.name, "static" if view.timestamp is None else "latest", latest))
    if windows:
        parts.append(FeastPart(view, view.name + WINDOWS_SUFFIX if latest else view.name, "windows", windows))
    return parts


def part_of(view: ResolvedView, feature: str) -> FeastPart:
    """The Feast view that holds ``feature`` of ``view``."""
    return next(p for p in feast_parts(view) if feature in p.feature_names)
