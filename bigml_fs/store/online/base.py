"""The OnlineStore interface: bulk writes in Feast's own layout, batched reads.

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

EVENT_TS = "event_timestamp"
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
    def read(self, part: FeastPart, keys: pa.Table, features: list[str]) -> pa.Table:
        """Rows for ``keys`` (join key columns, any order, duplicates allowed), in their order.

        Returns one row per key row: the feature columns, ``event_timestamp`` and a
        boolean ``__found``. All keys go to the store in one round trip.
        """

    @abstractmethod
    def drop(self, part_name: str) -> None:
        """Remove everything stored for a Feast view that no longer exists."""

    @abstractmethod
    def ping(self) -> None:
        """Raise EngineError naming the host and port (never a password) if the store is unreachable."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""
