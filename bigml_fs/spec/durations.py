"""Durations as fixed lengths: ``30s``, ``15m``, ``1h``, ``7d``, ``4w``.

Months and years have no fixed length, so they are rejected rather than
guessed; a window must mean the same span at every point in time.
"""

from __future__ import annotations

import re
from datetime import timedelta

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 7 * 86_400}
_PATTERN = re.compile(r"^\s*(\d+)\s*([a-zA-Z]+)\s*$")


def parse_duration(text: object) -> timedelta:
    """Parse a duration; raise ValueError with a message that says the fix."""
    if isinstance(text, bool) or not isinstance(text, str | int):
        raise ValueError(f"expected a duration like '7d', got {text!r}")
    match = _PATTERN.match(str(text))
    if not match:
        raise ValueError(f"'{text}' is not a duration; write a whole number and a unit: 30s, 15m, 1h, 7d, 4w")
    number, unit = int(match.group(1)), match.group(2)
    if unit.lower() in {"mo", "mon", "month", "months", "y", "yr", "year", "years"} or unit == "M":
        raise ValueError(f"'{text}': months and years have no fixed length; use days or weeks (e.g. 30d, 52w)")
    if unit not in _UNITS:
        raise ValueError(f"'{text}': unknown unit '{unit}'; use s, m, h, d or w")
    if number <= 0:
        raise ValueError(f"'{text}': a duration must be positive")
    return timedelta(seconds=number * _UNITS[unit])
