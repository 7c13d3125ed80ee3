"""Load a spine (file, Arrow/pandas table or a model's labels) into the engine.

The spine keeps its own columns untouched; we add ``__row`` (its order, so
the output comes back row for row) and ``__ts`` (its time as UTC microseconds,
each text value parsed with its own offset). Every check that can fail on user
data happens here, before the feature query runs, with a message that names
the column and a bad value.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from sqlglot import exp

from bigml_fs.catalog import Catalog, FeatureRef, is_time_type
from bigml_fs.compiler.explain import SPINE  # the relation the training-set plan reads
from bigml_fs.compiler.sqlparts import ROW, TS, alias, col
from bigml_fs.core.timeutil import EVENT_TIMESTAMP
from bigml_fs.engines.base import Engine
from bigml_fs.errors import BigmlError, DataError, did_you_mean

if TYPE_CHECKING:
    import pyarrow as pa

    from bigml_fs.spec.schema import ModelSpec

RAW = "__spine_raw"


def load_spine_file(engine: Engine, path: Path, key_columns: list[str] | None = None) -> None:
    """Load a Parquet or CSV spine file with its row order.

    In a CSV, join keys are read as text (so ``007`` stays ``007``) and cast to
    the source key's type in the engine, like every other spine key. An empty
    field is NULL, as in a CSV source on every engine: an empty key gets null
    features, as a null key in a Parquet spine does.
    """
    if not path.exists():
        raise BigmlError(f"spine file {path} does not exist")
    if path.suffix.lower() in (".csv", ".tsv", ".gz"):
        import pyarrow as pa
        import pyarrow.csv as pacsv

        text_keys = {k: pa.string() for k in key_columns or []}
        try:
            options = pacsv.ConvertOptions(
                column_types=text_keys, strings_can_be_null=True, quoted_strings_can_be_null=True, null_values=[""]
            )
            table = pacsv.read_csv(path, convert_options=options)
        except pa.ArrowInvalid as exc:
            raise DataError(f"spine file {path}: cannot read it as CSV: {exc}") from None
        load_spine_table(engine, table)
        return
    try:
        names = engine.file_columns(path)
    except (ValueError, OSError) as exc:  # pyarrow's ArrowInvalid is a ValueError
        raise DataError(f"spine file {path}: cannot read it as Parquet: {exc}") from None
    if ROW in names:
        raise DataError(f"the spine has a column named {ROW}, which bigml-fs reserves; rename it")
    try:
        engine.load_parquet(RAW, path, ROW)
    except BigmlError as exc:
        raise DataError(f"spine file {path}: cannot read it as Parquet: {exc}") from None


def load_spine_table(engine: Engine, table: pa.Table) -> None:
    """Load an in-memory spine (Arrow)."""
    if ROW in table.column_names:
        raise DataError(f"the spine has a column named {ROW}, which bigml-fs reserves; rename it")
    import pyarrow as pa

    table = table.append_column(ROW, pa.array(range(table.num_rows), type=pa.int64()))
    engine.load_arrow(RAW, table)


def load_labels_spine(
    engine: Engine,
    catalog: Catalog,
    model: ModelSpec,
    refs: Iterable[FeatureRef] | None = None,
    end: datetime | None = None,
) -> None:
    """A model's labels as the spine, ordered by prediction time then its columns.

    With ``refs``, only the columns the spine needs (the views' join keys, the
    prediction time and the target), so a label column never collides with a
    feature name; without, every column of the labels. With ``end``, only
    labels whose prediction time is at or before it.
    """
    labels = model.labels
    relation: exp.Expression = catalog.relations[labels.source].copy()
    if refs is not None or end is not None:
        selected: list[exp.Expression] = [exp.Star()]
        if refs is not None:
            keys = (k for r in refs for k in catalog.views[r.view].keys)
            needed = dict.fromkeys([*keys, labels.timestamp, *([labels.target] if labels.target else [])])
            selected = [col(c) for c in needed]
        query = exp.select(*selected).from_(relation)
        if end is not None:
            cutoff = exp.cast(exp.Literal.string(end.isoformat()), exp.DataType.build("TIMESTAMPTZ"))
            query = query.where(exp.LTE(this=col(labels.timestamp), expression=cutoff))
        relation = query.subquery("__labels")
    _load_relation(engine, relation, labels.timestamp)


def _load_relation(engine: Engine, relation: exp.Expression, time_column: str) -> None:
    """A relation as spine, ordered by time then its columns."""
    columns = engine.columns(exp.select("*").from_(relation.copy()).limit(0))
    order = [time_column] + [c for c in columns if c != time_column]
    number = exp.Window(this=exp.RowNumber(), order=exp.Order(expressions=[exp.Ordered(this=col(c)) for c in order]))
    query = exp.select("*", alias(exp.Sub(this=number, expression=exp.Literal.number(1)), ROW)).from_(relation.copy())
    engine.create_temp_table(RAW, query)


def prepare_spine(engine: Engine, timestamp: str | None, required_keys: dict[str, list[str]]) -> dict[str, str]:
    """Check the loaded spine, add ``__ts``; return its columns and types."""
    columns = engine.columns(exp.select("*").from_(RAW).limit(0))
    user_columns = {c: t for c, t in columns.items() if c != ROW}
    count = engine.rows(exp.select(alias(exp.Count(this=exp.Star()), "n")).from_(RAW))[0]["n"]
    if count == 0:
        raise DataError("the spine is empty; give at least one row of keys and a time")
    time_column = _time_column(engine, user_columns, timestamp)
    for view, keys in required_keys.items():
        missing = [k for k in keys if k not in user_columns]
        if missing:
            raise DataError(
                f"the spine lacks key column(s) {', '.join(missing)} needed by view "
                f"'{view}'{did_you_mean(missing[0], user_columns)}; spine columns: {', '.join(user_columns)}"
            )
    ts = engine.sql_dialect.epoch_us(col(time_column), user_columns[time_column])
    engine.create_temp_table(SPINE, exp.select("*", alias(ts, TS)).from_(RAW))
    return {**columns, TS: "BIGINT"}


def check_key_casts(engine: Engine, spine_columns: dict[str, str], wanted: set[tuple[str, str]]) -> None:
    """Each spine key must cast to every source key type it joins; name the column and a bad value."""
    for key, dtype in sorted(wanted):
        if spine_columns.get(key, "").upper() == dtype.upper():
            continue
        bad = (
            exp.select(col(key))
            .from_(SPINE)
            .where(
                exp.and_(
                    exp.Not(this=exp.Is(this=col(key), expression=exp.Null())),
                    exp.Is(
                        this=exp.TryCast(this=col(key), to=exp.DataType.build(dtype, dialect="duckdb")),
                        expression=exp.Null(),
                    ),
                )
            )
            .limit(1)
        )
        rows = engine.rows(bad)
        if rows:
            raise DataError(
                f"spine column '{key}' ({spine_columns[key]}) cannot be cast to the source key type {dtype}: bad value "
                f"{rows[0][key]!r}"
            )


def _time_column(engine: Engine, columns: dict[str, str], requested: str | None) -> str:
    if requested:
        if requested not in columns:
            raise DataError(
                f"the spine has no time column '{requested}'{did_you_mean(requested, columns)}; spine columns: "
                f"{', '.join(columns)}"
            )
        chosen = requested
    elif EVENT_TIMESTAMP in columns:
        chosen = EVENT_TIMESTAMP
    else:
        typed = [c for c, t in columns.items() if is_time_type(t)]
        if len(typed) > 1:
            raise DataError(f"the spine has several time columns ({', '.join(typed)}); choose one with --timestamp COL")
        if not typed:
            texts = [c for c, t in columns.items() if t.upper() == "VARCHAR" and _parses_as_time(engine, c)]
            if len(texts) != 1:
                hint = (
                    f"several text columns hold times ({', '.join(texts)})"
                    if texts
                    else "none of its columns is a timestamp"
                )
                raise DataError(
                    f"cannot tell the spine's time column: {hint}; name it with --timestamp COL (Feast calls it "
                    "event_timestamp)"
                )
            typed = texts
        chosen = typed[0]
    dtype = columns[chosen].upper()
    if dtype == "VARCHAR":
        bad = _first_unparsable(engine, chosen)
        if bad is not None:
            raise DataError(
                f"spine column '{chosen}' has a value that is not an ISO 8601 time: {bad!r}; write times like "
                "2024-05-01T12:00:00Z or 2024-05-01 12:00:00+02:00"
            )
    elif not is_time_type(dtype):
        raise DataError(
            f"spine column '{chosen}' is {columns[chosen]}, not a timestamp; give ISO 8601 times or a timestamp column"
        )
    return chosen


def _first_unparsable(engine: Engine, column: str) -> str | None:
    parsed = exp.TryCast(this=col(column), to=exp.DataType.build("TIMESTAMPTZ"))
    query = (
        exp.select(col(column))
        .from_(RAW)
        .where(
            exp.and_(
                exp.Not(this=exp.Is(this=col(column), expression=exp.Null())),
                exp.Is(this=parsed, expression=exp.Null()),
            )
        )
        .limit(1)
    )
    rows = engine.rows(query)
    return rows[0][column] if rows else None


def _parses_as_time(engine: Engine, column: str) -> bool:
    """Does a text column look like times? Most of a sample parses (one bad value is reported later, by name)."""
    sample = (
        exp.select(col(column))
        .from_(RAW)
        .where(exp.Not(this=exp.Is(this=col(column), expression=exp.Null())))
        .limit(1000)
        .subquery("__sample")
    )
    parsed = exp.TryCast(this=col(column), to=exp.DataType.build("TIMESTAMPTZ"))
    query = exp.select(alias(exp.Count(this=exp.Star()), "n"), alias(exp.Count(this=parsed), "ok")).from_(sample)
    row = engine.rows(query)[0]
    return bool(row["n"]) and row["ok"] * 2 > row["n"]
