"""Typed, frozen specs of project.yaml, features/*.yaml and models/*.yaml.

Every model forbids unknown keys, so a misspelt key is an error with a
did-you-mean instead of a silently ignored setting. These classes check the
shape of one file; references between files are checked in ``validate.py``.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from bigml_fs.spec.durations import parse_duration

Duration = Annotated[timedelta, BeforeValidator(parse_duration)]
Name = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]

AGGREGATIONS = ("count", "sum", "avg", "min", "max", "stddev", "variance", "count_distinct", "first", "last")
Aggregation = Literal["count", "sum", "avg", "min", "max", "stddev", "variance", "count_distinct", "first", "last"]


class Spec(BaseModel):
    """Base of all specs: strict keys, immutable after loading."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


# --- project.yaml -----------------------------------------------------------


class DuckDBEngineSpec(Spec):
    type: Literal["duckdb"] = "duckdb"
    path: str = ".bigml/warehouse.duckdb"
    threads: int | None = None
    memory_limit: str | None = None


class PostgresConnectionSpec(Spec):
    """Where a PostgreSQL server is; the password only by the name of its environment variable."""

    host: str = "127.0.0.1"
    port: int = 5432
    database: str = "postgres"
    user: str = "postgres"
    password_env: str | None = None
    schema_: str = Field("public", alias="schema")


class PostgresEngineSpec(PostgresConnectionSpec):
    type: Literal["postgres"]


class SparkEngineSpec(Spec):
    type: Literal["spark"]
    master: str = "local[*]"
    conf: dict[str, str] = {}


def default_type(name: str) -> BeforeValidator:
    """``type`` may be left out of a mapping: ``engine: {threads: 1}`` is a DuckDB engine."""

    def fill(value: Any) -> Any:
        return {"type": name, **value} if isinstance(value, dict) and "type" not in value else value

    return BeforeValidator(fill)


EngineSpec = Annotated[
    DuckDBEngineSpec | PostgresEngineSpec | SparkEngineSpec, Field(discriminator="type"), default_type("duckdb")
]


class OfflineStoreSpec(Spec):
    path: str = ".bigml/offline"


class SqliteOnlineStoreSpec(Spec):
    type: Literal["sqlite"] = "sqlite"
    path: str = ".bigml/online.db"


class RedisOnlineStoreSpec(Spec):
    type: Literal["redis"]
    host: str = "127.0.0.1"
    port: int = 6379
    db: int = 0
    password_env: str | None = None


class PostgresOnlineStoreSpec(PostgresConnectionSpec):
    type: Literal["postgres"]


OnlineStoreSpec = Annotated[
    SqliteOnlineStoreSpec | RedisOnlineStoreSpec | PostgresOnlineStoreSpec,
    Field(discriminator="type"),
    default_type("sqlite"),
]


class EntitySpec(Spec):
    name: Name
    join_keys: list[Name] = Field(min_length=1)
    description: str = ""


class SourceSpec(Spec):
    name: Name
    path: str | None = None
    table: str | None = None
    timestamp: str | None = None
    created_timestamp: str | None = None
    description: str = ""

    @model_validator(mode="after")
    def _path_or_table(self) -> SourceSpec:
        if (self.path is None) == (self.table is None):
            raise ValueError("give exactly one of 'path' (Parquet/CSV file or glob) or 'table' (schema.table)")
        if self.timestamp in ("none", ""):
            object.__setattr__(self, "timestamp", None)
        if self.created_timestamp and not self.timestamp:
            raise ValueError("'created_timestamp' needs 'timestamp': a static source has no event time")
        return self


class ProjectSpec(Spec):
    name: Name
    engine: EngineSpec = DuckDBEngineSpec()
    sql_dialect: str = "duckdb"
    offline_store: OfflineStoreSpec = OfflineStoreSpec()
    online_store: OnlineStoreSpec = SqliteOnlineStoreSpec()
    registry: str = ".bigml/registry.db"
    vars: dict[str, Any] = {}
    entities: list[EntitySpec] = []
    sources: list[SourceSpec] = []
    description: str = ""

    @field_validator("sql_dialect")
    @classmethod
    def _known_dialect(cls, value: str) -> str:
        from sqlglot.dialects.dialect import Dialect

        try:
            Dialect.get_or_raise(value)
        except ValueError as exc:
            raise ValueError(f"unknown SQL dialect {value!r}: {exc}") from None
        return value


# --- features/*.yaml --------------------------------------------------------


class EntityRef(Spec):
    """An entity used by a view, with its keys optionally mapped to other columns."""

    name: Name
    keys: dict[str, Name] = {}


class FeatureSpec(Spec):
    name: Name
    expr: str | None = None
    agg: Aggregation | None = None
    window: Duration | None = None
    where: str | None = None
    description: str = ""

    @model_validator(mode="after")
    def _agg_and_window(self) -> FeatureSpec:
        if self.agg and self.window is None:
            raise ValueError(f"'agg: {self.agg}' needs a 'window' (e.g. window: 7d)")
        if self.window is not None and not self.agg:
            raise ValueError("'window' needs an 'agg' (count, sum, avg, ...)")
        if self.where and not self.agg:
            raise ValueError("'where' applies to window aggregates only; add 'agg' and 'window' or drop 'where'")
        if self.agg and self.agg != "count" and self.expr is None:
            # sum/avg/... of the column named like the feature is rarely meant
            raise ValueError(f"'agg: {self.agg}' needs an 'expr' (the value to aggregate)")
        return self

    @property
    def is_window(self) -> bool:
        return self.agg is not None

    @property
    def value_sql(self) -> str:
        """The SQL expression of the feature's value over a source row."""
        return self.expr if self.expr is not None else self.name


class RangeCheck(Spec):
    column: str
    min: float | None = None
    max: float | None = None


class AcceptedValuesCheck(Spec):
    column: str
    values: list[Any]


class CheckSpec(Spec):
    """One data check; exactly one key set."""

    not_null: list[str] | None = None
    unique: list[str] | None = None
    range: RangeCheck | None = None
    accepted_values: AcceptedValuesCheck | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> CheckSpec:
        given = [k for k in ("not_null", "unique", "range", "accepted_values") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("a check has exactly one of: not_null, unique, range, accepted_values")
        return self


class FeatureViewSpec(Spec):
    name: Name
    entities: list[Name | EntityRef] = Field(min_length=1)
    source: Name
    timestamp: str | None = None
    created_timestamp: str | None = None
    ttl: Duration | None = None
    description: str = ""
    tags: dict[str, str] = {}
    features: list[FeatureSpec] = Field(min_length=1)
    checks: list[CheckSpec] = []

    @property
    def entity_refs(self) -> list[EntityRef]:
        return [EntityRef(name=e) if isinstance(e, str) else e for e in self.entities]


class FeaturesFile(Spec):
    feature_views: list[FeatureViewSpec] = []


# --- models/*.yaml ----------------------------------------------------------


class LabelsSpec(Spec):
    source: Name
    target: str | None = None
    timestamp: str


class ReduceSpec(Spec):
    """Dimension reduction after encoding: ``reduce: {pca: 10}``."""

    pca: int = Field(ge=1)


class PreprocessingSpec(Spec):
    impute: Literal["mean", "median", "most_frequent", "constant", "none"] = "median"
    scale: Literal["standard", "minmax", "robust", "none"] = "none"
    encode: Literal["onehot", "ordinal", "none"] = "onehot"
    reduce: ReduceSpec | None = None


class ResampleSpec(Spec):
    """Rebalance the classes of the training part only (imbalanced-learn); scoring never resamples.

    ``ratio`` is the wanted minority/majority ratio after resampling.
    """

    method: Literal["under", "over", "smote"]
    ratio: float = Field(1.0, gt=0, le=1)


class SplitSpec(Spec):
    by: Literal["time", "random"] = "time"
    test_fraction: float = Field(0.2, gt=0, lt=1)


class CvSpec(Spec):
    folds: int = Field(5, ge=2)
    by: Literal["time", "random"] = "time"


class SearchRange(Spec):
    low: float
    high: float
    log: bool = False
    integer: bool = False


class TuningSpec(Spec):
    method: Literal["grid", "random", "bayes"] = "random"
    n_iter: int = Field(20, ge=1)
    space: dict[str, SearchRange | list[Any]] = Field(min_length=1)

    @model_validator(mode="after")
    def _grid_needs_lists(self) -> TuningSpec:
        if self.method == "grid":
            ranges = [k for k, v in self.space.items() if isinstance(v, SearchRange)]
            if ranges:
                raise ValueError(
                    f"'method: grid' needs a list of values for every parameter; {', '.join(ranges)} is a range "
                    "(use method: random or bayes, or list the values)"
                )
        for key, value in self.space.items():
            if isinstance(value, SearchRange) and value.low > value.high:
                raise ValueError(f"space '{key}': low ({value.low}) is above high ({value.high})")
            if isinstance(value, SearchRange) and value.log and value.low <= 0:
                raise ValueError(f"space '{key}': a log range needs low > 0")
            if isinstance(value, list) and not value:
                raise ValueError(f"space '{key}': give at least one value")
        return self


# YAML reads an unquoted ``missing: null`` as None: it means "null"
MissingPolicy = Annotated[Literal["score", "null", "error"], BeforeValidator(lambda v: "null" if v is None else v)]


class ModelSpec(Spec):
    name: Name
    task: Literal["classification", "regression", "clustering", "anomaly"]
    labels: LabelsSpec
    features: list[str] = Field(min_length=1)
    estimator: str
    params: dict[str, Any] = {}
    preprocessing: PreprocessingSpec = PreprocessingSpec()
    split: SplitSpec = SplitSpec()
    cv: CvSpec | None = None
    tuning: TuningSpec | None = None
    class_weight: Literal["balanced"] | dict[str, float] | None = None
    resample: ResampleSpec | None = None
    metrics: list[str] = []
    seed: int = 0
    description: str = ""
    # online scoring of a row whose features are NOT_FOUND or OUTSIDE_MAX_AGE: score it anyway (they are listed
    # in the response's ``missing``), give it null scores, or fail the request (HTTP 422); recorded in the version.
    missing: MissingPolicy = "score"

    @model_validator(mode="after")
    def _target_for_supervised(self) -> ModelSpec:
        if self.task in ("classification", "regression") and not self.labels.target:
            raise ValueError(f"a {self.task} model needs 'labels.target' (the column to predict)")
        if self.class_weight is not None and self.task != "classification":
            raise ValueError(f"'class_weight' applies to classification only, not {self.task}; remove it")
        if self.resample is not None and self.task != "classification":
            raise ValueError(f"'resample' applies to classification only, not {self.task}; remove it")
        return self


class ModelsFile(Spec):
    models: list[ModelSpec] = []
