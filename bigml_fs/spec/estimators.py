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
        "lasso": f"{SK}.linear_model.LogisticRegression",  # L1-penalised (l1_ratio=1, solver saga)
        "ridge": f"{SK}.linear_model.RidgeClassifier",
        "linear_svm": f"{SK}.svm.LinearSVC",
        "svm": f"{SK}.svm.SVC",
        "decision_tree": f"{SK}.tree.DecisionTreeClassifier",
        "random_forest": f"{SK}.ensemble.RandomForestClassifier",
        "extra_trees": f"{SK}.ensemble.ExtraTreesClassifier",
        "gradient_boosting": f"{SK}.ensemble.GradientBoostingClassifier",
        "hist_gradient_boosting": f"{SK}.ensemble.HistGradientBoostingClassifier",
        "knn": f"{SK}.neighbors.KNeighborsClassifier",
        "mlp": f"{SK}.neural_network.MLPClassifier",
        "naive_bayes": f"{SK}.naive_bayes.GaussianNB",
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
        "extra_trees": f"{SK}.ensemble.ExtraTreesRegressor",
        "gradient_boosting": f"{SK}.ensemble.GradientBoostingRegressor",
        "hist_gradient_boosting": f"{SK}.ensemble.HistGradientBoostingRegressor",
        "knn": f"{SK}.neighbors.KNeighborsRegressor",
        "mlp": f"{SK}.neural_network.MLPRegressor",
    },
    "clustering": {
        "kmeans": f"{SK}.cluster.KMeans",
        "minibatch_kmeans": f"{SK}.cluster.MiniBatchKMeans",
        "gaussian_mixture": f"{SK}.mixture.GaussianMixture",
    },
    "anomaly": {
        "isolation_forest": f"{SK}.ensemble.IsolationForest",
        "one_class_svm": f"{SK}.svm.OneClassSVM",
        "local_outlier_factor": f"{SK}.neighbors.LocalOutlierFactor",  # fitted with novelty=True
    },
}

METRICS: dict[str, tuple[str, ...]] = {
    "classification": (
        "accuracy",
        "balanced_accuracy",
        "roc_auc",
        "average_precision",
        "f1",
        "precision",
        "recall",
        "log_loss",
        "brier",
        "f1_macro",
        "f1_weighted",
        "precision_macro",
        "precision_weighted",
        "recall_macro",
        "recall_weighted",
    ),
    "regression": ("rmse", "mse", "mae", "median_ae", "mape", "r2", "explained_variance"),
    "clustering": ("silhouette", "calinski_harabasz", "davies_bouldin"),
    "anomaly": ("roc_auc", "average_precision", "anomaly_rate"),
}

_DOTTED = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)+$")


def is_dotted_path(name: str) -> bool:
    return bool(_DOTTED.match(name))
