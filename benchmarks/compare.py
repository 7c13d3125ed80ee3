"""Are two contenders' outputs the same? Checked before any ratio is printed.

Outputs are Parquet files in spine order. They agree when they have the same
number of rows, the same keys and times at every row, and every value column
agrees row by row: both NULL, or both present and equal within the engines'
tolerance |a - b| <= 1e-9 * max(|a|, |b|) + 1e-12 (exactly equal for
non-numbers). A NULL against a value is a difference. A contender that failed
or wrote no file is "not compared", never "identical".
"""

from __future__ import annotations

from pathlib import Path

import duckdb

IDENTICAL = "identical"
NUMERIC_TYPES = ("INT", "DOUBLE", "FLOAT", "DECIMAL", "REAL")


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def compare_outputs(ours: Path, theirs: Path, keys: list[str], values: list[str], failed: str | None = None) -> str:
    """``identical``, or what differs (row counts, keys, values), or why the two were not compared."""
    if failed:
        last = failed.strip().splitlines()[-1][:80] if failed.strip() else "no message"
        return f"not compared: the contender failed ({last})"
    for path in (ours, theirs):
        if not path.exists():
            return f"not compared: {path.name} was not written"
    con = duckdb.connect()
    con.execute("SET TimeZone='UTC'")
    counts = [con.execute(f"SELECT count(*) FROM read_parquet('{p}')").fetchone()[0] for p in (ours, theirs)]
    if counts[0] != counts[1]:
        return f"row counts differ: {counts[0]:,} vs {counts[1]:,}"
    described = con.execute(f"DESCRIBE SELECT * FROM read_parquet('{ours}')").fetchall()
    numeric = {row[0] for row in described if any(t in row[1].upper() for t in NUMERIC_TYPES)}
    key_differs = " OR ".join(f"x.{_quoted(k)} IS DISTINCT FROM y.{_quoted(k)}" for k in keys) or "false"
    value_terms = []
    for column in values:
        x, y = f"x.{_quoted(column)}", f"y.{_quoted(column)}"
        if column in numeric:
            close = f"abs({x} - {y}) <= 1e-9 * greatest(abs({x}), abs({y})) + 1e-12"
            value_terms.append(f"(({x} IS NULL) <> ({y} IS NULL) OR ({x} IS NOT NULL AND NOT ({close})))")
        else:
            value_terms.append(f"({x} IS DISTINCT FROM {y})")
    value_differs = " OR ".join(value_terms) or "false"
    bad_keys, bad_values = con.execute(f"""
        SELECT count(*) FILTER (WHERE {key_differs}), count(*) FILTER (WHERE {value_differs})
        FROM read_parquet('{ours}', file_row_number = true) x
        JOIN read_parquet('{theirs}', file_row_number = true) y USING (file_row_number)
    """).fetchone()
    if bad_keys:
        return f"{bad_keys:,} rows have other keys or times"
    if bad_values:
        return f"{bad_values:,} rows differ"
    return IDENTICAL
