"""Feast feature-server JSON, built from columns without protobuf.

Feast's server answers ``/get-online-features`` with::

    {"metadata": {"feature_names": [join keys..., features...]},
     "results": [{"values": [...], "statuses": [...], "event_timestamps": [...]}, ...]}

one result per column (join keys first, status PRESENT, time 1970-01-01),
times in RFC 3339 with Z and adaptive precision (none, 3 or 6 digits), and
non-finite floats as the strings "NaN", "Infinity", "-Infinity". Building
that from Python lists costs microseconds; Feast goes through protobuf
messages per value, which is most of its latency for 100 entities.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

EPOCH_TEXT = "1970-01-01T00:00:00Z"
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def timestamp_text(value: datetime | int | None) -> str:
    """A time as Feast's server writes it; ``value`` is a datetime or UTC microseconds."""
    if value is None:
        return EPOCH_TEXT
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        delta = value - _EPOCH
        micros = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    else:
        micros = int(value)
    if micros == 0:
        return EPOCH_TEXT
    seconds, frac = divmod(micros, 1_000_000)
    base = datetime.fromtimestamp(seconds, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    if frac == 0:
        return base + "Z"
    if frac % 1000 == 0:
        return f"{base}.{frac // 1000:03d}Z"
    return f"{base}.{frac:06d}Z"


def json_value(value: Any) -> Any:
    """A feature value as Feast's JSON carries it (non-finite floats become strings)."""
    if type(value) is float and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, datetime):
        return timestamp_text(value)
    return value


def columns_to_feast_json(
    names: Sequence[str],
    values: Sequence[Sequence[Any]],
    statuses: Sequence[Sequence[str]],
    event_timestamps: Sequence[Sequence[datetime | int | None]],
) -> dict[str, Any]:
    """Feast's response from parallel per-column lists (join key columns included by the caller)."""
    results = []
    for column, status, times in zip(values, statuses, event_timestamps, strict=True):
        results.append(
            {
                "values": [json_value(v) for v in column],
                "statuses": list(status),
                "event_timestamps": [timestamp_text(t) for t in times],
            }
        )
    return {"metadata": {"feature_names": list(names)}, "results": results}


def to_feast_json(response: Any) -> dict[str, Any]:
    """The feature-server JSON of what ``Project.online_features`` returned."""
    if isinstance(response, dict) and "results" in response:
        return response
    convert = getattr(response, "to_feast_json", None)
    if convert is not None:
        return convert()
    raise TypeError(f"cannot turn {type(response).__name__} into Feast feature-server JSON")
