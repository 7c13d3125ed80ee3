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
from typing import Any

from bigml_fs.errors import BigmlError

STATE_FILE = "state.json"
CURRENT = "current"
RUNS = "runs"
LOCK_FILE = "materialize.lock"


class MaterializeBusy(BigmlError):
    """Another materialize holds the project's lock."""


def offline_root(project: Any) -> Path:
    """The offline store directory (``offline_store.path``, relative to the project)."""
    path = Path(project.spec.offline_store.path)
    return path if path.is_absolute() else project.root / path


def current_dir(project: Any) -> Path | None:
    """The published run directory, or None before the first materialize."""
    link = offline_root(project) / CURRENT
    if not link.exists():
        return None
    return link.resolve()


def published_state(project: Any) -> dict[str, Any]:
    """The whole state of the published run: ``{"run": ..., "end": ..., "views": {...}}``."""
    run = current_dir(project)
    if run is None or not (run / STATE_FILE).exists():
        return {"run": None, "views": {}}
    return json.loads((run / STATE_FILE).read_text())


def view_states(project: Any) -> dict[str, dict]:
    """Per bigml_fs view, what the last finished materialize left.

    Each entry: ``end`` (its --end, ISO 8601 UTC), ``watermark`` (same time: the
    view is complete up to it), ``finished_at``, ``rows`` (per Feast view),
    ``online_rows``, ``fingerprint``, ``parts`` (Feast view names). Views never
    materialized are absent. Reads one small JSON file; never opens the engine.
    """
    return dict(published_state(project).get("views", {}))


def new_run_dir(project: Any) -> Path:
    """A fresh, empty run directory (not yet published)."""
    runs = offline_root(project) / RUNS
    runs.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%f")
    path = runs / f"{stamp}-{os.getpid()}"
    path.mkdir()
    return path


def write_json_atomically(path: Path, payload: Any) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(payload, indent=2, sort_keys=True, default=str))
    os.replace(tmp, path)


def publish(project: Any, run: Path, state: dict[str, Any]) -> None:
    """Write the run's state, then switch ``current`` to it in one atomic rename."""
    write_json_atomically(run / STATE_FILE, state)
    root = offline_root(project)
    link = root / CURRENT
    tmp = root / f".{CURRENT}.{os.getpid()}.tmp"
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    os.symlink(os.path.relpath(run, root), tmp)
    os.replace(tmp, link)  # rename(2) over the old link: readers see the old or the new run
    _fsync_dir(root)


def clean_runs(project: Any, keep: int = 2) -> None:
    """Delete run directories except the published one and the ``keep - 1`` before it.

    The previous run is kept so a reader that resolved ``current`` just before
    the switch can finish reading its files. Unpublished runs (left by a killed
    run) are removed.
    """
    runs = offline_root(project) / RUNS
    if not runs.exists():
        return
    current = current_dir(project)
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
def materialize_lock(project: Any, wait: float = 0.0) -> Iterator[None]:
    """Hold the project's materialize lock; a second run waits ``wait`` seconds, then fails clearly.

    An OS file lock (flock): the kernel releases it when the holder dies, even
    by SIGKILL, so a killed run never leaves a stale lock behind.
    """
    import fcntl

    project.state_dir.mkdir(parents=True, exist_ok=True)
    path = project.state_dir / LOCK_FILE
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
                        f"another bigml-fs materialize is running in this project (pid {holder}); wait for it to finish and run again "
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
