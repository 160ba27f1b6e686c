"""The benchmark's stages as plain functions, one module each: raw data, prepared data, one trained model,
the report. Both front doors call these: the Dagster assets (`assets/`) and the DVC stages (through the
`geofm` CLI). Each takes the typed `training.settings.Settings` and the project root, writes only under the
folders the settings name (through a temporary name and a rename) and returns a typed result. Logging goes
to a `training.tracking.Tracker`; nothing here imports Dagster, MLflow or DVC."""
