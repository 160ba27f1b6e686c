"""The stage functions of training/stages on a tiny synthetic benchmark, with an in-memory tracker."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from recording_tracker import RecordingTracker
from tiny_benchmark import load_tiny_settings

from training.catalog import parse_model_key
from training.data.layout import prepared_array_paths, prepared_task_dir
from training.settings import ProjectPaths
from training.stages.outputs import stage_outputs
from training.stages.prepare import prepare
from training.stages.raw import materialize_raw
from training.stages.report import build_report
from training.stages.train import majority_baseline_miou, train_and_evaluate

MODELS = ("unet", "linear-lora")


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path, dict[str, dict]]:
    """One task prepared and both models trained, each with its own recording tracker."""
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("benchmark")
    settings = load_tiny_settings(root, ["salt"], MODELS)
    materialize_raw(settings, root)
    prepare(settings, root, "salt")
    runs = {}
    for model in MODELS:
        tracker = RecordingTracker()
        runs[model] = {"result": train_and_evaluate(settings, root, "salt", model, tracker),
                       "tracker": tracker}
    return settings, root, runs


@pytest.mark.parametrize(("key", "network", "mode"), [("unet", "unet", "full"), ("mla-lora", "mla", "lora"),
                                                      ("dpt-frozen", "dpt", "frozen")])
def test_model_keys_parse_into_network_and_mode(key: str, network: str, mode: str) -> None:
    parsed = parse_model_key(key)
    assert (parsed.network, parsed.mode, parsed.key) == (network, mode, key)


@pytest.mark.parametrize("key", ["unet-lora", "mla", "mla-half", "vgg-lora"])
def test_bad_model_keys_are_named(key: str) -> None:
    with pytest.raises(ValueError, match=repr(key)):
        parse_model_key(key)


def test_stage_outputs_are_the_files_the_stages_write(trained: tuple) -> None:
    settings, root, _ = trained
    paths = (stage_outputs(settings, "raw") + stage_outputs(settings, "prepare", task="salt")
             + [p for m in MODELS for p in stage_outputs(settings, "train", task="salt", model=m)])
    assert all((root / path).exists() for path in paths)
    assert (root / "data/prepared/salt/card.csv").is_file()


def test_training_writes_metrics_history_and_artifacts(trained: tuple) -> None:
    settings, root, runs = trained
    for model, run in runs.items():
        folder = root / "runs" / "salt" / model
        metrics = json.loads((folder / "metrics.json").read_text())
        assert metrics["miou"] == pytest.approx(run["result"].miou)
        assert 0 <= metrics["miou"] <= 1 and 0 <= metrics["mpa"] <= 1
        assert len(metrics["per_class_iou"]) == 2
        history = pd.read_csv(folder / "history.csv")
        assert list(history["epoch"]) == [1] and {"train_loss", "val_loss", "val_miou"} <= set(history)
        assert sorted(p.name for p in (folder / "artifacts").iterdir()) == [
            "confusion.csv", "model.json", "per_class.csv", "prediction.png"]
        confusion = pd.read_csv(folder / "artifacts" / "confusion.csv", index_col=0).to_numpy()
        _, labels = prepared_array_paths(prepared_task_dir(root / "data/prepared", "salt"), "test")
        assert confusion.sum() == 2 * np.load(labels).size  # every test pixel, each sample and its flip


def test_training_reports_to_the_tracker(trained: tuple) -> None:
    _, _, runs = trained
    tracker = runs["linear-lora"]["tracker"]
    assert tracker.params["network"] == "linear" and tracker.params["finetune"] == "lora"
    assert tracker.params["weights"] == "none"
    epochs = [step for step, metrics in tracker.metrics if "val_miou" in metrics]
    assert epochs == [1]
    final = {k: v for step, metrics in tracker.metrics if step is None for k, v in metrics.items()}
    assert final["test_miou"] == pytest.approx(runs["linear-lora"]["result"].miou)
    assert {"per_class", "confusion", "data_card"} <= set(tracker.tables)
    merged = tracker.models["model"]
    assert not any("lora" in name for name, _ in merged.named_parameters())


def test_majority_baseline_is_the_majority_class_iou(trained: tuple) -> None:
    settings, root, _ = trained
    stats = json.loads((root / "data/prepared/salt/stats.json").read_text())
    majority = int(np.argmax(stats["class_pixel_counts"]))
    _, labels_path = prepared_array_paths(prepared_task_dir(root / "data/prepared", "salt"), "test")
    share = float((np.load(labels_path) == majority).mean())
    # Majority class: IoU = its share of the pixels; the other class is never predicted: IoU 0.
    paths = ProjectPaths.of(settings, root)
    assert majority_baseline_miou(paths, settings.task("salt")) == pytest.approx(share / 2)


def test_report_tables_hold_each_run(trained: tuple) -> None:
    settings, root, runs = trained
    report = build_report(settings, root)
    assert report.missing == []
    miou = report.tables["miou"]
    assert miou.loc["Unet", "Seismic Geobody"] == pytest.approx(runs["unet"]["result"].miou)
    assert report.tables["mpa"].loc["DINOv2-LINEAR", "Seismic Geobody"] == pytest.approx(
        runs["linear-lora"]["result"].mpa)
    assert "(paper 0.8636)" in (root / "reports" / "benchmark.md").read_text()


def test_report_without_runs_names_the_folder(tmp_path: Path) -> None:
    settings = load_tiny_settings(tmp_path, ["salt"], MODELS)
    with pytest.raises(FileNotFoundError, match="runs"):
        build_report(settings, tmp_path)
