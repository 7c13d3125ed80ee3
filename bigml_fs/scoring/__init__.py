"""Scoring: batch and online predictions, in Python or as SQL in the engine."""
