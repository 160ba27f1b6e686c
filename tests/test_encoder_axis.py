"""The encoder axis through both front doors, as the demo runs them: a two-encoder scan of one tiny task
(`encoder_scan.encoders: [DINOv3 ViT-S/16]` beside model.encoder, DINOv2 ViT-S/14; random weights) by
Dagster's main job, then `dvc repro` in the same project, which reuses every training; the scale table in
the report, the Dagster metadata and MLflow."""

from __future__ import annotations

import shutil
from pathlib import Path

import dagster as dg
import pytest
import torch
from mlflow import MlflowClient
from tiny_benchmark import REPO, copy_project_files, run_in_project, write_tiny_params

from pipelines.orchestration.benchmark_runner import run_benchmark
from pipelines.orchestration.definitions import build_definitions
from pipelines.tracking.store import BenchmarkStore
from training.settings import Project

TASK, MODEL, DINOV3 = "das", "linear-lora", "vit_small_patch16_dinov3"
SCAN = f"{MODEL}.{DINOV3}"
COPIED = ("training", "assets", "pipelines", "dvc.yaml", "pyproject.toml")
pytestmark = pytest.mark.slow  # two trainings, five Dagster runs, two `dvc repro` (about two minutes)



@pytest.fixture(scope="module")
def scanned(tmp_path_factory: pytest.TempPathFactory):
    """The project after Dagster's main job: (project, Dagster metadata of the report, MLflow runs)."""
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("axis")
    copy_project_files(root, COPIED)
    write_tiny_params(root, [TASK], [MODEL], encoders=[DINOV3])
    project = Project.load(root)
    home = root / ".dagster_home"
    home.mkdir()
    shutil.copy(REPO / ".dagster_home" / "dagster.yaml", home)
    with dg.DagsterInstance.from_config(str(home)) as instance:
        outcome = run_benchmark(build_definitions(project), instance, project, show_progress=False)
        trained = instance.get_materialized_partitions(dg.AssetKey("trained_model"))
        report = instance.get_latest_materialization_event(dg.AssetKey("benchmark_report"))
        metadata = {key: value.value for key, value in report.asset_materialization.metadata.items()}
    assert len(outcome.run_ids) == 4  # one run per stage: raw, prepare, both trainings, report
    return project, trained, metadata


def _mlflow(project: Project) -> tuple[MlflowClient, BenchmarkStore]:
    store = BenchmarkStore.for_project(project.settings.mlflow, project.root)
    return MlflowClient(store.tracking_uri), store


def _training_runs(project: Project) -> list[str]:
    client, store = _mlflow(project)
    experiment = client.get_experiment_by_name(store.experiment)
    return sorted(run.info.run_id for run in client.search_runs([experiment.experiment_id])
                  if "model" in run.data.params)


def test_dagster_trains_each_encoder_in_its_partition_and_registers_it(scanned) -> None:
    project, trained, _ = scanned
    assert project.settings.benchmark_models == (MODEL, SCAN)
    assert trained == {f"{MODEL}|{TASK}", f"{SCAN}|{TASK}"}
    client, _ = _mlflow(project)
    encoders = {client.get_run(run_id).data.params["encoder"] for run_id in _training_runs(project)}
    assert encoders == {"vit_small_patch14_dinov2", DINOV3}
    assert client.get_registered_model(f"geofm-{TASK}-{SCAN}").aliases


def test_the_report_has_the_scale_table_in_dagster_and_mlflow(scanned) -> None:
    project, _, metadata = scanned
    assert metadata["scanned_encoders"] == ["DINOv2 ViT-S/14", "DINOv3 ViT-S/16"]
    assert metadata["encoder"].startswith("ViT rows: encoder DINOv2 ViT-S/14")
    tables = metadata["tables"]
    assert "## Encoder scale" in tables and "random initialisation" in tables
    assert "| DINOv3 ViT-S/16 |" in tables.split("## Encoder scale")[1]
    client, store = _mlflow(project)
    parent = store.benchmark_run(project.settings)
    logged = {item.path for item in client.list_artifacts(parent, "report")}
    assert {"report/scale_das.csv", "report/benchmark.md"} <= logged
    scale = Path(client.download_artifacts(parent, "report/scale_das.csv", str(project.root))).read_text()
    assert scale.splitlines()[0].startswith("Encoder,encoder,parameters,trainable (lora),linear-lora mIoU")


def test_dvc_repro_runs_the_encoder_stage_reusing_the_dagster_trainings(scanned) -> None:
    project, _, _ = scanned
    root, runs = project.root, _training_runs(project)
    run_in_project(["git", "init", "-q"], root)
    run_in_project(["dvc", "init", "-q"], root)
    repro = run_in_project(["dvc", "repro"], root)
    for stage in (f"train@{TASK}-{MODEL}", f"train-encoder@{TASK}-{MODEL}-{DINOV3}", "report"):
        assert f"Running stage '{stage}'" in repro
    assert repro.count("reused the identical finished training") == 2
    assert _training_runs(project) == runs  # no second MLflow run for either encoder
    assert "## Encoder scale" in (root / "reports" / "benchmark.md").read_text()
    assert "Running stage" not in run_in_project(["dvc", "repro"], root)
