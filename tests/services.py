"""Real PostgreSQL and Redis servers for tests.

Tests that need them take the ``postgres_dsn`` / ``redis_url`` fixtures (see
conftest.py). Locally a missing server skips those tests; with
BIGML_REQUIRE_SERVICES=1 (CI) a missing server fails them, so CI never passes
by skipping the stores it claims to test.
"""

from __future__ import annotations

import os
import socket
import uuid

import pytest

POSTGRES = {"host": "127.0.0.1", "port": 5432, "user": "postgres", "database": "test"}
REDIS = {"host": "127.0.0.1", "port": 6379}


def reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


def require(name: str, host: str, port: int) -> None:
    """Skip locally, fail under BIGML_REQUIRE_SERVICES=1, when a server is down."""
    if reachable(host, port):
        return
    message = f"{name} is not reachable at {host}:{port}"
    if os.environ.get("BIGML_REQUIRE_SERVICES") == "1":
        pytest.fail(f"{message}, and BIGML_REQUIRE_SERVICES=1 requires it")
    pytest.skip(message)


def unique_name(prefix: str) -> str:
    """A schema / key prefix of one test, so tests never see each other's data."""
    return f"{prefix}_{uuid.uuid4().hex[:10]}"
