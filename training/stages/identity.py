"""A training's identity: a digest of everything that decides its result (the task and its size, the model
and its settings, the loop's settings, the seed, and the prepared data's statistics, split and verified
contents). It names the training's checkpoint folder, so only an identical training resumes there or is
reused; the settings of `NOT_IN_IDENTITY` change how a training runs, not what it computes. Imports no
torch: a front door decides reuse before it loads the model stack."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from training.data.contents import verified_contents
from training.data.layout import SPLITS_FILE, STATS_FILE, prepared_task_dir
from training.errors import MissingInputError
from training.fit_config import RESUMABLE_CHANGES
from training.settings import ProjectPaths, Settings

NOT_IN_IDENTITY = frozenset({"seeds", "lock_wait_seconds", *RESUMABLE_CHANGES})
"""Train settings left out of a training's identity: the seed list (each seed is its own training), how long
to wait for a busy checkpoint folder, and what a run may change on resume (device, workers, micro-batches)."""


def checkpoint_folder(settings: Settings, root: Path, task_key: str, model_key: str, seed: int) -> Path:
    """The checkpoint folder of one training, `<checkpoints_dir>/<task>/<model>/<identity digest>`. An
    unprepared task, or prepared data changed since `prepare`, is an error naming the fix."""
    paths = ProjectPaths.of(settings, root)
    task, model = settings.task(task_key), settings.model_key(model_key)
    prepared = prepared_task_dir(paths.prepared_dir, task.key)
    if not (prepared / STATS_FILE).is_file():
        raise MissingInputError(f"task {task.key!r} is not prepared: {prepared / STATS_FILE} is missing; "
                                f"run `geofm prepare --task {task.key}` first")
    identity = {
        "task": [task.key, list(task.shape)], "model": model.key,
        "model_params": settings.model.model_dump(mode="json"),
        "train": settings.train.model_dump(mode="json", exclude=set(NOT_IN_IDENTITY)),
        "seed": seed,
        "stats": (prepared / STATS_FILE).read_text(), "splits": (prepared / SPLITS_FILE).read_text(),
        "contents": verified_contents(prepared, task.key, settings.task_origin(task.key)),
    }
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()[:12]
    return paths.checkpoints_dir / task.key / model.key / digest
