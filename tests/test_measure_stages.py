"""scripts/measure_stages.py without a benchmark: the order of the trainings, the grid Dagster reruns, the
params edits of the copy, and the peak memory of a measured command."""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import sys
from pathlib import Path

import yaml

from training.settings import Project, load_settings

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("measure_stages", ROOT / "scripts" / "measure_stages.py")
measure_stages = importlib.util.module_from_spec(_spec)
sys.modules["measure_stages"] = measure_stages  # its dataclasses look their module up
_spec.loader.exec_module(measure_stages)

TASKS = ["seam", "salt", "crater", "das", "fault"]
MODELS = ["unet", "linear-lora", "pup-lora", "mla-lora", "dpt-lora"]


def test_the_first_trainings_cover_every_task_and_every_network() -> None:
    order = measure_stages.diagonal_order(TASKS, MODELS)
    assert sorted(order) == sorted((task, model) for task in TASKS for model in MODELS)
    first = order[:5]
    assert {task for task, _ in first} == set(TASKS) and {model for _, model in first} == set(MODELS)
    fewer = measure_stages.diagonal_order(TASKS, MODELS[:2])
    assert len(set(fewer)) == 10 and {model for _, model in fewer[:5]} == set(MODELS[:2])


def test_dagster_reruns_the_largest_grid_of_finished_trainings() -> None:
    finished = {("seam", "unet"), ("salt", "unet"), ("seam", "dpt-lora"), ("salt", "dpt-lora"),
                ("seam", "mla-lora"), ("crater", "pup-lora")}
    assert measure_stages.finished_grid(finished, TASKS, MODELS) == (["seam", "salt"], ["unet", "dpt-lora"])
    assert measure_stages.finished_grid(set(), TASKS, MODELS) == ([], [])


def test_the_copy_gets_the_profile_and_the_grid_in_its_params(tmp_path: Path) -> None:
    shutil.copy(ROOT / "params.yaml", tmp_path / "params.yaml")
    measure_stages.set_profile(tmp_path / "params.yaml", "paper-smoke")
    name = measure_stages.restricted_params(tmp_path, ["salt"], ["unet", "mla-lora"])
    params = yaml.safe_load((tmp_path / name).read_text())
    assert params["profile"] == "paper-smoke"
    assert (params["tasks"], params["models"]) == (["salt"], ["unet", "mla-lora"])
    original = yaml.safe_load((ROOT / "params.yaml").read_text())
    assert params["profiles"] == original["profiles"] and params["train"] == original["train"]


def test_the_grid_of_the_copy_names_the_encoder_scan_s_trainings_as_keys(tmp_path: Path) -> None:
    text = (ROOT / "params.yaml").read_text()
    scanned = re.sub(r"^  encoders: \[\]", "  encoders: [vit_small_patch16_dinov3]", text, flags=re.MULTILINE)
    (tmp_path / "params.yaml").write_text(scanned)
    models = ["linear-lora", "linear-lora.vit_small_patch16_dinov3"]
    settings = load_settings(tmp_path / measure_stages.restricted_params(tmp_path, ["salt"], models))
    assert settings.encoder_scan.encoders == () and settings.benchmark_models == tuple(models)
    stages = [stage for stage, _, _ in measure_stages.dvc_stages(Project.load(tmp_path))]
    assert "train-encoder@das-linear-lora-vit_small_patch16_dinov3" in stages


def test_a_measured_command_reports_the_peak_memory_of_its_child(tmp_path: Path) -> None:
    allocate = "import time; block = bytearray(300 * 2**20); block[::4096] = b'x' * len(block[::4096])"
    command = ["sh", "-c", f"{sys.executable} -c \"{allocate}\""]  # the allocation is a grandchild's
    seconds, peak = measure_stages.run_measured(command, tmp_path, dict(os.environ), tmp_path / "log.txt")
    assert seconds > 0 and peak >= 300 * 2**20
