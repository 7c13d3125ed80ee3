"""bigml_fs: a declarative, SQL-centric feature store and ML-in-warehouse tool.

``from bigml_fs import Project`` is the Python API. The facade is loaded on
first use (PEP 562): importing any module of the package runs this file, and
a lower layer (say ``bigml_fs.core``) must not pull the whole facade with it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bigml_fs.errors import BigmlError

if TYPE_CHECKING:
    from bigml_fs.project import Project

__all__ = ["BigmlError", "Project"]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name == "Project":
        from bigml_fs.project import Project

        return Project
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
