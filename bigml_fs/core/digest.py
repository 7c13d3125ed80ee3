"""The one digest bigml_fs stamps on definitions, schemas and descriptions.

Fingerprints, plan hashes and Feast signatures are compared across runs and
stored in state files, so they must be computed one way everywhere: SHA-256 of
the canonical JSON (sorted keys, ``str`` for anything JSON cannot hold), first
16 hex digits.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

LENGTH = 16


def digest(payload: Any, length: int = LENGTH) -> str:
    """Stable short hash of a JSON-able ``payload`` (dict order never matters)."""
    text = json.dumps(payload, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:length]
