"""OnlineReader.read: statuses, naming, entity types, errors, one round trip per Feast view, Feast's JSON."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from bigml_fs.errors import BigmlError, DataError
from bigml_fs.store.naming import feast_parts
from bigml_fs.store.online import open_store
from bigml_fs.store.online_read import NOT_FOUND, OUTSIDE_MAX_AGE, PRESENT
from tests.helpers import load
from tests.test_online_stores import T0, feast_entities, feast_view, make_project, random_data

TS = pa.timestamp("us", tz="UTC")
S0 = T0.replace(microsecond=0)


@pytest.fixture
def loaded(tmp_path):
    """A project whose SQLite store holds 50 rows of ``stats`` (ttl 1d) and 3 of ``by_customer`` (both kinds)."""
    root = make_project(tmp_path / "p")
    project = load(root)
    stats = feast_parts(project.catalog.views["stats"])[0]
    latest, windows = feast_parts(project.catalog.views["by_customer"])
    data = random_data(np.random.default_rng(5), 50)
    # event times: rows 0-24 fresh (T0 - 1h), rows 25-49 older than the 1d ttl (T0 - 2d)
    events = [T0 - timedelta(hours=1)] * 25 + [T0 - timedelta(days=2)] * 25
    data = data.set_column(data.schema.get_field_index("event_timestamp"), "event_timestamp", pa.array(events, TS))
    store = open_store(project.spec, project.paths)
    store.write(stats, data)
    ids = data.column("customer_id").slice(0, 3)
    store.write(
        latest,
        pa.table(
            {
                "customer_id": ids,
                "event_timestamp": pa.array([T0 - timedelta(days=400)] * 3, TS),
                "f_i64": pa.array([7, None, 9], pa.int64()),
            }
        ),
    )
    store.write(
        windows,
        pa.table(
            {"customer_id": ids, "event_timestamp": pa.array([T0] * 3, TS), "f_cnt_1d": pa.array([0, 4, 2], pa.int64())}
        ),
    )
    store.close()
    yield project, data
    project.close()


def _keys(data: pa.Table, rows: list[int]) -> dict[str, list]:
    return {
        "customer_id": [data.column("customer_id")[i].as_py() for i in rows],
        "shop_code": [data.column("shop_code")[i].as_py() for i in rows],
    }


def test_statuses_present_not_found_outside_max_age(loaded):
    project, data = loaded
    entities = _keys(data, [0, 30, 1])
    entities["customer_id"].append(10**12)
    entities["shop_code"].append("nope")
    r = project.online.read(["stats:f_i64", "stats:f_str"], entities, now=T0)
    assert r.feature_names == ["customer_id", "shop_code", "f_i64", "f_str"]
    col = r.feature_names.index("f_i64")
    assert r.statuses[col] == [PRESENT, OUTSIDE_MAX_AGE, PRESENT, NOT_FOUND]
    assert r.values[col] == [data.column("f_i64")[0].as_py(), None, data.column("f_i64")[1].as_py(), None]
    # the expired row still carries its event time; the unknown key has none
    times = r.event_timestamps[col]
    # (SQLite keeps Feast's whole-second event times)
    assert times[:3] == [S0 - timedelta(hours=1), S0 - timedelta(days=2), S0 - timedelta(hours=1)]
    assert times[3] is None
    # join key columns: PRESENT, no time, values as given
    assert r.statuses[0] == [PRESENT] * 4 and r.values[0] == entities["customer_id"]
    # a later request time expires the fresh rows too; an earlier one keeps the old ones
    assert project.online.read(["stats:f_i64"], _keys(data, [0]), now=T0 + timedelta(days=2)).statuses[-1] == [
        OUTSIDE_MAX_AGE
    ]
    assert project.online.read(["stats:f_i64"], _keys(data, [30]), now=T0 - timedelta(days=1, hours=12)).statuses[
        -1
    ] == [PRESENT]


def test_no_ttl_views_never_expire_and_windows_carry_materialize_time(loaded):
    project, data = loaded
    ids = data.column("customer_id").slice(0, 3).to_pylist()
    r = project.online.read(["by_customer:*"], {"customer_id": [*ids, -1]}, now=T0 + timedelta(days=3000))
    assert r.feature_names == ["customer_id", "f_i64", "f_cnt_1d"]
    assert r.values[1] == [7, None, 9, None]
    assert r.statuses[1] == [PRESENT, PRESENT, PRESENT, NOT_FOUND]  # a stored null is PRESENT, as in Feast
    assert r.values[2] == [0, 4, 2, None]
    assert r.event_timestamps[2] == [S0, S0, S0, None]


def test_shared_names_and_full_feature_names(loaded):
    project, data = loaded
    entities = _keys(data, [0])
    r = project.online.read(["stats:f_i64", "by_customer:f_i64", "stats:f_bool"], entities, now=T0)
    assert r.feature_names == ["customer_id", "shop_code", "stats__f_i64", "by_customer__f_i64", "f_bool"]
    r = project.online.read(["stats:f_bool", "by_customer:f_cnt_1d"], entities, full_feature_names=True, now=T0)
    assert r.feature_names == ["customer_id", "shop_code", "stats__f_bool", "by_customer__f_cnt_1d"]


def test_entities_as_dict_arrow_pandas_and_casts(loaded):
    project, data = loaded
    entities = _keys(data, [0, 1, 2])
    want = project.online.read(["stats:*"], entities, now=T0).to_dict()
    assert project.online.read(["stats:*"], pa.table(entities), now=T0).to_dict() == want
    assert project.online.read(["stats:*"], pd.DataFrame(entities), now=T0).to_dict() == want
    # numbers given as int32 or as whole floats are cast to the int64 key
    as_floats = {"customer_id": [float(v) for v in entities["customer_id"]], "shop_code": entities["shop_code"]}
    assert project.online.read(["stats:*"], as_floats, now=T0).to_dict() == want
    # a null key reads as not found
    r = project.online.read(["stats:f_i64"], {"customer_id": [None], "shop_code": ["a"]}, now=T0)
    assert r.statuses[-1] == [NOT_FOUND]


@pytest.mark.parametrize(
    ("entities", "text"),
    [
        (
            {"customer_id": ["abc"], "shop_code": ["a"]},
            "entity key 'customer_id' must be an integer (int64); got 'abc'",
        ),
        ({"customer_id": [1.5], "shop_code": ["a"]}, "entity key 'customer_id' must be an integer (int64); got 1.5"),
        ({"customer_id": [True], "shop_code": ["a"]}, "entity key 'customer_id' must be an integer (int64)"),
        ({"customer_id": [1, "x"], "shop_code": ["a", "b"]}, "entity key 'customer_id' must be an integer (int64)"),
        (
            {"customer_idd": [1], "shop_code": ["a"]},
            "lack the join key(s) customer_id needed by stats (did you mean 'customer_idd'?)",
        ),
        ({"customer_id": [1, 2], "shop_code": ["a"]}, "different lengths"),
    ],
)
def test_entity_errors_name_the_key_and_type(loaded, entities, text):
    project, _ = loaded
    with pytest.raises(DataError) as info:
        project.online.read(["stats:f_i64"], entities, now=T0)
    assert text in str(info.value)


def test_unknown_features_suggest(loaded):
    project, _ = loaded
    with pytest.raises(BigmlError, match=r"unknown feature view 'stat' \(did you mean 'stats'\?\)"):
        project.online.read(["stat:f_i64"], {"customer_id": [1]})
    with pytest.raises(BigmlError, match=r"view 'stats' has no feature 'f_i65' \(did you mean 'f_i64'\?\)"):
        project.online.read(["stats:f_i65"], {"customer_id": [1]})


def test_one_round_trip_per_feast_view(loaded):
    project, data = loaded
    store = project.online.store  # the reader's one handle
    calls: list[tuple[str, int]] = []
    fetch = store.fetch

    def spy(part, keys_bin, features):
        calls.append((part.name, len(keys_bin)))
        return fetch(part, keys_bin, features)

    store.fetch = spy
    n = 1000
    rng = np.random.default_rng(0)
    rows = rng.integers(0, 50, n).tolist()
    entities = _keys(data, rows)
    r = project.online.read(["stats:f_i64", "stats:f_f64", "by_customer:*"], entities, now=T0)
    assert sorted(calls) == [("by_customer", n), ("by_customer__windows", n), ("stats", n)]
    assert r.values[r.feature_names.index("f_f64")] == [
        data.column("f_f64")[i].as_py() if i < 25 else None for i in rows
    ]


def test_to_dict_is_feasts_feature_server_json(loaded, tmp_path):
    """Plain Feast over the same store returns the same JSON (views without ttl, so Feast's missing ttl check does not
    matter)."""
    from feast import FeatureStore
    from feast.feature_server_utils import convert_response_to_dict
    from feast.repo_config import RepoConfig

    project, data = loaded
    latest, windows = feast_parts(project.catalog.views["by_customer"])
    config = RepoConfig(
        project="onl",
        provider="local",
        registry=str(tmp_path / "registry.db"),
        online_store={"type": "sqlite", "path": str(project.root / ".bigml" / "online.db")},
        entity_key_serialization_version=3,
        repo_path=tmp_path,
    )
    fs = FeatureStore(config=config)
    fs.apply([*feast_entities(latest), feast_view(latest), feast_view(windows)])
    ids = [*data.column("customer_id").slice(0, 3).to_pylist(), -5]
    theirs = convert_response_to_dict(
        fs.get_online_features(
            features=["by_customer:f_i64", "by_customer__windows:f_cnt_1d"],
            entity_rows=[{"customer_id": i} for i in ids],
        ).proto
    )
    ours = project.online.read(["by_customer:f_i64", "by_customer:f_cnt_1d"], {"customer_id": ids}).to_dict()
    assert ours == theirs


# --- the hot path: state loaded once, no file touched per request, one store handle ------------------


def _publish_by_customer(project) -> None:
    """Publish a run whose state says ``by_customer`` was materialized (what a materialize elsewhere leaves)."""
    from bigml_fs.store import state

    paths = project.paths
    run = state.new_run_dir(paths)
    view = state.ViewState(
        fingerprint="f", spec_hash="s", schema_hash="h", parts=["by_customer", "by_customer__windows"],
        end="2024-05-01T00:00:00+00:00", end_us=0, watermark="2024-05-01T00:00:00+00:00", settled_before_us=0,
        settled_count=0, count_at_end=0, finished_at="2024-05-01T00:00:00+00:00", run=run.name,
    )  # fmt: skip
    state.publish(paths, run, state.PublishedState(run=run.name, views={"by_customer": view}))


def test_a_read_touches_no_file(loaded, monkeypatch):
    """After the first read, requests neither stat nor open a file: types and state come from memory."""
    import builtins
    import os

    from bigml_fs.store import online_read

    project, data = loaded
    features = ["stats:f_i64", "stats:f_str", "by_customer:f_cnt_1d"]
    first = project.online.read(features, _keys(data, [0, 1]), now=T0).to_dict()
    monkeypatch.setattr(online_read, "RECHECK_SECONDS", 3600.0)

    touched: list[str] = []

    def watched(name, original):
        def call(*args, **kwargs):
            touched.append(f"{name}{args[:1]}")
            return original(*args, **kwargs)

        return call

    for name in ("stat", "lstat", "readlink", "scandir", "listdir", "open"):
        monkeypatch.setattr(os, name, watched(f"os.{name}", getattr(os, name)))
    monkeypatch.setattr(builtins, "open", watched("open", builtins.open))
    answers = [project.online.read(features, _keys(data, [0, 1]), now=T0).to_dict() for _ in range(3)]
    monkeypatch.undo()
    assert touched == []
    assert answers == [first] * 3


def test_a_run_published_elsewhere_is_seen_after_the_recheck(loaded, monkeypatch):
    """A materialize in another process is picked up by the `current` link check, not per request."""
    from bigml_fs.store import online_read

    project, _ = loaded
    unknown = {"customer_id": [10**12], "shop_code": ["x"]}
    reader = project.online
    assert reader.read(["by_customer:f_cnt_1d"], unknown, now=T0).statuses[-1] == [NOT_FOUND]
    monkeypatch.setattr(online_read, "RECHECK_SECONDS", 3600.0)
    _publish_by_customer(project)
    # not yet looked: the key still reads as never materialized
    assert reader.read(["by_customer:f_cnt_1d"], unknown, now=T0).statuses[-1] == [NOT_FOUND]
    monkeypatch.setattr(online_read, "RECHECK_SECONDS", 0.0)
    seen = reader.read(["by_customer:f_cnt_1d"], unknown, now=T0)
    assert seen.statuses[-1] == [PRESENT] and seen.columns[-1] == [0]  # a materialized window view: count 0


def test_one_store_handle_per_project(loaded):
    project, data = loaded
    handle = project.online.store
    project.online.read(["stats:f_i64"], _keys(data, [0]), now=T0)
    project.online_features(["stats:f_i64"], _keys(data, [0]))
    assert project.online.store is handle
