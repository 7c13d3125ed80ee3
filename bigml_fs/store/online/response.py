"""The answer of an online read, and its JSON exactly as Feast's feature server writes it.

Columns are Python lists (what the JSON needs; Arrow is built on demand), one
per join key and then per feature, with Feast's statuses and event times.
``to_dict()`` is the body of Feast's ``/get-online-features`` response: times in
RFC 3339 with Z and 0/3/6 fraction digits, the epoch for "no time", non-finite
floats as "NaN"/"Infinity"/"-Infinity", bytes as base64, timestamp values as
Unix seconds (Feast's UNIX_TIMESTAMP).
"""

from __future__ import annotations

import base64
import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pyarrow as pa

from bigml_fs.core.timeutil import timestamp_text
from bigml_fs.store import feast_types as ft

PRESENT, NOT_FOUND, OUTSIDE_MAX_AGE = "PRESENT", "NOT_FOUND", "OUTSIDE_MAX_AGE"
_TEXTS: dict[int | None, str] = {}  # timestamp texts already formatted (materialize times repeat a lot)
TS = pa.timestamp("us", tz="UTC")


def _json_float(value: float) -> float | str:
    if math.isfinite(value):
        return value
    return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")


def _json_column(values: list, ftype: ft.FeastType | None) -> list:
    """Values as Feast's JSON carries them: bytes as base64, non-finite floats as text (timestamps
    are already Unix seconds).
    """
    if ftype is ft.FLOAT64 or ftype is ft.FLOAT32:
        return [v if v is None or math.isfinite(v) else _json_float(v) for v in values]
    if ftype is ft.BYTES:
        return [None if v is None else base64.b64encode(v).decode("ascii") for v in values]
    return values


def _arrow_column(values: list, ftype: ft.FeastType | None) -> pa.Array:
    if ftype is None:
        return pa.array(values) if any(v is not None for v in values) else pa.nulls(len(values))
    if ftype is ft.TIMESTAMP:  # Unix seconds, as Feast stores UNIX_TIMESTAMP values
        return pa.array([None if v is None else v * 1_000_000 for v in values], pa.int64()).cast(TS)
    return pa.array(values, ftype.arrow)


@dataclass
class OnlineResponse:
    """Online values: one column per join key, then per feature (like Feast's OnlineResponse).

    Columns are kept as Python lists (what the JSON needs); Arrow is built on demand.
    Timestamp-valued features hold Unix seconds here, as in Feast's JSON.
    """

    feature_names: list[str]
    columns: list[list[Any]]
    types: list[ft.FeastType | None]
    statuses: list[list[str]]
    event_micros: list[list[int | None]]  # UTC microseconds; None where there is no event time
    key_count: int = 0  # how many leading columns are join keys

    @property
    def arrays(self) -> list[pa.Array]:
        return [_arrow_column(c, t) for c, t in zip(self.columns, self.types, strict=True)]

    @property
    def values(self) -> list[list[Any]]:
        """Per column, Python values (timestamps as datetimes)."""
        return [
            c if t is not ft.TIMESTAMP else _arrow_column(c, t).to_pylist()
            for c, t in zip(self.columns, self.types, strict=True)
        ]

    @property
    def event_timestamps(self) -> list[list[datetime | None]]:
        return [pa.array(t, pa.int64()).cast(TS).to_pylist() for t in self.event_micros]

    def column(self, name: str) -> pa.Array:
        i = self.feature_names.index(name)
        return _arrow_column(self.columns[i], self.types[i])

    def to_dict(self) -> dict[str, Any]:
        """Feast's feature-server ``/get-online-features`` JSON."""
        cache = _TEXTS
        if len(cache) > 100_000:
            cache.clear()
        results = []
        for values, ftype, statuses, times in zip(
            self.columns, self.types, self.statuses, self.event_micros, strict=True
        ):
            texts = []
            for t in times:
                text = cache.get(t)
                if text is None:
                    text = cache[t] = timestamp_text(t)
                texts.append(text)
            results.append({"values": _json_column(values, ftype), "statuses": statuses, "event_timestamps": texts})
        return {"metadata": {"feature_names": list(self.feature_names)}, "results": results}

    to_feast_json = to_dict

    def to_arrow(self, include_statuses: bool = False) -> pa.Table:
        """Join keys and features as columns; with ``include_statuses`` also ``<name>__status`` per feature."""
        columns: dict[str, pa.Array] = dict(zip(self.feature_names, self.arrays, strict=True))
        if include_statuses:
            for name, statuses in zip(
                self.feature_names[self.key_count :], self.statuses[self.key_count :], strict=True
            ):
                columns[f"{name}__status"] = pa.array(statuses, pa.string())
        return pa.table(columns)

    def to_pandas(self, include_statuses: bool = False) -> Any:
        return self.to_arrow(include_statuses).to_pandas()
