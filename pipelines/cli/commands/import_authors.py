"""`geofm import`: register a model trained with the authors' scripts (their `.pth` state dict and, for
LoRA, their second `lora_state_dict` file), scored on the prepared splits like a trained model."""

from __future__ import annotations

import argparse
from pathlib import Path

from pipelines.tracking.store import BenchmarkStore
from training.settings import Project
from training.stages.import_authors import import_authors_model, import_id, load_import


def run(args: argparse.Namespace, project: Project) -> None:
    settings = project.settings
    store = BenchmarkStore.for_project(settings.mlflow, project.root)
    checkpoint, lora = Path(args.checkpoint), Path(args.lora) if args.lora else None
    identity = import_id(checkpoint, lora)
    model = load_import(settings, args.task, args.model, checkpoint, lora, args.lora_in_weights)
    with store.training_run(settings, args.task, args.model, "import", identity, seed=0) as tracker:
        imported = import_authors_model(settings, project.root, args.task, args.model, model, checkpoint,
                                        tracker, lora=lora, lora_in_weights=args.lora_in_weights)
    published = store.publish(tracker.run_id, imported.model_ref.uri, args.task, args.model,
                              imported.val_miou)
    print(f"imported {checkpoint} as {published.model.uri}: test mIoU {imported.miou:.4f}, mPA "
          f"{imported.mpa:.4f} (authors' protocol {imported.authors_miou:.4f} / {imported.authors_mpa:.4f}); "
          f"validation mIoU {imported.val_miou:.4f}{', promoted to best' if published.promoted else ''}; "
          f"{published.run_url}")
