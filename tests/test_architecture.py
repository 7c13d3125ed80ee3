"""The layout's rules that import-linter cannot see (it runs in `make lint` for the import directions)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "bigml_fs"
BELOW_FACADE = ("store", "training", "scoring", "compiler", "engines", "spec", "core")


def _modules(*rooms: str) -> list[Path]:
    return sorted(p for room in rooms for p in (PACKAGE / room).rglob("*.py"))


@pytest.mark.parametrize("path", _modules(*BELOW_FACADE), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_nothing_below_the_facade_takes_the_project(path: Path) -> None:
    """Lower rooms take the typed Workspace (or Paths), never the facade, and never write onto it."""
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            for arg in [*node.args.posonlyargs, *node.args.args, *node.args.kwonlyargs]:
                # a Feast project *name* (``project: str``) is fine; the facade or an untyped stand-in is not
                typed = ast.unparse(arg.annotation) if arg.annotation is not None else ""
                is_facade = arg.arg == "project" and typed != "str"
                assert not is_facade, f"{path.name}:{node.lineno} {node.name}() takes a project ({typed or 'untyped'})"
        if isinstance(node, ast.Attribute) and node.attr == "__dict__":
            assert not (isinstance(node.value, ast.Name) and node.value.id == "project"), path.name
        if isinstance(node, ast.ImportFrom) and node.module:
            assert node.module != "bigml_fs.project", f"{path.name}:{node.lineno} imports the facade"


def test_importing_a_lower_room_does_not_load_the_facade() -> None:
    """``bigml_fs/__init__`` loads Project lazily, so a core or engine module alone stays light."""
    code = "import sys, bigml_fs.core.types, bigml_fs.engines.base; print('bigml_fs.project' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "False"


def test_import_contracts_hold() -> None:
    """The import-linter contracts of pyproject.toml (also run by `make lint`)."""
    lint = Path(sys.executable).parent / "lint-imports"
    if not lint.exists():
        pytest.skip("import-linter is not installed in this environment (make install adds it)")
    result = subprocess.run([str(lint)], capture_output=True, text=True, cwd=PACKAGE.parent, check=False)
    assert result.returncode == 0, result.stdout[-3000:]
