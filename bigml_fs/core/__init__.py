"""One home per concept: logical types, times, digests. Imports nothing else of bigml_fs."""
