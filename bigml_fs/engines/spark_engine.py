"""Apache Spark: local (``local[*]``), a cluster (``spark://...``) or Spark Connect (``sc://...``).

Sources are temp views over Parquet/CSV read natively by Spark (or tables of
its catalog); sql/ models are temp views; offline tables are written by Spark
itself. Every engine gets its own Spark session (``newSession``: own temp
views and SQL settings) over one shared SparkContext, so a process (or a test
run) starts the JVM once. The session is handed to Ibis's pyspark backend,
which sets the session time zone to UTC; our plans are SQLGlot ASTs run with
``spark.sql``, because Ibis would have to re-parse them.
"""

from __future__ import annotations

import glob
import os
import shutil
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from sqlglot import exp

from bigml_fs.engines.base import Engine
from bigml_fs.errors import EngineError

# Spark settings every bigml-fs session needs: UTC, null (not an error) on a failed CAST as in TRY_CAST,
# Parquet times as microseconds (not INT96) so Feast and pyarrow read them as written
SESSION_CONF = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.ansi.enabled": "false",
    "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
}
# set once per JVM (at the first session's start); a later session cannot change them
STATIC_CONF = {"spark.sql.warehouse.dir"}
# defaults for a local session; project.yaml engine.conf overrides them
LOCAL_DEFAULTS = {"spark.ui.enabled": "false", "spark.ui.showConsoleProgress": "false", "spark.sql.shuffle.partitions": "8", "spark.driver.memory": "2g"}
SOURCE_PREFIX = "src__"

_TYPES = {
    "LongType": "BIGINT", "IntegerType": "INTEGER", "ShortType": "SMALLINT", "ByteType": "TINYINT", "DoubleType": "DOUBLE",
    "FloatType": "FLOAT", "StringType": "VARCHAR", "BooleanType": "BOOLEAN", "DateType": "DATE",
    "TimestampType": "TIMESTAMP WITH TIME ZONE", "TimestampNTZType": "TIMESTAMP", "BinaryType": "BLOB", "VarcharType": "VARCHAR", "CharType": "VARCHAR",
}


class SparkEngine(Engine):
    dialect = "spark"

    def __init__(self, master: str = "local[*]", conf: dict[str, str] | None = None):
        try:
            from pyspark.sql import SparkSession
        except ImportError:
            raise EngineError("engine 'spark' needs PySpark: pip install 'bigml-fs[spark]'") from None
        remote = master.startswith("sc://")
        if remote:
            try:
                import grpc  # noqa: F401 - Spark Connect's client transport
            except ImportError:
                raise EngineError(f"engine 'spark' with master {master} uses Spark Connect, whose client needs: pip install 'pyspark[connect]'") from None
        if not remote and shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
            raise EngineError("engine 'spark' needs Java (a JDK 17 or newer) to start Spark, and none was found; install one and set JAVA_HOME, or use Spark Connect (master: sc://host:15002)")
        settings = {**({} if remote else LOCAL_DEFAULTS), **SESSION_CONF, **(conf or {})}
        builder = SparkSession.builder.appName("bigml-fs")
        builder = builder.remote(master) if remote else builder.master(master)
        for key, value in settings.items():
            builder = builder.config(key, value)
        try:
            base = builder.getOrCreate()
            if not remote:
                base.sparkContext.setLogLevel("ERROR")
            self.spark = base if remote else base.newSession()
            for key, value in {**SESSION_CONF, **{k: v for k, v in (conf or {}).items() if k.startswith("spark.sql.") and k not in STATIC_CONF}}.items():
                self.spark.conf.set(key, value)
        except Exception as exc:  # the JVM or the cluster could not be reached: py4j/pyspark raise many kinds
            raise EngineError(f"cannot start Spark at master {master}: {_first_line(exc)}; is Java 17+ installed and the master reachable?") from None
        try:
            import ibis

            ibis.pyspark.connect(self.spark)  # Ibis's own session setup: UTC
        except ImportError:
            pass
        self._views: set[str] = set()

    # --- SQL ----------------------------------------------------------------

    def execute(self, query: exp.Expression | str) -> None:
        self._sql(query)

    def to_arrow(self, query: exp.Expression | str) -> pa.Table:
        frame = self._sql(query)
        try:
            return frame.toArrow()
        except Exception as exc:
            raise EngineError(_first_line(exc)) from None

    def columns(self, query: exp.Expression | str) -> dict[str, str]:
        return {f.name: _type_name(f.dataType) for f in self._sql(query).schema.fields}

    def register_file_source(self, name: str, path: Path | str) -> exp.Table:
        text = str(path)
        if "://" not in text and not glob.glob(text):
            raise EngineError(f"source '{name}': no file matches {text}")
        view = exp.table_(f"{SOURCE_PREFIX}{name}", quoted=True)
        if text.lower().endswith((".csv", ".csv.gz", ".tsv")):
            options = f"path {_quote(text)}, header 'true', inferSchema 'true'"
            fmt = "csv"
        else:
            options, fmt = f"path {_quote(text)}", "parquet"
        self.execute(f"CREATE OR REPLACE TEMP VIEW {view.sql('spark')} USING {fmt} OPTIONS ({options})")
        return view

    def load_arrow(self, name: str, table: pa.Table) -> exp.Table:
        frame = self.spark.createDataFrame(_spark_ready(table))
        frame.createOrReplaceTempView(name)
        return exp.table_(name, quoted=True)

    def create_temp_table(self, name: str, query: exp.Expression | str) -> exp.Table:
        # an eager local checkpoint: computed once, lineage cut, so later reads do not recompute the plan
        try:
            frame = self._sql(query).localCheckpoint(eager=True)
        except EngineError:
            raise
        except Exception as exc:
            raise EngineError(_first_line(exc)) from None
        frame.createOrReplaceTempView(name)
        return exp.table_(name, quoted=True)

    def copy_to_parquet(self, query: exp.Expression | str, path: Path) -> int:
        """One Parquet file written by Spark: one partition (order kept) into a scratch dir, then moved."""
        path.parent.mkdir(parents=True, exist_ok=True)
        scratch = path.with_name(f".{path.name}.spark")
        shutil.rmtree(scratch, ignore_errors=True)
        frame = self._sql(query)
        try:
            frame.coalesce(1).write.mode("overwrite").parquet(str(scratch))
            parts = sorted(scratch.glob("part-*.parquet"))
            if parts:
                shutil.move(str(parts[0]), path)
            else:  # no rows and no file: write the schema
                pq.write_table(frame.limit(0).toArrow(), path)
        except Exception as exc:
            raise EngineError(f"cannot write {path}: {_first_line(exc)}") from None
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        return pq.ParquetFile(path).metadata.num_rows

    def close(self) -> None:
        """Drop this session's temp views; the shared SparkContext stays up for the next engine in the process."""
        try:
            for table in self.spark.catalog.listTables():
                if table.isTemporary:
                    self.spark.catalog.dropTempView(table.name)
        except Exception:  # a stopped or unreachable session has nothing left to drop
            pass

    def _sql(self, query: exp.Expression | str) -> Any:
        try:
            return self.spark.sql(self.render(query))
        except Exception as exc:
            raise EngineError(_first_line(exc)) from None


def _spark_ready(table: pa.Table) -> pa.Table:
    """Spark stores microseconds: truncate finer times; decode dictionaries."""
    columns = []
    for column in table.columns:
        if pa.types.is_dictionary(column.type):
            column = column.cast(column.type.value_type)
        if pa.types.is_timestamp(column.type) and column.type.unit != "us":
            column = column.cast(pa.timestamp("us", tz=column.type.tz), safe=False)
        columns.append(column)
    return pa.table(columns, names=table.column_names)


def _type_name(dtype: Any) -> str:
    kind = type(dtype).__name__
    if kind == "DecimalType":
        return f"DECIMAL({dtype.precision},{dtype.scale})"
    return _TYPES.get(kind, dtype.simpleString().upper())


def _quote(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
