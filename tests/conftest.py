"""Shared fixtures: a copy of the example project with small generated data."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bigml_fs.example.generate import generate

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def example_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The repository's example project, copied, with 3,000 generated transactions."""
    root = tmp_path_factory.mktemp("example")
    for part in ("project.yaml", "sql", "features", "models"):
        src = REPO / part
        if src.is_dir():
            shutil.copytree(src, root / part)
        else:
            shutil.copy(src, root / part)
    generate(root / "data", rows=3000)
    return root


# CI explores the same examples every run (a landing must not depend on luck);
# local runs draw new random cases each time, which is how new edge cases are found.
from hypothesis import settings as _hypothesis_settings  # noqa: E402

_hypothesis_settings.register_profile("ci", derandomize=True, print_blob=True)
if __import__("os").environ.get("CI"):
    _hypothesis_settings.load_profile("ci")
