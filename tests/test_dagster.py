"""The whole asset graph materialized in-process on a tiny demo (2 tasks x 2 models), as the main job does,
with a temporary Dagster instance and MLflow store; then the registered models are loaded by alias."""

from __future__ import annotations

import json
import shutil

import dagster as dg
import numpy as np
import pytest
import torch
from tiny_benchmark import REPO, TINY_SHAPE, write_tiny_params

from assets.checks import BEATS_BASELINE
from pipelines.orchestration.benchmark_runner import benchmark_plan, run_benchmark
from pipelines.orchestration.definitions import build_definitions
from pipelines.tracking.store import BenchmarkStore, registered_model_name
from training.settings import Project
from training.tasks import get_task

TASKS = ("salt", "das")
MODELS = ("unet", "linear-lora")


@pytest.fixture(scope="module")
def materialized(tmp_path_factory: pytest.TempPathFactory):
    """The main job run over the tiny benchmark; yields (root, params, instance, outcome)."""
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("dagster")
    write_tiny_params(root, TASKS, MODELS)
    project = Project.load(root)
    home = root / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / ".dagster_home" / "dagster.yaml", home)  # the committed instance config, pool included
    with dg.DagsterInstance.from_config(str(home)) as instance:
        outcome = run_benchmark(build_definitions(project), instance, project, show_progress=False)
        yield root, project.settings, instance, outcome


def _latest(instance: dg.DagsterInstance, asset: str, partition: str | None = None) -> dict:
    event = instance.get_latest_materialization_event(dg.AssetKey(asset))
    if partition is not None:
        wanted = dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset), asset_partitions=[partition])
        records = instance.fetch_materializations(wanted, limit=1).records
        event = records[0].event_log_entry
    return event.asset_materialization.metadata


def test_every_partition_is_materialized_and_checked(materialized) -> None:
    root, params, instance, outcome = materialized
    assert len(outcome.run_ids) == len(benchmark_plan(params)) == 4  # one run per stage, all partitions
    # One epoch on 8 samples need not beat the baseline; the check must say which did not, as an error for
    # the UNet and as a warning for the ViT, whose encoder is randomly initialised here (weights: none).
    below_baseline: dict[str, list[str]] = {"unet": [], "linear-lora": []}
    for task in TASKS:
        for model in MODELS:
            metrics = json.loads((root / f"runs/{task}/{model}/metrics.json").read_text())
            if metrics["miou"] <= metrics["majority_baseline_miou"]:
                below_baseline[model].append(f"trained_model[{model}|{task}]: {BEATS_BASELINE}")
    assert outcome.failed_checks == below_baseline["unet"]
    assert outcome.warned_checks == below_baseline["linear-lora"]
    trained = instance.get_materialized_partitions(dg.AssetKey("trained_model"))
    assert trained == {f"{model}|{task}" for task in TASKS for model in MODELS}
    assert instance.get_materialized_partitions(dg.AssetKey("prepared_data")) == set(TASKS)


def test_metadata_shows_card_metrics_and_run_link(materialized) -> None:
    root, _, instance, _ = materialized
    card = _latest(instance, "prepared_data", "das")["data_card"].value
    assert "class_1_fraction" in card and "| train" in card
    trained = _latest(instance, "trained_model", "unet|salt")
    metrics = json.loads((root / "runs/salt/unet/metrics.json").read_text())
    assert trained["miou"].value == pytest.approx(round(metrics["miou"], 4))
    assert trained["mlflow_run"].value.startswith("http://127.0.0.1:5000/#/experiments/")
    assert trained["registered_model"].value == "geofm-salt-unet"


def test_report_holds_our_numbers_beside_the_papers(materialized) -> None:
    root, _, instance, _ = materialized
    tables = _latest(instance, "benchmark_report")["tables"].value
    paper_protocol = tables.split("## mIoU, the paper's protocol")[1]
    for task in TASKS:
        for model, row in (("unet", "Unet"), ("linear-lora", "DINOv2-LINEAR")):
            miou = json.loads((root / f"runs/{task}/{model}/metrics.json").read_text())["authors_miou"]
            line = next(line for line in paper_protocol.splitlines() if line.startswith(f"| {row} "))
            assert f"{miou:.4f} (paper" in line, (task, model, line)
    assert "Seismic Facies" in tables and "— (paper 0.5490)" in paper_protocol
    assert "Beside the paper:" in paper_protocol  # what separates the demo from the authors' computation


def test_registered_models_load_by_alias_and_predict_a_raw_section(materialized) -> None:
    root, settings, _, _ = materialized
    store = BenchmarkStore.for_project(settings.mlflow, root)
    assert store.tracking_uri == f"sqlite:///{root.resolve()}/mlflow/mlflow.db"
    task = get_task("das").with_shape(tuple(TINY_SHAPE))
    section = np.fromfile(root / "data/raw/das/valid/image/0.dat", dtype="<f4").reshape(task.shape)
    for model in MODELS:
        loaded = store.load_model(registered_model_name("das", model))
        with torch.inference_mode():
            logits = loaded(torch.from_numpy(section)[None, None])
        assert logits.shape == (1, task.num_classes, *task.shape)
        assert torch.isfinite(logits).all()


def test_the_baseline_check_judges_the_test_miou_the_stage_wrote(materialized) -> None:
    """The asset hands the check each score under its own name: a swap of test and validation mIoU fails."""
    root, _, instance, _ = materialized
    key = dg.AssetCheckKey(dg.AssetKey("trained_model"), BEATS_BASELINE)
    judged = {}
    for record in instance.event_log_storage.get_asset_check_execution_history(key, limit=100):
        evaluation = record.event.dagster_event.event_specific_data
        judged[(evaluation.metadata["task"].value, evaluation.metadata["model"].value)] = evaluation.metadata
    assert set(judged) == {(task, model) for task in TASKS for model in MODELS}
    for (task, model), metadata in judged.items():
        metrics = json.loads((root / f"runs/{task}/{model}/metrics.json").read_text())
        assert metadata["test_miou"].value == round(metrics["miou"], 4)
        assert metadata["val_miou"].value == round(metrics["best_val_miou"], 4)
