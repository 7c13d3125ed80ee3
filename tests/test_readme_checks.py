"""The README's `checks:` example runs as written on the example project, and a failing check stops its view."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from bigml_fs import Project
from bigml_fs.errors import BigmlError
from tests.test_models import copy_example

README = Path(__file__).resolve().parent.parent / "README.md"


def _readme_checks() -> list[dict]:
    blocks = re.findall(r"```yaml\n(\s*checks:.*?)```", README.read_text(), flags=re.S)
    assert len(blocks) == 1, "the README shows one checks: example"
    return yaml.safe_load(blocks[0])["checks"]


def _with_checks(root: Path, checks: list[dict]) -> None:
    path = root / "features" / "customers.yaml"
    doc = yaml.safe_load(path.read_text())
    view = next(v for v in doc["feature_views"] if v["name"] == "customer_spend")
    view["checks"] = checks
    path.write_text(yaml.safe_dump(doc, sort_keys=False))


def test_the_readme_checks_pass_on_the_example_and_each_kind_can_fail(example_project, tmp_path):
    checks = _readme_checks()
    assert {next(iter(c)) for c in checks} == {"not_null", "unique", "range", "accepted_values"}
    root = copy_example(example_project, tmp_path / "p")
    _with_checks(root, checks)
    with Project.load(root, in_memory=True) as project:
        report = project.materialize(["customer_spend"], end="2024-03-31")
    assert report.ok
    # the same check made to fail: a value list without 'reversed' stops the view
    failing = [c for c in checks if "accepted_values" not in c]
    failing.append({"accepted_values": {"column": "status", "values": ["ok", "declined"]}})
    _with_checks(root, failing)
    with Project.load(root, in_memory=True) as project, pytest.raises(BigmlError, match="status"):
        project.materialize(["customer_spend"], end="2024-03-31", full_refresh=True)


def test_the_readme_spine_example_builds_spines_that_training_sets_read(example_project, tmp_path):
    """The README's shell lines that make spine.csv and spine.parquet work as written, and both spines agree."""
    import os
    import subprocess
    import sys

    text = README.read_text()
    block = re.search(r"```bash\n(printf 'customer_id.*?)```", text, flags=re.S)
    assert block, "the README shows how to build a spine"
    root = copy_example(example_project, tmp_path / "p")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    subprocess.run(["bash", "-euo", "pipefail", "-c", block.group(1)], cwd=root, env=env, check=True)
    features = ["customer_spend:*", "customer_profile:segment"]
    with Project.load(root, in_memory=True) as project:
        from_csv = project.training_set(features=features, spine=root / "spine.csv")
        from_parquet = project.training_set(features=features, spine=root / "spine.parquet")
    assert from_csv.num_rows == from_parquet.num_rows == 2
    spine_columns = {
        "customer_id",
        "merchant_id",
        "card_id",
        "country",
        "event_timestamp",
    }  # kept as each file has them
    feature_columns = [c for c in from_csv.column_names if c not in spine_columns]
    assert "segment" in feature_columns and "last_amount" in feature_columns
    assert None not in from_csv.column("segment").to_pylist()  # customers 1 and 2 exist: real values compared
    for name in feature_columns:
        assert from_csv.column(name).to_pylist() == from_parquet.column(name).to_pylist(), name
