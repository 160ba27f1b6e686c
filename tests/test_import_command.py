"""`geofm import`: a checkpoint in the authors' layout registered like a trained model, whose registered
version gives the authors' logits."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from authors_reference import authors_logits, decoder_layout, random_state
from tiny_benchmark import load_tiny_settings

from pipelines.cli.main import main
from pipelines.tracking.store import BenchmarkStore
from training.stages.prepare import prepare
from training.stages.raw import materialize_raw

pytestmark = pytest.mark.usefixtures("single_torch_thread")


def test_import_registers_a_model_with_the_authors_logits(tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    settings = load_tiny_settings(tmp_path, ["salt"], ["unet"])
    materialize_raw(settings, tmp_path)
    prepare(settings, tmp_path, "salt")
    state = random_state(decoder_layout("unet", settings.task("salt").num_classes), seed=3)
    checkpoint = tmp_path / "unet_maxiou_valid.pth"
    torch.save(state, checkpoint)

    status = main(["--root", str(tmp_path), "import", "--task", "salt", "--model", "unet",
                   "--checkpoint", str(checkpoint)])
    assert status == 0, capsys.readouterr().err
    assert "imported" in capsys.readouterr().out

    store = BenchmarkStore.for_project(settings.mlflow, tmp_path)
    model = store.load_model("geofm-salt-unet")
    section = np.fromfile(tmp_path / "data/raw/salt/valid/input/0.dat", dtype="<f4").reshape(28, 28)
    with torch.inference_mode():
        ours = model(torch.from_numpy(section)[None, None]).double()
    expected = authors_logits("unet", state, section, settings.task("salt").patch_grid)
    assert float((ours - expected).abs().max() / expected.abs().max()) < 1e-5
    run = store.client.get_run(store.client.get_model_version("geofm-salt-unet", "1").run_id)
    assert run.info.status == "FINISHED" and 0 <= run.data.metrics["test_miou"] <= 1
    assert run.data.params["weights"].startswith("authors:")


def test_import_names_a_bad_checkpoint(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    settings = load_tiny_settings(tmp_path, ["salt"], ["unet"])
    materialize_raw(settings, tmp_path)
    prepare(settings, tmp_path, "salt")
    checkpoint = tmp_path / "foreign.pth"
    torch.save({"something.weight": torch.zeros(3)}, checkpoint)
    status = main(["--root", str(tmp_path), "import", "--task", "salt", "--model", "unet",
                   "--checkpoint", str(checkpoint)])
    error = capsys.readouterr().err
    assert status == 2 and "foreign.pth" in error and "Traceback" not in error
