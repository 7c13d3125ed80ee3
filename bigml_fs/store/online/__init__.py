"""Online stores in Feast's own layouts (SQLite, Redis, PostgreSQL) and ``open_store``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from bigml_fs.errors import BigmlError
from bigml_fs.store.online.base import OnlineStore


def _password(env: str | None, what: str) -> str | None:
    if not env:
        return None
    value = os.environ.get(env)
    if value is None:
        raise BigmlError(
            f"{what}: password_env names the environment variable {env}, which is not set; export it (the password is never read from YAML)"
        )
    return value


def open_store(project: Any, feast_project: str | None = None, schema: str | None = None) -> OnlineStore:
    """The project's online store from ``online_store:`` in project.yaml (not connected yet).

    ``feast_project`` overrides the Feast project name (tables ``{project}_{view}``,
    Redis keys end with it); ``schema`` overrides the PostgreSQL schema. Tests use
    them to keep their data apart, the same way two Feast projects would.
    """
    spec = project.spec.online_store
    name = feast_project or project.spec.name
    if spec.type == "sqlite":
        from bigml_fs.store.online.sqlite import SqliteOnlineStore

        path = Path(spec.path)
        return SqliteOnlineStore(name, path if path.is_absolute() else project.root / path)
    if spec.type == "redis":
        from bigml_fs.store.online.redis import RedisOnlineStore

        return RedisOnlineStore(
            name, spec.host, spec.port, spec.db, _password(spec.password_env, "online_store (redis)")
        )
    from bigml_fs.store.online.postgres import PostgresOnlineStore

    return PostgresOnlineStore(
        name,
        spec.host,
        spec.port,
        spec.database,
        spec.user,
        _password(spec.password_env, "online_store (postgres)"),
        schema or spec.schema_,
    )


__all__ = ["OnlineStore", "open_store"]
