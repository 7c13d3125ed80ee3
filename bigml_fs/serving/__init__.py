"""The HTTP app: Feast-compatible online features, predictions, health."""
