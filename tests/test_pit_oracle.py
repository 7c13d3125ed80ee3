"""Training sets against the brute-force oracle, on random data (hypothesis)."""

from __future__ import annotations

import math
from pathlib import Path

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from bigml_fs.errors import DataError
from tests import oracle
from tests.helpers import load, micros_to_ts, write_project

S = 1_000_000
AGGS = ["count", "sum", "avg", "min", "max", "stddev", "variance", "count_distinct", "first", "last"]

events_strategy = st.lists(
    st.tuples(
        st.one_of(st.none(), st.integers(1, 3)) | st.integers(1, 3),
        st.integers(0, 6),
        st.integers(-60, 2000).map(lambda c: None if c < 0 else c),  # created: ms after ts; ~3% null
        st.one_of(st.none(), st.integers(-5, 5)),
        st.one_of(st.none(), st.sampled_from(["a", "b", "c"])),
    ),
    min_size=0,
    max_size=30,
)


def _events(raw) -> list[oracle.Event]:
    return [
        oracle.Event(k, ts * S, None if c is None else ts * S + c * 1000, None if v is None else float(v), lab)
        for k, ts, c, v, lab in raw
    ]


def _table(events: list[oracle.Event]) -> pa.Table:
    return pa.table(
        {
            "k": pa.array([e.key for e in events], type=pa.int64()),
            "ts": micros_to_ts([e.ts for e in events]),
            "created": micros_to_ts([e.created for e in events]),
            "value": pa.array([e.value for e in events], type=pa.float64()),
            "label": pa.array([e.label for e in events], type=pa.string()),
        }
    )


def _project(root: Path, events: list[oracle.Event], ttl: int | None, window: int) -> Path:
    ttl_line = f"ttl: {ttl}s" if ttl else ""
    aggs = "\n".join(
        f"          - {{name: {agg}_v, agg: {agg}, "
        f"expr: {'label' if agg in ('count_distinct', 'first', 'last') else 'value'}, window: {window}s}}"
        for agg in AGGS
    )
    features = f"""
    feature_views:
      - name: lv
        entities: [thing]
        source: events
        {ttl_line}
        features:
          - {{name: v, expr: value}}
          - {{name: lab, expr: label}}
      - name: wv
        entities: [thing]
        source: events
        features:
          - {{name: latest_in_wv, expr: value}}
          - {{name: n_events, agg: count, window: {window}s}}
          - {{name: first_num, agg: first, expr: value, window: {window}s}}
          - {{name: last_num, agg: last, expr: value, window: {window}s}}
          - {{name: n_positive, agg: count, window: {window}s, where: "value > 0"}}
          - {{name: sum_a, agg: sum, expr: value, window: {window}s, where: "label = 'a'"}}
{aggs}
    """
    project = {
        "name": "prop",
        "entities": [{"name": "thing", "join_keys": ["k"]}],
        "sources": [
            {"name": "events", "path": "data/events.parquet", "timestamp": "ts", "created_timestamp": "created"}
        ],
    }
    return write_project(root, project, features, tables={"events": _table(events)})


def _tie_decided(events: list[oracle.Event], key, t: int) -> bool:
    at_or_before = [e.ts for e in events if e.key == key and e.key is not None and e.ts <= t]
    return (
        bool(at_or_before)
        and len({(e.created, e.value, e.label) for e in events if e.key == key and e.ts == max(at_or_before)}) > 1
    )


def _close(a, b) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, str) or isinstance(b, str):
        return a == b
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


SPINES = st.lists(
    st.tuples(
        st.one_of(st.none(), st.integers(1, 4)) | st.integers(1, 4), st.integers(-2, 30), st.sampled_from([0, 0, 1, -1])
    ),
    min_size=1,
    max_size=15,
)
TTLS = st.sampled_from([None, 1, 3, 10])
WINDOWS = st.sampled_from([1, 2, 5, 12])


def oracle_examples(test):
    """The hand-picked edge cases every run (and every engine, see test_engines.py) checks."""
    test = example(  # ties on event time broken by created (null lowest), events exactly at t and t - w
        raw=[
            (1, 5, 0, 3, "a"),
            (1, 5, 900, 4, "b"),
            (1, 5, None, 1, "c"),
            (1, 2, 5, 2, "a"),
            (1, 2, 5, 2, "a"),
            (2, 3, None, None, None),
            (None, 4, 1, 1, "b"),
        ],
        spine_raw=[
            (1, 5, 0),
            (1, 7, 0),
            (1, 7, 1),
            (1, 10, 0),
            (2, 3, 0),
            (3, 5, 0),
            (None, 5, 0),
            (1, 5, 0),
            (1, 1, 0),
        ],
        ttl=3,
        window=2,
    )(test)
    test = example(raw=[(1, 1, None, 1, "a"), (1, 1, None, 2, "a")], spine_raw=[(1, 2, 0)], ttl=None, window=1)(
        test
    )  # ambiguous tie
    return example(raw=[(1, 0, 0, None, None), (1, 0, 0, None, "a")], spine_raw=[(1, 2, 0)], ttl=1, window=1)(
        test
    )  # tie differs only in a column the view does not use


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(raw=events_strategy, spine_raw=SPINES, ttl=TTLS, window=WINDOWS)
@oracle_examples
def test_training_set_matches_oracle(tmp_path_factory, raw, spine_raw, ttl, window):
    check_against_oracle(tmp_path_factory.mktemp("prop"), raw, spine_raw, ttl, window)


def check_against_oracle(root: Path, raw, spine_raw, ttl, window) -> None:
    """One random case: the training set equals the brute-force oracle (or both find an ambiguous tie)."""
    events = _events(raw)
    _project(root, events, ttl, window)
    # spine times: whole seconds, sometimes a microsecond off, to hit the edges t and t - w exactly
    spine = [(k, t * S + d) for k, t, d in spine_raw]
    spine_table = pa.table(
        {"k": pa.array([k for k, _ in spine], type=pa.int64()), "event_timestamp": micros_to_ts([t for _, t in spine])}
    )
    features = ["lv:*", "wv:*"]
    try:
        expected_latest = [oracle.latest(events, k, t, None if ttl is None else ttl * S) for k, t in spine]
        for k, t in spine:
            oracle.latest(events, k, t, None, fields=("value",))  # the mixed view: no ttl, only `value`
        ambiguous = False
    except oracle.Ambiguous:
        ambiguous = True
    event("ambiguous" if ambiguous else "resolved")
    if not ambiguous and any(_tie_decided(events, k, t) for k, t in spine):
        event("a created timestamp decided a tie")
    with load(root) as project:
        if ambiguous:
            with pytest.raises(DataError, match="ambiguous"):
                project.training_set(features=features, spine=spine_table)
            return
        result = project.training_set(features=features, spine=spine_table).to_pylist()
    assert len(result) == len(spine)
    w = window * S
    for row, (k, t), (value, label) in zip(result, spine, expected_latest, strict=True):
        assert row["k"] == k
        assert _close(row["v"], value) and row["lab"] == label, (row, k, t)
        checks = {
            "latest_in_wv": oracle.latest(events, k, t, None, fields=("value",))[
                0
            ],  # a view mixing latest values and windows
            "n_events": oracle.window(events, k, t, w, "count", field=None),
            "first_num": oracle.window(events, k, t, w, "first"),
            "last_num": oracle.window(events, k, t, w, "last"),
            "n_positive": oracle.window(
                events, k, t, w, "count", field=None, where=lambda e: e.value is not None and e.value > 0
            ),
            "sum_a": oracle.window(events, k, t, w, "sum", where=lambda e: e.label == "a"),
        }
        for agg in AGGS:
            field = "label" if agg in ("count_distinct", "first", "last") else "value"
            checks[f"{agg}_v"] = oracle.window(events, k, t, w, agg, field=field)
        for name, expected in checks.items():
            assert _close(row[name], expected), (name, row[name], expected, k, t, events)
