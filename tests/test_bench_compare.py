"""The benchmarks' equality check: a figure is printed only for outputs it found equal."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from benchmarks.compare import IDENTICAL, compare_outputs

KEYS, VALUES = ["driver_id", "event_timestamp"], ["conv_rate", "trips"]


def _write(path: Path, ids: list, rates: list, trips: list) -> Path:
    times = pa.array([1_700_000_000_000_000 + i for i in range(len(ids))], pa.timestamp("us", tz="UTC"))
    pq.write_table(pa.table({"driver_id": ids, "event_timestamp": times, "conv_rate": rates, "trips": trips}), path)
    return path


def test_equal_outputs_are_identical_within_tolerance(tmp_path: Path) -> None:
    a = _write(tmp_path / "a.parquet", [1, 2], [0.5, None], [3, None])
    b = _write(tmp_path / "b.parquet", [1, 2], [0.5 + 1e-15, None], [3.0, None])
    assert compare_outputs(a, b, KEYS, VALUES) == IDENTICAL


def test_a_null_against_a_value_is_a_difference(tmp_path: Path) -> None:
    a = _write(tmp_path / "a.parquet", [1, 2], [0.5, None], [3, 4])
    b = _write(tmp_path / "b.parquet", [1, 2], [0.5, 0.25], [3, 4])
    assert compare_outputs(a, b, KEYS, VALUES) == "1 rows differ"
    assert compare_outputs(b, a, KEYS, VALUES) == "1 rows differ"


def test_row_counts_keys_and_failures_are_checked(tmp_path: Path) -> None:
    a = _write(tmp_path / "a.parquet", [1, 2], [0.5, 0.5], [3, 4])
    shorter = _write(tmp_path / "short.parquet", [1], [0.5], [3])
    other_keys = _write(tmp_path / "keys.parquet", [1, 3], [0.5, 0.5], [3, 4])
    assert compare_outputs(a, shorter, KEYS, VALUES) == "row counts differ: 2 vs 1"
    assert compare_outputs(a, other_keys, KEYS, VALUES) == "1 rows have other keys or times"
    assert compare_outputs(a, tmp_path / "missing.parquet", KEYS, VALUES).startswith("not compared")
    assert compare_outputs(a, a, KEYS, VALUES, failed="Traceback\nboom").startswith("not compared")
