"""`bigml-fs init DIR`: copy the example project's definitions and generate data.

The repository root *is* the example project; a wheel carries a copy of its
definition files under ``bigml_fs/example/project``. Either way, one source.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from bigml_fs.errors import BigmlError
from bigml_fs.example.generate import generate

PARTS = ("project.yaml", "sql", "features", "models")
GITIGNORE = ".bigml/\ndata/\n"


def template_dir() -> Path:
    packaged = Path(__file__).parent / "project"
    if (packaged / "project.yaml").exists():
        return packaged
    checkout = Path(__file__).resolve().parents[2]
    if (checkout / "project.yaml").exists():
        return checkout
    raise BigmlError("the example project's files are missing from this installation; reinstall bigml-fs")


def scaffold(directory: Path, rows: int = 5000) -> list[Path]:
    """Create a runnable project in ``directory`` (which must be empty or new)."""
    if directory.exists() and any(directory.iterdir()):
        raise BigmlError(f"{directory} is not empty; choose a new directory")
    source = template_dir()
    directory.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for part in PARTS:
        src, dst = source / part, directory / part
        if src.is_dir():
            shutil.copytree(src, dst)
            written.extend(p for p in dst.rglob("*") if p.is_file())
        else:
            shutil.copy2(src, dst)
            written.append(dst)
    (directory / ".gitignore").write_text(GITIGNORE)
    written.append(directory / ".gitignore")
    generate(directory / "data", rows=rows)
    written.extend(sorted((directory / "data").glob("*.parquet")))
    return written
