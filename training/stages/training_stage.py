"""Stage `train` as both front doors run it: one task x model trained once per seed of `train.seeds`.

Per seed, the training is exclusive (a second trainer of the same checkpoint folder is refused, naming
it), idempotent (an identical finished training, outputs on disk and run in the store, is reused: no second
run or model version) and registered only once its run has finished. The seeds' results are then summed
up in `<runs_dir>/<task>/<model>/metrics.json` (mean, sample std and every seed's scores) and
`history.csv` (every seed's curve, with a `seed` column).
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import pandas as pd

from training.atomic import remove_stale_in, write_atomic
from training.callbacks import FitCallback
from training.device_present import check_device_present
from training.distributed.context import SINGLE_PROCESS, Distributed
from training.distributed.tracking import main_process_run
from training.figures import HISTORY_FIGURE, history_figure
from training.locking import checkpoint_lock
from training.settings import ProjectPaths, Settings
from training.stages.identity import checkpoint_folder
from training.stages.outputs import HISTORY_FILE, METRICS_FILE
from training.stages.train import TrainingResult, finished_result, seed_run_dir, train_and_evaluate
from training.tracking import Publication, TrainingStore

AVERAGED = ("miou", "mpa", "overall_accuracy", "fwiou", "authors_miou", "authors_mpa", "best_val_miou")
"""Scores given as their mean over the seeds in the summary, each with its sample std (`<name>_std`)."""


@dataclass(frozen=True)
class SeedOutcome:
    """One seed's training, its registered model, and whether an identical finished one was reused."""

    result: TrainingResult
    publication: Publication
    reused: bool


@dataclass(frozen=True)
class TrainingOutcome:
    """Every seed of one task x model, and their summary (what the stage's metrics.json holds)."""

    seeds: list[SeedOutcome]
    summary: dict[str, object]

    @property
    def best(self) -> SeedOutcome:
        """The seed with the best validation mIoU (the one the registry's best alias can point to)."""
        return max(self.seeds, key=lambda seed: seed.result.best_val_miou)

    @property
    def miou(self) -> float:
        return float(self.summary["miou"])


def _std(values: list[float]) -> float | None:
    return statistics.stdev(values) if len(values) > 1 else None


def summarize(results: Sequence[TrainingResult]) -> dict[str, object]:
    """The seeds' mean and sample std of each score, the baseline, and every seed's own scores."""
    first = results[0]
    summary: dict[str, object] = {"task": first.task, "model": first.model, "network": first.network,
                                  "mode": first.mode, "seeds": [r.seed for r in results]}
    for name in AVERAGED:
        values = [float(getattr(r, name)) for r in results]
        summary[name] = statistics.fmean(values)
        summary[f"{name}_std"] = _std(values)
    summary["majority_baseline_miou"] = first.majority_baseline_miou
    summary["per_seed"] = [{"seed": r.seed, "training_id": r.training_id, "miou": r.miou, "mpa": r.mpa,
                            "best_val_miou": r.best_val_miou, "best_epoch": r.best_epoch} for r in results]
    return summary


def _write_summary(run_dir: Path, results: Sequence[TrainingResult], summary: dict[str, object]) -> None:
    histories = [pd.DataFrame(r.history).assign(seed=r.seed) for r in results]
    history = pd.concat(histories, ignore_index=True)
    history = history[["seed", *[c for c in history.columns if c != "seed"]]]
    write_atomic(run_dir / HISTORY_FILE, history.to_csv(index=False))
    history_figure(run_dir / HISTORY_FIGURE, history, title=f"{results[0].task}/{results[0].model}")
    write_atomic(run_dir / METRICS_FILE, json.dumps(summary, indent=1) + "\n")


def _finished(settings: Settings, root: Path, task: str, model: str, seed: int, identity: str,
              store: TrainingStore) -> tuple[TrainingResult | None, str | None]:
    """This very training's (`identity`'s) result and run, if it already finished (else None, None); reads
    only."""
    result = finished_result(settings, root, task, model, seed, identity)
    run_id = store.finished_run(identity) if result is not None else None
    return (result, run_id) if run_id is not None else (None, None)


def _train_seed(settings: Settings, root: Path, task: str, model: str, seed: int, store: TrainingStore,
                launcher: str, callbacks: Sequence[FitCallback],
                distributed: Distributed) -> SeedOutcome | None:
    """One seed, on the main process the locked, reused-or-trained, published one (None elsewhere)."""
    folder = checkpoint_folder(settings, root, task, model, seed)
    main = distributed.is_main
    with checkpoint_lock(folder, wait_seconds=settings.train.lock_wait_seconds) if main else nullcontext():
        result, run_id = None, None
        if main:
            remove_stale_in(seed_run_dir(ProjectPaths.of(settings, root), task, model, seed))
            result, run_id = _finished(settings, root, task, model, seed, folder.name, store)
        reused = distributed.from_main(run_id is not None)
        if not reused:
            opener = partial(store.training_run, settings, task, model, launcher, folder.name, seed)
            with main_process_run(distributed, opener) as tracker:
                result = train_and_evaluate(settings, root, task, model, tracker, seed, callbacks,
                                            distributed)
            run_id = getattr(tracker, "run_id", None)
        if not main:
            return None
        publication = store.publish(run_id, result.model_ref.uri, task, model, result.best_val_miou)
    return SeedOutcome(result, publication, reused)


def finished_already(settings: Settings, root: Path, task_key: str, model_key: str,
                     store: TrainingStore) -> bool:
    """Whether every seed of `task_key` x `model_key` already finished identically (outputs on disk, run
    FINISHED), so `run_training_stage` will reuse it and needs no device. Read without the lock (the stage
    checks again under it) and without side effects."""
    def run_of(seed: int) -> str | None:
        identity = checkpoint_folder(settings, root, task_key, model_key, seed).name
        return _finished(settings, root, task_key, model_key, seed, identity, store)[1]

    return all(run_of(seed) is not None for seed in settings.train.seeds)


def run_training_stage(settings: Settings, root: Path, task_key: str, model_key: str, store: TrainingStore,
                       launcher: str, callbacks: Sequence[FitCallback] = (),
                       distributed: Distributed = SINGLE_PROCESS) -> TrainingOutcome | None:
    """Train `task_key` x `model_key` once per seed (see the module's docstring) and write the summary.
    Under torchrun (`distributed`) every process trains; the main process alone locks, logs, registers
    and writes, and gets the outcome (the others None)."""
    check_device_present(settings.train.device)
    seeds = [_train_seed(settings, root, task_key, model_key, seed, store, launcher, callbacks, distributed)
             for seed in settings.train.seeds]
    if not distributed.is_main:
        return None
    results = [seed.result for seed in seeds]
    summary = summarize(results)
    _write_summary(ProjectPaths.of(settings, root).run_dir(task_key, model_key), results, summary)
    return TrainingOutcome(seeds, summary)
