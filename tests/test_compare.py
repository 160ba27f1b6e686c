"""`geofm compare` on fabricated metrics files (no training): a reference written from the runs, differences
within and beyond the tolerance, missing runs, null stds, another profile's reference, and `--rerun`."""

from __future__ import annotations

import json
import os
import platform
import stat
from pathlib import Path

import pytest
import torch

from pipelines.cli.main import main
from training.comparison import compare, flatten, protocol
from training.reproducibility import STRICT_ENVIRONMENT, machine_class

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
    assert "compared within max(0.02, 3 x the seeds' std of each score): the reference was made in" in out
    assert ("40 scores compared with demo-metrics.json (profile demo): 40 within the allowed difference, 0 "
            "beyond") in out
    assert "| salt" not in out  # only differences are listed


def test_differences_within_the_tolerance_are_listed_and_pass(project: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    write_run(project, "das", "unet", miou=0.51)
    assert compare_command(project) == 0
    out = capsys.readouterr().out
    assert "| das/unet | miou | 0.5000 | 0.5100 | +0.0100 | 0.02 | ok |" in out
    assert "| das/unet | per_seed[1234].miou | 0.5000 | 0.5100 | +0.0100 | 0.02 | ok |" in out


def test_a_difference_beyond_the_tolerance_fails_naming_it(project: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    write_run(project, "salt", "linear-lora", miou=0.45)
    assert compare_command(project) == 2
    captured = capsys.readouterr()
    assert "| salt/linear-lora | miou | 0.5000 | 0.4500 | -0.0500 | 0.02 | beyond |" in captured.out
    assert "compared within 0.06, as --tolerance asks" not in captured.out
    assert "2 scores differ" in captured.err and "salt/linear-lora miou (beyond)" in captured.err
    assert compare_command(project, "--tolerance", "0.06") == 0
    with pytest.raises(SystemExit, match="2"):
        compare_command(project, "--tolerance", "-1")
    assert "the tolerance must be a number >= 0; got -1" in capsys.readouterr().err


def test_a_missing_run_fails(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (project / "runs" / "das" / "linear-lora" / "metrics.json").unlink()
    assert compare_command(project) == 2
    assert "| das/linear-lora | miou | 0.5000 | - |  | 0.02 | missing |" in capsys.readouterr().out


def test_a_score_that_became_null_fails(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_run(project, "salt", "unet", miou=0.5)
    path.write_text(json.dumps({**json.loads(path.read_text()), "mpa": None}))
    assert compare_command(project) == 2
    assert "| salt/unet | mpa | 0.8000 | - |  | 0.02 | beyond |" in capsys.readouterr().out


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
    assert "| das/unet | miou | 0.5000 | 0.7000 | +0.2000 | 0.02 | beyond |" in capsys.readouterr().out


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
    assert "| das/unet | miou | 0.5000 | 0.5100 | +0.0100 | 0.02 | ok | pooled |" in capsys.readouterr().out


def test_a_reference_records_how_it_was_made(project: Path) -> None:
    provenance = json.loads((project / REFERENCE).read_text())["provenance"]
    assert provenance["mode"] == "fast" and provenance["device"] == "cpu"
    assert provenance["torch"] == torch.__version__ and provenance["machine"].startswith(platform.machine())
    assert {"mkl", "onednn", "numpy", "python", "cpu"} <= set(provenance)


def test_a_strict_cpu_reference_is_compared_exactly(project: Path, monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    for name, value in STRICT_ENVIRONMENT.items():  # what the CLI pins: put back after the test
        monkeypatch.setenv(name, value)
    strict = "demo: {data: {}, model: {}, train: {reproducibility: strict, device: cpu}}"
    (project / "params.yaml").write_text(PARAMS.replace("demo: {data: {}, model: {}, train: {}}", strict))
    assert main(["--root", str(project), "compare", "--write-reference"]) == 0
    assert json.loads((project / REFERENCE).read_text())["provenance"]["mode"] == "strict"
    assert compare_command(project) == 0
    assert "compared exactly: the reference was recorded in strict mode on the CPU" in capsys.readouterr().out
    write_run(project, "das", "unet", miou=0.5 + 1e-12)
    assert compare_command(project) == 2
    out = capsys.readouterr().out
    assert "| das/unet | miou | 0.5000 | 0.5000 | +1.0e-12 | 0 | beyond |" in out
    assert "38 equal, 2 beyond or missing" in out


def test_without_strict_mode_the_tolerance_is_the_seeds_spread(project: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    """Three seeds with an mIoU std of 0.01 allow 0.03 on every mIoU of the run; the mPA keeps the floor."""
    path = write_run(project, "salt", "unet", miou=0.5)
    path.write_text(json.dumps({**json.loads(path.read_text()), "miou_std": 0.01}))
    assert main(["--root", str(project), "compare", "--write-reference"]) == 0
    write_run(project, "salt", "unet", miou=0.525)
    path.write_text(json.dumps({**json.loads(path.read_text()), "miou_std": 0.01, "mpa": 0.79}))
    assert compare_command(project) == 0
    out = capsys.readouterr().out
    assert "| salt/unet | miou | 0.5000 | 0.5250 | +0.0250 | 0.03 | ok |" in out
    assert "| salt/unet | mpa | 0.8000 | 0.7900 | -0.0100 | 0.02 | ok |" in out
    write_run(project, "salt", "unet", miou=0.535)
    assert compare_command(project) == 2


def test_the_largest_differences_come_first(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_run(project, "das", "unet", miou=0.51)
    write_run(project, "salt", "linear-lora", miou=0.4)
    compare_command(project)
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| das") or
            line.startswith("| salt")]
    assert [abs(float(row.split("|")[5])) for row in rows] == [0.1, 0.1, 0.01, 0.01]


def test_a_reference_made_elsewhere_is_named_in_one_warning(project: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    document = json.loads((project / REFERENCE).read_text())
    document["provenance"].update(torch="2.0.0", machine="aarch64")
    (project / REFERENCE).write_text(json.dumps(document))
    assert compare_command(project) == 0
    err = capsys.readouterr().err.strip()
    assert err == (f"warning: the reference was made with machine aarch64 (here {machine_class()}), "
                   f"torch 2.0.0 (here {torch.__version__}), so its scores may differ from these runs' "
                   "beyond rounding")
