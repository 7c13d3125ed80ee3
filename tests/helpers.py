"""Build small throwaway projects for tests."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from bigml_fs import Project

# tests/test_engines.py sets an engine block here to run the same cases on PostgreSQL and Spark
ENGINE: dict | None = None


def write_project(
    root: Path,
    project: dict,
    features: str = "",
    models: str = "",
    sql: dict[str, str] | None = None,
    tables: dict[str, pa.Table] | None = None,
) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    if ENGINE is not None and "engine" not in project:
        project = {**project, "engine": ENGINE}
    (root / "project.yaml").write_text(yaml.safe_dump(project, sort_keys=False))
    if features:
        (root / "features").mkdir(exist_ok=True)
        (root / "features" / "views.yaml").write_text(textwrap.dedent(features))
    if models:
        (root / "models").mkdir(exist_ok=True)
        (root / "models" / "models.yaml").write_text(textwrap.dedent(models))
    for name, text in (sql or {}).items():
        (root / "sql").mkdir(exist_ok=True)
        (root / "sql" / f"{name}.sql").write_text(textwrap.dedent(text))
    for name, table in (tables or {}).items():
        (root / "data").mkdir(exist_ok=True)
        pq.write_table(table, root / "data" / f"{name}.parquet")
    return root


def load(root: Path) -> Project:
    return Project.load(root, in_memory=True)


def micros_to_ts(values: list[int | None]) -> pa.Array:
    return pa.array(values, type=pa.timestamp("us", tz="UTC"))


def read_rows(store, part, keys: pa.Table, features: list[str], types: dict | None = None) -> pa.Table:
    """Rows of one Feast view for ``keys`` (join key columns), in key order, through the store's one read path (fetch).

    One row per key row: the feature columns (typed by ``types``, else by what is
    stored), ``event_timestamp`` (timestamp[us, UTC]) and a boolean ``__found``.
    """
    import pyarrow.compute as pc

    from bigml_fs.store.feast_types import feast_type
    from bigml_fs.store.online.encoding import decode_column, entity_keys, infer_type

    keys_bin: list[bytes | None] = []
    if keys.num_rows:
        cols = keys.select(list(part.join_keys))
        key_types = {k: feast_type(cols.schema.field(k).type, f"join key '{k}'") for k in cols.column_names}
        keys_bin = entity_keys(cols, key_types).to_pylist()
        if any(c.null_count for c in cols.columns):
            valid = (
                pc.and_(*[c.is_valid() for c in cols.columns]) if len(cols.columns) > 1 else cols.column(0).is_valid()
            )
            keys_bin = [k if ok else None for k, ok in zip(keys_bin, valid.to_pylist(), strict=True)]
    found = store.fetch(part, keys_bin, features)
    rows = [found.get(k) if k is not None else None for k in keys_bin]
    columns: dict[str, pa.Array] = {}
    for name in features:
        raw = [r[1].get(name) if r is not None else None for r in rows]
        ftype = (types or {}).get(name) or infer_type(raw)
        columns[name] = decode_column(raw, ftype) if ftype is not None else pa.nulls(len(raw))
    columns["event_timestamp"] = pa.array([r[0] if r is not None else None for r in rows], pa.int64()).cast(
        pa.timestamp("us", tz="UTC")
    )
    columns["__found"] = pa.array([r is not None for r in rows], pa.bool_())
    return pa.table(columns)
