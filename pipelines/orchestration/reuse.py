"""Whether a task x model is already trained, decided before anything imports torch or MLflow: every seed's
outputs on disk carry its current identity (`training.stages.identity`), its FINISHED run and registered
version are in the store (read by `pipelines.tracking.finished_lookup`), publishing again would move no
alias, and the stage's summary names those very trainings. Then `geofm train` answers in a second and the
main job launches no run. Anything else (a store other than local sqlite included) answers None: the full
stage decides, as before."""

from __future__ import annotations

import json
import os
from pathlib import Path

from pipelines.tracking.finished_lookup import finished_training
from pipelines.tracking.locations import absolute_tracking_uri, registered_model_name, run_url
from training.device_present import check_device_present
from training.figures import HISTORY_FIGURE
from training.reused import ReusedSeed
from training.settings import ProjectPaths, Settings
from training.stages.identity import checkpoint_folder
from training.stages.outputs import HISTORY_FILE, METRICS_FILE, SEEDS_DIR
from training.tracking import ModelRef, Publication


def _reused_seed(settings: Settings, root: Path, task: str, model: str, seed: int) -> ReusedSeed | None:
    identity = checkpoint_folder(settings, root, task, model, seed).name
    metrics = ProjectPaths.of(settings, root).run_dir(task, model) / SEEDS_DIR / str(seed) / METRICS_FILE
    scores = json.loads(metrics.read_text()) if metrics.is_file() else {}
    if scores.get("training_id") != identity:
        return None
    name, mlflow = registered_model_name(task, model), settings.mlflow
    found = finished_training(absolute_tracking_uri(mlflow.tracking_uri, root), mlflow.experiment, identity,
                              name, mlflow.best_alias, float(scores["best_val_miou"]))
    if found is None:
        return None
    reference = ModelRef(uri=f"models:/{name}/{found.version}", registered_name=name, version=found.version)
    url = run_url(mlflow.ui_url, found.experiment_id, found.run_id)
    return ReusedSeed(seed, scores, Publication(reference, promoted=False, run_url=url, best=found.best))


def _summary_current(run_dir: Path, seeds: list[ReusedSeed]) -> bool:
    """Whether the stage's summary (metrics.json, history.csv, history.png) covers exactly these seeds."""
    if not all((run_dir / name).is_file() for name in (METRICS_FILE, HISTORY_FILE, HISTORY_FIGURE)):
        return False
    summary = json.loads((run_dir / METRICS_FILE).read_text())
    recorded = [entry.get("training_id") for entry in summary.get("per_seed", [])]
    return recorded == [seed.scores["training_id"] for seed in seeds]


def reused_training(settings: Settings, root: Path, task: str, model: str) -> list[ReusedSeed] | None:
    """Every seed of `task` x `model` when all are reused and nothing of the stage would change; else None.
    A GPU that `train.device` names and the machine lacks is refused first, as the full stage does."""
    check_device_present(settings.train.device)
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:  # under torchrun every process must join the stage
        return None
    seeds = [_reused_seed(settings, root, task, model, seed) for seed in settings.train.seeds]
    if any(seed is None for seed in seeds):
        return None
    finished = [seed for seed in seeds if seed is not None]
    run_dir = ProjectPaths.of(settings, root).run_dir(task, model)
    return finished if _summary_current(run_dir, finished) else None
