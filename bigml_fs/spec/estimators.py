"""Names a model definition may use: short estimator names and metrics, per task.

Only names and dotted import paths live here (no scikit-learn import), so
`validate` can check a model without loading the ML stack; training resolves
the dotted paths when it fits.
"""

from __future__ import annotations

import re

SK = "sklearn"
ESTIMATORS: dict[str, dict[str, str]] = {
    "classification": {
        "logistic_regression": f"{SK}.linear_model.LogisticRegression",
        "ridge": f"{SK}.linear_model.RidgeClassifier",
        "linear_svm": f"{SK}.svm.LinearSVC",
        "svm": f"{SK}.svm.SVC",
        "decision_tree": f"{SK}.tree.DecisionTreeClassifier",
        "random_forest": f"{SK}.ensemble.RandomForestClassifier",
        "gradient_boosting": f"{SK}.ensemble.GradientBoostingClassifier",
        "hist_gradient_boosting": f"{SK}.ensemble.HistGradientBoostingClassifier",
        "knn": f"{SK}.neighbors.KNeighborsClassifier",
        "mlp": f"{SK}.neural_network.MLPClassifier",
    },
    "regression": {
        "linear_regression": f"{SK}.linear_model.LinearRegression",
        "ridge": f"{SK}.linear_model.Ridge",
        "lasso": f"{SK}.linear_model.Lasso",
        "elastic_net": f"{SK}.linear_model.ElasticNet",
        "linear_svm": f"{SK}.svm.LinearSVR",
        "svm": f"{SK}.svm.SVR",
        "decision_tree": f"{SK}.tree.DecisionTreeRegressor",
        "random_forest": f"{SK}.ensemble.RandomForestRegressor",
        "gradient_boosting": f"{SK}.ensemble.GradientBoostingRegressor",
        "hist_gradient_boosting": f"{SK}.ensemble.HistGradientBoostingRegressor",
        "knn": f"{SK}.neighbors.KNeighborsRegressor",
        "mlp": f"{SK}.neural_network.MLPRegressor",
    },
    "clustering": {
        "kmeans": f"{SK}.cluster.KMeans",
        "minibatch_kmeans": f"{SK}.cluster.MiniBatchKMeans",
        "pca": f"{SK}.decomposition.PCA",
    },
    "anomaly": {
        "isolation_forest": f"{SK}.ensemble.IsolationForest",
        "pca": f"{SK}.decomposition.PCA",
        "one_class_svm": f"{SK}.svm.OneClassSVM",
    },
}

METRICS: dict[str, tuple[str, ...]] = {
    "classification": ("accuracy", "balanced_accuracy", "roc_auc", "average_precision", "f1", "precision", "recall", "log_loss", "brier"),
    "regression": ("rmse", "mse", "mae", "median_ae", "mape", "r2"),
    "clustering": ("silhouette", "calinski_harabasz", "davies_bouldin"),
    "anomaly": ("roc_auc", "average_precision", "anomaly_rate"),
}

_DOTTED = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)+$")


def is_dotted_path(name: str) -> bool:
    return bool(_DOTTED.match(name))
