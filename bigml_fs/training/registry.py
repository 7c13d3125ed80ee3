"""Model versions on disk: ``.bigml/models/NAME/vN/`` with model.skops, manifest.json, report.html.

A version is written into a hidden directory beside the others and renamed
into place in one step, so it appears whole or not at all; a killed or failed
``train`` leaves the earlier versions as they were. Models are stored with
skops (never pickle) and loaded only when every type the file names is in
``TRUSTED_TYPES`` or in skops' own safe defaults.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bigml_fs.errors import BigmlError, UsageError, did_you_mean
from bigml_fs.training.manifest import ModelManifest

MODEL_FILE = "model.skops"
MANIFEST = "manifest.json"
REPORT = "report.html"
PROMOTED = "promoted"
_VERSION = re.compile(r"^v(\d+)$")

# Types skops does not trust by default that our pipelines contain; anything else is refused.
TRUSTED_TYPES: tuple[str, ...] = (
    "imblearn.over_sampling._random_over_sampler.RandomOverSampler",
    "imblearn.over_sampling._smote.base.SMOTE",
    "imblearn.pipeline.Pipeline",
    "imblearn.under_sampling._prototype_selection._random_under_sampler.RandomUnderSampler",
    "numpy.dtype",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.metrics._dist_metrics.EuclideanDistance64",
    "sklearn.metrics._dist_metrics.ManhattanDistance64",
    "sklearn.metrics._dist_metrics.MinkowskiDistance64",
    "sklearn.neighbors._ball_tree.BallTree",
    "sklearn.neighbors._kd_tree.KDTree",
    "sklearn.neural_network._stochastic_optimizers.AdamOptimizer",
    "sklearn.neural_network._stochastic_optimizers.SGDOptimizer",
    "sklearn.tree._tree.Tree",
)


class UntrustedModelError(BigmlError):
    """A model file that names a type bigml_fs does not load."""


class UnknownModelError(UsageError):
    """A model name or version that is not registered (exit 1: it is a lookup, not a syntax error)."""

    exit_code = 1


@dataclass(frozen=True)
class Version:
    name: str
    number: int
    path: Path

    @property
    def label(self) -> str:
        return f"{self.name}@v{self.number}"

    @property
    def report_path(self) -> Path:
        return self.path / REPORT

    def manifest(self) -> ModelManifest:
        return ModelManifest.read(self.path / MANIFEST)

    def load_pipeline(self) -> Any:
        return load_model(self.path / MODEL_FILE)


def models_dir(state_dir: Path) -> Path:
    return state_dir / "models"


def untrusted(path: Path | None = None, data: bytes | None = None) -> list[str]:
    """Types in a skops file that neither skops' defaults nor ``TRUSTED_TYPES`` allow."""
    import skops.io as sio

    try:
        found = sio.get_untrusted_types(file=path) if path is not None else sio.get_untrusted_types(data=data)
    except Exception as exc:  # a damaged zip or schema
        raise UntrustedModelError(f"model file {path or '(bytes)'} cannot be read as skops: {exc}") from None
    return [t for t in found if t not in TRUSTED_TYPES]


def dump_model(pipeline: Any) -> bytes:
    """skops bytes of a fitted pipeline; refuses one that could not be loaded back safely."""
    import skops.io as sio

    data = sio.dumps(pipeline)
    bad = untrusted(data=data)
    if bad:
        raise UntrustedModelError(
            f"the fitted pipeline contains type(s) bigml_fs will not load from disk: {', '.join(bad)}; use a "
            "scikit-learn estimator (see README, models)"
        )
    return data


def load_model(path: Path) -> Any:
    """Load a skops file, trusting only the explicit list; never pickle."""
    import skops.io as sio

    if not path.exists():
        raise BigmlError(f"model file {path} is missing; the version is damaged, train again")
    bad = untrusted(path)
    if bad:
        raise UntrustedModelError(
            f"refusing to load {path}: it references type(s) that are not trusted: {', '.join(bad)}. Only "
            "scikit-learn/imbalanced-learn pipelines written by bigml-fs train are loaded; train the model again"
        )
    return sio.load(path, trusted=sio.get_untrusted_types(file=path))


def versions(state_dir: Path, name: str) -> list[Version]:
    """Complete versions of a model, oldest first (hidden in-progress directories are ignored)."""
    root = models_dir(state_dir) / name
    if not root.is_dir():
        return []
    out = []
    for child in root.iterdir():
        match = _VERSION.match(child.name)
        if match and (child / MANIFEST).exists():
            out.append(Version(name, int(match.group(1)), child))
    return sorted(out, key=lambda v: v.number)


def model_names(state_dir: Path) -> list[str]:
    root = models_dir(state_dir)
    return sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")) if root.is_dir() else []


def promoted(state_dir: Path, name: str) -> int | None:
    marker = models_dir(state_dir) / name / PROMOTED
    if not marker.exists():
        return None
    match = _VERSION.match(marker.read_text().strip())
    return int(match.group(1)) if match else None


def resolve(state_dir: Path, ref: str) -> Version:
    """``NAME`` (the promoted version, else the latest) or ``NAME@V`` / ``NAME@vN``."""
    name, _, wanted = ref.partition("@")
    found = versions(state_dir, name)
    if not found:
        hint = did_you_mean(name, model_names(state_dir))
        raise UnknownModelError(f"no trained versions of model '{name}'{hint}; run `bigml-fs train {name}` first")
    if wanted:
        number = wanted.lower().removeprefix("v")
        if not number.isdigit():
            raise UsageError(f"'{ref}': write NAME@N or NAME@vN (e.g. {name}@v1)")
        for version in found:
            if version.number == int(number):
                return version
        raise UnknownModelError(
            f"model '{name}' has no version {wanted}; it has {', '.join('v' + str(v.number) for v in found)}"
        )
    chosen = promoted(state_dir, name)
    if chosen is not None:
        for version in found:
            if version.number == chosen:
                return version
    return found[-1]


def promote(state_dir: Path, ref: str) -> Version:
    """Make ``NAME@V`` the version predict and serve use (atomic marker file)."""
    if "@" not in ref:
        raise UsageError(f"'{ref}': give the version to promote, e.g. {ref}@v1")
    version = resolve(state_dir, ref)
    marker = models_dir(state_dir) / version.name / PROMOTED
    partial = marker.with_name(f".{PROMOTED}.{os.getpid()}")
    partial.write_text(f"v{version.number}\n")
    os.replace(partial, marker)
    return version


def publish(state_dir: Path, name: str, write: Callable[[Path, int], None]) -> Version:
    """Write a new version aside with ``write(dir, number)``, then rename it into place.

    If another process took the number meanwhile, the next free number is used.
    """
    root = models_dir(state_dir) / name
    root.mkdir(parents=True, exist_ok=True)
    _clean_abandoned(root)
    staging = root / f".partial-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        number = (versions(state_dir, name)[-1].number if versions(state_dir, name) else 0) + 1
        write(staging, number)
        for _ in range(100):
            target = root / f"v{number}"
            try:
                os.rename(staging, target)  # fails if the target exists (non-empty directory)
            except OSError:
                if not target.exists():
                    raise
                number += 1
                _renumber(staging, number)
                continue
            return Version(name, number, target)
        raise BigmlError(f"could not publish a new version of '{name}' under {root}")
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _renumber(staging: Path, number: int) -> None:
    manifest = json.loads((staging / MANIFEST).read_text())
    manifest["version"] = number
    (staging / MANIFEST).write_text(json.dumps(manifest, indent=2, default=str))


def _clean_abandoned(root: Path) -> None:
    """Remove staging directories of runs that were killed (their process is gone)."""
    for child in root.glob(".partial-*"):
        pid = child.name.rsplit("-", 1)[-1]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(child, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
