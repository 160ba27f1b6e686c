"""The MLflow tracker and registry against a real sqlite store in a temporary folder (one per module)."""

from __future__ import annotations

import io
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
import torch
from mlflow import MlflowClient
from tiny_models import TinySegmenter

from pipelines.tracking.finished_lookup import TRAINING_TAG, FinishedTraining, finished_training
from pipelines.tracking.mlflow_io import flatten_params
from pipelines.tracking.store import BENCHMARK_TAG, BenchmarkStore, registered_model_name
from training.report import benchmark_tables
from training.settings import MlflowSettings
from training.tracking import ModelRef

REPO = Path(__file__).resolve().parents[1]
PARAMS = {"tasks": ["salt"], "train": {"lr": 1e-3, "betas": [0.7, 0.999]}, "data": {"shapes": {}}}


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> BenchmarkStore:
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("store")
    return BenchmarkStore.for_project(MlflowSettings(experiment="geofm-test"), root)


@pytest.fixture(scope="module")
def client(store: BenchmarkStore) -> MlflowClient:
    return MlflowClient(tracking_uri=store.tracking_uri, registry_uri=store.tracking_uri)


@pytest.fixture(scope="module")
def parent_run_id(store: BenchmarkStore) -> str:
    return store.parent_run("bench-1", PARAMS)


def _version(name: str, version: str) -> ModelRef:
    return ModelRef(uri=f"models:/{name}/{version}", registered_name=name, version=version)


def _artifact_paths(client: MlflowClient, run_id: str, folder: str) -> set[str]:
    return {item.path for item in client.list_artifacts(run_id, folder)}


def _artifact_text(client: MlflowClient, run_id: str, path: str, tmp_path: Path) -> str:
    return Path(client.download_artifacts(run_id, path, str(tmp_path))).read_text()


def _logged_table(client: MlflowClient, run_id: str, path: str, tmp_path: Path) -> pd.DataFrame:
    """A table logged with `log_table`, read back the way MLflow wrote it (pandas split orient)."""
    return pd.read_json(io.StringIO(_artifact_text(client, run_id, path, tmp_path)), orient="split")


def test_store_makes_the_sqlite_path_and_artifact_root_absolute(tmp_path: Path) -> None:
    store = BenchmarkStore.for_project(MlflowSettings(ui_url="http://mlflow.example:8080"), tmp_path)
    assert store.tracking_uri == f"sqlite:///{tmp_path.resolve()}/mlflow/mlflow.db"
    assert store.artifact_root == (tmp_path.resolve() / "mlflow" / "artifacts").as_uri()
    assert (store.best_alias, store.ui_url) == ("best", "http://mlflow.example:8080")
    served = MlflowSettings(tracking_uri="http://127.0.0.1:5000", artifact_root="s3://bucket/geofm")
    assert BenchmarkStore.for_project(served, tmp_path).tracking_uri == "http://127.0.0.1:5000"
    assert BenchmarkStore.for_project(served, tmp_path).artifact_root == "s3://bucket/geofm"


def test_flatten_params_dots_nested_keys_and_stringifies_lists() -> None:
    assert flatten_params(PARAMS) == {
        "tasks": '["salt"]', "train.lr": "0.001", "train.betas": "[0.7, 0.999]", "data.shapes": "{}",
    }
    assert registered_model_name("salt", "mla-lora") == "geofm-salt-mla-lora"


def test_parent_run_is_found_again_from_another_process(
    store: BenchmarkStore, client: MlflowClient, parent_run_id: str
) -> None:
    script = (
        "import sys; from pipelines.tracking.store import BenchmarkStore; "
        "s = BenchmarkStore(sys.argv[1], sys.argv[2], sys.argv[3]); "
        "print(s.parent_run('bench-1', {'other': 1}))"
    )
    found = subprocess.run(
        [sys.executable, "-c", script, store.tracking_uri, store.artifact_root, store.experiment],
        cwd=REPO, capture_output=True, text=True, check=True,
    ).stdout.strip().splitlines()[-1]
    assert found == parent_run_id
    assert store.parent_run("bench-2", PARAMS) != parent_run_id
    parent = client.get_run(parent_run_id)
    assert parent.data.tags[BENCHMARK_TAG] == "bench-1"
    assert parent.data.params == flatten_params(PARAMS)
    experiment = client.get_experiment(parent.info.experiment_id)
    assert experiment.artifact_location == store.artifact_root


def test_child_run_nests_and_logs_params_metrics_and_tables(
    store: BenchmarkStore, client: MlflowClient, parent_run_id: str, tmp_path: Path
) -> None:
    table = pd.DataFrame({"class": [0, 1], "iou": [0.25, 0.75]})
    with store.child_run(parent_run_id, "salt-unet", tags={"geofm.task": "salt"}) as tracker:
        tracker.log_params({"model": {"network": "unet", "lora_rank": 8}, "betas": (0.7, 0.999)})
        for epoch in range(3):
            tracker.on_epoch_end(epoch, {"train_loss": 1.0 / (epoch + 1), "val_miou": 0.1 * epoch})
        tracker.log_metrics({"test_miou": 0.42})
        tracker.log_table(table, "per_class")
    run = client.get_run(tracker.run_id)
    assert run.info.status == "FINISHED"
    assert run.data.tags["mlflow.parentRunId"] == parent_run_id
    assert run.data.tags["geofm.task"] == "salt"
    assert run.data.params == {"model.network": "unet", "model.lora_rank": "8", "betas": "[0.7, 0.999]"}
    history = client.get_metric_history(tracker.run_id, "train_loss")
    assert [(m.step, m.value) for m in history] == [(0, 1.0), (1, 0.5), (2, pytest.approx(1 / 3))]
    assert run.data.metrics["test_miou"] == 0.42
    run_id = tracker.run_id
    assert _artifact_paths(client, run_id, "tables") == {"tables/per_class.csv", "tables/per_class.json"}
    pd.testing.assert_frame_equal(_logged_table(client, run_id, "tables/per_class.json", tmp_path), table)
    assert _artifact_text(client, run_id, "tables/per_class.csv", tmp_path).splitlines()[1] == "0,0.25"
    assert tracker.run_url == f"http://127.0.0.1:5000/#/experiments/{run.info.experiment_id}/runs/{run_id}?workflowType=machine_learning"


def test_a_logged_folder_lands_at_the_artifact_root_not_under_its_own_name(
    store: BenchmarkStore, client: MlflowClient, parent_run_id: str, tmp_path: Path
) -> None:
    folder = tmp_path / "artifacts"
    folder.mkdir()
    (folder / "prediction.png").write_bytes(b"png")
    (folder / "per_class.csv").write_text("class,iou\n")
    (tmp_path / "history.png").write_bytes(b"curves")
    with store.child_run(parent_run_id, "salt-unet-artifacts") as tracker:
        tracker.log_artifact(folder)
        tracker.log_artifact(tmp_path / "history.png")
    names = {entry.path for entry in client.list_artifacts(tracker.run_id)}
    assert names == {"prediction.png", "per_class.csv", "history.png"}


@pytest.mark.parametrize(("rates", "logged"), [
    ([1e-4, 1e-4, 1e-4], []),
    ([0.0, 5e-5, 1e-4, 1e-4], [(0, 0.0), (1, 5e-5), (2, 1e-4), (3, 1e-4)]),
    ([1e-4, 1e-4, 5e-5], [(0, 1e-4), (1, 1e-4), (2, 5e-5)]),
])
def test_the_learning_rate_is_charted_only_when_it_changes(
    store: BenchmarkStore, client: MlflowClient, parent_run_id: str, rates: list[float],
    logged: list[tuple[int, float]]
) -> None:
    with store.child_run(parent_run_id, "salt-unet-lr") as tracker:
        for epoch, rate in enumerate(rates):
            tracker.on_epoch_end(epoch, {"train_loss": 1.0, "lr": rate})
    assert [(m.step, m.value) for m in client.get_metric_history(tracker.run_id, "lr")] == logged
    assert len(client.get_metric_history(tracker.run_id, "train_loss")) == len(rates)


def test_child_run_ends_failed_when_the_block_raises(
    store: BenchmarkStore, client: MlflowClient, parent_run_id: str
) -> None:
    with pytest.raises(RuntimeError, match="loss is nan"):
        with store.child_run(parent_run_id, "salt-pup") as tracker:
            raise RuntimeError("loss is nan")
    assert client.get_run(tracker.run_id).info.status == "FAILED"
    assert mlflow.active_run() is None


@pytest.fixture(scope="module")
def registered(store: BenchmarkStore, parent_run_id: str) -> dict[str, object]:
    """Three versions of one registered model, logged from three child runs (seeds 0, 1, 2)."""
    name = registered_model_name("salt", "tiny-full")
    models, refs = [], []
    for seed in range(3):
        torch.manual_seed(seed)
        model = TinySegmenter(num_classes=2, input_mean=0.5, input_std=2.0, training_shape=(16, 16))
        with store.child_run(parent_run_id, f"salt-tiny-{seed}", registered_name=name) as tracker:
            refs.append(tracker.log_model(model, "model"))
        models.append(model)
    return {"name": name, "models": models, "refs": refs}


def test_log_model_registers_a_new_version_each_time(registered: dict[str, object]) -> None:
    refs = registered["refs"]
    assert [ref.version for ref in refs] == ["1", "2", "3"]
    assert {ref.registered_name for ref in refs} == {"geofm-salt-tiny-full"}
    assert refs[1].uri == "models:/geofm-salt-tiny-full/2"


def test_promote_moves_the_alias_only_on_improvement(
    store: BenchmarkStore, client: MlflowClient, registered: dict[str, object]
) -> None:
    name = registered["name"]
    assert store.promote(_version(name, "1"), 0.50) is True
    assert store.promote(_version(name, "2"), 0.40) is False
    assert str(client.get_model_version_by_alias(name, "best").version) == "1"
    assert store.promote(_version(name, "3"), 0.70) is True
    assert str(client.get_model_version_by_alias(name, "best").version) == "3"
    assert store.promote(_version(name, "3"), 0.70) is False  # already the best: nothing was promoted
    assert client.get_model_version(name, "2").tags["geofm.val_miou"] == "0.4"
    with pytest.raises(ValueError, match="not a number"):
        store.promote(_version(name, "2"), float("nan"))


def test_the_quick_lookup_reads_a_finished_trainings_version_and_standing_without_mlflow(
    store: BenchmarkStore, client: MlflowClient, registered: dict[str, object]
) -> None:
    name = registered["name"]
    store.promote(_version(name, "3"), 0.70)
    for version in ("2", "3"):
        client.set_tag(client.get_model_version(name, version).run_id, TRAINING_TAG, f"training-{version}")

    def lookup(training_id: str, val_miou: float, uri: str = store.tracking_uri) -> FinishedTraining | None:
        return finished_training(uri, store.experiment, training_id, name, store.best_alias, val_miou)

    assert lookup("training-3", 0.70) == FinishedTraining(
        client.get_model_version(name, "3").run_id, store.experiment_id(), "3", best=True)
    assert lookup("training-2", 0.40).best is False  # version 3 (0.70) keeps the alias
    assert lookup("training-2", 0.90) is None  # publishing would move the alias: the full path does that
    assert lookup("training-1", 0.50) is None  # no run carries that identity
    assert lookup("training-3", 0.70, uri="http://127.0.0.1:5000") is None  # only a local sqlite file


def test_model_loaded_by_alias_predicts_on_a_section_of_another_size(
    store: BenchmarkStore, registered: dict[str, object]
) -> None:
    name = registered["name"]
    store.promote(_version(name, "3"), 0.70)
    loaded = store.load_model(name)
    section = torch.randn(2, 1, 40, 24)
    with torch.inference_mode():
        expected = registered["models"][2](section)
        assert torch.allclose(loaded(section), expected)
        assert not torch.allclose(registered["models"][0](section), expected)
    served = mlflow.pyfunc.load_model(f"models:/{name}@best")  # the tiled survey flavour: classes out
    single = section[0, 0].numpy()
    classes = served.predict(single)
    assert classes.shape == single.shape and classes.dtype == np.uint8


def test_benchmark_tables_land_on_the_parent_run_once(
    store: BenchmarkStore, client: MlflowClient, tmp_path: Path
) -> None:
    parent = store.parent_run("bench-report", PARAMS)
    results = [{"task": "salt", "network": "mla", "mode": "lora", "miou": 0.61, "mpa": 0.72,
                "authors_miou": 0.63, "authors_mpa": 0.74}]
    tables = benchmark_tables(results)
    store.log_tables(parent, tables)
    store.log_tables(parent, tables)
    assert _artifact_paths(client, parent, "report") == {
        f"report/{key}.{suffix}"
        for key in ("miou", "mpa", "authors_miou", "authors_mpa", "miou_std", "mpa_std", "authors_miou_std",
                    "authors_mpa_std") for suffix in ("csv", "json")
    } | {"report/benchmark.md"}
    logged = _logged_table(client, parent, "report/miou.json", tmp_path)
    assert list(logged["Network"]) == list(tables["miou"].index)
    assert logged.set_index("Network").loc["DINOv2-MLA", "Seismic Geobody"] == 0.61
    markdown = _artifact_text(client, parent, "report/benchmark.md", tmp_path)
    pooled, paper_protocol = markdown.split("## mIoU, the paper's protocol")
    assert "| 0.6100 " in pooled and "| 0.7200 " in pooled and "(paper" not in pooled
    miou_at = paper_protocol.index("0.6300 (paper 0.8969)")
    assert miou_at < paper_protocol.index("## mPA") < paper_protocol.index("0.7400 (paper 0.9383)")
    run = client.get_run(parent)
    assert run.info.status == "FINISHED"
    assert run.data.metrics["miou/DINOv2-MLA/Seismic Geobody"] == 0.61
    with store.child_run(parent, "salt-mla-lora"):
        pass
    store.log_tables(parent, tables)
    trained_until = client.get_run(parent).info.end_time
    time.sleep(0.05)
    store.log_tables(parent, tables)  # a rerun's report over the same trainings
    assert client.get_run(parent).info.end_time == trained_until == max(
        child.info.end_time for child in client.search_runs(
            [run.info.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{parent}'"))
    assert run.data.metrics["mpa/DINOv2-MLA/mean"] == 0.72
    assert run.data.metrics["authors_miou/DINOv2-MLA/Seismic Geobody"] == 0.63
    experiment = client.get_experiment(run.info.experiment_id)
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"


def test_geofm_mlflow_app_serves_the_page_defaulting_to_the_model_training_view() -> None:
    from pipelines.tracking.mlflow_ui import DEFAULT_VIEW_SCRIPT, WORKFLOW_STORAGE_KEY, flask_app

    page = flask_app.test_client().get("/").get_data(as_text=True)
    assert page.index(DEFAULT_VIEW_SCRIPT) < page.index("<script", page.index(DEFAULT_VIEW_SCRIPT) + 1)
    assert f'localStorage.setItem("{WORKFLOW_STORAGE_KEY}","\\"machine_learning\\"")' in page
    assert 'getItem("mlflow.workflowType_v1")===null' in page
