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
import pyarrow.compute

from bigml_fs.store.feast_types import FeastType
from bigml_fs.store.naming import FeastPart

EVENT_TS = "event_timestamp"
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

    def read(
        self, part: FeastPart, keys: pa.Table, features: list[str], types: dict[str, FeastType] | None = None
    ) -> pa.Table:
        """Rows for ``keys`` (join key columns, any order, duplicates allowed), in their order.

        Returns one row per key row: the feature columns (typed by ``types``, else by
        what is stored), ``event_timestamp`` (timestamp[us, UTC]) and a boolean
        ``__found``. All keys go to the store in one round trip.
        """
        keys_bin = request_keys(part, keys)
        return assemble(keys_bin, self.fetch(part, keys_bin, features), features, types)

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


def assemble(
    keys_bin: list[bytes],
    found: dict[bytes, tuple[int | None, dict[str, bytes]]],
    features: list[str],
    types: dict[str, FeastType] | None,
) -> pa.Table:
    """The read result: per requested key (in order) its decoded features, event time and found flag.

    ``found`` maps a serialized key to (event time in UTC microseconds, {feature: ValueProto bytes}).
    """
    from bigml_fs.store.online.encoding import decode_column, infer_type

    rows = [found.get(k) for k in keys_bin]
    columns: dict[str, pa.Array] = {}
    for name in features:
        raw = [r[1].get(name) if r is not None else None for r in rows]
        ftype = (types or {}).get(name) or infer_type(raw)
        columns[name] = decode_column(raw, ftype) if ftype is not None else pa.nulls(len(raw))
    columns[EVENT_TS] = pa.array([r[0] if r is not None else None for r in rows], pa.int64()).cast(
        pa.timestamp("us", tz="UTC")
    )
    columns["__found"] = pa.array([r is not None for r in rows], pa.bool_())
    return pa.table(columns)


def request_keys(part: FeastPart, keys: pa.Table) -> list[bytes | None]:
    """Serialized entity keys of the request rows (None where a key is null: never found)."""
    from bigml_fs.store.feast_types import feast_type
    from bigml_fs.store.online.encoding import entity_keys

    if not keys.num_rows:
        return []
    cols = keys.select(list(part.join_keys))
    types = {k: feast_type(cols.schema.field(k).type, f"join key '{k}'") for k in cols.column_names}
    out: list[bytes | None] = entity_keys(cols, types).to_pylist()
    if any(c.null_count for c in cols.columns):
        valid = (
            pa.compute.and_(*[c.is_valid() for c in cols.columns])
            if len(cols.columns) > 1
            else cols.column(0).is_valid()
        )
        out = [k if ok else None for k, ok in zip(out, valid.to_pylist(), strict=True)]
    return out
