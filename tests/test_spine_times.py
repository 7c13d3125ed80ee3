"""Spine times written as ISO 8601 text, each row with its own offset, mean the same instant."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pyarrow as pa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bigml_fs.engines.duckdb_engine import DuckDBEngine
from bigml_fs.training import spine as spine_io

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
instants = st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2090, 1, 1)).map(
    lambda d: d.replace(tzinfo=timezone.utc)
)
offsets = st.integers(-14 * 60, 14 * 60).map(lambda m: timezone(timedelta(minutes=m)))
styles = st.sampled_from(["T", " "])


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rows=st.lists(
        st.tuples(instants, offsets, styles, st.sampled_from(["offset", "Z", "naive"])), min_size=1, max_size=20
    )
)
def test_iso_text_with_per_row_offsets(rows):
    texts, expected = [], []
    for instant, offset, sep, form in rows:
        if form == "offset":
            text = instant.astimezone(offset).isoformat(sep=sep)
        elif form == "Z":
            text = instant.isoformat(sep=sep).replace("+00:00", "Z")
        else:  # naive text is UTC
            text = instant.replace(tzinfo=None).isoformat(sep=sep)
        texts.append(text)
        expected.append((instant - EPOCH) // timedelta(microseconds=1))
    engine = DuckDBEngine()
    spine_io.load_spine_table(engine, pa.table({"k": list(range(len(texts))), "when": texts}))
    spine_io.prepare_spine(engine, "when", {})
    got = engine.to_arrow(f"SELECT __ts FROM {spine_io.SPINE} ORDER BY __row").column("__ts").to_pylist()
    assert got == expected, list(zip(texts, got, expected, strict=True))
