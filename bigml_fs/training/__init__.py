"""Training: point-in-time training sets, estimators, pipelines, evaluation, the registry of versions."""
