"""bigml_fs: a declarative, SQL-centric feature store and ML-in-warehouse tool."""

from __future__ import annotations

from bigml_fs.errors import BigmlError
from bigml_fs.project import Project

__all__ = ["BigmlError", "Project"]
__version__ = "0.1.0"
