"""`torchrun --nproc-per-node 2 -m pipelines train ...` on the CPU (gloo): the two processes train one
model together and leave exactly one MLflow run, one model version and one set of outputs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from mlflow import MlflowClient
from tiny_benchmark import REPO, load_tiny_settings

from pipelines.tracking.store import BenchmarkStore
from training.stages.prepare import prepare
from training.stages.raw import materialize_raw


def test_torchrun_trains_one_model_with_two_processes(tmp_path: Path) -> None:
    settings = load_tiny_settings(tmp_path, ["salt"], ["unet"])
    materialize_raw(settings, tmp_path)
    prepare(settings, tmp_path, "salt")
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
               "-m", "pipelines", "--root", str(tmp_path), "train", "--task", "salt", "--model", "unet"]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)})
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("salt/unet seed") == 1  # the main process alone reports

    metrics = json.loads((tmp_path / "runs/salt/unet/metrics.json").read_text())
    assert 0 <= metrics["miou"] <= 1
    store = BenchmarkStore.for_project(settings.mlflow, tmp_path)
    client = MlflowClient(tracking_uri=store.tracking_uri, registry_uri=store.tracking_uri)
    runs = [run for run in client.search_runs([store.experiment_id()])
            if run.data.tags.get("geofm.task") == "salt"]
    assert len(runs) == 1 and runs[0].info.status == "FINISHED"
    assert [str(v.version) for v in client.search_model_versions("name = 'geofm-salt-unet'")] == ["1"]
    assert not list((tmp_path / "checkpoints").rglob("*.pt"))
