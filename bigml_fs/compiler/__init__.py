"""The compiler: sql/ models, feature and training-set queries as SQLGlot ASTs, asking the engine's Dialect."""
