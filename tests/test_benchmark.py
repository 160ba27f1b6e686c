"""The stage functions of training/stages on a tiny synthetic benchmark, with an in-memory store."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from recording_tracker import RecordingStore
from tiny_benchmark import load_tiny_settings, write_tiny_params

from training.catalog import parse_model_key
from training.data.layout import prepared_array_paths, prepared_task_dir
from training.settings import ProjectPaths, load_settings
from training.stages.identity import checkpoint_folder
from training.stages.outputs import stage_outputs
from training.stages.prepare import prepare
from training.stages.raw import materialize_raw
from training.stages.report import build_report
from training.stages.train import majority_baseline_miou
from training.stages.training_stage import run_training_stage

MODELS = ("unet", "linear-lora")
SEEDS = (3, 4)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple:
    """One task prepared and both models trained with two seeds, in one recording store."""
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("benchmark")
    path = write_tiny_params(root, ["salt"], MODELS)
    raw = yaml.safe_load(path.read_text())
    raw["profiles"]["demo"]["train"]["seeds"] = list(SEEDS)
    path.write_text(yaml.safe_dump(raw))
    settings = load_settings(path)
    materialize_raw(settings, root)
    prepare(settings, root, "salt")
    store = RecordingStore()
    outcomes = {model: run_training_stage(settings, root, "salt", model, store, launcher="test")
                for model in MODELS}
    return settings, root, outcomes, store


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
    settings, root, _, _ = trained
    paths = (stage_outputs(settings, "raw") + stage_outputs(settings, "prepare", task="salt")
             + [p for m in MODELS for p in stage_outputs(settings, "train", task="salt", model=m)])
    assert all((root / path).exists() for path in paths)
    assert (root / "data/prepared/salt/card.csv").is_file()


def test_every_seed_writes_its_metrics_history_and_artifacts(trained: tuple) -> None:
    _, root, outcomes, _ = trained
    for model, outcome in outcomes.items():
        assert [seed.result.seed for seed in outcome.seeds] == list(SEEDS)
        for seed in outcome.seeds:
            folder = root / "runs" / "salt" / model / "seeds" / str(seed.result.seed)
            metrics = json.loads((folder / "metrics.json").read_text())
            assert metrics["miou"] == pytest.approx(seed.result.miou) and metrics["seed"] == seed.result.seed
            assert len(metrics["per_class_iou"]) == 2
            history = pd.read_csv(folder / "history.csv")
            assert list(history["epoch"]) == [1] and {"train_loss", "val_loss", "val_miou"} <= set(history)
            assert sorted(p.name for p in (folder / "artifacts").iterdir()) == [
                "confusion.csv", "cost.json", "model.json", "per_class.csv", "prediction.png"]
            confusion = pd.read_csv(folder / "artifacts" / "confusion.csv", index_col=0).to_numpy()
            _, labels = prepared_array_paths(prepared_task_dir(root / "data/prepared", "salt"), "test")
            assert confusion.sum() == np.load(labels).size  # pooled over the unmirrored test sections
        first, second = (seed.result for seed in outcome.seeds)
        assert first.miou != second.miou or first.best_val_miou != second.best_val_miou, "seeds must differ"


def test_every_seed_run_logs_its_artifacts_and_its_learning_curves(trained: tuple) -> None:
    _, _, _, store = trained
    assert len(store.runs) == len(MODELS) * len(SEEDS)
    for run in store.runs.values():
        assert [path.name for path in run.artifacts] == ["artifacts", "history.png"]


def test_the_summary_is_the_mean_and_std_over_seeds(trained: tuple) -> None:
    _, root, outcomes, _ = trained
    for model, outcome in outcomes.items():
        summary = json.loads((root / "runs" / "salt" / model / "metrics.json").read_text())
        scores = [seed.result.miou for seed in outcome.seeds]
        assert summary["seeds"] == list(SEEDS)
        assert summary["miou"] == pytest.approx(np.mean(scores))
        assert summary["miou_std"] == pytest.approx(np.std(scores, ddof=1))
        assert [row["seed"] for row in summary["per_seed"]] == list(SEEDS)
        history = pd.read_csv(root / "runs" / "salt" / model / "history.csv")
        assert list(history["seed"]) == list(SEEDS)


def test_each_seed_is_its_own_run_and_version(trained: tuple) -> None:
    _, _, outcomes, store = trained
    assert len(store.runs) == len(MODELS) * len(SEEDS) == len(store.versions)
    run = store.runs[outcomes["linear-lora"].seeds[0].result.training_id]
    assert run.status == "FINISHED"
    assert run.params["network"] == "linear" and run.params["finetune"] == "lora"
    assert run.params["weights"] == "none" and run.params["fit.seed"] == SEEDS[0]
    assert [step for step, metrics in run.metrics if "val_miou" in metrics] == [1]
    final = {k: v for step, metrics in run.metrics if step is None for k, v in metrics.items()}
    assert final["test_miou"] == pytest.approx(outcomes["linear-lora"].seeds[0].result.miou)
    assert {"per_class", "confusion", "data_card"} <= set(run.tables)
    assert not any("lora" in name for name, _ in run.models["model"].named_parameters())


def test_an_identical_finished_training_is_reused_not_repeated(trained: tuple) -> None:
    settings, root, outcomes, store = trained
    runs_before, versions_before = dict(store.runs), dict(store.versions)
    again = run_training_stage(settings, root, "salt", "unet", store, launcher="test")
    assert all(seed.reused for seed in again.seeds)
    assert store.runs == runs_before and store.versions == versions_before
    assert again.summary == outcomes["unet"].summary


def test_a_training_keeps_its_identity_when_only_how_it_runs_changes(trained: tuple) -> None:
    settings, root, _, _ = trained

    def folder(**train: object):
        changed = settings.model_copy(update={"train": settings.train.model_copy(update=train)})
        return checkpoint_folder(changed, root, "salt", "unet", SEEDS[0])

    same = folder()
    assert folder(device="cpu", num_workers=2, micro_batch_size=1, lock_wait_seconds=30,
                  seeds=[SEEDS[0]]) == same
    assert folder(lr=settings.train.lr * 2) != same and folder(epochs=settings.train.epochs + 1) != same


def test_majority_baseline_is_the_majority_class_iou(trained: tuple) -> None:
    settings, root, _, _ = trained
    stats = json.loads((root / "data/prepared/salt/stats.json").read_text())
    majority = int(np.argmax(stats["class_pixel_counts"]))
    _, labels_path = prepared_array_paths(prepared_task_dir(root / "data/prepared", "salt"), "test")
    share = float((np.load(labels_path) == majority).mean())
    # Majority class: IoU = its share of the pixels; the other class is never predicted: IoU 0.
    paths = ProjectPaths.of(settings, root)
    assert majority_baseline_miou(paths, settings.task("salt")) == pytest.approx(share / 2)


def test_report_tables_hold_each_run_with_its_spread(trained: tuple) -> None:
    settings, root, outcomes, _ = trained
    report = build_report(settings, root)
    assert report.missing == []
    assert report.tables["miou"].loc["Unet", "Seismic Geobody"] == pytest.approx(outcomes["unet"].miou)
    std = outcomes["linear-lora"].summary["mpa_std"]
    assert report.tables["mpa_std"].loc["DINOv2-LINEAR", "Seismic Geobody"] == pytest.approx(std)
    markdown = (root / "reports" / "benchmark.md").read_text()
    pooled, paper_protocol = markdown.split("## mIoU, the paper's protocol")
    summary = outcomes["unet"].summary
    assert f"{outcomes['unet'].miou:.4f} ± {summary['miou_std']:.4f}" in pooled
    assert "(paper" not in pooled  # the paper's numbers stand beside scores of its protocol only
    authors = f"{summary['authors_miou']:.4f} ± {summary['authors_miou_std']:.4f}"
    assert f"{authors} (paper 0.8636)" in paper_protocol


def test_report_without_runs_names_the_folder(tmp_path: Path) -> None:
    settings = load_tiny_settings(tmp_path, ["salt"], MODELS)
    with pytest.raises(FileNotFoundError, match="runs"):
        build_report(settings, tmp_path)
