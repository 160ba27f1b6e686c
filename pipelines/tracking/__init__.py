"""The MLflow layer: the benchmark's store (runs, registry, report), the tracker a training logs through,
and the served (pyfunc) flavour of every registered model. Not named `mlflow`: that is the library."""
