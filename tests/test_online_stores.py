"""Online stores write exactly what Feast's own online store classes read.

For SQLite, Redis and PostgreSQL (real servers, own key prefix / schema per
test), Arrow data of many types is written with bigml_fs's bulk writer and read
back with Feast 0.67's ``SqliteOnlineStore`` / ``RedisOnlineStore`` /
``PostgreSQLOnlineStore.online_read`` and with bigml_fs's reader.
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from bigml_fs.errors import EngineError
from bigml_fs.store.naming import feast_parts
from tests.helpers import load, read_rows, write_project

pytestmark = pytest.mark.feast

T0 = datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=timezone.utc)
FEATURES = {
    "f_i64": pa.int64(),
    "f_i32": pa.int32(),
    "f_f64": pa.float64(),
    "f_f32": pa.float32(),
    "f_str": pa.string(),
    "f_bool": pa.bool_(),
    "f_ts": pa.timestamp("us", tz="UTC"),
    "f_bin": pa.binary(),
}
VIEWS = """
feature_views:
  - name: stats
    entities: [customer, shop]
    source: events
    ttl: 1d
    features:
{features}
  - name: by_customer
    entities: [customer]
    source: events
    features:
      - {{name: f_i64}}
      - {{name: f_cnt_1d, agg: count, window: 1d}}
"""


def make_project(tmp_path: Path, online_store: dict | None = None, name: str = "onl") -> Path:
    """A project with a two-key view (int + string keys) of every storable type."""
    n = 4
    table = pa.table(
        {
            "customer_id": pa.array(range(n), pa.int64()),
            "shop_code": pa.array([f"s{i}" for i in range(n)]),
            "ts": pa.array([T0] * n, pa.timestamp("us", tz="UTC")),
            "created": pa.array([T0] * n, pa.timestamp("us", tz="UTC")),
            **{f: pa.nulls(n, t) for f, t in FEATURES.items()},
        }
    )
    project = {
        "name": name,
        "entities": [{"name": "customer", "join_keys": ["customer_id"]}, {"name": "shop", "join_keys": ["shop_code"]}],
        "sources": [
            {"name": "events", "path": "data/events.parquet", "timestamp": "ts", "created_timestamp": "created"}
        ],
    }
    if online_store:
        project["online_store"] = online_store
    features = "\n".join(f"      - {{name: {f}}}" for f in FEATURES)
    return write_project(tmp_path, project, VIEWS.format(features=features), tables={"events": table})


def random_data(rng: np.random.Generator, n: int, null_rate: float = 0.2) -> pa.Table:
    """Rows of the ``stats`` view: unique (customer_id, shop_code) keys, random values with nulls."""
    ids = rng.choice(10**6, n, replace=False) - 500_000
    shops = [rng.choice(["a", "b", "é", "long-" * 5, ""]) + str(i % 7) for i in range(n)]
    secs = rng.integers(-(10**6), 10**6, n)
    micros = rng.integers(0, 10**6, n)
    events = [T0 + timedelta(seconds=int(s), microseconds=int(m)) for s, m in zip(secs, micros, strict=True)]

    def maybe(values: list) -> list:
        return [None if rng.random() < null_rate else v for v in values]

    cols = {
        "customer_id": pa.array(ids, pa.int64()),
        "shop_code": pa.array(shops),
        "event_timestamp": pa.array(events, pa.timestamp("us", tz="UTC")),
        "created_timestamp": pa.array(maybe([e + timedelta(seconds=1) for e in events]), pa.timestamp("us", tz="UTC")),
        "f_i64": pa.array(maybe([int(v) for v in rng.integers(-(2**63), 2**63 - 1, n, dtype=np.int64)]), pa.int64()),
        "f_i32": pa.array(maybe([int(v) for v in rng.integers(-(2**31), 2**31 - 1, n)]), pa.int32()),
        "f_f64": pa.array(maybe([float(v) for v in rng.normal(0, 1e6, n)]), pa.float64()),
        "f_f32": pa.array(maybe([float(v) for v in rng.normal(0, 100, n).astype(np.float32)]), pa.float32()),
        "f_str": pa.array(maybe([rng.choice(["", "x", "héllo wörld", "a" * 300]) for _ in range(n)])),
        "f_bool": pa.array(maybe([bool(v) for v in rng.integers(0, 2, n)]), pa.bool_()),
        "f_ts": pa.array(
            maybe([T0 - timedelta(seconds=int(s), microseconds=7) for s in rng.integers(0, 10**8, n)]),
            pa.timestamp("us", tz="UTC"),
        ),
        "f_bin": pa.array(
            maybe([bytes(rng.integers(0, 256, int(k)).astype(np.uint8)) for k in rng.integers(0, 200, n)]), pa.binary()
        ),
    }
    return pa.table(cols)


# --- stores under test: (bigml_fs store, Feast RepoConfig, Feast store class) ---------------


def _feast_config(tmp_path: Path, project: str, online_store: dict):
    from feast.repo_config import RepoConfig

    return RepoConfig(
        project=project,
        provider="local",
        registry=str(tmp_path / "registry.db"),
        online_store=online_store,
        entity_key_serialization_version=3,
        repo_path=tmp_path,
    )


@pytest.fixture(params=["sqlite", "redis", "postgres"])
def store_case(request, tmp_path):
    """(project root, our store, Feast config, Feast store instance) for each backend."""
    kind = request.param
    if kind == "sqlite":
        root = make_project(tmp_path / "p")
        feast_online = {"type": "sqlite", "path": str(root / ".bigml" / "online.db")}
        project_name = "onl"
        schema = None
    elif kind == "redis":
        info, prefix = request.getfixturevalue("redis_prefix")
        root = make_project(tmp_path / "p", {"type": "redis", "host": info["host"], "port": info["port"]}, name=prefix)
        feast_online = {"type": "redis", "connection_string": f"{info['host']}:{info['port']}"}
        project_name, schema = prefix, None
    else:
        info, schema = request.getfixturevalue("postgres_schema")
        root = make_project(
            tmp_path / "p",
            {
                "type": "postgres",
                "host": info["host"],
                "port": info["port"],
                "user": info["user"],
                "database": info["database"],
                "schema": schema,
            },
        )
        feast_online = {
            "type": "postgres",
            "host": info["host"],
            "port": info["port"],
            "user": info["user"],
            "database": info["database"],
            "db_schema": schema,
            "password": "",
            "sslmode": "disable",
        }
        project_name = "onl"
    from bigml_fs.store.online import open_store

    project = load(root)
    store = open_store(project.spec, project.paths, schema=schema)
    config = _feast_config(tmp_path, project_name, feast_online)
    if kind == "sqlite":
        from feast.infra.online_stores.sqlite import SqliteOnlineStore as Feast
    elif kind == "redis":
        from feast.infra.online_stores.redis import RedisOnlineStore as Feast
    else:
        from feast.infra.online_stores.postgres_online_store.postgres import PostgreSQLOnlineStore as Feast
    yield kind, project, store, config, Feast()
    store.close()
    project.close()


def feast_entities(part):
    """One Feast Entity per join key of a part, typed like materialize types it."""
    from feast import Entity

    from bigml_fs.store import feast_types as ft

    return [
        Entity(name=k, join_keys=[k], value_type=ft.feast_type_from_sql(part.view.columns[k]).value_type_enum)
        for k in part.join_keys
    ]


def feast_view(part):
    """The Feast FeatureView of a part, typed like materialize types it."""
    from feast import FeatureView, Field, FileSource

    from bigml_fs.store import feast_types as ft

    entities = feast_entities(part)
    schema = [Field(name=k, dtype=ft.feast_type_from_sql(part.view.columns[k]).dtype) for k in part.join_keys]
    schema += [Field(name=f, dtype=ft.feast_type(FEATURES.get(f, pa.int64())).dtype) for f in part.feature_names]
    ttl = part.ttl or timedelta(0)
    return FeatureView(
        name=part.name,
        entities=entities,
        schema=schema,
        ttl=ttl,
        source=FileSource(path="unused.parquet", timestamp_field="event_timestamp"),
        online=True,
    )


def feast_read(feast, config, part, keys: pa.Table, features: list[str]):
    from feast.protos.feast.types.EntityKey_pb2 import EntityKey
    from feast.type_map import python_values_to_proto_values

    from bigml_fs.store import feast_types as ft

    fv = feast_view(part)
    protos = {
        k: python_values_to_proto_values(
            keys.column(k).to_pylist(), ft.feast_type_from_sql(part.view.columns[k]).value_type_enum
        )
        for k in part.join_keys
    }
    entity_keys = [
        EntityKey(join_keys=list(part.join_keys), entity_values=[protos[k][i] for k in part.join_keys])
        for i in range(keys.num_rows)
    ]
    return feast.online_read(config, fv, entity_keys, list(features))


def expected_python(column: pa.ChunkedArray, name: str) -> list:
    """What a value reads back as: timestamps as whole seconds (Feast's UNIX_TIMESTAMP), the rest as is."""
    values = column.to_pylist()
    if name == "f_ts":
        return [
            None if v is None else int((v - datetime(1970, 1, 1, tzinfo=timezone.utc)) / timedelta(seconds=1))
            for v in values
        ]
    return values


def proto_python(value) -> object:
    which = value.WhichOneof("val")
    return None if which is None else getattr(value, which)


def _stats_part(project):
    return feast_parts(project.catalog.views["stats"])[0]


def test_feast_reads_what_we_write(store_case):
    kind, project, store, config, feast = store_case
    part = _stats_part(project)
    data = random_data(np.random.default_rng(7), 300)
    assert store.write(part, data) == 300
    features = list(FEATURES)
    rows = feast_read(feast, config, part, data.select(["customer_id", "shop_code"]), features)
    assert len(rows) == data.num_rows
    events = data.column("event_timestamp").to_pylist()
    expected = {f: expected_python(data.column(f), f) for f in features}
    for i, (ts, values) in enumerate(rows):
        assert values is not None
        for f in features:
            got = proto_python(values[f])
            assert got == expected[f][i], (kind, f, i, got, expected[f][i])
        # SQLite keeps Feast's whole-second event times; Redis and PostgreSQL keep microseconds
        want = events[i].replace(microsecond=0) if kind == "sqlite" else events[i]
        assert ts == want, (kind, i, ts, events[i])


def test_our_reader_reads_back_and_misses(store_case):
    kind, project, store, _config, _feast = store_case
    part = _stats_part(project)
    data = random_data(np.random.default_rng(11), 200)
    store.write(part, data)
    keys = data.select(["customer_id", "shop_code"])
    # request order differs from write order, with duplicates and unknown keys
    order = [*np.random.default_rng(1).permutation(200)[:150].tolist(), 0, 0]
    req = keys.take(order)
    unknown = pa.table({"customer_id": pa.array([10**9, 1], pa.int64()), "shop_code": ["zz", "no-such-shop"]})
    req = pa.concat_tables([req, unknown])
    got = read_rows(store, part, req, list(FEATURES))
    assert got.num_rows == req.num_rows
    assert got.column("__found").to_pylist() == [True] * len(order) + [False, False]
    for f in FEATURES:
        want = data.column(f).take(order).to_pylist()
        if f == "f_ts":
            want = [None if v is None else v.replace(microsecond=0) for v in want]
        assert got.column(f).to_pylist()[: len(order)] == want, f
        assert got.column(f).to_pylist()[len(order) :] == [None, None]
    events = data.column("event_timestamp").take(order).to_pylist()
    if kind == "sqlite":
        events = [e.replace(microsecond=0) for e in events]
    assert got.column("event_timestamp").to_pylist()[: len(order)] == events


def test_upsert_and_replace(store_case):
    _kind, project, store, config, feast = store_case
    part = _stats_part(project)
    rng = np.random.default_rng(3)
    first = random_data(rng, 100)
    store.write(part, first)
    # upsert: rows 0-49 get new values, 50-99 stay
    second = random_data(rng, 50)
    second = second.set_column(0, "customer_id", first.column("customer_id").slice(0, 50)).set_column(
        1, "shop_code", first.column("shop_code").slice(0, 50)
    )
    store.write(part, second)
    got = read_rows(store, part, first.select(["customer_id", "shop_code"]), ["f_i64", "f_str"])
    assert (
        got.column("f_i64").to_pylist() == second.column("f_i64").to_pylist() + first.column("f_i64").to_pylist()[50:]
    )
    # replace: only the new rows remain
    third = second.slice(0, 10)
    store.write(part, third, replace=True)
    got = read_rows(store, part, first.select(["customer_id", "shop_code"]), ["f_i64"])
    assert got.column("__found").to_pylist() == [True] * 10 + [False] * 90
    assert got.column("f_i64").to_pylist()[:10] == third.column("f_i64").to_pylist()
    # Feast agrees that replaced-away keys are gone (Redis: all fields of this view deleted)
    rows = feast_read(feast, config, part, first.select(["customer_id", "shop_code"]).slice(10, 5), ["f_i64"])
    for _ts, values in rows:
        assert values is None or all(v.WhichOneof("val") is None for v in values.values())


def test_other_views_untouched_and_drop(store_case):
    _kind, project, store, config, feast = store_case
    stats = _stats_part(project)
    latest, windows = feast_parts(project.catalog.views["by_customer"])
    assert windows.name == "by_customer__windows"
    ids = pa.array([1, 2, 3], pa.int64())
    ts = pa.array([T0] * 3, pa.timestamp("us", tz="UTC"))
    store.write(
        latest, pa.table({"customer_id": ids, "event_timestamp": ts, "f_i64": pa.array([10, 20, 30], pa.int64())})
    )
    store.write(
        windows, pa.table({"customer_id": ids, "event_timestamp": ts, "f_cnt_1d": pa.array([0, 5, None], pa.int64())})
    )
    store.write(stats, random_data(np.random.default_rng(5), 20))
    keys = pa.table({"customer_id": ids})
    store.write(
        latest,
        pa.table(
            {"customer_id": ids.slice(0, 1), "event_timestamp": ts.slice(0, 1), "f_i64": pa.array([99], pa.int64())}
        ),
        replace=True,
    )
    assert read_rows(store, windows, keys, ["f_cnt_1d"]).column("f_cnt_1d").to_pylist() == [0, 5, None]
    assert read_rows(store, latest, keys, ["f_i64"]).column("f_i64").to_pylist() == [99, None, None]
    store.drop(windows.name)
    assert read_rows(store, windows, keys, ["f_cnt_1d"]).column("__found").to_pylist() == [False] * 3
    assert read_rows(store, latest, keys, ["f_i64"]).column("f_i64").to_pylist() == [99, None, None]
    rows = feast_read(feast, config, latest, keys, ["f_i64"])
    assert proto_python(rows[0][1]["f_i64"]) == 99


def test_sqlite_table_is_feasts_own_ddl(tmp_path):
    """The table bigml_fs creates has exactly the columns and index Feast's update() creates."""
    import sqlite3

    from feast.infra.online_stores.sqlite import SqliteOnlineStore as Feast

    from bigml_fs.store.online import open_store

    root = make_project(tmp_path / "p")
    project = load(root)
    part = _stats_part(project)
    store = open_store(project.spec, project.paths)
    store.write(part, random_data(np.random.default_rng(1), 5))
    store.close()
    config = _feast_config(tmp_path, "onl", {"type": "sqlite", "path": str(tmp_path / "feast.db")})
    Feast().update(config, [], [feast_view(part)], [], [], partial=False)
    ours = (
        sqlite3.connect(root / ".bigml" / "online.db")
        .execute("SELECT type, name, sql FROM sqlite_master ORDER BY name")
        .fetchall()
    )
    theirs = (
        sqlite3.connect(tmp_path / "feast.db")
        .execute("SELECT type, name, sql FROM sqlite_master ORDER BY name")
        .fetchall()
    )
    assert ours == theirs
    project.close()


def test_readers_see_old_or_new_never_a_mix(store_case):
    """While big writes run, a concurrent reader sees all-old or all-new values of the view (SQLite, PostgreSQL).

    Redis has no multi-key transactions (a mix is allowed there until the
    write ends); it must still end with the last version everywhere.
    """
    from bigml_fs.store.online import open_store

    kind, project, writer, _config, _feast = store_case
    part = _stats_part(project)
    n = 20_000
    keys = pa.table({"customer_id": pa.array(range(n), pa.int64()), "shop_code": pa.array(["s"] * n)})
    ts = pa.array([T0] * n, pa.timestamp("us", tz="UTC"))

    def version(v: int) -> pa.Table:
        return keys.append_column("event_timestamp", ts).append_column("f_i64", pa.array([v] * n, pa.int64()))

    writer.write(part, version(1))
    sample = keys.take(list(range(0, n, 997)))
    seen: list[tuple] = []
    stop = threading.Event()
    schema = getattr(writer, "schema", None)

    def read_loop():
        reader = open_store(project.spec, project.paths, schema=schema)
        while not stop.is_set():
            seen.append(tuple(read_rows(reader, part, sample, ["f_i64"]).column("f_i64").to_pylist()))
        reader.close()

    thread = threading.Thread(target=read_loop)
    thread.start()
    for v in (2, 3, 4, 5):
        writer.write(part, version(v), replace=v % 2 == 0)
    stop.set()
    thread.join()
    assert len(seen) > 3 and len({s[0] for s in seen}) >= 2  # the reader ran during the writes
    if kind != "redis":
        assert all(len(set(s)) == 1 for s in seen), [s for s in seen if len(set(s)) > 1][:1]
    assert read_rows(writer, part, sample, ["f_i64"]).column("f_i64").to_pylist() == [5] * sample.num_rows


def test_unreachable_servers_name_host_and_port_not_password(tmp_path, monkeypatch):
    from bigml_fs.store.online import open_store

    monkeypatch.setenv("SECRET_PW", "hunter2-very-secret")
    for store_spec in (
        {"type": "redis", "host": "127.0.0.1", "port": 1, "password_env": "SECRET_PW"},
        {
            "type": "postgres",
            "host": "127.0.0.1",
            "port": 1,
            "user": "postgres",
            "database": "test",
            "password_env": "SECRET_PW",
        },
    ):
        root = make_project(tmp_path / store_spec["type"], store_spec)
        project = load(root)
        store = open_store(project.spec, project.paths)
        with pytest.raises(EngineError) as info:
            store.ping()
        assert "127.0.0.1:1" in str(info.value)
        assert "hunter2" not in str(info.value)
        store.close()
        project.close()


def test_sqlite_times_right_through_feast_off_utc(tmp_path, monkeypatch):
    """Feast's sqlite3 adapter stores naive-UTC-as-local seconds; off UTC we store the same, so Feast reads the right
    times."""
    import time

    from feast.infra.online_stores.sqlite import SqliteOnlineStore as Feast

    from bigml_fs.store.online import open_store

    root = make_project(tmp_path / "p")
    project = load(root)
    part = _stats_part(project)
    data = random_data(np.random.default_rng(2), 40)
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    try:
        store = open_store(project.spec, project.paths)
        store.write(part, data)
        config = _feast_config(tmp_path, "onl", {"type": "sqlite", "path": str(root / ".bigml" / "online.db")})
        rows = feast_read(Feast(), config, part, data.select(["customer_id", "shop_code"]), ["f_i64"])
        want = [e.replace(microsecond=0) for e in data.column("event_timestamp").to_pylist()]
        assert [ts for ts, _ in rows] == want
        assert (
            read_rows(store, part, data.select(["customer_id", "shop_code"]), ["f_i64"])
            .column("event_timestamp")
            .to_pylist()
            == want
        )
        store.close()
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()
    project.close()


def test_redis_replace_leaves_projects_with_a_longer_name_alone(redis_prefix, tmp_path):
    """SCAN MATCH *project also matches "x" + project; replace and drop must only touch this project's keys."""
    from bigml_fs.store.online.redis import RedisOnlineStore

    info, prefix = redis_prefix
    root = make_project(tmp_path / "p")
    project = load(root)
    part = _stats_part(project)
    data = random_data(np.random.default_rng(4), 20)
    ours, other = (
        RedisOnlineStore(prefix, info["host"], info["port"]),
        RedisOnlineStore("x" + prefix, info["host"], info["port"]),
    )
    other.write(part, data)
    ours.write(part, data.slice(0, 5))
    ours.write(part, data.slice(0, 1), replace=True)
    ours.drop(part.name)
    keys = data.select(["customer_id", "shop_code"])
    assert read_rows(other, part, keys, ["f_i64"]).column("__found").to_pylist() == [True] * 20
    assert read_rows(ours, part, keys, ["f_i64"]).column("__found").to_pylist() == [False] * 20
    ours.close()
    other.close()
    project.close()
