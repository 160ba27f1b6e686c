"""`geofm import`: a model trained with the authors' code brought into geofm, scored and logged like a
trained one (its run in the store, its model registered by the front door)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from training.catalog import parse_model_key
from training.data.dataset import PreparedDataset
from training.errors import MissingInputError
from training.evaluation import evaluate_with_mirrors
from training.models import RawSectionModel, merge_lora
from training.models.authors import load_authors_checkpoint
from training.settings import ProjectPaths, Settings
from training.tracking import ModelRef, Tracker

TRACKED = ("miou", "mpa", "overall_accuracy", "fwiou")


@dataclass(frozen=True)
class ImportedModel:
    """An imported checkpoint's scores (pooled, test split; and the validation mIoU that ranks it among the
    registered versions) and where its model was logged."""

    miou: float
    mpa: float
    authors_miou: float
    authors_mpa: float
    val_miou: float
    model_ref: ModelRef


def import_id(checkpoint: Path, lora: Path | None) -> str:
    """The identity of an import: a digest of the checkpoint file(s)."""
    digest = hashlib.sha256()
    for path in (checkpoint, lora):
        if path is not None and not Path(path).is_file():
            raise MissingInputError(f"checkpoint file not found: {path}")
        if path is not None:
            digest.update(Path(path).read_bytes())
    return f"import-{digest.hexdigest()[:12]}"


def load_import(settings: Settings, task_key: str, model_key: str, checkpoint: Path, lora: Path | None = None,
                lora_in_weights: bool = False) -> RawSectionModel:
    """`checkpoint` (and its LoRA file) read and checked as the geofm `model_key` for `task_key`: called
    before a run is opened, so that an unreadable file opens none."""
    task, model_id = settings.task(task_key), parse_model_key(model_key)
    return load_authors_checkpoint(Path(checkpoint), model_id.network, task, finetune=model_id.mode,
                                   lora_path=lora, encoder=settings.model.encoder,
                                   lora_in_weights=lora_in_weights)


def import_authors_model(settings: Settings, root: Path, task_key: str, model_key: str,
                         model: RawSectionModel, checkpoint: Path, tracker: Tracker, lora: Path | None = None,
                         lora_in_weights: bool = False) -> ImportedModel:
    """Score the loaded `model` (`load_import`) on the prepared validation and test splits (pooled, and the
    authors' per-batch protocol) and log it."""
    task, model_id = settings.task(task_key), parse_model_key(model_key)
    prepared = ProjectPaths.of(settings, root).prepared_dir
    device = settings.train.device
    test = evaluate_with_mirrors(model, PreparedDataset(prepared, task.key, "test"), task.num_classes,
                                 task.paper_batch_size, device)
    val = evaluate_with_mirrors(model, PreparedDataset(prepared, task.key, "val"), task.num_classes,
                                task.paper_batch_size, device)
    tracker.log_params({"task": task.key, "model": model_id.key, "network": model_id.network,
                        "finetune": model_id.mode, "weights": model.weights_source,
                        "input_scaling": "authors",
                        "checkpoint": str(checkpoint), "lora_checkpoint": str(lora or ""),
                        "lora_in_weights": lora_in_weights})
    scores = {f"test_{name}": getattr(test.scores, name) for name in TRACKED}
    tracker.log_metrics({**scores, "test_authors_miou": test.batch_mean["miou"],
                         "test_authors_mpa": test.batch_mean["mpa"], "best_val_miou": val.scores.miou})
    model_ref = tracker.log_model(merge_lora(model).cpu().eval(), "model")
    return ImportedModel(test.scores.miou, test.scores.mpa, test.batch_mean["miou"], test.batch_mean["mpa"],
                         val.scores.miou, model_ref)
