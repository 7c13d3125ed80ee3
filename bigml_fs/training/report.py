"""report.html beside a model version: one self-contained page, readable offline.

Plots are drawn with matplotlib (Agg, no display) and inlined as base64 PNG;
there are no external scripts, fonts or styles.
"""

from __future__ import annotations

import base64
import html
import io
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from bigml_fs.core.timeutil import from_us

if TYPE_CHECKING:
    from bigml_fs.training.manifest import CvRecord, Importance, ModelManifest, TuningRecord


@dataclass
class ReportData:
    """What the plots need from the test part (kept out of the manifest)."""

    task: str
    y_test: Any
    prediction: np.ndarray | None
    scores: np.ndarray | None  # predict_proba (n x k) or decision_function
    classes: list[Any] | None
    anomaly_score: np.ndarray | None
    train_times: np.ndarray | None  # UTC microseconds
    test_times: np.ndarray | None


def render(manifest: ModelManifest, data: ReportData) -> str:
    import matplotlib

    matplotlib.use("Agg", force=True)
    sections = [_summary(manifest), _table("Metrics on the test part", manifest.metrics)]
    if manifest.cv:
        sections.append(_cv(manifest.cv))
    if manifest.tuning:
        sections.append(_tuning(manifest.tuning))
    drawers = _plots(manifest, data)
    if drawers:
        sections.append(f"<h2>Plots</h2>{_figure(drawers)}")
    if manifest.importances:
        sections.append(
            _table(
                "Permutation importance (test part)",
                {r.feature: f"{r.importance:.4g} ± {r.std:.2g}" for r in manifest.importances},
            )
        )
    sections.append(_table("Features", {f.column: f"{f.ref} ({f.type})" for f in manifest.features}))
    title = f"{manifest.name} v{manifest.version}"
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>"
        f"<h1>{html.escape(title)}</h1>{''.join(sections)}</body></html>"
    )


_CSS = (
    "body{font-family:sans-serif;max-width:960px;margin:2em "
    "auto;color:#222}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px "
    "8px;text-align:left}img{max-width:100%}"
)


def _summary(m: ModelManifest) -> str:
    w = m.window
    rows = {
        "task": m.task,
        "estimator": f"{m.estimator} ({m.estimator_class})",
        "trained at": m.created_at,
        "rows (train / test / dropped)": f"{m.rows.train} / {m.rows.test} / {m.rows.dropped_null_target}",
        "training window": f"{w.train_start} .. {w.train_end}",
        "test window": f"{w.test_start} .. {w.test_end}",
        "split": f"{m.split.by} (boundary {w.boundary})",
        "params": ", ".join(f"{k}={v}" for k, v in sorted(_params_used(m).items())) or "(the estimator's defaults)",
    }
    return _table("Summary", rows)


def _params_used(m: ModelManifest) -> dict[str, Any]:
    """The parameters the fitted estimator got: the model's YAML ``params``, then tuning's best over them."""
    return {**(m.definition.get("params") or {}), **m.params}


def _table(title: str, rows: dict[str, Any]) -> str:
    body = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(_fmt(v))}</td></tr>" for k, v in rows.items())
    return f"<h2>{html.escape(title)}</h2><table>{body}</table>"


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return "" if value is None else str(value)


def _cv(cv: CvRecord) -> str:
    folds = ", ".join(_fmt(s) for s in cv.fold_scores)
    return _table(
        "Cross-validation",
        {"folds": cv.folds, "by": cv.by, "metric": cv.metric, "mean": cv.mean, "per fold": folds},
    )


def _tuning(t: TuningRecord) -> str:
    head = f"<h2>Tuning ({html.escape(t.method)}, {html.escape(t.metric)})</h2>"
    rows = "".join(
        f"<tr><td>{i}</td><td>{html.escape(str(tr['params']))}</td><td>{_fmt(tr['score'])}</td></tr>"
        for i, tr in enumerate(t.trials, 1)
    )
    return (
        f"{head}<table><tr><th>#</th><th>params</th><th>CV score</th></tr>{rows}</table><p>best: "
        f"{html.escape(str(t.best_params))}</p>"
    )


def _figure(drawers: list[tuple[str, Any]]) -> str:
    """All plots in one figure, rendered once (each savefig costs ~0.3 s)."""
    import matplotlib.pyplot as plt

    rows = (len(drawers) + 1) // 2
    fig, axes = plt.subplots(rows, 2, figsize=(11, 4 * rows), squeeze=False)
    for ax, (title, draw) in zip(axes.flat, drawers, strict=False):
        ax.set_title(title)
        try:
            draw(ax)
        except (ValueError, IndexError, TypeError) as exc:
            ax.text(0.5, 0.5, f"not drawn: {exc}", ha="center", va="center", wrap=True)
    for ax in list(axes.flat)[len(drawers) :]:
        ax.axis("off")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=72)
    plt.close(fig)
    return f"<img alt='plot' src='data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}'>"


def _plots(m: ModelManifest, d: ReportData) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    if d.task == "classification" and d.scores is not None:
        out += [
            ("ROC curve", lambda ax: _curve(ax, d, "roc")),
            ("Precision-recall curve", lambda ax: _curve(ax, d, "pr")),
        ]
    if d.task == "classification":
        out.append(("Confusion matrix", lambda ax: _confusion(ax, m)))
        if d.scores is not None and d.scores.ndim == 2 and len(d.classes or []) == 2:
            out.append(("Calibration", lambda ax: _calibration(ax, d)))
    if d.task == "regression":
        out += [("Predicted vs actual", lambda ax: _pred_actual(ax, d)), ("Residuals", lambda ax: _residuals(ax, d))]
    if d.task == "anomaly" and d.anomaly_score is not None:
        out.append(
            (
                "Anomaly score distribution",
                lambda ax: _hist(ax, d.anomaly_score, "anomaly_score (negative = anomalous)"),
            )
        )
    if m.importances:
        out.append(("Importances", lambda ax: _importances(ax, m.importances)))
    if d.train_times is not None and d.test_times is not None and len(d.train_times):
        out.append(("Training and test windows", lambda ax: _windows(ax, d)))
    return out


def _curve(ax: Any, d: ReportData, kind: str) -> None:
    from sklearn.metrics import precision_recall_curve, roc_curve

    classes = d.classes or []
    y = np.asarray(d.y_test)
    pairs = (
        [(classes[1], d.scores[:, 1] if d.scores.ndim == 2 else d.scores)]
        if len(classes) == 2
        else [(c, d.scores[:, i]) for i, c in enumerate(classes)]
    )
    for cls, s in pairs:
        truth = y == cls
        if kind == "roc":
            fpr, tpr, _ = roc_curve(truth, s)
            ax.plot(fpr, tpr, label=str(cls))
        else:
            precision, recall, _ = precision_recall_curve(truth, s)
            ax.plot(recall, precision, label=str(cls))
    if kind == "roc":
        ax.plot([0, 1], [0, 1], "--", color="grey")
    ax.set_xlabel("false positive rate" if kind == "roc" else "recall")
    ax.set_ylabel("true positive rate" if kind == "roc" else "precision")
    ax.legend(title="positive class")


def _confusion(ax: Any, m: ModelManifest) -> None:
    cm = m.confusion_matrix
    assert cm is not None  # every classifier's manifest has one
    matrix = np.array(cm.matrix)
    ax.imshow(matrix, cmap="Blues")
    labels = [str(c) for c in cm.labels]
    ax.set_xticks(range(len(labels)), labels)
    ax.set_yticks(range(len(labels)), labels)
    for (i, j), v in np.ndenumerate(matrix):
        ax.text(j, i, str(v), ha="center", va="center")
    ax.set_xlabel("predicted")
    ax.set_ylabel("actual")


def _calibration(ax: Any, d: ReportData) -> None:
    from sklearn.calibration import calibration_curve

    truth = np.asarray(d.y_test) == (d.classes or [0, 1])[1]
    frac, mean = calibration_curve(truth, d.scores[:, 1], n_bins=10, strategy="quantile")
    ax.plot(mean, frac, marker="o")
    ax.plot([0, 1], [0, 1], "--", color="grey")
    ax.set_xlabel("predicted probability")
    ax.set_ylabel("observed frequency")


def _pred_actual(ax: Any, d: ReportData) -> None:
    y = np.asarray(d.y_test, dtype=float)
    ax.scatter(y, d.prediction, s=4, alpha=0.4)
    lo, hi = float(np.nanmin(y)), float(np.nanmax(y))
    ax.plot([lo, hi], [lo, hi], "--", color="grey")
    ax.set_xlabel("actual")
    ax.set_ylabel("predicted")


def _residuals(ax: Any, d: ReportData) -> None:
    ax.scatter(d.prediction, np.asarray(d.y_test, dtype=float) - d.prediction, s=4, alpha=0.4)
    ax.axhline(0, color="grey", ls="--")
    ax.set_xlabel("predicted")
    ax.set_ylabel("actual - predicted")


def _hist(ax: Any, values: np.ndarray, label: str) -> None:
    ax.hist(values, bins=50)
    ax.set_xlabel(label)


def _importances(ax: Any, rows: list[Importance]) -> None:
    top = rows[:20][::-1]
    ax.barh([r.feature for r in top], [r.importance for r in top], xerr=[r.std for r in top])
    ax.set_xlabel("drop in the metric when shuffled")


def _windows(ax: Any, d: ReportData) -> None:
    def days(us: np.ndarray) -> list[Any]:
        return [from_us(int(v)) for v in us]

    ax.hist([days(d.train_times), days(d.test_times)], bins=40, stacked=True, label=["train", "test"])
    ax.legend()
    ax.set_ylabel("rows")
    for label in ax.get_xticklabels():
        label.set_rotation(30)
