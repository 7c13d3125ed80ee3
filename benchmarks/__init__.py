"""Benchmarks: bigml_fs against its peers on the same data, in one run."""
