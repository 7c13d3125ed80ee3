"""Plain Feast as a peer: a repo over a Parquet file, queried with Feast's own API.

Used by the Feast comparison tests and the benchmarks, so both talk to Feast
exactly as a Feast user would (DuckDB offline store, SQLite online store).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

os.environ.setdefault("FEAST_USAGE", "False")


@dataclass(frozen=True)
class PeerView:
    name: str
    path: Path
    keys: list[str]
    timestamp: str
    created: str | None
    features: dict[str, str]  # name -> Feast dtype name: Float64, Int64, String
    ttl: timedelta | None


def open_feast_store(repo: Path):
    """The Feast FeatureStore of ``repo`` as it is (what a Feast user's process opens; nothing applied)."""
    import warnings

    warnings.filterwarnings("ignore")
    from feast import FeatureStore
    from feast.infra.offline_stores.duckdb import DuckDBOfflineStoreConfig
    from feast.infra.online_stores.sqlite import SqliteOnlineStoreConfig
    from feast.repo_config import RepoConfig

    repo.mkdir(parents=True, exist_ok=True)
    config = RepoConfig(
        project="peer",
        registry=str(repo / "registry.db"),
        provider="local",
        offline_store=DuckDBOfflineStoreConfig(),
        online_store=SqliteOnlineStoreConfig(path=str(repo / "online.db")),
        entity_key_serialization_version=3,
        repo_path=str(repo),
    )
    return FeatureStore(config=config)


def feast_store(repo: Path, views: list[PeerView]):
    """A Feast FeatureStore with one FeatureView per PeerView, applied (set-up: benchmarks do it before timing)."""
    from feast import Entity, FeatureView, Field, FileSource
    from feast import types as ftypes

    store = open_feast_store(repo)
    objects: list = []
    entities: dict[str, Entity] = {}
    for view in views:
        for key in view.keys:
            if key not in entities:
                entities[key] = Entity(name=key, join_keys=[key])
        source = FileSource(
            path=str(view.path), timestamp_field=view.timestamp, created_timestamp_column=view.created or ""
        )
        schema = [Field(name=name, dtype=getattr(ftypes, dtype)) for name, dtype in view.features.items()]
        objects.append(
            FeatureView(
                name=view.name,
                entities=[entities[k] for k in view.keys],
                ttl=view.ttl or timedelta(0),
                schema=schema,
                source=source,
            )
        )
    store.apply([*entities.values(), *objects])
    return store


def historical(store, entity_df, features: list[str]):
    """Feast's get_historical_features as a pandas DataFrame."""
    return store.get_historical_features(entity_df=entity_df, features=features).to_df()
