"""Strict reproducibility: one tiny training (`geofm train`, its own process) on two emulated machines gives
the same bits in strict mode and different ones in fast mode; the torch-side flags, their restoration and
the warning when torch loaded before the kernels were pinned."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch
import yaml
from mlflow import MlflowClient
from tiny_benchmark import REPO, load_tiny_settings

from pipelines.kernel_pinning import pin_kernels
from pipelines.tracking.store import BenchmarkStore
from training.reproducibility import (
    STRICT_ENVIRONMENT,
    STRICT_THREADS,
    UnpinnedKernelsWarning,
    kernel_params,
    strict_kernels,
)
from training.stages.prepare import prepare
from training.stages.raw import materialize_raw

TASK, MODEL = "salt", "linear-lora"
MACHINES = {
    # Another x86-64 as ATen, oneDNN and OpenMP see it: generic kernels, SSE4.1 convolutions, one core.
    "other": {"ATEN_CPU_CAPABILITY": "default", "ONEDNN_MAX_CPU_ISA": "SSE41", "OMP_NUM_THREADS": "1"},
    # This machine as it is: its own best kernels (AVX-512 where it has them), two threads.
    "this": {"OMP_NUM_THREADS": "2"},
}
HAS_AVX2 = "avx2" in Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").is_file() else False


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny project with its data raw and prepared (one epoch of LINEAR-LoRA on 28x28 salt sections)."""
    root = tmp_path_factory.mktemp("prepared")
    settings = load_tiny_settings(root, [TASK], [MODEL])
    materialize_raw(settings, root)
    prepare(settings, root, TASK)
    return root


def _train_on_machines(prepared: Path, workspace: Path, mode: str) -> dict[str, Path]:
    """`geofm train` in a copy of the project per emulated machine, both at once; their project roots."""
    roots, processes = {}, {}
    for machine, variables in MACHINES.items():
        root = roots[machine] = workspace / machine
        shutil.copytree(prepared, root)
        params = yaml.safe_load((root / "params.yaml").read_text())
        params["profiles"]["demo"]["train"]["reproducibility"] = mode
        (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
        environment = {name: value for name, value in os.environ.items() if name not in STRICT_ENVIRONMENT}
        processes[machine] = subprocess.Popen(
            [sys.executable, "-m", "pipelines", "--root", str(root), "train", "--task", TASK,
             "--model", MODEL],
            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            env={**environment, **variables, "PYTHONPATH": str(REPO)})
    for machine, process in processes.items():
        output, _ = process.communicate(timeout=600)
        assert process.returncode == 0, f"{machine}: {output}"
    return roots


def _outcome(root: Path) -> tuple[dict[str, torch.Tensor], str, dict[str, object]]:
    """The trained weights (the model logged to MLflow), history.csv and metrics.json (less timings)."""
    (weights_file,) = (root / "mlflow").rglob("data/model.pth")
    weights = torch.load(weights_file, weights_only=False).state_dict()
    seed_dir = root / "runs" / TASK / MODEL / "seeds" / "1234"
    metrics = json.loads((seed_dir / "metrics.json").read_text())
    metrics.pop("step_seconds", None)
    return weights, (seed_dir / "history.csv").read_text(), metrics


def _run_params(root: Path) -> dict[str, str]:
    settings = load_tiny_settings(root, [TASK], [MODEL])
    store = BenchmarkStore.for_project(settings.mlflow, root)
    client = MlflowClient(tracking_uri=store.tracking_uri)
    (run,) = [run for run in client.search_runs([store.experiment_id()])
              if run.data.tags.get("geofm.task") == TASK]
    return run.data.params


def _identical(first: dict[str, torch.Tensor], second: dict[str, torch.Tensor]) -> bool:
    return first.keys() == second.keys() and all(torch.equal(first[k], second[k]) for k in first)


@pytest.mark.skipif(not HAS_AVX2, reason="strict mode pins the AVX2 kernels: this CPU has no AVX2")
def test_strict_mode_trains_the_same_bits_on_two_machines(prepared: Path, tmp_path: Path) -> None:
    roots = _train_on_machines(prepared, tmp_path, "strict")
    (weights, history, metrics), (other_weights, other_history, other_metrics) = map(_outcome, roots.values())
    assert _identical(weights, other_weights)
    assert history == other_history and metrics == other_metrics
    params = _run_params(roots["other"])
    assert params["reproducibility"] == "strict" and params["kernels.pinned"] == "True"
    assert params["kernels.cpu_capability"] == "AVX2" and params["env.ONEDNN_MAX_CPU_ISA"] == "AVX2"
    assert params["kernels.threads"] == str(STRICT_THREADS) and params["env.MKL_CBWR"] == "AVX2,STRICT"


def test_without_strict_mode_the_same_two_machines_differ(prepared: Path, tmp_path: Path) -> None:
    roots = _train_on_machines(prepared, tmp_path, "fast")
    (weights, history, _), (other_weights, other_history, _) = map(_outcome, roots.values())
    assert not _identical(weights, other_weights) and history != other_history
    assert _run_params(roots["other"])["kernels.cpu_capability"] == "DEFAULT"


def test_strict_kernels_set_the_flags_of_a_training_then_put_them_back(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX2")
    for name, value in STRICT_ENVIRONMENT.items():
        monkeypatch.setenv(name, value)
    before = (torch.get_num_threads(), torch.are_deterministic_algorithms_enabled(),
              torch.backends.cudnn.benchmark)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # pinned: no warning
        with strict_kernels("strict"):
            params = kernel_params("strict")
            assert torch.backends.cudnn.deterministic and not torch.backends.cudnn.benchmark
    assert params["kernels.pinned"] and params["kernels.deterministic"]
    assert not params["kernels.cudnn_benchmark"]
    assert params["kernels.threads"] == STRICT_THREADS
    assert params["env.CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
    assert (torch.get_num_threads(), torch.are_deterministic_algorithms_enabled(),
            torch.backends.cudnn.benchmark) == before
    with strict_kernels("fast"):
        assert kernel_params("fast")["kernels.onednn"] == torch.backends.mkldnn.enabled


def test_a_process_whose_torch_loaded_unpinned_is_warned(monkeypatch: pytest.MonkeyPatch) -> None:
    """In-process (torch loaded already, as in this test process): nothing can pin the kernels any more."""
    monkeypatch.delenv("MKL_CBWR", raising=False)
    with pytest.warns(UnpinnedKernelsWarning, match="MKL_CBWR.* unpinned: start the process through `geofm`"):
        pin_kernels("strict")
    assert "MKL_CBWR" not in os.environ
    with pytest.warns(UnpinnedKernelsWarning), strict_kernels("strict"):
        assert not kernel_params("strict")["kernels.pinned"]
