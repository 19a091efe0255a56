"""The `aimo` command line: one entry point over recorder, simulator, tuner, dashboard and solver."""
