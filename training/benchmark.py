"""The benchmark's stages as plain functions: raw data, prepared data, one trained model, the report.

Both front doors call these: the Dagster assets (`assets/`) and the DVC stages (through the `geofm` CLI).
Every function takes the effective parameters (`training.config.load_params`) and the project root, and
writes only under the folders `params.yaml` names, each file through a temporary name and a rename.
Logging goes to a `training.tracking.Tracker`; this module never imports Dagster, MLflow or DVC.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from training.data.atomic import staged_dir, write_atomic
from training.data.card import data_card
from training.data.dataset import PreparedDataset
from training.data.layout import SPLITS_FILE, STATS_FILE, prepared_array_paths, prepared_task_dir
from training.data.prepare import prepare_task, read_stats
from training.data.stats import class_counts
from training.data.synthetic import write_synthetic_dataset
from training.data.validate import ValidationSummary, validate_prepared, validate_raw
from training.data.zenodo import download_and_extract
from training.fit import FitCallback, FitConfig, evaluate, fit
from training.inference import predict_section, prediction_figure
from training.metrics import scores_from_confusion
from training.models import FINETUNE_MODES, NETWORKS, build_model, merge_lora
from training.report import benchmark_tables, tables_markdown
from training.seeding import seed_everything
from training.tasks import TaskSpec, resolve_tasks
from training.tracking import Tracker

FULLY_TRAINED_NETWORKS = ("unet",)
METRICS_FILE = "metrics.json"
HISTORY_FILE = "history.csv"
ARTIFACTS_DIR = "artifacts"
CARD_FILE = "card.csv"
REPORT_FILES = ("benchmark.md", "miou.csv", "mpa.csv")
# metrics.json name -> tracker name: the test scores carry a `test_` prefix beside the per-epoch val_ curves.
TRACKED_METRIC_NAMES = {name: f"test_{name}" for name in
                        ("miou", "mpa", "overall_accuracy", "fwiou", "authors_miou", "authors_mpa")}


@dataclass(frozen=True)
class ModelKey:
    """One benchmark model: a network and, for the ViT networks, its fine-tuning mode."""

    network: str
    mode: str

    @property
    def key(self) -> str:
        return self.network if self.network in FULLY_TRAINED_NETWORKS else f"{self.network}-{self.mode}"


def parse_model_key(key: str) -> ModelKey:
    """`unet` -> (unet, full); `mla-lora` -> (mla, lora). Anything else is an error naming the key."""
    network, _, mode = key.partition("-")
    if network in FULLY_TRAINED_NETWORKS and not mode:
        return ModelKey(network, "full")
    if network not in NETWORKS or network in FULLY_TRAINED_NETWORKS or mode not in FINETUNE_MODES:
        raise ValueError(
            f"params: model {key!r} is not 'unet' or '<network>-<mode>' with network in "
            f"{[n for n in NETWORKS if n not in FULLY_TRAINED_NETWORKS]} and mode in {list(FINETUNE_MODES)}"
        )
    return ModelKey(network, mode)


@dataclass(frozen=True)
class Layout:
    """Where each stage writes, relative to the project root (the paths dvc.yaml declares)."""

    root: Path
    raw_dir: Path
    prepared_dir: Path
    runs_dir: Path
    reports_dir: Path
    checkpoints_dir: Path

    @classmethod
    def from_params(cls, params: Mapping[str, Any], root: Path) -> Layout:
        root = Path(root).resolve()
        data, outputs = params["data"], params["outputs"]
        return cls(root, root / data["raw_dir"], root / data["prepared_dir"], root / outputs["runs_dir"],
                   root / outputs["reports_dir"], root / outputs["checkpoints_dir"])

    def run_dir(self, task_key: str, model_key: str) -> Path:
        return self.runs_dir / task_key / model_key


def stage_outputs(params: Mapping[str, Any], stage: str, task: str | None = None,
                  model: str | None = None) -> list[str]:
    """The paths (relative to the root) that one stage instance writes; dvc.yaml declares the same."""
    layout = Layout.from_params(params, Path("."))
    run = layout.run_dir(task or "", model or "")
    outputs = {
        "raw": [layout.raw_dir],
        "prepare": [prepared_task_dir(layout.prepared_dir, task or "")],
        "train": [run / METRICS_FILE, run / HISTORY_FILE, run / ARTIFACTS_DIR],
        "report": [layout.reports_dir / name for name in REPORT_FILES],
    }
    return [path.relative_to(layout.root).as_posix() for path in outputs[stage]]


def benchmark_id(params: Mapping[str, Any]) -> str:
    """A name for this configuration of the benchmark: the profile and a digest of the parameters."""
    digest = hashlib.sha256(json.dumps(params, sort_keys=True, default=str).encode()).hexdigest()
    return f"{params.get('profile', 'base')}-{digest[:10]}"


def materialize_raw(params: Mapping[str, Any], root: Path) -> Path:
    """Write (synthetic) or fetch (zenodo) the raw data of every configured task; returns the raw folder."""
    data = params["data"]
    raw_dir = Layout.from_params(params, root).raw_dir
    tasks = resolve_tasks(params)
    sources = {
        "synthetic": lambda: write_synthetic_dataset(
            raw_dir, tasks, int(data["synthetic"]["train_count"]), int(data["synthetic"]["test_count"]),
            int(data["synthetic"]["seed"])),
        "zenodo": lambda: download_and_extract(str(data["record"]), raw_dir, list(tasks)),
    }
    if data["source"] not in sources:
        raise ValueError(f"params: data.source is {data['source']!r}; expected one of {', '.join(sources)}")
    sources[data["source"]]()
    return raw_dir


def validate_raw_data(params: Mapping[str, Any], root: Path) -> dict[str, ValidationSummary]:
    """Check every raw file of every configured task; raises DataValidationError naming the bad file."""
    raw_dir = Layout.from_params(params, root).raw_dir
    return {key: validate_raw(raw_dir, task) for key, task in resolve_tasks(params).items()}


def prepare(params: Mapping[str, Any], root: Path, task_key: str) -> tuple[Path, pd.DataFrame]:
    """Split and write one task's training-ready arrays and its data card (card.csv) beside them."""
    layout = Layout.from_params(params, root)
    task = resolve_tasks(params)[task_key]
    data = params["data"]
    folder = prepare_task(layout.raw_dir, layout.prepared_dir, task, float(data["val_fraction"]),
                          int(data["split_seed"]))
    card = data_card(layout.prepared_dir, task)
    write_atomic(folder / CARD_FILE, card.to_csv())
    return folder, card


def validate_prepared_data(params: Mapping[str, Any], root: Path, task_key: str) -> ValidationSummary:
    """Check one task's prepared arrays, stats and splits; raises DataValidationError naming the file."""
    return validate_prepared(Layout.from_params(params, root).prepared_dir, resolve_tasks(params)[task_key])


def fit_config(params: Mapping[str, Any], task: TaskSpec) -> FitConfig:
    """The fit settings of `params['train']`; batch size "paper" is the task's batch size in the paper."""
    settings = dict(params["train"])
    if settings.get("batch_size") == "paper":
        settings["batch_size"] = task.paper_batch_size
    return FitConfig.from_mapping(settings)


def _weights_source(params: Mapping[str, Any], root: Path) -> str:
    """`hub`, `none`, or a weight file's path made absolute under the root."""
    weights = str(params["model"]["weights"])
    return weights if weights in ("hub", "none") else str((Path(root) / weights).resolve())


def _checkpoint_dir(layout: Layout, params: Mapping[str, Any], task: TaskSpec, model_key: str) -> Path:
    """One folder per training configuration and prepared data, so only an identical run resumes there."""
    prepared = prepared_task_dir(layout.prepared_dir, task.key)
    identity = {
        "task": [task.key, list(task.shape)], "model": model_key, "model_params": params["model"],
        "train": params["train"], "stats": (prepared / STATS_FILE).read_text(),
        "splits": (prepared / SPLITS_FILE).read_text(),
    }
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()[:12]
    return layout.checkpoints_dir / task.key / model_key / digest


def train_and_evaluate(
    params: Mapping[str, Any],
    root: Path,
    task_key: str,
    model_key: str,
    tracker: Tracker,
    callbacks: Sequence[FitCallback] = (),
) -> dict[str, Any]:
    """Train one model on a prepared task, select it on validation, score it on the test split.

    Writes `runs/<task>/<model>/` (metrics.json, history.csv, artifacts/), logs everything to `tracker`
    (also the fit callback, with `callbacks`) and returns the metrics with the logged model's reference.
    An interrupted run resumes from its checkpoints; a finished one deletes them.
    """
    layout = Layout.from_params(params, root)
    task = resolve_tasks(params)[task_key]
    model_id = parse_model_key(model_key)
    config = fit_config(params, task)
    stats = read_stats(layout.prepared_dir, task_key)
    sets = {split: PreparedDataset(layout.prepared_dir, task_key, split)
            for split in ("train", "val", "test")}
    weights = _weights_source(params, root)
    seed_everything(config.seed)
    model = build_model(model_id.network, task, encoder=params["model"]["encoder"], weights=weights,
                        finetune=model_id.mode, lora_rank=int(params["model"]["lora_rank"]),
                        input_mean=float(stats["mean"]), input_std=float(stats["std"]))
    tracker.log_params({
        "task": task_key, "model": model_key, "network": model_id.network, "finetune": model_id.mode,
        "encoder": params["model"]["encoder"], "weights": model.weights_source,
        "lora_rank": params["model"]["lora_rank"],
        "shape": list(task.shape), "num_classes": task.num_classes, "data_source": params["data"]["source"],
        "profile": params.get("profile"), **{f"fit.{k}": v for k, v in vars(config).items()},
    })
    card_path = prepared_task_dir(layout.prepared_dir, task_key) / CARD_FILE
    if card_path.is_file():
        tracker.log_table(pd.read_csv(card_path), "data_card")

    checkpoints = _checkpoint_dir(layout, params, task, model_key)
    result = fit(model, sets["train"], sets["val"], task.num_classes, config, checkpoints,
                 callbacks=[tracker, *callbacks])
    evaluation = evaluate(model, sets["test"], task.num_classes, config.batch_size, config.device)
    scores = evaluation.scores
    baseline = majority_baseline_miou(params, root, task_key)
    metrics = {
        "miou": scores.miou, "mpa": scores.mpa, "overall_accuracy": scores.overall_accuracy,
        "fwiou": scores.fwiou, "authors_miou": evaluation.batch_mean["miou"],
        "authors_mpa": evaluation.batch_mean["mpa"], "best_val_miou": result.best_val_miou,
        "best_epoch": result.best_epoch, "majority_baseline_miou": baseline,
    }
    tracker.log_metrics({TRACKED_METRIC_NAMES.get(name, name): value for name, value in metrics.items()})
    per_class = pd.DataFrame({"class": range(task.num_classes), "iou": scores.per_class_iou,
                              "accuracy": scores.per_class_accuracy})
    confusion = pd.DataFrame(evaluation.confusion, index=pd.Index(range(task.num_classes), name="label"),
                             columns=[f"predicted_{c}" for c in range(task.num_classes)])
    tracker.log_table(per_class, "per_class")
    tracker.log_table(confusion, "confusion")

    section, label = sets["test"].read_sample(0)
    merged = merge_lora(model).cpu().eval()
    ref = tracker.log_model(merged, "model", np.array(section, dtype=np.float32)[None, None])
    history = pd.DataFrame(result.history)
    run_dir = layout.run_dir(task_key, model_key)
    with staged_dir(run_dir / ARTIFACTS_DIR) as staging:
        per_class.to_csv(staging / "per_class.csv", index=False)
        confusion.to_csv(staging / "confusion.csv")
        (staging / "model.json").write_text(json.dumps(vars(ref), indent=1) + "\n")
        title = f"{task.title}: {model_key} (test mIoU {scores.miou:.3f})"
        prediction_figure(staging / "prediction.png", title, section, predict_section(merged, section), label)
    tracker.log_artifact(run_dir / ARTIFACTS_DIR)
    write_atomic(run_dir / HISTORY_FILE, history.to_csv(index=False))
    summary = {"task": task_key, "model": model_key, "network": model_id.network, "mode": model_id.mode,
               **metrics, "per_class_iou": scores.per_class_iou}
    write_atomic(run_dir / METRICS_FILE, json.dumps(summary, indent=1) + "\n")
    # The checkpoints only serve to resume an interrupted run; the model now lives in the tracker.
    shutil.rmtree(checkpoints)
    return {**summary, "model_ref": ref, "history": result.history}


def majority_baseline_miou(params: Mapping[str, Any], root: Path, task_key: str) -> float:
    """The test mIoU of predicting the training split's most frequent class everywhere."""
    layout = Layout.from_params(params, root)
    task = resolve_tasks(params)[task_key]
    majority = int(np.argmax(read_stats(layout.prepared_dir, task_key)["class_pixel_counts"]))
    _, labels_path = prepared_array_paths(prepared_task_dir(layout.prepared_dir, task_key), "test")
    confusion = np.zeros((task.num_classes, task.num_classes), dtype=np.int64)
    confusion[:, majority] = class_counts(np.load(labels_path, mmap_mode="r"), task.num_classes)
    return scores_from_confusion(confusion).miou


@dataclass(frozen=True)
class Report:
    """The benchmark tables (miou, mpa), as markdown beside the paper, and the runs that were missing."""

    tables: dict[str, pd.DataFrame]
    markdown: str
    missing: list[str]


def build_report(params: Mapping[str, Any], root: Path) -> Report:
    """Collect every configured run's metrics.json into the two tables and write them to the reports dir."""
    layout = Layout.from_params(params, root)
    results, missing = [], []
    for task_key in params["tasks"]:
        for model_key in params["models"]:
            path = layout.run_dir(task_key, model_key) / METRICS_FILE
            if not path.is_file():
                missing.append(f"{task_key}/{model_key}")
                continue
            metrics = json.loads(path.read_text())
            results.append({key: metrics[key] for key in ("task", "network", "mode", "miou", "mpa")})
    if not results:
        raise FileNotFoundError(f"no trained model's {METRICS_FILE} under {layout.runs_dir}: train first")
    tables = benchmark_tables(results)
    markdown = tables_markdown(tables)
    write_atomic(layout.reports_dir / "benchmark.md", markdown)
    for key, table in tables.items():
        write_atomic(layout.reports_dir / f"{key}.csv", table.to_csv())
    return Report(tables, markdown, missing)
