"""Where materialize keeps its state, and the lock that serialises runs.

Layout (offline path from ``offline_store.path``, default ``.bigml/offline``)::

    .bigml/offline/runs/<run>/<feast view>.parquet   one directory per run
    .bigml/offline/runs/<run>/state.json             per-view state of that run
    .bigml/offline/current -> runs/<run>              the published run (a symlink)
    .bigml/materialize.lock                           held while a run works

The per-view state lives *inside* the run directory, so one atomic symlink
swap (``os.replace``) publishes the offline tables and the state that
describes them together: a run killed at any point leaves the previous
``current`` untouched, and the next run starts again from it.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from bigml_fs.errors import BigmlError

if TYPE_CHECKING:  # the online CLI and /health read state without building a workspace
    from bigml_fs.spec.schema import ProjectSpec
    from bigml_fs.workspace import Paths

STATE_FILE = "state.json"
CURRENT = "current"
RUNS = "runs"
LOCK_FILE = "materialize.lock"
# version of state.json that publish() writes; files written before it existed have no ``format`` and read as 1.
# 2: each view records the online store its rows are in (``ViewState.online_store``; absent in format 1)
FORMAT = 2


class MaterializeBusy(BigmlError):
    """Another materialize holds the project's lock."""


class OnlineStoreIdentity(BaseModel):
    """Which online store a view's online rows were written to: its type, where it is, the Feast project.

    Never a password nor the name of its environment variable. A view's rows are
    in one store only: another identity (another type, SQLite file, Redis
    server/db, PostgreSQL server/database/schema, or Feast project name, which
    prefixes tables and keys) means the rows are not there, so ``plan.decide``
    recomputes the view.
    """

    model_config = ConfigDict(extra="ignore", frozen=True)

    type: str
    project: str  # the Feast project name: tables ``{project}_{view}``, Redis keys end with it
    path: str | None = None  # SQLite: the resolved database file
    host: str | None = None  # Redis, PostgreSQL
    port: int | None = None
    db: int | None = None  # Redis
    database: str | None = None  # PostgreSQL
    db_schema: str | None = None  # PostgreSQL

    def describe(self) -> str:
        """Where the store is, for a plan's reason (``sqlite /p/.bigml/online.db``, ``redis 127.0.0.1:6379/0``)."""
        if self.type == "sqlite":
            return f"sqlite {self.path}"
        if self.type == "redis":
            return f"redis {self.host}:{self.port}/{self.db}"
        return f"{self.type} {self.host}:{self.port}/{self.database}.{self.db_schema}"


def online_store_identity(spec: ProjectSpec, paths: Paths) -> OnlineStoreIdentity:
    """The identity of the online store project.yaml names (see ``OnlineStoreIdentity``)."""
    store = spec.online_store
    if store.type == "sqlite":
        return OnlineStoreIdentity(type="sqlite", project=spec.name, path=str(paths.resolve(store.path).resolve()))
    if store.type == "redis":
        return OnlineStoreIdentity(type="redis", project=spec.name, host=store.host, port=store.port, db=store.db)
    return OnlineStoreIdentity(
        type=store.type,
        project=spec.name,
        host=store.host,
        port=store.port,
        database=store.database,
        db_schema=store.schema_,
    )


class ViewState(BaseModel):
    """What the last finished materialize left for one bigml_fs view (one entry of state.json's ``views``)."""

    model_config = ConfigDict(extra="ignore")

    fingerprint: str  # the view's fingerprint when it was computed: a new one means recompute in full
    spec_hash: str  # its definition alone, to tell "definition changed" from "upstream SQL or vars changed"
    schema_hash: str  # its source's column names and logical types, to tell "source schema changed"
    parts: list[str] = Field(default_factory=list)  # the Feast views it became
    columns: dict[str, dict[str, str]] = Field(default_factory=dict)  # per Feast view: column -> engine SQL type
    end: str  # its --end, ISO 8601 UTC
    end_us: int  # the same time in UTC microseconds
    watermark: str  # same time: the view is complete up to it
    settled_before_us: int  # end minus the longest window: source rows at or before it are settled
    settled_count: int  # source rows at or before settled_before_us (more next time: late rows)
    count_at_end: int  # source rows at or before end (the same count and --end: unchanged)
    rows: dict[str, int] = Field(default_factory=dict)  # offline rows per Feast view
    online_rows: int = 0
    # the online store its online rows are in; None in states written before it was recorded (read as "the
    # configured store": see plan.decide)
    online_store: OnlineStoreIdentity | None = None
    finished_at: str
    run: str  # the run directory that computed it (carried views keep theirs)


class PublishedState(BaseModel):
    """The whole state of the published run (state.json)."""

    model_config = ConfigDict(extra="ignore")

    format: int = 1  # absent: written before the field existed (publish() writes FORMAT)
    run: str | None = None
    end: str | None = None
    feast_signature: str | None = None
    views: dict[str, ViewState] = Field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


def offline_root(paths: Paths) -> Path:
    """The offline store directory (``offline_store.path``, relative to the project)."""
    return paths.offline


def current_dir(paths: Paths) -> Path | None:
    """The published run directory, or None before the first materialize."""
    link = offline_root(paths) / CURRENT
    if not link.exists():
        return None
    return link.resolve()


def current_target(paths: Paths) -> str | None:
    """Where ``current`` points (one readlink, no file read): tells a long-lived reader that a run was published."""
    try:
        return os.readlink(offline_root(paths) / CURRENT)
    except OSError:
        return None


def run_state(run: Path | None) -> PublishedState:
    """The state a run directory holds (empty for None or a run without state)."""
    if run is None or not (run / STATE_FILE).exists():
        return PublishedState()
    return PublishedState.model_validate(json.loads((run / STATE_FILE).read_text()))


def published_state(paths: Paths) -> PublishedState:
    """The whole state of the published run: its run, end, Feast signature and per-view states."""
    return run_state(current_dir(paths))


def view_states(paths: Paths) -> dict[str, ViewState]:
    """Per bigml_fs view, what the last finished materialize left.

    Each entry is a ``ViewState``: ``end`` (its --end, ISO 8601 UTC), ``watermark``
    (same time: the view is complete up to it), ``finished_at``, ``rows`` (per
    Feast view), ``online_rows``, ``fingerprint``, ``parts`` (Feast view names),
    ... Views never materialized are absent. Reads one small JSON file; never
    opens the engine.
    """
    return dict(published_state(paths).views)


def new_run_dir(paths: Paths) -> Path:
    """A fresh, empty run directory (not yet published)."""
    runs = offline_root(paths) / RUNS
    runs.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%f")
    path = runs / f"{stamp}-{os.getpid()}"
    path.mkdir()
    return path


def write_json_atomically(path: Path, payload: Any) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(payload, indent=2, sort_keys=True, default=str))
    os.replace(tmp, path)


def publish(paths: Paths, run: Path, state: PublishedState) -> None:
    """Write the run's state, then switch ``current`` to it in one atomic rename."""
    write_json_atomically(run / STATE_FILE, state.model_copy(update={"format": FORMAT}).to_json())
    root = offline_root(paths)
    link = root / CURRENT
    tmp = root / f".{CURRENT}.{os.getpid()}.tmp"
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    os.symlink(os.path.relpath(run, root), tmp)
    os.replace(tmp, link)  # rename(2) over the old link: readers see the old or the new run
    _fsync_dir(root)


def clean_runs(paths: Paths, keep: int = 2) -> None:
    """Delete run directories except the published one and the ``keep - 1`` before it.

    The previous run is kept so a reader that resolved ``current`` just before
    the switch can finish reading its files. Unpublished runs (left by a killed
    run) are removed.
    """
    runs = offline_root(paths) / RUNS
    if not runs.exists():
        return
    current = current_dir(paths)
    published = sorted((p for p in runs.iterdir() if p.is_dir() and (p / STATE_FILE).exists()), key=lambda p: p.name)
    keep_set = {current} if current else set()
    keep_set.update(p.resolve() for p in [q for q in published if q.resolve() != current][-(keep - 1) :] if keep > 1)
    for path in runs.iterdir():
        if path.resolve() not in keep_set:
            shutil.rmtree(path, ignore_errors=True)


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextmanager
def materialize_lock(paths: Paths, wait: float = 0.0) -> Iterator[None]:
    """Hold the project's materialize lock; a second run waits ``wait`` seconds, then fails clearly.

    An OS file lock (flock): the kernel releases it when the holder dies, even
    by SIGKILL, so a killed run never leaves a stale lock behind.
    """
    import fcntl

    paths.state_dir.mkdir(parents=True, exist_ok=True)
    path = paths.state_dir / LOCK_FILE
    handle = open(path, "a+")  # noqa: SIM115 - held for the whole run
    deadline = time.monotonic() + wait
    try:
        while True:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError:
                if time.monotonic() >= deadline:
                    handle.seek(0)
                    holder = handle.read().strip() or "unknown"
                    raise MaterializeBusy(
                        f"another bigml-fs materialize is running in this project (pid {holder}); wait for it to "
                        "finish and run again "
                        f"(lock: {path})"
                    ) from None
                time.sleep(0.2)
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        yield
    finally:
        handle.close()  # closing the descriptor releases the lock
