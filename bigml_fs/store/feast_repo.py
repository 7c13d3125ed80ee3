"""The Feast repo under ``.bigml/feast/``: feature_store.yaml and the registry.

A user opens it with plain Feast, ``FeatureStore(repo_path=".bigml/feast")``,
and reads the Parquet tables materialize published (offline, DuckDB offline
store) and the online store bigml_fs wrote (same layout and key encoding).

Entities: Feast allows one join key per entity, and bigml_fs views may map an
entity's keys to other columns (``keys: {customer_id: sender_id}``). So each
key *column* of a view gets a Feast entity whose join key is that column:
``customer`` for an unmapped single-key entity, ``customer__sender_id`` for a
mapped one. Feast's entity columns then equal the view's key columns, in the
Parquet tables, in spines and in the online store's serialized keys.

Passwords appear only as quoted ``'${NAME}'`` references, expanded by Feast
when it loads the yaml (an empty variable, as with trust authentication, is
then an empty string, not YAML's null). Any failure while writing the repo is a
``FeastRepoError`` naming what failed.

The registry is rebuilt from scratch into a temporary file and renamed over the
old one (Feast's own file registry writes in place), so a run killed mid-apply
leaves the previous registry readable, and views removed from the project
vanish from it.
"""

from __future__ import annotations

import os
import re
import warnings
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml

from bigml_fs.catalog import ResolvedView
from bigml_fs.core.digest import digest
from bigml_fs.core.timeutil import EVENT_TIMESTAMP
from bigml_fs.errors import BigmlError
from bigml_fs.spec.schema import ProjectSpec
from bigml_fs.store import feast_types
from bigml_fs.store.naming import FeastPart
from bigml_fs.store.state import write_json_atomically
from bigml_fs.workspace import Paths

os.environ.setdefault("FEAST_USAGE", "False")


class FeastRepoError(BigmlError):
    """Writing the Feast repo (feature_store.yaml or the registry) failed."""


@dataclass(frozen=True)
class PartTable:
    """A Feast view as published: its part, its Parquet path and column SQL types."""

    part: FeastPart
    path: Path
    columns: dict[str, str]


def feast_dir(paths: Paths) -> Path:
    """``.bigml/feast/``: feature_store.yaml and bigml_fs_objects.json."""
    return paths.feast_repo


def _abs(paths: Paths, path: str) -> str:
    return str(paths.resolve(path).resolve())


def _env_ref(name: str | None) -> str:
    """A ``${NAME}`` reference Feast expands when it loads the yaml: the secret itself is never written."""
    return f"${{{name}}}" if name else ""


class _YamlDumper(yaml.SafeDumper):
    """Single-quotes every string holding a ``${NAME}`` reference (see the module docstring)."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    if "${" in value:
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="'")
    return yaml.SafeDumper.represent_str(dumper, value)


_YamlDumper.add_representer(str, _represent_str)


def config_text(config: dict[str, Any]) -> str:
    """The text of feature_store.yaml for ``config``."""
    return "# Written by bigml-fs materialize; regenerated on every run that changes a view.\n" + yaml.dump(
        config, Dumper=_YamlDumper, sort_keys=False
    )


def load_config_text(text: str) -> dict[str, Any]:
    """``text`` read as Feast reads it (environment variables expanded, then YAML), checked.

    Raises ``FeastRepoError`` when a referenced password does not come through
    as the variable's value (a value holding a quote breaks the quoting); the
    message names the variable, never its value.
    """
    try:
        loaded = yaml.safe_load(os.path.expandvars(text))
    except yaml.YAMLError as exc:
        raise FeastRepoError(
            f"feature_store.yaml does not parse once its environment variables are expanded ({type(exc).__name__}); "
            "a password holding a single quote cannot be written there"
        ) from None
    raw = yaml.safe_load(text)
    for key, value in (raw.get("online_store") or {}).items():
        if not isinstance(value, str) or "${" not in value:
            continue
        got = (loaded.get("online_store") or {}).get(key)
        if not isinstance(got, str) or got != os.path.expandvars(value):
            raise FeastRepoError(
                f"feature_store.yaml: online_store.{key} ({value}) does not read back as the variable's value once "
                "expanded; a password holding a single quote cannot be written there"
            )
    return loaded


def online_store_config(spec: ProjectSpec, paths: Paths) -> dict[str, Any]:
    """The ``online_store`` block matching project.yaml (passwords only as env var references)."""
    store = spec.online_store
    if store.type == "sqlite":
        return {"type": "sqlite", "path": _abs(paths, store.path)}
    if store.type == "redis":
        conn = f"{store.host}:{store.port},db={store.db}"
        if store.password_env:
            conn += f",password={_env_ref(store.password_env)}"
        return {"type": "redis", "connection_string": conn}
    return {
        "type": "postgres",
        "host": store.host,
        "port": store.port,
        "database": store.database,
        "db_schema": store.schema_,
        "user": store.user,
        "password": _env_ref(store.password_env),
        "sslmode": "prefer",
    }


def repo_config(spec: ProjectSpec, paths: Paths) -> dict[str, Any]:
    """The content of feature_store.yaml."""
    return {
        "project": spec.name,
        "registry": _abs(paths, spec.registry),
        "provider": "local",
        "offline_store": {"type": "duckdb"},
        "online_store": online_store_config(spec, paths),
        "entity_key_serialization_version": 3,
    }


def entity_name(view: ResolvedView, column: str, join_keys: dict[str, list[str]]) -> str:
    """The Feast entity of one key column of ``view`` (see the module docstring).

    ``join_keys`` maps each project entity to its join keys.
    """
    for ref in view.spec.entity_refs:
        mapped = {ref.keys.get(k, k): k for k in join_keys.get(ref.name, [])}
        if column in mapped:
            if mapped[column] == column and len(mapped) == 1:
                return ref.name
            return f"{ref.name}__{column}"
    return column


def describe(spec: ProjectSpec, paths: Paths, tables: list[PartTable]) -> dict[str, Any]:
    """A plain description of every Feast object (also the signature that decides whether to re-apply)."""
    join_keys = {e.name: list(e.join_keys) for e in spec.entities}
    entities: dict[str, dict[str, Any]] = {}
    views: list[dict[str, Any]] = []
    for table in tables:
        part, view = table.part, table.part.view
        keys = []
        for column in view.keys:
            name = entity_name(view, column, join_keys)
            value_type = feast_types.feast_type_from_sql(
                view.columns[column], f"join key '{column}' of view '{view.name}'"
            )
            entities.setdefault(
                name,
                {
                    "name": name,
                    "join_key": column,
                    "value_type": value_type.value_type,
                    "description": _description(spec, name),
                },
            )
            keys.append({"name": column, "dtype": value_type.feast_dtype, "entity": name})
        fields = [
            {
                "name": f,
                "dtype": feast_types.feast_type_from_sql(table.columns[f], f"feature '{view.name}:{f}'").feast_dtype,
            }
            for f in part.feature_names
        ]
        ttl = part.ttl
        views.append(
            {
                "name": part.name,
                "path": str(table.path),
                "keys": keys,
                "fields": fields,
                "ttl_seconds": ttl.total_seconds() if ttl else 0,
                "tags": {
                    **view.spec.tags,
                    "bigml_fs.view": view.name,
                    "bigml_fs.kind": part.kind,
                    "bigml_fs.fingerprint": view.fingerprint,
                },
                "description": view.spec.description,
            }
        )
    return {
        "config": repo_config(spec, paths),
        "entities": sorted(entities.values(), key=lambda e: e["name"]),
        "views": sorted(views, key=lambda v: v["name"]),
    }


def _description(spec: ProjectSpec, entity: str) -> str:
    base = entity.split("__")[0]
    return next((e.description for e in spec.entities if e.name == base), "")


def signature(description: dict[str, Any]) -> str:
    return digest(description)


def write_repo(paths: Paths, description: dict[str, Any]) -> None:
    """feature_store.yaml (atomically) and the registry (rebuilt in a temp file, then renamed over).

    Any failure is a ``FeastRepoError`` naming the step and the cause; the
    previous feature_store.yaml and registry are then left as they were.
    """
    directory = feast_dir(paths)
    config = description["config"]
    text = config_text(config)
    loaded = load_config_text(text)
    registry = Path(config["registry"])
    tmp_registry = registry.with_name(f".{registry.name}.{os.getpid()}.tmp")
    yaml_path = directory / "feature_store.yaml"
    step = f"build the Feast registry {registry} (feast apply)"
    try:
        directory.mkdir(parents=True, exist_ok=True)
        registry.parent.mkdir(parents=True, exist_ok=True)
        tmp_registry.unlink(missing_ok=True)
        _apply(description, {**loaded, "registry": str(tmp_registry)}, directory)
        os.replace(tmp_registry, registry)
        step = f"write {yaml_path}"
        tmp = yaml_path.with_name(f".feature_store.yaml.{os.getpid()}.tmp")
        tmp.write_text(text)
        os.replace(tmp, yaml_path)
        step = f"write {directory / 'bigml_fs_objects.json'}"
        write_json_atomically(directory / "bigml_fs_objects.json", description)
    except BigmlError:
        raise
    except Exception as exc:
        raise FeastRepoError(f"could not {step}: {type(exc).__name__}: {_redacted(_first_line(exc), text)}") from None
    finally:
        tmp_registry.unlink(missing_ok=True)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else "(no message)"


def _redacted(message: str, config_text: str) -> str:
    """``message`` without the value of any environment variable the yaml references (passwords)."""
    for name in re.findall(r"\$\{(\w+)\}", config_text):
        value = os.environ.get(name)
        if value:
            message = message.replace(value, "***")
    return message


def _apply(description: dict[str, Any], config: dict[str, Any], directory: Path) -> None:
    warnings.filterwarnings("ignore", module="feast")
    from feast import Entity, FeatureStore, FeatureView, Field, FileSource
    from feast.repo_config import RepoConfig
    from feast.value_type import ValueType

    store = FeatureStore(config=RepoConfig(**config, repo_path=str(directory)))
    entities = {
        e["name"]: Entity(
            name=e["name"],
            join_keys=[e["join_key"]],
            value_type=ValueType[e["value_type"]],
            description=e["description"],
        )
        for e in description["entities"]
    }
    objects: list[Any] = list(entities.values())
    for v in description["views"]:
        source = FileSource(name=f"{v['name']}__source", path=v["path"], timestamp_field=EVENT_TIMESTAMP)
        schema = [Field(name=k["name"], dtype=feast_types.BY_VALUE_TYPE[_vt(k["dtype"])].dtype) for k in v["keys"]]
        schema += [Field(name=f["name"], dtype=feast_types.BY_VALUE_TYPE[_vt(f["dtype"])].dtype) for f in v["fields"]]
        objects.append(
            FeatureView(
                name=v["name"],
                entities=[entities[k["entity"]] for k in v["keys"]],
                ttl=timedelta(seconds=v["ttl_seconds"]),
                schema=schema,
                source=source,
                tags=v["tags"],
                description=v["description"],
                online=True,
            )
        )
    store.apply(objects)


def _vt(feast_dtype: str) -> str:
    return next(t.value_type for t in feast_types.ALL if t.feast_dtype == feast_dtype)
