"""Spine times written as ISO 8601 text, each row with its own offset, mean the same instant."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bigml_fs.engines.duckdb_engine import DuckDBEngine
from bigml_fs.training import spine as spine_io
from tests.helpers import load, write_project

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


# Issue 14: a CSV spine keeps its key types (cast to the source key's type) and its times mean the same
# instants as in a Parquet spine with UTC times, on every engine the tests reach (PostgreSQL when it runs).

S = 1_000_000
T10 = int(datetime(2024, 5, 1, 10, tzinfo=timezone.utc).timestamp()) * S
CSV_FEATURES = """
feature_views:
  - name: by_int
    entities: [user]
    source: int_events
    features: [{name: int_seen, expr: seen}]
  - name: by_text
    entities: [{name: user, keys: {user_id: code}}]
    source: text_events
    features: [{name: text_seen, expr: seen}]
"""


def _engine_block(name: str, request: pytest.FixtureRequest) -> dict:
    if name == "duckdb":
        return {"type": "duckdb"}
    info, schema = request.getfixturevalue("postgres_schema")
    return {"type": "postgres", **{k: info[k] for k in ("host", "port", "database", "user")}, "schema": schema}


@pytest.fixture(params=["duckdb", "postgres"])
def csv_project(request: pytest.FixtureRequest, tmp_path: Path):
    """An integer-keyed and a text-keyed view whose values change at 08:00, 10:00 and 12:00 UTC."""
    hours = [T10 - 7200 * S, T10, T10 + 7200 * S]
    stamps = pa.array(hours, type=pa.timestamp("us", tz="UTC"))
    int_events = pa.table(
        {"user_id": pa.array([7, 7, 7], type=pa.int64()), "ts": stamps, "seen": ["int 08", "int 10", "int 12"]}
    )
    text_events = pa.table(
        {
            "code": ["007", "007", "7"],
            "ts": pa.array([hours[0], hours[1], hours[0]], type=pa.timestamp("us", tz="UTC")),
            "seen": ["text 007 08", "text 007 10", "text 7 08"],
        }
    )
    spec = {
        "name": "t",
        "engine": _engine_block(request.param, request),
        "entities": [{"name": "user", "join_keys": ["user_id"]}],
        "sources": [
            {"name": "int_events", "path": "data/int_events.parquet", "timestamp": "ts"},
            {"name": "text_events", "path": "data/text_events.parquet", "timestamp": "ts"},
        ],
    }
    root = write_project(
        tmp_path / "p", spec, CSV_FEATURES, tables={"int_events": int_events, "text_events": text_events}
    )
    with load(root) as p:
        yield p


def _parquet_spine(tmp_path: Path, keys: dict[str, list], times: list[int]) -> Path:
    path = tmp_path / "spine.parquet"
    columns = {k: pa.array(v, type=pa.int64() if isinstance(v[0], int) else pa.string()) for k, v in keys.items()}
    pq.write_table(pa.table({**columns, "when": pa.array(times, type=pa.timestamp("us", tz="UTC"))}), path)
    return path


def test_csv_keys_with_leading_zeros_cast_to_each_source_key_type(csv_project, tmp_path):
    """``007`` is 7 against a BIGINT key and stays ``007`` against a text key, as in a Parquet spine."""
    path = tmp_path / "spine.csv"
    path.write_text("user_id,code,when\n007,007,2024-05-01T10:00:00Z\n7,7,2024-05-01T10:00:00Z\n")
    features = ["by_int:int_seen", "by_text:text_seen"]
    out = csv_project.training_set(features=features, spine=path)
    assert out.column("user_id").to_pylist() == ["007", "7"]  # the spine's own columns come back as written
    assert out.column("int_seen").to_pylist() == ["int 10", "int 10"]
    assert out.column("text_seen").to_pylist() == ["text 007 10", "text 7 08"]
    parquet = _parquet_spine(tmp_path, {"user_id": [7, 7], "code": ["007", "7"]}, [T10, T10])
    expected = csv_project.training_set(features=features, spine=parquet)
    assert out.select(["int_seen", "text_seen"]) == expected.select(["int_seen", "text_seen"])


MIXED = [  # (text in the CSV, the UTC instant it means)
    ("2024-05-01T12:00:00+02:00", T10),
    ("2024-05-01T10:00:00Z", T10),
    ("2024-05-01 10:00:00", T10),  # naive text is UTC
    ("2024-05-01T05:00:00-05:00", T10),
    ("2024-05-01T09:59:59.999999Z", T10 - 1),
    ("2024-05-01T13:59:59+02:00", T10 + 7199 * S),
    ("2024-05-01 12:00:00+00:00", T10 + 7200 * S),
    ("2024-05-01T07:59:59Z", T10 - 7201 * S),
]


@pytest.mark.parametrize(
    "rows",
    [
        pytest.param(MIXED, id="offsets-Z-and-naive"),
        pytest.param([r for r in MIXED if not r[0].startswith("2024-05-01 10")], id="offsets-and-Z-only"),
        pytest.param([r for r in MIXED if r[0][-1] != "Z" and r[0][-6] not in "+-"], id="naive-only"),
    ],
)
def test_csv_times_with_mixed_offsets_equal_the_parquet_spine(csv_project, tmp_path, rows):
    path = tmp_path / "spine.csv"
    path.write_text("user_id,when\n" + "".join(f"007,{text}\n" for text, _ in rows))
    out = csv_project.training_set(features=["by_int:int_seen"], spine=path, timestamp="when")
    parquet = _parquet_spine(tmp_path, {"user_id": [7] * len(rows)}, [t for _, t in rows])
    expected = csv_project.training_set(features=["by_int:int_seen"], spine=parquet, timestamp="when")
    assert out.column("int_seen").to_pylist() == expected.column("int_seen").to_pylist()
    hour = {T10 - 7201 * S: None, T10 - 1: "int 08", T10: "int 10", T10 + 7199 * S: "int 10", T10 + 7200 * S: "int 12"}
    assert out.column("int_seen").to_pylist() == [hour[t] for _, t in rows]


def test_csv_times_whose_form_changes_past_the_first_block(csv_project, tmp_path):
    """A big CSV whose first rows all carry offsets and whose last rows are naive or Z: every row keeps its own."""
    head = [("2024-05-01T12:00:00+02:00", T10)] * 40_000  # > 1 MB, pyarrow's first block
    rows = [*head, ("2024-05-01 12:00:00", T10 + 7200 * S), ("2024-05-01T07:59:59Z", T10 - 7201 * S)]
    path = tmp_path / "spine.csv"
    path.write_text("user_id,when\n" + "".join(f"007,{text}\n" for text, _ in rows))
    out = csv_project.training_set(features=["by_int:int_seen"], spine=path)
    assert out.num_rows == len(rows)
    assert out.column("int_seen").to_pylist()[-3:] == ["int 10", "int 12", None]
