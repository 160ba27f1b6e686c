"""`geofm train` on a training that already finished identically: answered from the files on disk and the
sqlite store before torch or MLflow load, saying how the version stands against `best` without claiming a
promotion; anything the stage would still change takes the full path."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from tiny_benchmark import REPO, write_tiny_params

from pipelines.cli.main import main
from pipelines.orchestration.reuse import reused_training
from training.settings import load_settings

PROBE = """import sys
from pipelines.cli.main import main
status = main(sys.argv[1:])
print("loaded:", sorted(name for name in ("torch", "mlflow", "timm") if name in sys.modules))
sys.exit(status)"""


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny project with salt x unet trained once through the CLI (a real sqlite MLflow store)."""
    root = tmp_path_factory.mktemp("reuse")
    write_tiny_params(root, ["salt"], ["unet"])
    for command in (["raw"], ["prepare", "--task", "salt"], ["train", "--task", "salt", "--model", "unet"]):
        assert main(["--root", str(root), *command]) == 0
    return root


def _train_in_a_fresh_process(root: Path) -> str:
    done = subprocess.run([sys.executable, "-c", PROBE, "--root", str(root), "train", "--task", "salt",
                           "--model", "unet"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_a_reused_training_answers_before_torch_and_mlflow_load(trained: Path) -> None:
    out = _train_in_a_fresh_process(trained)
    assert "models:/geofm-salt-unet/1 already the best version; reused the identical finished training" in out
    assert "promoted" not in out and "#/experiments/" in out
    assert "loaded: []" in out


def test_the_full_stage_decides_when_its_summary_is_missing_or_the_settings_changed(trained: Path) -> None:
    settings = load_settings(trained / "params.yaml")
    assert reused_training(settings, trained, "salt", "unet") is not None
    figure = trained / "runs/salt/unet/history.png"
    kept = figure.read_bytes()
    figure.unlink()
    try:
        assert reused_training(settings, trained, "salt", "unet") is None
    finally:
        figure.write_bytes(kept)
    changed = settings.model_copy(update={"train": settings.train.model_copy(update={"lr": 0.5})})
    assert reused_training(changed, trained, "salt", "unet") is None
