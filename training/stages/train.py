"""One training of stage `train`: one network fine-tuned on one prepared task with one seed, selected on
validation (on test under `train.regime: authors`, as the authors' code), scored on test
(`training.stages.training_stage` runs it per seed, as a stage).

`train_and_evaluate` runs the steps below in order; each does one job. The result is a `TrainingResult`,
read by attribute; the seed's `metrics.json` is its summary.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from torch import nn

from training.atomic import staged_dir, write_atomic
from training.callbacks import FitCallback
from training.catalog import ModelKey
from training.cost import TrainingCost, measured_cost
from training.data.card import CARD_FILE
from training.data.dataset import PreparedDataset
from training.data.layout import prepared_array_paths, prepared_task_dir
from training.data.prepare import read_stats
from training.data.stats import class_counts
from training.device import resolve_device
from training.distributed.context import SINGLE_PROCESS, Distributed
from training.evaluation import EvaluationResult, evaluate_with_mirrors
from training.figures import HISTORY_FIGURE, history_figure
from training.fit import FitResult, fit
from training.fit_config import FitConfig
from training.metrics import scores_from_confusion
from training.models import RawSectionModel, build_model, merge_lora
from training.regime import get_regime
from training.reproducibility import kernel_params, strict_kernels
from training.seeding import seed_everything
from training.settings import ProjectPaths, Settings, TrainSettings
from training.stages.identity import checkpoint_folder
from training.stages.outputs import ARTIFACTS_DIR, HISTORY_FILE, METRICS_FILE, SEEDS_DIR
from training.survey import predict_section, prediction_figure
from training.survey.contract import name_classes
from training.tasks import TaskSpec
from training.tracking import ModelRef, Tracker

SPLITS = ("train", "val", "test")
# metrics.json name -> tracker name: the test scores carry a `test_` prefix beside the per-epoch val_ curves.
TRACKED_METRIC_NAMES = {name: f"test_{name}" for name in
                        ("miou", "mpa", "overall_accuracy", "fwiou", "authors_miou", "authors_mpa")}


@dataclass(frozen=True)
class TrainingResult:
    """One trained model's scores (test split unless named otherwise), where it was logged, its curve."""

    task: str
    model: str
    seed: int
    training_id: str
    network: str
    mode: str
    miou: float
    mpa: float
    overall_accuracy: float
    fwiou: float
    authors_miou: float
    authors_mpa: float
    best_val_miou: float
    best_epoch: int
    majority_baseline_miou: float
    per_class_iou: list[float]
    weights_source: str
    model_ref: ModelRef = field(compare=False)
    history: list[dict[str, float]] = field(compare=False, repr=False)

    def summary(self) -> dict[str, object]:
        """What metrics.json holds (everything but the model reference and the curve)."""
        return {key: value for key, value in asdict(self).items()
                if key not in ("model_ref", "history", "weights_source")}

    @classmethod
    def read(cls, run_dir: Path) -> TrainingResult:
        """The result a finished training wrote to `run_dir` (metrics.json, history.csv, model.json)."""
        summary = json.loads((run_dir / METRICS_FILE).read_text())
        model_ref = ModelRef(**json.loads((run_dir / ARTIFACTS_DIR / "model.json").read_text()))
        history = pd.read_csv(run_dir / HISTORY_FILE).to_dict("records")
        return cls(**summary, weights_source="", model_ref=model_ref, history=history)


@dataclass(frozen=True)
class _Job:
    """One training's inputs, resolved from the settings."""

    settings: Settings
    paths: ProjectPaths
    task: TaskSpec
    model_id: ModelKey
    fit: FitConfig

    @property
    def run_dir(self) -> Path:
        """This seed's folder: `<runs_dir>/<task>/<model>/seeds/<seed>`."""
        return seed_run_dir(self.paths, self.task.key, self.model_id.key, self.fit.seed)


def seed_run_dir(paths: ProjectPaths, task_key: str, model_key: str, seed: int) -> Path:
    """Where one seed's training writes metrics.json, history.csv and artifacts/."""
    return paths.run_dir(task_key, model_key) / SEEDS_DIR / str(seed)


def fit_config(train: TrainSettings, task: TaskSpec, seed: int) -> FitConfig:
    """The fit settings of one task and seed: batch size "paper" is the task's batch size in the paper."""
    return FitConfig.of(train, batch_size=train.batch_size_for(task), seed=seed)


def weights_source(settings: Settings, root: Path) -> str:
    """`hub`, `none`, or the weight file's path made absolute under the root."""
    weights = settings.model.weights
    return weights if weights in ("hub", "none") else str((Path(root) / weights).resolve())


def _build(job: _Job, root: Path) -> RawSectionModel:
    stats = read_stats(job.paths.prepared_dir, job.task.key)
    seed_everything(job.fit.seed)
    encoder = job.model_id.encoder_or(job.settings.model.encoder)
    model = build_model(job.model_id.network, job.task, encoder=encoder,
                        weights=weights_source(job.settings, root), finetune=job.model_id.mode,
                        lora_rank=job.settings.model.lora_rank, input_mean=float(stats["mean"]),
                        input_std=float(stats["std"]), input_scaling=job.settings.model.input_scaling,
                        unet_forward=job.settings.model.unet_forward,
                        position_grid=job.settings.model.position_grid)
    declared = job.settings.declared(job.task.key)
    if declared is not None:
        name_classes(model, declared.classes, declared.colours)
    return model


def selection_note(regime_name: str) -> str:
    """What selected the kept epoch, in words (a run's params, the report)."""
    regime = get_regime(regime_name)
    if regime.optimistic:
        return ("OPTIMISTIC: the epoch kept has the best per-batch-mean mIoU on the test split, the split "
                "reported (the authors' regime)")
    return "the epoch kept has the best pooled mIoU on the validation split; the test split is scored once"


def _log_setup(job: _Job, model: RawSectionModel, tracker: Tracker) -> None:
    tracker.log_params({
        "task": job.task.key, "model": job.model_id.key, "network": job.model_id.network,
        "finetune": job.model_id.mode, "encoder": job.model_id.encoder_or(job.settings.model.encoder),
        "weights": model.weights_source,
        "lora_rank": job.settings.model.lora_rank, "input_scaling": job.settings.model.input_scaling,
        "unet_forward": job.settings.model.unet_forward, "position_grid": job.settings.model.position_grid,
        "selection": selection_note(job.fit.regime), "shape": list(job.task.shape),
        "num_classes": job.task.num_classes, "data_source": job.settings.data.source,
        "profile": job.settings.profile, **{f"fit.{k}": v for k, v in vars(job.fit).items()},
        **kernel_params(job.settings.train.reproducibility),
    })
    card_path = prepared_task_dir(job.paths.prepared_dir, job.task.key) / CARD_FILE
    if card_path.is_file():
        tracker.log_table(pd.read_csv(card_path), "data_card")


def majority_baseline_miou(paths: ProjectPaths, task: TaskSpec) -> float:
    """The test mIoU of predicting the training split's most frequent class everywhere."""
    majority = int(np.argmax(read_stats(paths.prepared_dir, task.key)["class_pixel_counts"]))
    _, labels_path = prepared_array_paths(prepared_task_dir(paths.prepared_dir, task.key), "test")
    confusion = np.zeros((task.num_classes, task.num_classes), dtype=np.int64)
    confusion[:, majority] = class_counts(np.load(labels_path, mmap_mode="r"), task.num_classes)
    return scores_from_confusion(confusion).miou


def _score_tables(evaluation: EvaluationResult, num_classes: int) -> dict[str, pd.DataFrame]:
    scores = evaluation.scores
    classes = range(num_classes)
    return {
        "per_class": pd.DataFrame({"class": classes, "iou": scores.per_class_iou,
                                   "accuracy": scores.per_class_accuracy}),
        "confusion": pd.DataFrame(evaluation.confusion, index=pd.Index(classes, name="label"),
                                  columns=[f"predicted_{c}" for c in classes]),
    }


def _result(job: _Job, training_id: str, fitted: FitResult, evaluation: EvaluationResult, baseline: float,
            model: RawSectionModel, model_ref: ModelRef) -> TrainingResult:
    scores = evaluation.scores
    return TrainingResult(
        task=job.task.key, model=job.model_id.key, seed=job.fit.seed, training_id=training_id,
        network=job.model_id.network, mode=job.model_id.mode,
        miou=scores.miou, mpa=scores.mpa, overall_accuracy=scores.overall_accuracy, fwiou=scores.fwiou,
        authors_miou=evaluation.batch_mean["miou"], authors_mpa=evaluation.batch_mean["mpa"],
        best_val_miou=fitted.best_val_miou, best_epoch=fitted.best_epoch, majority_baseline_miou=baseline,
        per_class_iou=scores.per_class_iou, weights_source=model.weights_source, model_ref=model_ref,
        history=fitted.history)


def _log_scores(result: TrainingResult, tables: dict[str, pd.DataFrame], tracker: Tracker) -> None:
    metrics = {name: value for name, value in result.summary().items()
               if isinstance(value, (int, float)) and not isinstance(value, bool)}
    tracker.log_metrics({TRACKED_METRIC_NAMES.get(name, name): value for name, value in metrics.items()})
    for name, table in tables.items():
        tracker.log_table(table, name)


def _write_run_files(job: _Job, result: TrainingResult, tables: dict[str, pd.DataFrame], model: nn.Module,
                     test_set: PreparedDataset, tracker: Tracker, cost: TrainingCost) -> None:
    """artifacts/ (tables, model reference, cost, prediction figure), history.csv and, last, metrics.json."""
    run_dir = job.run_dir
    section, label = test_set.read_sample(0)
    with staged_dir(run_dir / ARTIFACTS_DIR) as staging:
        tables["per_class"].to_csv(staging / "per_class.csv", index=False)
        tables["confusion"].to_csv(staging / "confusion.csv")
        (staging / "model.json").write_text(json.dumps(vars(result.model_ref), indent=1) + "\n")
        cost.write(staging)
        title = f"{job.task.title}: {job.model_id.key} (test mIoU {result.miou:.3f})"
        prediction_figure(staging / "prediction.png", title, section, predict_section(model, section), label)
    tracker.log_artifact(run_dir / ARTIFACTS_DIR)
    _log_learning_curves(job, result, tracker)
    write_atomic(run_dir / HISTORY_FILE, pd.DataFrame(result.history).to_csv(index=False))
    write_atomic(run_dir / METRICS_FILE, json.dumps(result.summary(), indent=1) + "\n")


def _log_learning_curves(job: _Job, result: TrainingResult, tracker: Tracker) -> None:
    """This seed's learning curves, drawn as the stage's `history.png` that `dvc plots show` shows."""
    with tempfile.TemporaryDirectory() as folder:
        figure = Path(folder) / HISTORY_FIGURE
        history_figure(figure, pd.DataFrame(result.history).assign(seed=job.fit.seed),
                       title=f"{job.task.key}/{job.model_id.key}, seed {job.fit.seed}")
        tracker.log_artifact(figure)


def _job(settings: Settings, root: Path, task_key: str, model_key: str, seed: int) -> _Job:
    task = settings.task(task_key)
    return _Job(settings, ProjectPaths.of(settings, root), task, settings.model_key(model_key),
                fit_config(settings.train, task, seed))


def train_and_evaluate(settings: Settings, root: Path, task_key: str, model_key: str, tracker: Tracker,
                       seed: int, callbacks: Sequence[FitCallback] = (),
                       distributed: Distributed = SINGLE_PROCESS) -> TrainingResult | None:
    """Train one model on a prepared task with one seed, select it on validation, score it on test.

    Writes `runs/<task>/<model>/seeds/<seed>/` (metrics.json, history.csv, artifacts/), logs everything to
    `tracker` (also the fit callback, with `callbacks`). An interrupted run resumes from its checkpoints;
    a finished one deletes them. Under torchrun (`distributed`), every process trains its share and the
    main process alone evaluates and writes; the others return None. In strict reproducibility (see
    `training.reproducibility`) training and evaluation run on the pinned kernels.
    """
    with strict_kernels(settings.train.reproducibility):
        return _trained_and_evaluated(settings, root, task_key, model_key, tracker, seed, callbacks,
                                      distributed)


def _trained_and_evaluated(settings: Settings, root: Path, task_key: str, model_key: str, tracker: Tracker,
                           seed: int, callbacks: Sequence[FitCallback],
                           distributed: Distributed) -> TrainingResult | None:
    job = _job(settings, root, task_key, model_key, seed)
    task = job.task
    sets = {split: PreparedDataset(job.paths.prepared_dir, task.key, split) for split in SPLITS}
    model = _build(job, root)
    _log_setup(job, model, tracker)
    checkpoints = checkpoint_folder(settings, root, task.key, job.model_id.key, job.fit.seed)
    selection_set = sets[get_regime(job.fit.regime).selection_split]
    fitted = fit(model, sets["train"], selection_set, task.num_classes, job.fit, checkpoints,
                 callbacks=[tracker, *callbacks], distributed=distributed)
    if not distributed.is_main:
        return None
    cost = measured_cost(fitted.step_seconds, resolve_device(job.fit.device))
    evaluation = evaluate_with_mirrors(model, sets["test"], task.num_classes, task.paper_batch_size,
                                       job.fit.device)
    baseline = majority_baseline_miou(job.paths, task)
    tables = _score_tables(evaluation, task.num_classes)
    merged = merge_lora(model).cpu().eval()
    model_ref = tracker.log_model(merged, "model")
    result = _result(job, checkpoints.name, fitted, evaluation, baseline, model, model_ref)
    _log_scores(result, tables, tracker)
    _write_run_files(job, result, tables, merged, sets["test"], tracker, cost)
    # The checkpoints only serve to resume an interrupted run; the model now lives in the tracker.
    shutil.rmtree(checkpoints)
    return result


def finished_result(settings: Settings, root: Path, task_key: str, model_key: str, seed: int,
                    identity: str) -> TrainingResult | None:
    """The result this very training wrote, if its outputs are on disk with the same identity."""
    run_dir = _job(settings, root, task_key, model_key, seed).run_dir
    metrics = run_dir / METRICS_FILE
    if not metrics.is_file() or json.loads(metrics.read_text()).get("training_id") != identity:
        return None
    return TrainingResult.read(run_dir)
