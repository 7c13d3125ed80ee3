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
