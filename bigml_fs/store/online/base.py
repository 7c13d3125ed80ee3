"""The OnlineStore interface: bulk writes in Feast's own layout, batched reads (``fetch``).

SQLite, Redis and PostgreSQL implement it. Each writes exactly the tables/keys
and serialization (entity key serialization v3, ValueProto values) that Feast's
own online store class for that backend reads, so a user's plain
``FeatureStore.get_online_features`` sees what bigml_fs wrote. Writes never go
through Feast's row-at-a-time path: values are encoded column-wise and sent in
batches (executemany / COPY / a Redis pipeline), one transaction per Feast
view where the backend has transactions.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import pyarrow as pa

from bigml_fs.store.naming import FeastPart

Found = tuple  # (event time in UTC microseconds or None, {feature: ValueProto bytes})
CREATED_TS = "created_timestamp"


class OnlineStore(ABC):
    """One online store of a project (Feast project name ``project``)."""

    def __init__(self, project: str):
        self.project = project

    @abstractmethod
    def write(self, part: FeastPart, data: pa.Table, replace: bool = False) -> int:
        """Upsert the rows of ``data`` for one Feast view; return rows written.

        ``data`` has the join key columns (``part.join_keys``), ``event_timestamp``
        (timestamp[us, UTC]), optionally ``created_timestamp``, and one column per
        feature in ``part.feature_names`` (Arrow types decide the ValueProto field).
        With ``replace``, keys of this view absent from ``data`` are deleted in the
        same transaction (values that expired or vanished are not left behind).
        """

    @abstractmethod
    def fetch(self, part: FeastPart, keys_bin: list[bytes | None], features: list[str]) -> dict[bytes, Found]:
        """The stored rows of serialized entity keys (None: skip), in one round trip.

        Maps each key that has values of this view to (event time in UTC
        microseconds, {feature: ValueProto bytes}); absent keys are left out.
        """

    @abstractmethod
    def drop(self, part_name: str) -> None:
        """Remove everything stored for a Feast view that no longer exists (its name, or its FeastPart)."""

    @abstractmethod
    def ping(self) -> None:
        """Raise EngineError naming the host and port (never a password) if the store is unreachable."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""


def table_name(project: str, part_name: str) -> str:
    """Feast's online table / key name of a Feast view: ``{project}_{view}`` (compute_table_id)."""
    return f"{project}_{part_name}"


def part_name_of(part: object) -> str:
    """A FeastPart's name, or the name itself."""
    return part if isinstance(part, str) else part.name  # type: ignore[attr-defined]
