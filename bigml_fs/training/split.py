"""Hold-out splits and cross-validation folds, by prediction time or at random.

By time, the model is tested on the future it never saw: every test row's
prediction time is at or after the boundary and every training row's strictly
before it. Rows sharing a time stay on one side, so the test part can be a
little larger than ``test_fraction``.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

from bigml_fs.errors import DataError


@dataclass
class Split:
    train: np.ndarray  # row indices, ascending
    test: np.ndarray
    boundary: int | None  # first test time, UTC microseconds (by time only)


def split_by_time(times: np.ndarray, test_fraction: float) -> Split:
    """Latest ``test_fraction`` of rows (by time) for test; training rows strictly earlier."""
    n = len(times)
    n_test = max(1, math.ceil(n * test_fraction))
    order = np.argsort(times, kind="stable")
    boundary = int(times[order[n - n_test]])
    test = np.flatnonzero(times >= boundary)
    train = np.flatnonzero(times < boundary)
    if len(train) == 0:
        raise DataError(
            f"cannot split {n} rows by time: every row shares the earliest test time; give rows at more prediction "
            f"times or use split: {{by: random}}"
        )
    return Split(train, test, boundary)


def split_random(n: int, test_fraction: float, seed: int, y: np.ndarray | None = None) -> Split:
    """A seeded random split, stratified by class when every class has two rows or more."""
    from sklearn.model_selection import train_test_split

    stratify = y if y is not None and _stratifiable(y, 2) else None
    train, test = train_test_split(np.arange(n), test_size=test_fraction, random_state=seed, stratify=stratify)
    return Split(np.sort(train), np.sort(test), None)


def time_folds(times: np.ndarray, folds: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Expanding-window folds: fold k trains on blocks 0..k and tests on block k+1 (times never overlap)."""
    n = len(times)
    ordered = np.sort(times)
    cuts = sorted({int(ordered[min(n - 1, (n * i) // (folds + 1))]) for i in range(1, folds + 1)})
    cuts.append(int(ordered[-1]) + 1)
    out = []
    for start, stop in itertools.pairwise(cuts):
        train = np.flatnonzero(times < start)
        test = np.flatnonzero((times >= start) & (times < stop))
        if len(train) and len(test):
            out.append((train, test))
    if len(out) < 2:
        raise DataError(
            f"cannot make {folds} time-ordered CV folds from {n} training rows at {len(np.unique(times))} distinct "
            "times; use fewer folds or more data"
        )
    return out


def random_folds(n: int, folds: int, seed: int, y: np.ndarray | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
    from sklearn.model_selection import KFold, StratifiedKFold

    if y is not None and _stratifiable(y, folds):
        splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
        return list(splitter.split(np.zeros(n), y))
    return list(KFold(n_splits=folds, shuffle=True, random_state=seed).split(np.zeros(n)))


def _stratifiable(y: np.ndarray, per_class: int) -> bool:
    _, counts = np.unique(y, return_counts=True)
    return len(counts) > 1 and counts.min() >= per_class
