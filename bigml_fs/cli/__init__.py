"""The `bigml-fs` command line: thin wrappers over `Project` methods."""
