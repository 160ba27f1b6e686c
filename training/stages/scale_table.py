"""The scale table of the report: when the benchmark scans encoders (`encoder_scan` in params.yaml, or model
keys `<network>-<mode>.<encoder>`, docs/models.md), one table per task with a row per encoder: its parameters
and those each fine-tuning mode trains, then per network the test mIoU and mPA (mean over seeds), the mean
seconds per optimizer step and the peak memory measured in that training (`training.cost`), so a reader sees
what each point of mIoU costs."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import pandas as pd

from training.catalog import FULLY_TRAINED_NETWORKS, ModelKey, parse_model_key
from training.cost import TrainingCost
from training.encoders import ENCODER_SPECS
from training.settings import ProjectPaths, Settings
from training.stages.outputs import ARTIFACTS_DIR, METRICS_FILE, SEEDS_DIR

_RANDOM = " (random initialisation: these scores do not reflect the pretrained encoders)"


def scanned_encoders(settings: Settings) -> list[str]:
    """The encoders the configured ViT models train, `model.encoder` first when a plain key uses it."""
    keys = [parse_model_key(key) for key in settings.benchmark_models]
    return list(dict.fromkeys(key.encoder_or(settings.model.encoder) for key in keys
                              if key.network not in FULLY_TRAINED_NETWORKS))


def _mean(values: list[float]) -> float | None:
    return statistics.fmean(values) if values else None


def _cost(run_dir: Path) -> tuple[float | None, float | None]:
    """Mean s/step and peak GiB over the seeds that recorded their cost."""
    costs = [cost for folder in sorted((run_dir / SEEDS_DIR).glob("*"))
             if (cost := TrainingCost.read(folder / ARTIFACTS_DIR)) is not None]
    return (_mean([c.step_seconds for c in costs if c.step_seconds is not None]),
            _mean([c.peak_memory_gib for c in costs]))


def _cells(run_dir: Path, network: str) -> dict[str, float | None]:
    metrics_path = run_dir / METRICS_FILE
    metrics = json.loads(metrics_path.read_text()) if metrics_path.is_file() else {}
    seconds, memory = _cost(run_dir)
    return {f"{network} mIoU": metrics.get("miou"), f"{network} mPA": metrics.get("mpa"),
            f"{network} s/step": seconds, f"{network} peak GiB": memory}


def scale_tables(settings: Settings, root: Path) -> dict[str, pd.DataFrame]:
    """Task -> its scale table (rows: encoder labels); empty unless the ViT models ran on two encoders."""
    if len(scanned_encoders(settings)) < 2:
        return {}
    paths = ProjectPaths.of(settings, root)
    tables = {}
    for task_key in settings.tasks:
        rows: dict[str, dict[str, object]] = {}
        for key in settings.benchmark_models:
            model_id = parse_model_key(key)
            if model_id.network in FULLY_TRAINED_NETWORKS:
                continue
            spec = ENCODER_SPECS[model_id.encoder_or(settings.model.encoder)]
            grid = settings.task(task_key).for_patch_size(spec.patch_size).patch_grid
            row = rows.setdefault(spec.label, {"encoder": spec.name, "parameters": spec.parameters})
            row[f"trainable ({model_id.mode})"] = spec.trainable_parameters(model_id.mode, grid,
                                                                             settings.model.lora_rank)
            network = ModelKey(model_id.network, model_id.mode).key
            row.update(_cells(paths.run_dir(task_key, key), network))
        table = pd.DataFrame.from_dict(rows, orient="index")
        table.index.name = "Encoder"
        tables[task_key] = table
    return tables


def scale_markdown(tables: dict[str, pd.DataFrame], settings: Settings) -> str:
    """The scale tables as one markdown section (empty without a scan)."""
    if not tables:
        return ""
    weights = settings.model.weights
    sections = ["## Encoder scale\n\nPer task: each encoder's parameters and those the fine-tuning mode "
                "trains, then per network the test mIoU and mPA, the mean seconds per optimizer step and the "
                "peak memory (GiB) of its training (CUDA: allocated; CPU: the process's peak RSS, an upper "
                f"bound). Weights: `{weights}`{_RANDOM if weights == 'none' else ''}.\n"]
    for task_key, table in tables.items():
        title = settings.task(task_key).title
        sections.append(f"### {title}\n\n{table.to_markdown(floatfmt='.4g')}\n")
    return "\n".join(sections)
