"""A finished training's run and model version, read straight from a local sqlite MLflow store with
`sqlite3`: what `geofm train` needs to answer "reused" in a second, before it imports MLflow (4-6 s) or
torch. Read-only (the database opened `mode=ro`); any other store, or a schema this module does not know,
answers None and the caller takes the full path through `BenchmarkStore`."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

from pipelines.tracking.locations import sqlite_file

TRAINING_TAG = "geofm.training_id"
VAL_MIOU_TAG = "geofm.val_miou"
"""The tags `pipelines.tracking.store` writes (it imports them from here)."""

_FINISHED_RUN = """
SELECT runs.run_uuid, runs.experiment_id FROM runs
JOIN experiments ON experiments.experiment_id = runs.experiment_id
JOIN tags ON tags.run_uuid = runs.run_uuid
WHERE experiments.name = ? AND experiments.lifecycle_stage = 'active' AND runs.lifecycle_stage = 'active'
  AND runs.status = 'FINISHED' AND tags.key = ? AND tags.value = ?
ORDER BY runs.start_time DESC LIMIT 1"""
_VERSION_OF_RUN = ("SELECT version FROM model_versions WHERE name = ? AND run_id = ? AND status = 'READY' "
                   "ORDER BY version LIMIT 1")
_ALIASED = "SELECT version FROM registered_model_aliases WHERE name = ? AND alias = ?"
_VERSION_TAG = "SELECT value FROM model_version_tags WHERE name = ? AND version = ? AND key = ?"


@dataclass(frozen=True)
class FinishedTraining:
    """A training's FINISHED run, its registered version, and whether that version is the best one."""

    run_id: str
    experiment_id: str
    version: str
    best: bool


def _one(connection: sqlite3.Connection, query: str, *values: object) -> tuple | None:
    return connection.execute(query, values).fetchone()


def _is_best(connection: sqlite3.Connection, name: str, version: str, alias: str,
             val_miou: float) -> bool | None:
    """True if `version` holds `alias`, False if another version holding it scores at least `val_miou`
    (so publishing again would move nothing); None when publishing would move the alias."""
    aliased = _one(connection, _ALIASED, name, alias)
    if aliased is not None and str(aliased[0]) == version:
        return True
    if aliased is None:
        return None
    best = _one(connection, _VERSION_TAG, name, aliased[0], VAL_MIOU_TAG)
    return False if best is not None and float(best[0]) >= val_miou else None


def finished_training(tracking_uri: str, experiment: str, training_id: str, registered_name: str,
                      alias: str, val_miou: float) -> FinishedTraining | None:
    """The newest FINISHED run tagged `training_id` in `experiment` with its registered version of
    `registered_name`, when publishing it again would change nothing; None otherwise (no such run or
    version, the alias would move, not a local sqlite store, or an unknown schema)."""
    path = sqlite_file(tracking_uri)
    if path is None or not path.is_file():
        return None
    try:
        with closing(sqlite3.connect(f"{Path(path).as_uri()}?mode=ro", uri=True, timeout=30)) as connection:
            run = _one(connection, _FINISHED_RUN, experiment, TRAINING_TAG, training_id)
            version = run and _one(connection, _VERSION_OF_RUN, registered_name, run[0])
            if not version:
                return None
            best = _is_best(connection, registered_name, str(version[0]), alias, val_miou)
    except sqlite3.Error:
        return None
    if best is None:
        return None
    return FinishedTraining(str(run[0]), str(run[1]), str(version[0]), best)
