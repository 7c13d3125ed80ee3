"""``manifest.json`` of a model version, typed: what ``train`` records and predict, serve and ``models`` read.

A model version records the definitions' fingerprints, the
compiled training SQL, the training window, row counts, parameters, metrics on
the held-out future, cross-validation scores, feature importances and the
library versions. Every model here allows extra keys, so a file written by a
newer bigml_fs still loads; a file without ``format`` (written before it
existed) is format 1. ``model_dump()`` gives the same JSON object as before.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

FORMAT = 1


class _Record(BaseModel):
    model_config = ConfigDict(extra="allow")


class FeatureColumn(_Record):
    """One input column of the pipeline: which feature it is and how it is typed."""

    ref: str  # view:feature
    view: str
    feature: str
    column: str  # its name in the training set (``view__feature`` where names clash)
    type: str  # Arrow type
    sql_type: str  # what in-warehouse scoring casts it to (core.types.sql_name)
    kind: str  # numeric | categorical (training.pipeline)


class OutputColumn(_Record):
    """One score column (training.outputs): name and SQL type."""

    name: str
    type: str


class ManifestLabels(_Record):
    source: str
    target: str | None = None
    timestamp: str
    target_type: str | None = None  # Arrow type of the target; classification predictions are typed like it


class Fingerprints(_Record):
    views: dict[str, str]  # view -> definition fingerprint at training
    labels: str
    # view:feature -> the feature's fingerprint at training (catalog ResolvedView.feature_fingerprints); predict
    # warns when a used feature changed. None in versions trained before it was recorded: then the views' are compared
    features: dict[str, str] | None = None


class TrainingWindow(_Record):
    """Prediction times (ISO 8601, UTC) of the rows trained and tested on; ``boundary`` is the time split's cut."""

    end: str | None = None  # ``--end``
    train_start: str | None = None
    train_end: str | None = None
    test_start: str | None = None
    test_end: str | None = None
    boundary: str | None = None


class SplitRecord(_Record):
    by: str
    test_fraction: float


class RowCounts(_Record):
    total: int
    dropped_null_time: int = 0
    dropped_null_target: int = 0
    train: int
    test: int


class CvRecord(_Record):
    folds: int
    by: str
    metric: str
    mean: int | float | None = None
    fold_scores: list[int | float | None] = []


class TuningRecord(_Record):
    method: str
    metric: str
    best_params: dict[str, Any] = {}
    trials: list[dict[str, Any]] = []  # each: params, score, fold_scores


class Importance(_Record):
    feature: str
    importance: float
    std: float


class ConfusionMatrix(_Record):
    labels: list[Any]
    matrix: list[list[int]]


class ModelManifest(_Record):
    """Everything ``train`` records about a version (``.bigml/models/NAME/vN/manifest.json``)."""

    format: int = FORMAT
    name: str
    version: int | None = None
    created_at: str
    task: str
    description: str = ""
    estimator: str
    estimator_class: str
    params: dict[str, Any] = {}  # tuned parameters
    estimator_params: dict[str, Any] = {}  # the fitted estimator's get_params()
    seed: int = 0
    definition: dict[str, Any] = {}  # the models/*.yaml entry as trained
    labels: ManifestLabels
    features: list[FeatureColumn]
    classes: list[Any] | None = None
    outputs: list[OutputColumn] = []
    fingerprints: Fingerprints
    training_sql: str = ""
    window: TrainingWindow
    split: SplitRecord
    rows: RowCounts
    objective: str
    metrics: dict[str, Any] = {}
    cv: CvRecord | None = None
    tuning: TuningRecord | None = None
    importances: list[Importance] = []
    timings: dict[str, float] = {}
    library_versions: dict[str, str] = {}
    confusion_matrix: ConfusionMatrix | None = None  # classifiers only (absent from the file otherwise)

    @property
    def refs(self) -> list[str]:
        """The features the version reads, ``view:feature``, in pipeline order."""
        return [f.ref for f in self.features]

    @property
    def columns(self) -> list[str]:
        """The pipeline's input columns, in order."""
        return [f.column for f in self.features]

    @property
    def label(self) -> str:
        return f"{self.name}@v{self.version}"

    def to_json(self) -> str:
        """The file's text: the JSON object ``model_dump()`` gives, ``confusion_matrix`` only for classifiers."""
        exclude = {"confusion_matrix"} if self.confusion_matrix is None else None
        return json.dumps(self.model_dump(exclude=exclude), indent=2, default=str)

    @classmethod
    def read(cls, path: Path) -> ModelManifest:
        return cls.model_validate(json.loads(path.read_text()))  # json reads the NaN a metric may be
