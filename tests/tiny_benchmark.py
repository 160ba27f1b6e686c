"""A tiny copy of the project's params.yaml for the orchestration tests: small sections, few samples,
one epoch, and every output (data, runs, MLflow store) under a temporary root."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import yaml

from training.settings import Settings, load_settings

REPO = Path(__file__).resolve().parents[1]
TINY_SHAPE = [28, 28]


def load_tiny_settings(root: Path, tasks: Sequence[str], models: Sequence[str],
                       encoders: Sequence[str] = ()) -> Settings:
    """`write_tiny_params`, then its settings."""
    return load_settings(write_tiny_params(root, tasks, models, encoders))


def write_tiny_params(root: Path, tasks: Sequence[str], models: Sequence[str],
                      encoders: Sequence[str] = ()) -> Path:
    """Write `root/params.yaml`: the repo's file on the demo profile, shrunk to `tasks` x `models`; with
    `encoders`, the plain ViT models of `models` also train on each (the encoder scan)."""
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params.update(profile="demo", tasks=list(tasks), models=list(models))
    if encoders:
        scanned = [model for model in models if model != "unet" and "." not in model]
        params["encoder_scan"] = {"encoders": list(encoders), "models": scanned}
    demo = params["profiles"]["demo"]
    demo["data"]["synthetic"].update(train_count=8, test_count=2, shapes={task: TINY_SHAPE for task in tasks})
    demo["train"].update(epochs=1, batch_size=4)
    # Its own device leases, and room for concurrent trainings: tests run projects side by side.
    params["orchestration"].update(lease_dir=str(Path(root) / ".devices"), cpu_trainings=4)
    path = Path(root) / "params.yaml"
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    return path


def copy_project_files(root: Path, names: Sequence[str]) -> None:
    """Copy the repository's files and folders `names` (caches left out) into `root`."""
    for name in names:
        source, target = REPO / name, Path(root) / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(source, target)



def run_in_project(command: list[str], cwd: Path) -> str:
    """Run `command` in the project copy `cwd` (its code first on PYTHONPATH, the virtual environment first
    on PATH); its output, or a failed assertion showing it."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "PYTHONPATH": str(cwd), "DVC_NO_ANALYTICS": "1", "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{' '.join(command)} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout + done.stderr
