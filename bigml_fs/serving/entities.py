"""Check entity key values in a request against the join keys' column types.

A request with ``{"customer_id": ["x"]}`` where ``customer_id`` is BIGINT gets
a 422 that names the key, the position and the expected type, before any
store is touched. Keys no view declares are left to the online read, which
names them with a did-you-mean.
"""

from __future__ import annotations

from typing import Any

from bigml_fs.catalog import Catalog
from bigml_fs.core.types import from_sql


def _kind(sql_type: str) -> str | None:
    """The JSON kind a value of an engine column type must be in a request (core.types, every engine's spellings)."""
    logical = from_sql(sql_type)
    return logical.json_kind if logical is not None else None


def key_kinds(catalog: Catalog) -> dict[str, tuple[str, str]]:
    """Join key -> (JSON kind, SQL type) for keys whose kind is the same in every view."""
    out: dict[str, tuple[str, str]] = {}
    conflicting: set[str] = set()
    for view in catalog.views.values():
        for key in view.keys:
            sql_type = view.columns.get(key, "")
            kind = _kind(sql_type)
            if kind is None or key in conflicting:
                continue
            if key in out and out[key][0] != kind:
                conflicting.add(key)
                del out[key]
                continue
            out.setdefault(key, (kind, sql_type))
    return out


def _matches(kind: str, value: Any) -> bool:
    if value is None:
        return True
    if kind == "integer":
        return type(value) is int
    if kind == "number":
        return type(value) in (int, float)
    if kind == "string":
        return type(value) is str
    return type(value) is bool


def entity_problems(entities: dict[str, list[Any]], kinds: dict[str, tuple[str, str]]) -> list[dict[str, Any]]:
    """FastAPI-style 422 details for wrongly typed values and unequal list lengths ([] when fine)."""
    problems: list[dict[str, Any]] = []
    lengths = {key: len(values) for key, values in entities.items()}
    if len(set(lengths.values())) > 1:
        shown = ", ".join(f"{k}: {n}" for k, n in lengths.items())
        problems.append(
            {
                "type": "entity_lengths",
                "loc": ["body", "entities"],
                "msg": f"every entity key needs one value per row; the lists have different lengths ({shown})",
                "input": None,
            }
        )
    for key, values in entities.items():
        expected = kinds.get(key)
        if expected is None:
            continue
        kind, sql_type = expected
        for i, value in enumerate(values):
            if not _matches(kind, value):
                problems.append(
                    {
                        "type": "entity_type",
                        "loc": ["body", "entities", key, i],
                        "msg": (
                            f"entity key '{key}' expects {'an' if kind[0] in 'aeiou' else 'a'} {kind} ({sql_type}), "
                            f"got {type(value).__name__} {value!r}"
                        ),
                        "input": value,
                    }
                )
                break
    return problems
