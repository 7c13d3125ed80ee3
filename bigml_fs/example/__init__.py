"""The example project: its data generator and the `init` scaffold."""
