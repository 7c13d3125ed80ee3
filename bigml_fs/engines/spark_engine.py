"""Apache Spark: local (``local[*]``), a cluster (``spark://...``) or Spark Connect (``sc://...``).

Sources are temp views over Parquet/CSV read natively by Spark (or tables of
its catalog); sql/ models are temp views, a ``materialized='table'`` model a
temp view over Parquet that Spark wrote under the warehouse directory; offline
tables are written by Spark itself. Every engine gets its own Spark session
(``newSession``: own temp views and SQL settings) over one shared
SparkContext, so a process (or a test run) starts the JVM once. The session
is handed to Ibis's pyspark backend, which sets the session time zone to UTC;
our plans are SQLGlot ASTs run with ``spark.sql``, because Ibis would have to
re-parse them.
"""

from __future__ import annotations

import glob
import os
import shutil
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import pyarrow as pa
import pyarrow.parquet as pq
from sqlglot import exp

from bigml_fs.engines.base import Engine
from bigml_fs.engines.dialects import SPARK
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
LOCAL_DEFAULTS = {
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.shuffle.partitions": "8",
    "spark.driver.memory": "2g",
}
SOURCE_PREFIX = "src__"

_TYPES = {
    "LongType": "BIGINT",
    "IntegerType": "INTEGER",
    "ShortType": "SMALLINT",
    "ByteType": "TINYINT",
    "DoubleType": "DOUBLE",
    "FloatType": "FLOAT",
    "StringType": "VARCHAR",
    "BooleanType": "BOOLEAN",
    "DateType": "DATE",
    "TimestampType": "TIMESTAMP WITH TIME ZONE",
    "TimestampNTZType": "TIMESTAMP",
    "BinaryType": "BLOB",
    "VarcharType": "VARCHAR",
    "CharType": "VARCHAR",
}


class SparkEngine(Engine):
    dialect = "spark"
    sql_dialect = SPARK

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
                raise EngineError(
                    f"engine 'spark' with master {master} uses Spark Connect, whose client needs: pip install "
                    "'pyspark[connect]'"
                ) from None
        if not remote and shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
            raise EngineError(
                "engine 'spark' needs Java (a JDK 17 or newer) to start Spark, and none was found; install one and set "
                "JAVA_HOME, or use Spark Connect (master: sc://host:15002)"
            )
        settings = {**({} if remote else LOCAL_DEFAULTS), **SESSION_CONF, **(conf or {})}
        builder = SparkSession.builder.appName("bigml-fs")
        builder = builder.remote(master) if remote else builder.master(master)
        for key, value in settings.items():
            builder = builder.config(key, value)
        try:
            base = builder.getOrCreate()
            if not remote:
                base.sparkContext.setLogLevel("ERROR")
                _quiet_codegen_fallback(base)
            self.spark = base if remote else base.newSession()
            for key, value in {
                **SESSION_CONF,
                **{k: v for k, v in (conf or {}).items() if k.startswith("spark.sql.") and k not in STATIC_CONF},
            }.items():
                self.spark.conf.set(key, value)
        except Exception as exc:  # the JVM or the cluster could not be reached: py4j/pyspark raise many kinds
            raise EngineError(
                f"cannot start Spark at master {master}: {_first_line(exc)}; is Java 17+ installed and the master "
                "reachable?"
            ) from None
        try:
            import ibis

            ibis.pyspark.connect(self.spark)  # Ibis's own session setup: UTC
        except ImportError:
            pass
        self._views: set[str] = set()
        self._remote = remote
        # the project's own warehouse setting: static conf is fixed by the first session of the JVM, which may be
        # another project's
        self._warehouse = (conf or {}).get("spark.sql.warehouse.dir") or self._conf("spark.sql.warehouse.dir")

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

    def create_model_table(self, name: str, query: exp.Expression | str, signature: str | None) -> exp.Table:
        """Parquet written by Spark under ``<warehouse>/bigml_models/<name>/<signature>/``, read through a temp view.

        Spark's default catalog lives in memory, so a table would not outlive
        the process: the files are the table. On a local (``file:``) warehouse
        a directory with Spark's ``_SUCCESS`` marker (written at the job's
        commit, so never for a half-written result) is reused, and older
        directories of the model are removed after a successful write. On other
        file systems (HDFS, S3) and through Spark Connect the driver cannot look
        at the files from Python, and with no signature there is nothing to
        compare: the model is written into a fresh directory every time
        (directories left by earlier runs there are not removed).
        """
        view = exp.table_(f"bigml_model__{name}", quoted=True)
        if self._warehouse is None:
            return self.create_temp_table(view.name, query)
        local = None if self._remote else _local_path(self._warehouse)
        if local is not None and signature is not None:
            target = local / "bigml_models" / name / signature
            if (target / "_SUCCESS").exists():
                self._read_parquet(view, target.as_uri())
                return view
            shutil.rmtree(target, ignore_errors=True)  # a write that did not finish
            uri = target.as_uri()
        else:
            fresh = f"{signature or 'unsigned'}-{uuid.uuid4().hex[:12]}"
            target = local / "bigml_models" / name / fresh if local is not None else None
            uri = (
                target.as_uri() if target is not None else f"{self._warehouse.rstrip('/')}/bigml_models/{name}/{fresh}"
            )
        frame = self._sql(query)
        try:
            frame.write.mode("errorifexists").parquet(uri)
        except Exception as exc:
            raise EngineError(f"cannot write the table of sql model '{name}' to {uri}: {_first_line(exc)}") from None
        self._read_parquet(view, uri)
        if target is not None:
            for old in target.parent.iterdir():
                if old != target:
                    shutil.rmtree(old, ignore_errors=True)
        return view

    def _read_parquet(self, view: exp.Table, uri: str) -> None:
        self.execute(f"CREATE OR REPLACE TEMP VIEW {view.sql('spark')} USING parquet OPTIONS (path {_quote(uri)})")

    def _conf(self, key: str) -> str | None:
        try:
            return self.spark.conf.get(key, None)
        except Exception:  # Spark Connect may refuse to read some settings
            return None

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


def _quiet_codegen_fallback(session: Any) -> None:
    """Silence the compile error Spark logs, with a 250-line Java trace, before it falls back to interpreted code.

    Large generated expressions (an in-warehouse scoring query of a
    gradient-boosted model) exceed Java's 64 KB method limit; Spark then runs
    the same plan without code generation and the result is unchanged, but
    the trace would reach the user's terminal as an ERROR.
    """
    try:
        jvm = session.sparkContext._jvm
        jvm.org.apache.logging.log4j.core.config.Configurator.setLevel(
            "org.apache.spark.sql.catalyst.expressions.codegen.CodeGenerator", jvm.org.apache.logging.log4j.Level.OFF
        )
    except Exception:  # another logging backend: the trace stays, nothing else changes
        pass


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


def _local_path(uri: str) -> Path | None:
    """The local directory of a ``file:`` URI or a plain path; None for other file systems."""
    parsed = urlparse(uri)
    if parsed.scheme == "":
        return Path(uri).resolve()
    if parsed.scheme == "file":
        return Path(unquote(parsed.path)).resolve()
    return None


def _quote(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
