"""`geofm compare` on fabricated metrics files (no training): a reference written from the runs, differences
within and beyond the tolerance, missing runs, null stds, another profile's reference, and `--rerun`."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from pipelines.cli.main import main
from training.comparison import compare, flatten, protocol

PARAMS = """profile: demo
tasks: [salt, das]
models: [unet, linear-lora]
profiles:
  demo: {data: {}, model: {}, train: {}}
  other: {data: {}, model: {}, train: {}}
"""
REFERENCE = "reference/demo-metrics.json"


def summary(task: str, model: str, miou: float) -> dict[str, object]:
    """A run's metrics.json as the train stage writes it for one seed."""
    return {"task": task, "model": model, "network": model.split("-")[0], "mode": "lora", "seeds": [1234],
            "miou": miou, "miou_std": None, "mpa": 0.8, "mpa_std": None, "best_val_miou": 0.6,
            "best_val_miou_std": None, "majority_baseline_miou": 0.3, "step_seconds": 1.5,
            "per_seed": [{"seed": 1234, "training_id": "abc", "miou": miou, "mpa": 0.8, "best_val_miou": 0.6,
                          "best_epoch": 3}]}


def write_run(root: Path, task: str, model: str, miou: float) -> Path:
    path = root / "runs" / task / model / "metrics.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(summary(task, model, miou)))
    return path


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "params.yaml").write_text(PARAMS)
    for task in ("salt", "das"):
        for model in ("unet", "linear-lora"):
            write_run(tmp_path, task, model, miou=0.5)
    assert main(["--root", str(tmp_path), "compare", "--write-reference", "--note", "fabricated"]) == 0
    return tmp_path


def compare_command(root: Path, *options: str) -> int:
    return main(["--root", str(root), "compare", *options])


def test_a_reference_holds_every_score_but_identifiers_and_timings(project: Path) -> None:
    reference = json.loads((project / REFERENCE).read_text())
    assert reference["profile"] == "demo" and reference["note"] == "fabricated"
    assert sorted(reference["runs"]) == ["das/linear-lora", "das/unet", "salt/linear-lora", "salt/unet"]
    assert reference["runs"]["salt/unet"] == {
        "miou": 0.5, "miou_std": None, "mpa": 0.8, "mpa_std": None, "best_val_miou": 0.6,
        "best_val_miou_std": None, "majority_baseline_miou": 0.3, "per_seed[1234].miou": 0.5,
        "per_seed[1234].mpa": 0.8, "per_seed[1234].best_val_miou": 0.6}


def test_the_same_runs_pass(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert compare_command(project) == 0
    out = capsys.readouterr().out
    assert "40 scores compared with demo-metrics.json (profile demo): 40 within 0.02, 0 beyond" in out
    assert "| salt" not in out  # only differences are listed


def test_differences_within_the_tolerance_are_listed_and_pass(project: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    write_run(project, "das", "unet", miou=0.51)
    assert compare_command(project) == 0
    out = capsys.readouterr().out
    assert "| das/unet | miou | 0.5000 | 0.5100 | +0.0100 | ok |" in out
    assert "| das/unet | per_seed[1234].miou | 0.5000 | 0.5100 | +0.0100 | ok |" in out


def test_a_difference_beyond_the_tolerance_fails_naming_it(project: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    write_run(project, "salt", "linear-lora", miou=0.45)
    assert compare_command(project) == 2
    captured = capsys.readouterr()
    assert "| salt/linear-lora | miou | 0.5000 | 0.4500 | -0.0500 | beyond |" in captured.out
    assert "2 scores differ" in captured.err and "salt/linear-lora miou (beyond)" in captured.err
    assert compare_command(project, "--tolerance", "0.06") == 0
    with pytest.raises(SystemExit, match="2"):
        compare_command(project, "--tolerance", "-1")
    assert "the tolerance must be a number >= 0; got -1" in capsys.readouterr().err


def test_a_missing_run_fails(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (project / "runs" / "das" / "linear-lora" / "metrics.json").unlink()
    assert compare_command(project) == 2
    assert "| das/linear-lora | miou | 0.5000 | - |  | missing |" in capsys.readouterr().out


def test_a_score_that_became_null_fails(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_run(project, "salt", "unet", miou=0.5)
    path.write_text(json.dumps({**json.loads(path.read_text()), "mpa": None}))
    assert compare_command(project) == 2
    assert "| salt/unet | mpa | 0.8000 | - |  | beyond |" in capsys.readouterr().out


def test_a_reference_of_another_profile_is_refused(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--root", str(project), "--profile", "other", "compare", "--reference", REFERENCE]) == 2
    assert "holds the metrics of profile 'demo', the active profile is 'other'" in capsys.readouterr().err


def test_rerun_reproduces_with_dvc_first(project: Path, tmp_path_factory: pytest.TempPathFactory,
                                         monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    """A stand-in `dvc` on PATH rewrites one run's metrics as a rerun on another machine would."""
    bin_dir = tmp_path_factory.mktemp("bin")
    rerun = json.dumps(summary("das", "unet", miou=0.7))
    fake = bin_dir / "dvc"
    fake.write_text(f"#!/bin/sh\n[ \"$1\" = repro ] && printf '%s' '{rerun}' > runs/das/unet/metrics.json\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    assert compare_command(project, "--rerun") == 2
    assert "| das/unet | miou | 0.5000 | 0.7000 | +0.2000 | beyond |" in capsys.readouterr().out


def test_new_scores_are_listed_without_failing() -> None:
    reference = {"salt/unet": flatten(summary("salt", "unet", 0.5))}
    measured = {"salt/unet": {**reference["salt/unet"], "fwiou": 0.4}}
    differences = compare(reference, measured)
    assert [(d.metric, d.status) for d in differences if d.status != "ok"] == [("fwiou", "new")]


def test_each_compared_score_names_its_protocol(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert [protocol(name) for name in ("miou", "per_seed[1234].mpa", "miou_std", "per_class_iou[2]",
                                        "authors_miou", "per_seed[7].authors_mpa_std", "best_val_miou")] == [
        "pooled", "pooled", "pooled", "pooled", "paper", "paper", "-"]
    write_run(project, "das", "unet", miou=0.51)
    compare_command(project)
    assert "| das/unet | miou | 0.5000 | 0.5100 | +0.0100 | ok | pooled |" in capsys.readouterr().out
