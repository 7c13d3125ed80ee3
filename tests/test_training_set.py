"""Training-set rules on hand-made data: spines, times, keys and errors."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from bigml_fs.errors import BigmlError, DataError
from tests.helpers import load, micros_to_ts, write_project

S = 1_000_000
T0 = int(datetime(2024, 5, 1, tzinfo=timezone.utc).timestamp()) * S

PROJECT = {
    "name": "t",
    "entities": [{"name": "user", "join_keys": ["user_id"]}, {"name": "shop", "join_keys": ["shop_id"]}],
    "sources": [
        {"name": "clicks", "path": "data/clicks.parquet", "timestamp": "ts", "created_timestamp": "created"},
        {"name": "users", "path": "data/users.parquet"},
        {"name": "transfers", "path": "data/transfers.parquet", "timestamp": "ts"},
    ],
}
FEATURES = """
feature_views:
  - name: clicks_view
    entities: [user]
    source: clicks
    ttl: 1h
    features:
      - {name: last_page, expr: page}
      - {name: score}
      - {name: clicks_10m, agg: count, window: 10m}
  - name: shop_clicks
    entities: [shop]
    source: clicks
    features:
      - {name: score, expr: score * 10}
  - name: user_attrs
    entities: [user]
    source: users
    features:
      - {name: plan}
  - name: sent
    entities: [{name: user, keys: {user_id: sender_id}}]
    source: transfers
    features:
      - {name: sent_sum_1d, agg: sum, expr: amount, window: 1d}
  - name: received
    entities: [{name: user, keys: {user_id: receiver_id}}]
    source: transfers
    features:
      - {name: received_sum_1d, agg: sum, expr: amount, window: 1d}
"""


@pytest.fixture()
def project(tmp_path: Path):
    clicks = pa.table(
        {
            "user_id": pa.array([1, 1, 1, 2, 2], type=pa.int64()),
            "shop_id": pa.array([10, 10, 11, 10, 11], type=pa.int64()),
            "page": ["a", "b", "c", "x", "y"],
            "score": [1.0, 2.0, 3.0, 4.0, 5.0],
            "ts": micros_to_ts([T0, T0 + 60 * S, T0 + 60 * S, T0, T0 + 7200 * S]),
            "created": micros_to_ts([T0, T0 + 61 * S, T0 + 62 * S, T0, None]),
        }
    )
    users = pa.table({"user_id": pa.array([1, 2], type=pa.int64()), "plan": ["free", "pro"]})
    transfers = pa.table(
        {
            "sender_id": pa.array([1, 2, 1], type=pa.int64()),
            "receiver_id": pa.array([2, 1, 2], type=pa.int64()),
            "amount": [5.0, 7.0, 11.0],
            "ts": micros_to_ts([T0, T0 + S, T0 + 2 * S]),
        }
    )
    root = write_project(
        tmp_path / "p", PROJECT, FEATURES, tables={"clicks": clicks, "users": users, "transfers": transfers}
    )
    with load(root) as p:
        yield p


def spine(keys: dict[str, list], times: list[int | None], column: str = "event_timestamp") -> pa.Table:
    return pa.table({**{k: pa.array(v, type=pa.int64()) for k, v in keys.items()}, column: micros_to_ts(times)})


def test_latest_value_rules(project):
    out = project.training_set(
        features=["clicks_view:last_page,clicks_view:score"],
        spine=spine({"user_id": [1, 1, 1, 1, 3, None]}, [T0 - 1, T0, T0 + 60 * S, T0 + 3660 * S + 1, T0, T0]),
    ).to_pylist()
    assert [r["last_page"] for r in out] == [
        None,
        "a",
        "c",
        None,
        None,
        None,
    ]  # created breaks the tie at +60s; ttl 1h expires; unseen and null keys


def test_windows_exclude_t_and_include_t_minus_w(project):
    times = [T0, T0 + 1, T0 + 600 * S, T0 + 600 * S + 1, T0 + 660 * S, T0 + 660 * S + 1]
    out = project.training_set(
        features=["clicks_view:clicks_10m"], spine=spine({"user_id": [1] * 6}, times)
    ).to_pylist()
    assert [r["clicks_10m"] for r in out] == [0, 1, 3, 2, 2, 0]


def test_spine_order_columns_and_duplicates_are_kept(project):
    s = pa.table(
        {
            "note": ["z", "y", "z"],
            "user_id": pa.array([2, 1, 2], type=pa.int64()),
            "event_timestamp": micros_to_ts([T0 + 7200 * S, T0 + 60 * S, T0 + 7200 * S]),
        }
    )
    out = project.training_set(features=["clicks_view:last_page", "user_attrs:plan"], spine=s)
    assert out.column_names == ["note", "user_id", "event_timestamp", "last_page", "plan"]
    assert out.column("last_page").to_pylist() == ["y", "c", "y"]
    assert out.column("plan").to_pylist() == ["pro", "free", "pro"]


def test_shared_feature_names_become_view__feature(project):
    s = spine({"user_id": [1], "shop_id": [10]}, [T0 + 60 * S])
    out = project.training_set(features=["clicks_view:score", "shop_clicks:score"], spine=s)
    assert out.column_names[-2:] == ["clicks_view__score", "shop_clicks__score"]
    assert out.to_pylist()[0]["shop_clicks__score"] == 20.0
    full = project.training_set(features=["user_attrs:plan"], spine=s, full_feature_names=True)
    assert "user_attrs__plan" in full.column_names


def test_mapped_entity_keys_use_the_mapped_spine_columns(project):
    s = spine({"sender_id": [1, 2], "receiver_id": [2, 1]}, [T0 + 3 * S, T0 + 3 * S])
    out = project.training_set(features=["sent:*", "received:*"], spine=s).to_pylist()
    assert [(r["sent_sum_1d"], r["received_sum_1d"]) for r in out] == [(16.0, 16.0), (7.0, 7.0)]


def test_csv_spine_with_per_row_offsets_and_string_keys(project, tmp_path):
    path = tmp_path / "spine.csv"
    # the same instant written in three offsets, and a naive time (UTC)
    path.write_text(
        "user_id,when\n1,2024-05-01T01:01:00+01:00\n1,2024-05-01T00:01:00Z\n"
        "1,2024-04-30T19:01:00-05:00\n1,2024-05-01 00:00:30\n"
    )
    out = project.training_set(features=["clicks_view:last_page"], spine=path).to_pylist()
    assert [r["last_page"] for r in out] == ["c", "c", "c", "a"]
    assert out[0]["when"] == "2024-05-01T01:01:00+01:00"  # spine columns unchanged


def test_csv_spine_empty_key_is_null(project, tmp_path):
    """Issue 14: an empty key in a CSV spine is NULL (null features), as in a Parquet spine; never a '' to cast."""
    path = tmp_path / "spine.csv"
    path.write_text("user_id,event_timestamp\n1,2024-05-01T00:01:00Z\n,2024-05-01T00:01:00Z\n")
    features = ["clicks_view:last_page", "user_attrs:plan"]
    out = project.training_set(features=features, spine=path)
    assert out.column("user_id").to_pylist() == ["1", None]
    assert [(r["last_page"], r["plan"]) for r in out.to_pylist()] == [("c", "free"), (None, None)]
    parquet = project.training_set(features=features, spine=spine({"user_id": [1, None]}, [T0 + 60 * S] * 2))
    assert out.select(["last_page", "plan"]) == parquet.select(["last_page", "plan"])


def test_csv_keys_keep_their_text_until_cast(tmp_path):
    users = pa.table({"user_id": ["007", "7"], "plan": ["agent", "number"]})
    project = {
        "name": "t",
        "entities": PROJECT["entities"],
        "sources": [{"name": "users", "path": "data/users.parquet"}],
    }
    root = write_project(
        tmp_path / "txt",
        project,
        "feature_views:\n  - {name: u, entities: [user], source: users, features: [{name: plan}]}\n",
        tables={"users": users},
    )
    path = tmp_path / "spine.csv"
    path.write_text("user_id,event_timestamp\n007,2024-05-01\n7,2024-05-01\n")
    with load(root) as p:
        assert p.training_set(features=["u:plan"], spine=path).column("plan").to_pylist() == ["agent", "number"]


def test_naive_date_and_nanosecond_spine_times(project):
    naive = pa.table({"user_id": pa.array([1], type=pa.int64()), "t": pa.array([T0 + 60 * S], type=pa.timestamp("us"))})
    assert project.training_set(features=["clicks_view:last_page"], spine=naive).column("last_page").to_pylist() == [
        "c"
    ]
    nanos = pa.table(
        {
            "user_id": pa.array([1], type=pa.int64()),
            "t": pa.array([(T0 + 60 * S) * 1000 - 1], type=pa.timestamp("ns", tz="UTC")),
        }
    )
    assert project.training_set(features=["clicks_view:last_page"], spine=nanos).column("last_page").to_pylist() == [
        "a"
    ]  # truncated to µs, just before +60s
    new_york = pa.table(
        {
            "user_id": pa.array([1], type=pa.int64()),
            "t": pa.array([T0 + 60 * S - 1], type=pa.timestamp("us", tz="America/New_York")),
        }
    )
    assert project.training_set(features=["clicks_view:last_page"], spine=new_york).column("last_page").to_pylist() == [
        "a"
    ]
    day = pa.table({"user_id": pa.array([1], type=pa.int64()), "d": pa.array([T0 // S // 86400], type=pa.date32())})
    assert project.training_set(features=["clicks_view:last_page"], spine=day).column("last_page").to_pylist() == ["a"]


def test_spine_keys_are_cast_to_the_source_type(project):
    s = pa.table({"user_id": ["1", "2"], "event_timestamp": micros_to_ts([T0, T0])})
    assert project.training_set(features=["user_attrs:plan"], spine=s).column("plan").to_pylist() == ["free", "pro"]
    bad = pa.table({"user_id": ["1", "x"], "event_timestamp": micros_to_ts([T0, T0])})
    with pytest.raises(DataError, match="'user_id'.*'x'"):
        project.training_set(features=["user_attrs:plan"], spine=bad)


@pytest.mark.parametrize(
    ("table", "kwargs", "message"),
    [
        (
            pa.table({"shop_id": pa.array([1], type=pa.int64()), "event_timestamp": micros_to_ts([T0])}),
            {},
            "lacks key column.*user_id",
        ),
        (pa.table({"user_id": pa.array([1], type=pa.int64())}), {}, "time column"),
        (
            pa.table({"user_id": pa.array([1], type=pa.int64()), "t": ["not a time"]}),
            {"timestamp": "t"},
            "'t'.*not a time",
        ),
        (pa.table({"user_id": pa.array([1], type=pa.int64()), "t": [5]}), {"timestamp": "t"}, "not a timestamp"),
        (pa.table({"user_id": pa.array([], type=pa.int64()), "event_timestamp": micros_to_ts([])}), {}, "empty"),
        (
            pa.table({"user_id": pa.array([1], type=pa.int64()), "a": micros_to_ts([T0]), "b": micros_to_ts([T0])}),
            {},
            "several time columns",
        ),
        (
            pa.table({"user_id": pa.array([1], type=pa.int64()), "event_timestamp": micros_to_ts([T0])}),
            {"timestamp": "when"},
            "no time column 'when'",
        ),
        (
            pa.table({"user_id": pa.array([1], type=pa.int64()), "plan": ["x"], "event_timestamp": micros_to_ts([T0])}),
            {},
            "overwrite the spine column 'plan'",
        ),
        (
            pa.table(
                {
                    "user_id": pa.array([1, 1, 1], type=pa.int64()),
                    "when": ["2024-01-01T00:00:00Z", "2024-01-02 10:00:00+02:00", "yesterday"],
                }
            ),
            {},
            "'when'.*'yesterday'",
        ),
    ],
)
def test_bad_spines_are_clear_errors(project, table, kwargs, message):
    with pytest.raises(BigmlError, match=message):
        project.training_set(features=["user_attrs:plan", "clicks_view:score"], spine=table, **kwargs)


def test_unknown_features_suggest_the_closest(project):
    s = spine({"user_id": [1]}, [T0])
    with pytest.raises(BigmlError, match="did you mean 'last_page'"):
        project.training_set(features=["clicks_view:last_pag"], spine=s)
    with pytest.raises(BigmlError, match="did you mean 'user_attrs'"):
        project.training_set(features=["user_atrs:*"], spine=s)


def test_ambiguous_ties_name_view_keys_and_time(tmp_path):
    clicks = pa.table(
        {"user_id": pa.array([1, 1, 1], type=pa.int64()), "page": ["a", "b", "a"], "ts": micros_to_ts([T0, T0, T0 + S])}
    )
    project = {
        "name": "t",
        "entities": PROJECT["entities"],
        "sources": [{"name": "clicks", "path": "data/clicks.parquet", "timestamp": "ts"}],
    }
    features = "feature_views:\n  - {name: v, entities: [user], source: clicks, features: [{name: page}]}\n"
    root = write_project(tmp_path / "amb", project, features, tables={"clicks": clicks})
    with load(root) as p:
        assert p.training_set(features=["v:page"], spine=spine({"user_id": [1]}, [T0 + S])).column(
            "page"
        ).to_pylist() == ["a"]
        with pytest.raises(DataError, match=r"view 'v'.*user_id=1.*2024-05-01T00:00:00\+00:00"):
            p.training_set(features=["v:page"], spine=spine({"user_id": [1]}, [T0 + S - 1]))


def test_static_view_with_duplicate_keys_is_an_error(tmp_path):
    users = pa.table({"user_id": pa.array([1, 1, 2, 2], type=pa.int64()), "plan": ["free", "pro", "x", "x"]})
    project = {
        "name": "t",
        "entities": PROJECT["entities"],
        "sources": [{"name": "users", "path": "data/users.parquet"}],
    }
    features = "feature_views:\n  - {name: u, entities: [user], source: users, features: [{name: plan}]}\n"
    root = write_project(tmp_path / "dup", project, features, tables={"users": users})
    with load(root) as p:
        assert p.training_set(features=["u:plan"], spine=spine({"user_id": [2]}, [T0])).column("plan").to_pylist() == [
            "x"
        ]  # identical duplicates are fine
        with pytest.raises(DataError, match="view 'u'.*user_id=1"):
            p.training_set(features=["u:plan"], spine=spine({"user_id": [1]}, [T0]))


def test_output_file_matches_the_arrow_result(project, tmp_path):
    s = spine({"user_id": [2, 1]}, [T0 + 7200 * S, T0 + 60 * S])
    out = tmp_path / "ts.parquet"
    rows = project.training_set(features=["clicks_view:*"], spine=s, output=out)
    assert rows == 2
    written, returned = pq.read_table(out), project.training_set(features=["clicks_view:*"], spine=s)
    assert written.to_pylist() == returned.to_pylist()
    assert [f.type for f in written.schema] == [f.type for f in returned.schema]


def test_every_example_model_has_a_training_set(example_project):
    with load(example_project) as p:
        out = p.training_set(model="amount_regressor")
        assert out.num_rows > 0 and {"amount", "amount_avg_30d", "spend_prev_day", "credit_limit"} <= set(
            out.column_names
        )
        assert out.column("spend_prev_day").null_count < out.num_rows  # the sql-model view finds values
        anomaly = p.training_set(model="spend_anomaly")
        assert anomaly.num_rows == out.num_rows and "merchants_7d" in anomaly.column_names


def test_model_labels_are_the_spine(example_project):
    with load(example_project) as p:
        out = p.training_set(model="fraud_detector")
        labels = p.engine.to_arrow("SELECT count(*) AS n FROM labeled_payments").column("n")[0].as_py()
    assert out.num_rows == labels
    assert {"is_fraud", "txn_count_1h", "chargeback_count_30d", "segment"} <= set(out.column_names)
    ts = out.column("ts").to_pylist()
    assert ts == sorted(ts)


def test_multi_key_entities_match_on_every_key(tmp_path):
    from tests import oracle

    rows = [(o, d, t) for o in (1, 2) for d in (1, 2) for t in range(0, 10, 3)]
    flights = pa.table(
        {
            "origin": pa.array([r[0] for r in rows], type=pa.int64()),
            "dest": pa.array([r[1] for r in rows], type=pa.int64()),
            "delay": [float(r[0] * 100 + r[1] * 10 + r[2]) for r in rows],
            "ts": micros_to_ts([T0 + r[2] * S for r in rows]),
        }
    )
    project = {
        "name": "t",
        "entities": [{"name": "route", "join_keys": ["origin", "dest"]}],
        "sources": [{"name": "flights", "path": "data/flights.parquet", "timestamp": "ts"}],
    }
    features = """
    feature_views:
      - name: route_delays
        entities: [route]
        source: flights
        ttl: 5s
        features:
          - {name: last_delay, expr: delay}
          - {name: delay_sum_4s, agg: sum, expr: delay, window: 4s}
    """
    root = write_project(tmp_path / "mk", project, features, tables={"flights": flights})
    spine_rows = [(o, d, t) for o in (1, 2, 3) for d in (1, 2) for t in (0, 4, 7, 16)]
    s = pa.table(
        {
            "origin": pa.array([r[0] for r in spine_rows], type=pa.int64()),
            "dest": pa.array([r[1] for r in spine_rows], type=pa.int64()),
            "event_timestamp": micros_to_ts([T0 + r[2] * S for r in spine_rows]),
        }
    )
    with load(root) as p:
        out = p.training_set(features=["route_delays:*"], spine=s).to_pylist()
    events = [
        oracle.Event(r[0] * 10 + r[1], T0 + r[2] * S, None, float(r[0] * 100 + r[1] * 10 + r[2]), None) for r in rows
    ]
    for row, (o, d, t) in zip(out, spine_rows, strict=True):
        key = o * 10 + d
        assert row["last_delay"] == oracle.latest(events, key, T0 + t * S, 5 * S)[0]
        assert row["delay_sum_4s"] == oracle.window(events, key, T0 + t * S, 4 * S, "sum")


def test_sql_and_expressions_are_transpiled_from_the_project_dialect(tmp_path):
    orders = pa.table(
        {"user_id": pa.array([1, 1], type=pa.int64()), "amount": [10.4, 20.6], "ts": micros_to_ts([T0, T0 + S])}
    )
    project = {
        "name": "t",
        "sql_dialect": "postgres",
        "entities": PROJECT["entities"],
        "sources": [{"name": "orders", "path": "data/orders.parquet", "timestamp": "ts"}],
    }
    sql = {
        "orders_pg": (
            "SELECT user_id, amount::integer AS whole, ts, 'y' || TO_CHAR(ts, 'YYYY') AS label "
            "FROM {{ source('orders') }}"
        )
    }
    features = """
    feature_views:
      - name: o
        entities: [user]
        source: orders_pg
        timestamp: ts
        features:
          - {name: whole}
          - {name: label}
          - {name: year, expr: "TO_CHAR(ts, 'YYYY')::integer"}
    """
    root = write_project(tmp_path / "pg", project, features, sql=sql, tables={"orders": orders})
    with load(root) as p:
        row = p.training_set(features=["o:*"], spine=spine({"user_id": [1]}, [T0 + S])).to_pylist()[0]
    assert (row["whole"], row["label"], row["year"]) == (21, "y2024", 2024)


def test_a_failed_run_keeps_the_previous_output(project, tmp_path, monkeypatch):
    from bigml_fs.errors import EngineError

    out = tmp_path / "keep.parquet"
    good = spine({"user_id": [1]}, [T0 + 60 * S])
    project.training_set(features=["clicks_view:last_page"], spine=good, output=out)
    before = out.read_bytes()

    def crash_midway(query, path):
        path.write_bytes(b"half a parquet file")
        raise EngineError("disk full")

    monkeypatch.setattr(project.engine, "copy_to_parquet", crash_midway)
    with pytest.raises(EngineError):
        project.training_set(features=["clicks_view:last_page"], spine=good, output=out)
    assert out.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".partial")] == []


def test_a_null_spine_time_gives_null_features(project):
    out = project.training_set(
        features=["clicks_view:*", "user_attrs:plan"], spine=spine({"user_id": [1, 1]}, [None, T0 + 60 * S])
    ).to_pylist()
    assert [r["last_page"] for r in out] == [None, "c"]
    assert [r["clicks_10m"] for r in out] == [None, 1]
    assert [r["plan"] for r in out] == ["free", "free"]  # a static view holds at every time, even an unknown one
