"""Times as bigml_fs reads and stores them: UTC, microsecond precision.

The rules: naive times are UTC, a DATE is 00:00 UTC, finer precision
is truncated to microseconds. Every command-line time, state file and online
read goes through these helpers, so a time given as ``2024-05-01`` means the
same instant in ``plan``, ``materialize``, ``train`` and ``online``.
"""

from __future__ import annotations

import time
from datetime import date, datetime, timedelta, timezone
from typing import Any

from bigml_fs.errors import UsageError

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
EVENT_TIMESTAMP = "event_timestamp"  # Feast's name for a row's event time (spines, offline tables, online rows)
US_PER_SECOND = 1_000_000


def parse_time(value: Any, what: str = "--end") -> datetime:
    """ISO 8601 text, a date or a datetime as an aware UTC datetime; naive means UTC.

    ``what`` names the option or key in the error (``--end``, ``--start``).
    """
    if isinstance(value, datetime):
        when = value
    elif isinstance(value, date):
        when = datetime(value.year, value.month, value.day)
    else:
        text = str(value).strip()
        try:
            when = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text)
        except ValueError:
            raise UsageError(
                f"{what} {text!r} is not an ISO 8601 time; "
                "write e.g. 2024-05-01, 2024-05-01T12:00:00Z or 2024-05-01T12:00:00+02:00"
            ) from None
    return when.replace(tzinfo=timezone.utc) if when.tzinfo is None else when.astimezone(timezone.utc)


def now() -> datetime:
    return datetime.now(timezone.utc)


def to_us(when: datetime) -> int:
    """Microseconds since the epoch (UTC; a naive datetime is UTC), exact (no float)."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    delta = when - EPOCH
    return (delta.days * 86_400 + delta.seconds) * US_PER_SECOND + delta.microseconds


def from_us(us: int) -> datetime:
    """The UTC datetime of microseconds since the epoch, exact."""
    return EPOCH + timedelta(microseconds=int(us))


def iso(us: int) -> str:
    """ISO 8601 text (``+00:00``) of microseconds since the epoch."""
    return from_us(us).isoformat()


def micros(delta: timedelta) -> int:
    """A duration in whole microseconds, exact."""
    return (delta.days * 86_400 + delta.seconds) * US_PER_SECOND + delta.microseconds


def timestamp_text(value: datetime | int | None) -> str:
    """A time as Feast's feature server writes it: RFC 3339 with Z and 0, 3 or 6 fraction digits.

    ``value`` is a datetime or UTC microseconds; None and 0 are the epoch (Feast's "no time").
    """
    us = to_us(value) if isinstance(value, datetime) else int(value or 0)
    if us == 0:
        return "1970-01-01T00:00:00Z"
    seconds, frac = divmod(us, US_PER_SECOND)
    base = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
    if frac == 0:
        return base + "Z"
    if frac % 1000 == 0:
        return f"{base}.{frac // 1000:03d}Z"
    return f"{base}.{frac:06d}Z"
