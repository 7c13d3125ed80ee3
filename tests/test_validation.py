"""Broken definitions: each error names the file, the line and the key."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from bigml_fs import Project
from bigml_fs.errors import DefinitionError
from tests.helpers import micros_to_ts

PROJECT = """\
name: shop
vars: {min_amount: 0}
entities:
  - name: user
    join_keys: [user_id]
sources:
  - name: orders
    path: data/orders.parquet
    timestamp: ts
  - name: users
    path: data/users.parquet
"""
FEATURES = """\
feature_views:
  - name: spend
    entities: [user]
    source: orders
    ttl: 7d
    features:
      - name: last_amount
        expr: amount
      - {name: amount_sum_1d, agg: sum, expr: amount, window: 1d}
"""
MODELS = """\
models:
  - name: churn
    task: classification
    labels: {source: labels, target: churned, timestamp: ts}
    features: [spend:*]
    estimator: logistic_regression
"""
SQL = {
    "clean_orders": "SELECT * FROM {{ source('orders') }} WHERE amount >= {{ var('min_amount') }}\n",
    "labels": "SELECT user_id, ts, amount > 10 AS churned FROM {{ ref('clean_orders') }}\n",
}


def make(
    root: Path,
    project: str = PROJECT,
    features: str = FEATURES,
    models: str = MODELS,
    sql: dict[str, str] | None = None,
) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "project.yaml").write_text(project)
    for folder, name, text in (("features", "spend.yaml", features), ("models", "churn.yaml", models)):
        (root / folder).mkdir(exist_ok=True)
        (root / folder / name).write_text(text)
    (root / "sql").mkdir(exist_ok=True)
    for name, text in (SQL if sql is None else sql).items():
        (root / "sql" / f"{name}.sql").write_text(text)
    (root / "data").mkdir(exist_ok=True)
    pq.write_table(
        pa.table({"user_id": pa.array([1], type=pa.int64()), "amount": [5.0], "ts": micros_to_ts([0])}),
        root / "data" / "orders.parquet",
    )
    pq.write_table(
        pa.table({"user_id": pa.array([1], type=pa.int64()), "plan": ["free"]}), root / "data" / "users.parquet"
    )
    return root


def errors_of(root: Path) -> str:
    with pytest.raises(DefinitionError) as info, Project.load(root, in_memory=True) as project:
        project.validate()
    return str(info.value)


def test_the_base_project_is_valid(tmp_path):
    with Project.load(make(tmp_path), in_memory=True) as project:
        catalog = project.validate()
    assert set(catalog.views) == {"spend"} and set(catalog.models) == {"churn"}


def sub(text: str, old: str, new: str) -> str:
    assert old in text, old
    return text.replace(old, new, 1)


CASES = [
    # (id, which file changes, how, expected fragments of the message)
    (
        "unknown project key",
        "project",
        lambda t: t + "enginee: {type: duckdb}\n",
        ["project.yaml:12", "enginee", "did you mean 'engine'"],
    ),
    (
        "bad engine type",
        "project",
        lambda t: t + "engine: {type: duckdbb}\n",
        ["project.yaml:12", "engine", "did you mean 'duckdb'"],
    ),
    (
        "entity without keys",
        "project",
        lambda t: sub(t, "    join_keys: [user_id]\n", ""),
        ["project.yaml:4", "entities[0]", "join_keys"],
    ),
    (
        "source with path and table",
        "project",
        lambda t: sub(t, "    path: data/users.parquet", "    path: data/users.parquet\n    table: main.users"),
        ["project.yaml:10", "sources[1]", "exactly one of 'path'"],
    ),
    (
        "duplicate source",
        "project",
        lambda t: t + "  - name: orders\n    path: data/orders.parquet\n",
        ["project.yaml:12", "sources[2].name", "duplicate source name 'orders'", "project.yaml:7"],
    ),
    (
        "duplicate yaml key",
        "project",
        lambda t: sub(t, "name: shop\n", "name: shop\nname: shop2\n"),
        ["project.yaml:2", "name", "duplicate key"],
    ),
    (
        "invalid yaml",
        "project",
        lambda t: t + "  - name: [unclosed\n",
        ["project.yaml:13", "invalid YAML", "flow sequence at line 12"],
    ),
    (
        "missing source file",
        "project",
        lambda t: sub(t, "data/users.parquet", "data/userz.parquet"),
        ["project.yaml:11", "sources[1].path", "no file matches data/userz.parquet"],
    ),
    (
        "online store key of another type",
        "project",
        lambda t: t + "online_store: {type: redis, path: x.db}\n",
        ["project.yaml:12", "online_store.path", "unknown key 'path'"],
    ),
    (
        "secret written in YAML",
        "project",
        lambda t: t + "online_store: {type: postgres, password: hunter2}\n",
        ["project.yaml:12", "online_store.password", "did you mean 'password_env'"],
    ),
    (
        "class_weight on regression",
        "models",
        lambda t: sub(
            sub(t, "task: classification", "task: regression"),
            "estimator: logistic_regression",
            "estimator: ridge\n    class_weight: balanced",
        ),
        ["models/churn.yaml:2", "class_weight"],
    ),
    (
        "unknown dialect",
        "project",
        lambda t: t + "sql_dialect: duckdbx\n",
        ["project.yaml:12", "sql_dialect", "unknown SQL dialect"],
    ),
    (
        "bad duration",
        "features",
        lambda t: sub(t, "ttl: 7d", "ttl: 7x"),
        ["features/spend.yaml:5", "feature_views[0].ttl", "unknown unit 'x'"],
    ),
    (
        "months rejected",
        "features",
        lambda t: sub(t, "window: 1d", "window: 1mo"),
        ["features/spend.yaml:9", "features[1].window", "months and years"],
    ),
    (
        "unknown view key",
        "features",
        lambda t: sub(t, "    ttl: 7d", "    tll: 7d"),
        ["features/spend.yaml:5", "feature_views[0].tll", "did you mean 'ttl'"],
    ),
    (
        "unknown feature key",
        "features",
        lambda t: sub(t, "        expr: amount", "        exp: amount"),
        ["features/spend.yaml:8", "features[0].exp", "did you mean 'expr'"],
    ),
    (
        "misspelt aggregation",
        "features",
        lambda t: sub(t, "agg: sum", "agg: summ"),
        ["features/spend.yaml:9", "features[1].agg", "did you mean 'sum'"],
    ),
    (
        "agg without window",
        "features",
        lambda t: sub(t, ", window: 1d", ""),
        ["features/spend.yaml:9", "features[1]", "needs a 'window'"],
    ),
    (
        "unknown entity",
        "features",
        lambda t: sub(t, "entities: [user]", "entities: [usr]"),
        ["features/spend.yaml:3", "entities[0]", "unknown entity 'usr'", "did you mean 'user'"],
    ),
    (
        "unknown source",
        "features",
        lambda t: sub(t, "source: orders", "source: order"),
        ["features/spend.yaml:4", "feature_views[0].source", "did you mean 'orders'"],
    ),
    (
        "source without the key column",
        "features",
        lambda t: sub(t, "entities: [user]", "entities: [{name: user, keys: {user_id: buyer_id}}]"),
        ["features/spend.yaml:3", "entities", "no column 'buyer_id'"],
    ),
    (
        "missing timestamp column",
        "features",
        lambda t: sub(t, "    ttl: 7d", "    timestamp: created\n    ttl: 7d"),
        ["features/spend.yaml:5", "feature_views[0].timestamp", "no column 'created'"],
    ),
    (
        "non-timestamp time column",
        "features",
        lambda t: sub(t, "    ttl: 7d", "    timestamp: amount\n    ttl: 7d"),
        ["features/spend.yaml:5", "timestamp", "not a timestamp"],
    ),
    (
        "bad feature expression",
        "features",
        lambda t: sub(t, "expr: amount\n", "expr: amout * 2\n"),
        ["features/spend.yaml:8", "features[0].expr", "amout"],
    ),
    (
        "duplicate feature",
        "features",
        lambda t: sub(t, "name: amount_sum_1d", "name: last_amount"),
        ["features/spend.yaml:9", "features[1].name", "duplicate feature name"],
    ),
    (
        "window over static source",
        "features",
        lambda t: sub(sub(t, "source: orders", "source: users"), "    ttl: 7d\n", ""),
        ["features/spend.yaml:8", "features[1].agg", "static source"],
    ),
    (
        "ttl over static source",
        "features",
        lambda t: sub(sub(t, "source: orders", "source: users"), "expr: amount\n", "expr: plan\n"),
        ["features/spend.yaml:5", "ttl", "static source"],
    ),
    (
        "sql view without timestamp",
        "features",
        lambda t: sub(t, "source: orders", "source: clean_orders"),
        ["features/spend.yaml:2", "timestamp", "needs 'timestamp:'"],
    ),
    (
        "wrong type",
        "features",
        lambda t: sub(t, "entities: [user]", "entities: user"),
        ["features/spend.yaml:3", "feature_views[0].entities", "valid list"],
    ),
    (
        "unknown model key",
        "models",
        lambda t: sub(t, "    estimator:", "    estimater:"),
        ["models/churn.yaml:6", "models[0].estimater", "did you mean 'estimator'"],
    ),
    (
        "bad task",
        "models",
        lambda t: sub(t, "task: classification", "task: clasification"),
        ["models/churn.yaml:3", "task", "did you mean 'classification'"],
    ),
    (
        "model with an unknown view",
        "models",
        lambda t: sub(t, "[spend:*]", "[spnd:*]"),
        ["models/churn.yaml:5", "models[0].features[0]", "did you mean 'spend'"],
    ),
    (
        "model with an unknown feature",
        "models",
        lambda t: sub(t, "[spend:*]", "[spend:last_amnt]"),
        ["models/churn.yaml:5", "features[0]", "did you mean 'last_amount'"],
    ),
    (
        "model without target column",
        "models",
        lambda t: sub(t, "target: churned", "target: churn"),
        ["models/churn.yaml:4", "labels.target", "did you mean 'churned'"],
    ),
    (
        "misspelt estimator",
        "models",
        lambda t: sub(t, "estimator: logistic_regression", "estimator: logistic_regresion"),
        ["models/churn.yaml:6", "models[0].estimator", "did you mean 'logistic_regression'"],
    ),
    (
        "estimator of another task",
        "models",
        lambda t: sub(t, "estimator: logistic_regression", "estimator: kmeans"),
        ["models/churn.yaml:6", "unknown classification estimator 'kmeans'"],
    ),
    (
        "misspelt metric",
        "models",
        lambda t: t + "    metrics: [roc_auc, precison]\n",
        ["models/churn.yaml:7", "models[0].metrics[1]", "did you mean 'precision'"],
    ),
    (
        "source lacks its timestamp",
        "project",
        lambda t: sub(t, "    timestamp: ts\n", "    timestamp: tss\n"),
        ["project.yaml:9", "sources[0].timestamp", "source 'orders' has no column 'tss'", "did you mean 'ts'"],
    ),
    (
        "unused source with a text timestamp",
        "project",
        lambda t: sub(t, "    path: data/users.parquet\n", "    path: data/users.parquet\n    timestamp: plan\n"),
        ["project.yaml:12", "sources[1].timestamp", "not a timestamp"],
    ),
    (
        "misspelt column in an expression",
        "features",
        lambda t: sub(t, "expr: amount\n", "expr: amout * 2\n"),
        ["features/spend.yaml:8", "features[0].expr", "names column 'amout'", "did you mean 'amount'"],
    ),
    (
        "entity error names the entity",
        "project",
        lambda t: sub(t, "join_keys: [user_id]", "join_keys: [user_id]\n    joinkeys: [x]"),
        ["project.yaml:6", "entity 'user'", "did you mean 'join_keys'"],
    ),
    (
        "labels source missing",
        "models",
        lambda t: sub(t, "source: labels", "source: lables"),
        ["models/churn.yaml:4", "labels.source", "did you mean 'labels'"],
    ),
]


@pytest.mark.parametrize(("case", "target", "change", "expected"), CASES, ids=[c[0] for c in CASES])
def test_broken_definition(tmp_path, case, target, change, expected):
    texts = {"project": PROJECT, "features": FEATURES, "models": MODELS}
    texts[target] = change(texts[target])
    message = errors_of(make(tmp_path, **texts))
    for fragment in expected:
        assert fragment in message, f"{fragment!r} not in:\n{message}"


def test_all_errors_are_reported_at_once(tmp_path):
    features = sub(sub(FEATURES, "ttl: 7d", "ttl: 7x"), "agg: sum", "agg: summ")
    models = sub(MODELS, "task: classification", "task: nope")
    message = errors_of(make(tmp_path, features=features, models=models))
    assert message.startswith("3 errors")
    assert "spend.yaml:5" in message and "spend.yaml:9" in message and "churn.yaml:3" in message


SQL_CASES = [
    (
        "syntax error names the line",
        {"clean_orders": "SELECT *\nFROM {{ source('orders') }}\nWHERE amount >>= 1 AND (\n"},
        ["sql/clean_orders.sql:3", "syntax error"],
    ),
    (
        "unknown ref",
        {**SQL, "labels": "SELECT 1 AS x FROM {{ ref('clean_order') }}"},
        ["sql/labels.sql:1", "did you mean 'clean_orders'"],
    ),
    (
        "unknown source",
        {**SQL, "clean_orders": "SELECT *\nFROM {{ source('ordrs') }}"},
        ["sql/clean_orders.sql:2", "unknown source 'ordrs'", "did you mean 'orders'"],
    ),
    (
        "unknown var",
        {**SQL, "clean_orders": "SELECT * FROM {{ source('orders') }} WHERE amount > {{ var('min_amt') }}"},
        ["sql/clean_orders.sql:1", "var('min_amt')", "did you mean 'min_amount'"],
    ),
    (
        "undefined jinja name",
        {**SQL, "clean_orders": "SELECT {{ colum }} FROM {{ source('orders') }}"},
        ["sql/clean_orders.sql:1", "'colum' is undefined"],
    ),
    ("two statements", {**SQL, "clean_orders": "SELECT 1; SELECT 2"}, ["sql/clean_orders.sql", "exactly one SELECT"]),
    ("not a select", {**SQL, "clean_orders": "DELETE FROM x"}, ["sql/clean_orders.sql:1", "must be a SELECT"]),
    (
        "cycle",
        {
            "a": "SELECT * FROM {{ ref('b') }}",
            "b": "SELECT * FROM {{ ref('c') }}",
            "c": "SELECT * FROM {{ ref('a') }}",
            "labels": SQL["labels"],
            "clean_orders": SQL["clean_orders"],
        },
        ["cycle", "a -> ", "b", "c"],
    ),
    (
        "engine rejects",
        {**SQL, "clean_orders": "SELECT nope FROM {{ source('orders') }}"},
        ["sql/clean_orders.sql", "nope"],
    ),
    (
        "sandbox",
        {**SQL, "clean_orders": "SELECT {{ ''.__class__.__mro__ }} FROM {{ source('orders') }}"},
        ["sql/clean_orders.sql:1"],
    ),
]


@pytest.mark.parametrize(("case", "sql", "expected"), SQL_CASES, ids=[c[0] for c in SQL_CASES])
def test_broken_sql_model(tmp_path, case, sql, expected):
    message = errors_of(make(tmp_path, sql=sql))
    for fragment in expected:
        assert fragment in message, f"{fragment!r} not in:\n{message}"


def test_unknown_missing_policy_is_a_definition_error_at_its_line(tmp_path):
    message = errors_of(make(tmp_path, models=MODELS + "    missing: maybe\n"))
    for fragment in ("models/churn.yaml:7", "models[0].missing", "'maybe'", "score, null, error"):
        assert fragment in message, f"{fragment!r} not in:\n{message}"


def test_missing_policy_null_is_read_from_unquoted_yaml_null(tmp_path):
    with Project.load(make(tmp_path, models=MODELS + "    missing: null\n"), in_memory=True) as project:
        assert project.validate().models["churn"].missing == "null"


def test_missing_project_file(tmp_path):
    with pytest.raises(DefinitionError, match="no project.yaml"):
        Project.load(tmp_path)


def test_specs_are_frozen(tmp_path):
    with Project.load(make(tmp_path), in_memory=True) as project:
        view = project.validate().views["spend"].spec
        with pytest.raises(Exception, match="frozen"):
            view.name = "other"  # type: ignore[misc]


def test_a_secret_written_in_yaml_is_not_echoed(tmp_path):
    message = errors_of(make(tmp_path, project=PROJECT + "engine: {type: postgres, password: hunter2}\n"))
    assert "password_env" in message and "hunter2" not in message


def test_engine_and_online_store_type_default_to_duckdb_and_sqlite(tmp_path):
    root = make(tmp_path, project=PROJECT + "engine: {threads: 1}\nonline_store: {path: .bigml/o.db}\n")
    with Project.load(root, in_memory=True) as project:
        assert project.spec.engine.type == "duckdb" and project.spec.engine.threads == 1
        assert project.spec.online_store.type == "sqlite"
        project.validate()


@pytest.mark.parametrize(
    ("engine", "expected"),
    [
        ("engine: duckdb\n", ["project.yaml:12", "'engine' must be a mapping such as {type: duckdb}"]),
        ("engine: {type: duckdbb}\n", ["project.yaml:12", "'engine' has an unknown type 'duckdbb'"]),
        ("online_store: {type: redi}\n", ["project.yaml:12", "(did you mean 'redis'?)", "types are: sqlite, redis"]),
    ],
)
def test_a_wrong_engine_type_names_the_key_and_the_allowed_types(tmp_path, engine, expected):
    message = errors_of(make(tmp_path, project=PROJECT + engine))
    assert "discriminator" not in message and "types are:" in message
    for fragment in expected:
        assert fragment in message, f"{fragment!r} not in:\n{message}"


def test_one_root_cause_is_reported_once(tmp_path):
    # a view over a sql model without timestamp: not also "static source" errors for its ttl and windows
    message = errors_of(make(tmp_path / "a", features=sub(FEATURES, "source: orders", "source: clean_orders")))
    assert message.startswith("1 error") and "needs 'timestamp:'" in message, message
    # a broken sql model the labels come from: not also "unknown labels source" in the model file
    sql = {**SQL, "labels": "SELECT user_id, ts, nope AS churned FROM {{ ref('clean_orders') }}\n"}
    message = errors_of(make(tmp_path / "b", sql=sql))
    assert message.startswith("1 error") and "sql/labels.sql" in message and "labels source" not in message, message


def test_unknown_estimator_params_are_definition_errors_at_their_line(tmp_path):
    models = sub(MODELS, "estimator: logistic_regression", "estimator: random_forest\n    params: {maxdepth: 8}")
    message = errors_of(make(tmp_path, models=models))
    assert message.startswith("1 error"), message
    for fragment in ("models/churn.yaml:7", "models[0].params.maxdepth", "did you mean 'max_depth'"):
        assert fragment in message, f"{fragment!r} not in:\n{message}"


@pytest.mark.parametrize("agg", ["sum", "avg", "stddev", "variance"])
def test_a_numeric_aggregation_over_text_is_an_error_at_the_feature(tmp_path, agg):
    features = sub(FEATURES, "agg: sum, expr: amount,", f"agg: {agg}, expr: CAST(amount AS VARCHAR),")
    message = errors_of(make(tmp_path, features=features))
    assert message.startswith("1 error"), message
    for fragment in ("features/spend.yaml:9", "features[1].agg", f"'agg: {agg}' needs numbers", "VARCHAR"):
        assert fragment in message, f"{fragment!r} not in:\n{message}"


def test_count_and_min_over_text_are_fine(tmp_path):
    features = sub(FEATURES, "agg: sum, expr: amount,", "agg: max, expr: CAST(amount AS VARCHAR),")
    with Project.load(make(tmp_path, features=features), in_memory=True) as project:
        project.validate()


def test_unknown_tuning_space_params_are_definition_errors(tmp_path):
    models = sub(
        MODELS,
        "estimator: logistic_regression",
        "estimator: random_forest\n    tuning:\n      space: {n_estimatorz: [10, 20], estimator__max_depth: [2, 3]}",
    )
    message = errors_of(make(tmp_path, models=models))
    assert message.startswith("1 error") and "models/churn.yaml:8" in message, message
    assert "tuning.space.n_estimatorz" in message and "did you mean 'n_estimators'" in message, message
