"""Entity rows of an online read: from dicts, Arrow, pandas, files or ``--entity k=v``, cast to the key types."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from bigml_fs.errors import DataError, UsageError
from bigml_fs.store import feast_types as ft


def entity_table(entities: Any) -> dict[str, Any]:
    """Entity rows as {column: list or Arrow array} from a dict of lists, Arrow or pandas."""
    if isinstance(entities, pa.Table):
        return {name: entities.column(name) for name in entities.column_names}
    if type(entities).__module__.startswith("pandas"):
        table = pa.Table.from_pandas(entities, preserve_index=False)
        return {name: table.column(name) for name in table.column_names}
    if isinstance(entities, dict):
        out: dict[str, Any] = {}
        for name, values in entities.items():
            if isinstance(values, (str, bytes)) or not hasattr(values, "__len__"):
                values = [values]
            out[str(name)] = values
        return out
    if isinstance(entities, list) and all(isinstance(r, dict) for r in entities):  # Feast's entity_rows
        names = list(dict.fromkeys(k for r in entities for k in r))
        return {n: [r.get(n) for r in entities] for n in names}
    raise UsageError(
        "entities must be a dict of join key -> list of values, a list of dicts, an Arrow table or a pandas DataFrame"
    )


def cast_key(name: str, values: Any, ftype: ft.FeastType) -> pa.Array:
    """Entity values of one join key in the key's Arrow type; a wrong type names the key and the expected type."""
    expected = {"int32": "an integer (int32)", "int64": "an integer (int64)", "string": "a string", "bytes": "bytes"}[
        ftype.name
    ]
    try:
        array = values if isinstance(values, (pa.Array, pa.ChunkedArray)) else pa.array(list(values))
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, OverflowError):
        bad = next(
            (v for v in values if v is not None and type(v) is not type(next(x for x in values if x is not None))), None
        )
        raise DataError(f"entity key '{name}' must be {expected}; got mixed values such as {bad!r}") from None
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if (
        (pa.types.is_boolean(array.type) and ftype.name != "string")
        or pa.types.is_timestamp(array.type)
        or pa.types.is_date(array.type)
    ):
        raise DataError(
            f"entity key '{name}' must be {expected}; got {array.type} values such as "
            f"{next((v for v in array.to_pylist() if v is not None), None)!r}"
        )
    if array.type == ftype.arrow or pa.types.is_null(array.type):
        return array.cast(ftype.arrow)
    try:
        return array.cast(ftype.arrow)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        bad = _first_bad(array, ftype)
        raise DataError(f"entity key '{name}' must be {expected}; got {bad!r}") from None


def _first_bad(array: pa.Array, ftype: ft.FeastType) -> Any:
    for value in array.to_pylist():
        if value is None:
            continue
        try:
            pa.array([value]).cast(ftype.arrow)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
            return value
    return array[0].as_py() if len(array) else None


def entities_from_pairs(pairs: list[str]) -> dict[str, list[str]]:
    """``--entity k=v`` options: repeated keys are rows, different keys are zipped; a key given once repeats."""
    columns: dict[str, list[str]] = {}
    for item in pairs:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--entity {item!r}: write --entity JOIN_KEY=VALUE, e.g. --entity customer_id=42")
        columns.setdefault(key.strip(), []).append(value)
    rows = max((len(v) for v in columns.values()), default=0)
    for key, values in columns.items():
        if len(values) == 1 and rows > 1:
            columns[key] = values * rows
        elif len(values) != rows:
            counts = ", ".join(f"{k} x{len(v)}" for k, v in columns.items())
            raise UsageError(f"--entity: every join key needs the same number of values (or just one): {counts}")
    return columns


def entities_from_file(path: Path) -> pa.Table:
    """Entity rows from a CSV, Parquet or JSON file (JSON: {key: [values]} or [{key: value}, ...])."""
    import json

    if not path.exists():
        raise UsageError(f"--entities {path}: no such file")
    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            return pq.read_table(path)
        if suffix == ".csv":
            from pyarrow import csv

            return csv.read_csv(path)
        if suffix == ".json":
            payload = json.loads(path.read_text())
            if isinstance(payload, dict) and "entities" in payload:  # a Feast /get-online-features request body
                payload = payload["entities"]
            columns = entity_table(payload)
            return pa.table({k: pa.array(list(v)) for k, v in columns.items()})
    except (OSError, ValueError, pa.ArrowInvalid) as exc:
        raise DataError(f"--entities {path}: cannot read it: {str(exc).splitlines()[0]}") from None
    raise UsageError(f"--entities {path}: give a .csv, .parquet or .json file")
