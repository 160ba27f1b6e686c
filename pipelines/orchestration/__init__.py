"""Dagster wiring: the code location's definitions, the executors, the benchmark runner and the device
pool trainings lease their GPUs from."""
