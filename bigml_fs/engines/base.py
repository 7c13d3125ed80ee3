"""The Engine interface: the one place SQL is sent to a database.

The compiler builds SQLGlot expressions from the engine's ``Dialect`` object
(``sql_dialect``); an engine renders them in its dialect, runs them and hands
results back as Arrow. DuckDB, PostgreSQL and Spark each
implement it, so the rest of bigml_fs never knows which database it talks to.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlglot import exp

from bigml_fs.engines.dialects import Dialect

if TYPE_CHECKING:  # pyarrow is imported where a result is fetched: a DuckDB training set never needs it
    import pyarrow as pa

SOURCE_SCHEMA = "src"


class Engine(ABC):
    """A SQL engine that holds sources, sql/ models and feature tables."""

    # Every engine declares both (no default: an engine that forgot would silently get another's plan).
    dialect: str  # the SQLGlot dialect name its SQL is rendered in
    sql_dialect: Dialect  # how its SQL differs: what the compiler asks when it builds a plan

    def render(self, query: exp.Expression | str) -> str:
        """SQL text of ``query`` in this engine's dialect."""
        return query if isinstance(query, str) else query.sql(dialect=self.dialect)

    @abstractmethod
    def execute(self, query: exp.Expression | str) -> None:
        """Run a statement for its effect."""

    @abstractmethod
    def to_arrow(self, query: exp.Expression | str) -> pa.Table:
        """Run a query and return its result as an Arrow table."""

    def rows(self, query: exp.Expression | str) -> list[dict[str, Any]]:
        """A (small) result as a list of dicts, e.g. a count or one example row."""
        return self.to_arrow(query).to_pylist()

    def file_columns(self, path: Path) -> list[str]:
        """Column names of a Parquet file, read from its footer."""
        import pyarrow.parquet as pq

        return pq.ParquetFile(path).schema_arrow.names

    @abstractmethod
    def columns(self, query: exp.Expression | str) -> dict[str, str]:
        """Column names and types of a query's result, without running it on the data."""

    @abstractmethod
    def register_file_source(self, name: str, path: Path | str) -> exp.Table:
        """Expose a Parquet/CSV file or glob as a relation; return its name."""

    @abstractmethod
    def load_arrow(self, name: str, table: pa.Table) -> exp.Table:
        """Load a (small) Arrow table, e.g. a spine, as a temporary relation."""

    @abstractmethod
    def copy_to_parquet(self, query: exp.Expression | str, path: Path) -> int:
        """Write a query's result to a Parquet file inside the engine; return the row count."""

    def load_parquet(self, name: str, path: Path, row_column: str) -> exp.Table:
        """Load a Parquet file (e.g. a spine) as a temporary relation, its row number in ``row_column``.

        Read with Arrow here (``ParquetFile.read``, which needs neither pandas
        nor pyarrow.dataset); an engine that reads Parquet itself overrides it.
        """
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pq.ParquetFile(path).read()
        return self.load_arrow(name, table.append_column(row_column, pa.array(range(table.num_rows), type=pa.int64())))

    def create_temp_table(self, name: str, query: exp.Expression | str) -> exp.Table:
        """(Re)create a session-scoped table from a query; return its name."""
        table = exp.table_(name, quoted=True)
        self.execute(f"CREATE OR REPLACE TEMP TABLE {table.sql(self.dialect)} AS {self.render(query)}")
        return table

    def create_temp_view(self, name: exp.Table, query: exp.Expression | str) -> None:
        """(Re)create a session-scoped view, e.g. a sql/ model for one command."""
        self.execute(f"CREATE OR REPLACE TEMP VIEW {name.sql(self.dialect)} AS {self.render(query)}")

    def create_model_table(self, name: str, query: exp.Expression | str, signature: str | None) -> exp.Table:
        """A table of a ``materialized='table'`` sql/ model; return the relation to read it from.

        The table built last time is reused when it exists and was built with
        the same ``signature`` (the model's fingerprint and the data it reads,
        see ``sql_models.model_signature``); otherwise it is rebuilt so that
        readers never see it half-built. ``signature`` None: always rebuilt.
        This default keeps it for the session only; engines override it with
        a table that outlives the command.
        """
        return self.create_temp_table(f"bigml_model__{name}", query)

    def lookup_relation(self, relation: exp.Table, columns: list[str]) -> exp.Table:
        """The relation a plan that probes ``columns`` per spine row should read.

        DuckDB and Spark join whole relations, so they read it as it is;
        PostgreSQL's LATERAL probes need an index on those columns.
        """
        return relation

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release the connection."""
