"""Plain Feast opens the repo materialize generates and returns bigml_fs's values.

One materialize of the example project (module scope: Feast imports are slow),
then random spines through Feast's own ``get_historical_features`` against
bigml_fs training sets, for every view: latest values with and without ttl,
static views, a mapped entity key and every window aggregation.
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from bigml_fs import Project
from bigml_fs.store.naming import feast_parts
from tests.conftest import REPO

pytestmark = pytest.mark.feast
END = "2024-03-15T12:00:00Z"
END_TS = pd.Timestamp(END)


@pytest.fixture(scope="module")
def materialized(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from bigml_fs.example.generate import generate

    root = tmp_path_factory.mktemp("feast_repo")
    for part in ("project.yaml", "sql", "features", "models"):
        src = REPO / part
        (shutil.copytree if src.is_dir() else shutil.copy)(src, root / part)
    generate(root / "data", rows=3000)
    with Project.load(root) as project:
        project.materialize(end=END)
    return root


@pytest.fixture(scope="module")
def feast_store(materialized: Path):
    from feast import FeatureStore

    return FeatureStore(repo_path=str(materialized / ".bigml" / "feast"))


def _spine(project: Project, view_name: str, n: int, seed: int) -> pd.DataFrame:
    view = project.catalog.views[view_name]
    keys = project.engine.to_arrow(
        f"SELECT DISTINCT {', '.join(view.keys)} FROM {view.relation.sql('duckdb')} "
        f"WHERE {' AND '.join(k + ' IS NOT NULL' for k in view.keys)} ORDER BY ALL"
    ).to_pandas()
    rng = np.random.default_rng(seed)
    picks = keys.iloc[rng.integers(0, len(keys), n)].reset_index(drop=True)
    start = pd.Timestamp("2024-01-01", tz="UTC")
    span = int((END_TS - start).total_seconds())
    # random times up to END, some exactly at END, on whole seconds and a microsecond off
    secs = rng.integers(0, span + 1, n)
    times = pd.Series(
        start + pd.to_timedelta(secs, unit="s") + pd.to_timedelta(rng.choice([0, 0, 1, -1], n), unit="us")
    )
    times = times.where(rng.random(n) > 0.1, END_TS)
    spine = picks.assign(event_timestamp=times.clip(upper=END_TS))
    spine["row_id"] = np.arange(n)
    return spine


def _equal(a, b) -> bool:
    if a is None or (isinstance(a, float) and math.isnan(a)) or a is pd.NA or a is pd.NaT:
        return b is None or (isinstance(b, float) and math.isnan(b)) or b is pd.NA or b is pd.NaT
    if b is None or (isinstance(b, float) and math.isnan(b)) or b is pd.NA:
        return False
    if isinstance(a, (float, np.floating)) or isinstance(b, (float, np.floating)):
        return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-12)
    return a == b


VIEWS = [
    "customer_spend",
    "customer_profile",
    "customer_daily_spend",
    "merchant_profile",
    "merchant_risk",
    "card_activity",
    "country_activity",
]


@pytest.mark.parametrize("view_name", VIEWS)
def test_feast_historical_equals_training_set(materialized, feast_store, view_name):
    with Project.load(materialized) as project:
        view = project.catalog.views[view_name]
        spine = _spine(project, view_name, 400, seed=len(view_name))
        ours = project.training_set(
            features=[f"{view_name}:*"], spine=pa.Table.from_pandas(spine, preserve_index=False)
        ).to_pandas()
    refs = [f"{part.name}:{f}" for part in feast_parts(view) for f in part.feature_names]
    theirs = (
        feast_store.get_historical_features(entity_df=spine, features=refs)
        .to_df()
        .sort_values("row_id")
        .reset_index(drop=True)
    )
    assert len(theirs) == len(ours) == len(spine)
    found = 0
    for feature in view.spec.features:
        counts = feature.agg in ("count", "count_distinct")
        for i, (a, b) in enumerate(zip(ours[feature.name].tolist(), theirs[feature.name].tolist(), strict=True)):
            if counts and a == 0 and _equal(b, None):
                continue  # never-seen key or no event before t: Feast has no row, bigml_fs says 0
            assert _equal(a, b), (
                f"{view_name}:{feature.name} row {i} ({spine.iloc[i].to_dict()}): bigml_fs {a!r}, Feast {b!r}"
            )
            found += a is not None and not (isinstance(a, float) and math.isnan(a))
    assert found > 0  # the spine hits real values


def test_repo_objects(materialized, feast_store):
    with Project.load(materialized) as project:
        catalog = project.catalog
        expected = {p.name: p for v in catalog.views.values() for p in feast_parts(v)}
    views = {fv.name: fv for fv in feast_store.list_feature_views()}
    assert set(views) == set(expected)
    for name, part in expected.items():
        fv = views[name]
        assert fv.tags["bigml_fs.fingerprint"] == part.view.fingerprint
        assert [f.name for f in fv.features] == part.feature_names
        assert sorted(fv.join_keys if hasattr(fv, "join_keys") else [c.name for c in fv.entity_columns]) == sorted(
            part.join_keys
        )
        assert fv.ttl.total_seconds() == (part.ttl.total_seconds() if part.ttl else 0)
    entities = {e.name: e for e in feast_store.list_entities()}
    assert entities["country__country"].join_key == "country"  # a mapped key: its own Feast entity
    assert entities["customer"].join_key == "customer_id"
    # every published table is timestamp[us, UTC]
    import pyarrow.parquet as pq

    for path in (materialized / ".bigml" / "offline" / "current").glob("*.parquet"):
        assert pq.read_schema(path).field("event_timestamp").type == pa.timestamp("us", tz="UTC")


@pytest.mark.parametrize("view_name", VIEWS)
def test_feast_online_equals_training_set_at_end(materialized, feast_store, view_name):
    """Plain Feast's get_online_features after materialize --end T == training set at t = T."""
    with Project.load(materialized) as project:
        view = project.catalog.views[view_name]
        spine = (
            _spine(project, view_name, 60, seed=7)
            .drop(columns=["row_id"])
            .drop_duplicates(subset=list(view.keys))
            .reset_index(drop=True)
        )
        spine["event_timestamp"] = END_TS
        ours = project.training_set(
            features=[f"{view_name}:*"], spine=pa.Table.from_pandas(spine, preserve_index=False)
        ).to_pandas()
    refs = [f"{part.name}:{f}" for part in feast_parts(view) for f in part.feature_names]
    rows = [
        {k: (int(v) if isinstance(v, (np.integer,)) else v) for k, v in r.items()}
        for r in spine[list(view.keys)].to_dict("records")
    ]
    theirs = feast_store.get_online_features(features=refs, entity_rows=rows).to_dict()
    found = 0
    for feature in view.spec.features:
        counts = feature.agg in ("count", "count_distinct")
        for i, (a, b) in enumerate(zip(ours[feature.name].tolist(), theirs[feature.name], strict=True)):
            if counts and a == 0 and b is None:
                continue  # a key without events before T has no window row
            assert _equal(a, b), f"{view_name}:{feature.name} key {rows[i]}: bigml_fs {a!r}, Feast online {b!r}"
            found += b is not None
    assert found > 0


def _feast_online_matches(root: Path, end: str) -> None:
    """Materialize ``root`` at ``end``, then plain Feast's online reads equal training sets at ``end``."""
    from feast import FeatureStore

    with Project.load(root) as project:
        project.materialize(end=end)
        checked = 0
        store = FeatureStore(repo_path=str(root / ".bigml" / "feast"))
        for view in project.catalog.views.values():
            keys = list(range(1, 45))
            spine = pd.DataFrame({view.keys[0]: keys, "event_timestamp": pd.Timestamp(end)})
            ours = project.training_set(
                features=[f"{view.name}:*"], spine=pa.Table.from_pandas(spine, preserve_index=False)
            ).to_pandas()
            refs = [f"{part.name}:{f}" for part in feast_parts(view) for f in part.feature_names]
            theirs = store.get_online_features(features=refs, entity_rows=[{view.keys[0]: k} for k in keys]).to_dict()
            for feature in view.spec.features:
                for a, b in zip(ours[feature.name].tolist(), theirs[feature.name], strict=True):
                    if feature.agg in ("count", "count_distinct") and a == 0 and b is None:
                        continue
                    assert _equal(a, b), (view.name, feature.name, a, b)
                    checked += b is not None
        assert checked > 50


def test_feast_online_reads_redis(tmp_path, redis_prefix):
    from tests.test_materialize import _project, _trips

    info, prefix = redis_prefix
    root = _project(tmp_path / "p", _trips(4, 1500, days=6))
    text = (root / "project.yaml").read_text().replace("name: mat", f"name: {prefix}")
    (root / "project.yaml").write_text(
        text + f"online_store: {{type: redis, host: {info['host']}, port: {info['port']}}}\n"
    )
    _feast_online_matches(root, "2024-03-05T06:00:00Z")


def test_feast_online_reads_postgres(tmp_path, postgres_schema):
    from tests.test_materialize import _project, _trips

    info, schema = postgres_schema
    root = _project(tmp_path / "p", _trips(5, 1500, days=6))
    (root / "project.yaml").write_text(
        (root / "project.yaml").read_text()
        + (
            f"online_store: {{type: postgres, host: {info['host']}, port: {info['port']}, "
            f"database: {info['database']}, user: {info['user']}, schema: {schema}}}\n"
        )
    )
    _feast_online_matches(root, "2024-03-05T06:00:00Z")


# --- passwords from empty variables, Feast failures (issue 14) ---------------------------------------------------


def _postgres_project(root: Path, info: dict, schema: str, password_env: str) -> Path:
    from tests.test_materialize import _project, _trips

    root = _project(root, _trips(6, 1500, days=6))
    (root / "project.yaml").write_text(
        (root / "project.yaml").read_text()
        + (
            f"online_store: {{type: postgres, host: {info['host']}, port: {info['port']}, "
            f"database: {info['database']}, user: {info['user']}, schema: {schema}, password_env: {password_env}}}\n"
        )
    )
    return root


def test_postgres_password_env_set_to_an_empty_variable(tmp_path, postgres_schema, monkeypatch):
    """Trust auth with ``password_env`` naming an empty variable: the repo is written and plain Feast loads it."""
    from feast import FeatureStore

    info, schema = postgres_schema
    monkeypatch.setenv("BIGML_TEST_EMPTY_PW", "")
    root = _postgres_project(tmp_path / "p", info, schema, "BIGML_TEST_EMPTY_PW")
    _feast_online_matches(root, "2024-03-05T06:00:00Z")  # materialize, then plain Feast's online reads
    text = (root / ".bigml" / "feast" / "feature_store.yaml").read_text()
    assert "password: '${BIGML_TEST_EMPTY_PW}'" in text
    store = FeatureStore(repo_path=str(root / ".bigml" / "feast"))
    assert store.config.online_store.password == ""
    with Project.load(root) as project:
        assert set(project.view_states()) == {"stats", "recent", "profile"}


def test_a_feast_failure_is_a_clear_error_and_publishes_nothing(tmp_path, monkeypatch):
    from bigml_fs.errors import BigmlError
    from bigml_fs.store import feast_repo
    from tests.test_materialize import _project, _trips

    def broken_apply(description, config, directory):
        raise RuntimeError("registry backend exploded")

    monkeypatch.setattr(feast_repo, "_apply", broken_apply)
    root = _project(tmp_path / "p", _trips(7, 500, days=4))
    with Project.load(root) as project, pytest.raises(BigmlError) as caught:
        project.materialize(end="2024-03-04T00:00:00Z")
    message = str(caught.value)
    assert "feast apply" in message and "RuntimeError: registry backend exploded" in message
    assert "Nothing was published" in message and "already holds this run's values" in message
    assert not (root / ".bigml" / "offline" / "current").exists()
    assert not list((root / ".bigml" / "offline" / "runs").iterdir())  # the unpublished run is removed
    assert not (root / ".bigml" / "feast" / "feature_store.yaml").exists()


def test_a_password_that_cannot_go_into_the_yaml_fails_before_any_online_write(tmp_path, postgres_schema, monkeypatch):
    import psycopg

    from bigml_fs.errors import BigmlError

    info, schema = postgres_schema
    monkeypatch.setenv("BIGML_TEST_QUOTED_PW", "it's")  # trust auth: never asked for
    root = _postgres_project(tmp_path / "p", info, schema, "BIGML_TEST_QUOTED_PW")
    with Project.load(root) as project, pytest.raises(BigmlError) as caught:
        project.materialize(end="2024-03-04T00:00:00Z")
    assert "single quote" in str(caught.value) and "it's" not in str(caught.value)
    assert not (root / ".bigml" / "offline" / "current").exists()
    conninfo = f"host={info['host']} port={info['port']} user={info['user']} dbname={info['database']}"
    with psycopg.connect(conninfo) as con:
        tables = con.execute("SELECT count(*) FROM pg_tables WHERE schemaname = %s", (schema,)).fetchone()
    assert tables == (0,)
