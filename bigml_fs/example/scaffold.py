"""`bigml-fs init DIR`: copy the example project's definitions and generate data, or start blank.

The repository root *is* the example project; a wheel carries a copy of its
definition files under ``bigml_fs/example/project``. Either way, one source.
``--blank`` writes a project that validates and holds nothing yet, with the
shape of each definition in comments.
"""

from __future__ import annotations

import shutil
from datetime import datetime, timezone
from pathlib import Path

from bigml_fs.errors import BigmlError
from bigml_fs.example.generate import generate

PARTS = ("project.yaml", "sql", "features", "models")
GITIGNORE = ".bigml/\ndata/\n"


BLANK_PROJECT = """\
name: {name}
# engine: {{type: duckdb, path: .bigml/warehouse.duckdb}}      # or postgres, spark
# online_store: {{type: sqlite, path: .bigml/online.db}}        # or redis, postgres
vars: {{}}
entities: []
#  - name: customer
#    join_keys: [customer_id]
sources: []
#  - name: transactions
#    path: data/transactions.parquet      # Parquet/CSV path or glob, or `table: schema.table`
#    timestamp: ts                        # event time column
#    created_timestamp: ingested_at       # optional: breaks ties between equal event times
"""
BLANK_FILES = {
    "features/README.md": "Feature views: `feature_views:` lists in YAML files here (see the bigml-fs README).\n",
    "models/README.md": "Models: `models:` lists in YAML files here (see the bigml-fs README).\n",
    "sql/README.md": "Jinja-SQL transformations: one SELECT per `.sql` file, file name = model name.\n",
}


def template_dir() -> Path:
    packaged = Path(__file__).parent / "project"
    if (packaged / "project.yaml").exists():
        return packaged
    checkout = Path(__file__).resolve().parents[2]
    if (checkout / "project.yaml").exists():
        return checkout
    raise BigmlError("the example project's files are missing from this installation; reinstall bigml-fs")


def scaffold(directory: Path, rows: int = 5000, blank: bool = False) -> list[Path]:
    """Create a runnable project in ``directory`` (which must be empty or new); ``blank``: no definitions, no data."""
    if directory.exists() and any(directory.iterdir()):
        raise BigmlError(f"{directory} is not empty; choose a new directory")
    if blank:
        return _blank(directory)
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
    generate(directory / "data", rows=rows, end_day=datetime.now(timezone.utc).date())  # live values: ends today
    written.extend(sorted((directory / "data").glob("*.parquet")))
    return written


def _blank(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    files = {"project.yaml": BLANK_PROJECT.format(name=directory.resolve().name), ".gitignore": GITIGNORE}
    written: list[Path] = []
    for name, text in {**files, **BLANK_FILES}.items():
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        written.append(path)
    return written
