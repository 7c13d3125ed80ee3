"""Online stores in Feast's own layouts (SQLite, Redis, PostgreSQL) and ``open_store``."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from bigml_fs.errors import BigmlError
from bigml_fs.store.online.base import OnlineStore

if TYPE_CHECKING:  # serving opens a store without building a workspace
    from bigml_fs.spec.schema import ProjectSpec
    from bigml_fs.workspace import Paths


def _password(env: str | None, what: str) -> str | None:
    if not env:
        return None
    value = os.environ.get(env)
    if value is None:
        raise BigmlError(
            f"{what}: password_env names the environment variable {env}, which is not set; export it (the password is "
            "never read from YAML)"
        )
    return value


def open_store(
    spec: ProjectSpec, paths: Paths, feast_project: str | None = None, schema: str | None = None
) -> OnlineStore:
    """The project's online store from ``online_store:`` in project.yaml (not connected yet).

    ``feast_project`` overrides the Feast project name (tables ``{project}_{view}``,
    Redis keys end with it); ``schema`` overrides the PostgreSQL schema. Tests use
    them to keep their data apart, the same way two Feast projects would.
    """
    store = spec.online_store
    name = feast_project or spec.name
    if store.type == "sqlite":
        from bigml_fs.store.online.sqlite import SqliteOnlineStore

        return SqliteOnlineStore(name, paths.resolve(store.path))
    if store.type == "redis":
        from bigml_fs.store.online.redis import RedisOnlineStore

        return RedisOnlineStore(
            name, store.host, store.port, store.db, _password(store.password_env, "online_store (redis)")
        )
    from bigml_fs.store.online.postgres import PostgresOnlineStore

    return PostgresOnlineStore(
        name,
        store.host,
        store.port,
        store.database,
        store.user,
        _password(store.password_env, "online_store (postgres)"),
        schema or store.schema_,
    )


__all__ = ["OnlineStore", "open_store"]
