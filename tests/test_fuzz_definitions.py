"""Random damage to the example project's YAML never produces a traceback: only DefinitionError."""

from __future__ import annotations

import shutil

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bigml_fs import Project
from bigml_fs.errors import BigmlError

FILES = [
    "project.yaml",
    "features/customers.yaml",
    "features/merchants.yaml",
    "features/cards.yaml",
    "models/fraud.yaml",
]
JUNK = st.sampled_from(
    [
        "",
        "- x",
        "{",
        "}",
        "[]",
        "null",
        "7x",
        "-1",
        "true",
        "name: [a, b]",
        "  bogus: 1",
        "agg: summ",
        "window: 3mo",
        "ttl: []",
        "\t",
        "entities: [ghost]",
        "features: [nope:*]",
        "source: nowhere",
        "timestamp: amount",
        "keys: {x: y}",
    ]
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(
    file=st.sampled_from(FILES),
    edits=st.lists(
        st.tuples(st.integers(0, 200), st.sampled_from(["delete", "replace", "insert"]), JUNK), min_size=1, max_size=3
    ),
)
def test_damaged_definitions_give_definition_errors(example_project, tmp_path_factory, file, edits):
    root = tmp_path_factory.mktemp("fuzz")
    for part in ("project.yaml", "sql", "features", "models"):
        src = example_project / part
        (shutil.copytree if src.is_dir() else shutil.copy)(src, root / part)
    (root / "data").symlink_to(example_project / "data")
    path = root / file
    lines = path.read_text().splitlines()
    for position, action, text in edits:
        i = position % max(len(lines), 1)
        if action == "delete" and lines:
            del lines[i]
        elif action == "replace" and lines:
            indent = lines[i][: len(lines[i]) - len(lines[i].lstrip())]
            lines[i] = indent + text
        else:
            lines.insert(i, text)
    path.write_text("\n".join(lines) + "\n")
    try:
        with Project.load(root, in_memory=True) as project:
            project.validate()
    except BigmlError as exc:
        text = str(exc)
        assert text and "Traceback" not in text
        for problem in getattr(exc, "problems", []):
            assert problem.file and problem.text  # every problem says where and what


def test_definition_errors_never_leak_python_reprs(example_project, tmp_path):
    root = tmp_path / "p"
    shutil.copytree(example_project, root)
    (root / "features" / "cards.yaml").write_text(
        "feature_views:\n  - name: x\n    entities: {a: 1}\n    source: 5\n    features: 3\n"
    )
    with pytest.raises(BigmlError) as info, Project.load(root, in_memory=True) as project:
        project.validate()
    assert "features/cards.yaml:3" in str(info.value) and "pydantic" not in str(info.value).lower()
