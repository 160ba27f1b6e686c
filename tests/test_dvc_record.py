"""Recording in DVC what a stage run through Dagster wrote: only the stages `dvc status` lists are
committed, so a rerun that changed nothing calls no `dvc commit`."""

from __future__ import annotations

from pathlib import Path

from tiny_benchmark import run_in_project

from pipelines.orchestration.dvc_record import record_in_dvc, stale_stages

DVC_YAML = """stages:
  write:
    foreach: [x, y]
    do:
      cmd: echo ${item} > out_${item}
      outs:
        - out_${item}
"""


def _repo(root: Path) -> Path:
    (root / "dvc.yaml").write_text(DVC_YAML)
    for command in (["git", "init", "-q"], ["dvc", "init", "-q"], ["dvc", "repro", "-q"]):
        run_in_project(command, root)
    return root


def test_only_the_stages_dvc_lists_are_committed(tmp_path: Path) -> None:
    root = _repo(tmp_path)
    stages = ["write@x", "write@y"]
    assert stale_stages(root, stages) == [] and record_in_dvc(root, stages) == []
    (root / "out_x").write_text("written by another front door\n")
    assert stale_stages(root, stages) == ["write@x"]
    assert record_in_dvc(root, stages) == ["write@x"]
    assert stale_stages(root, stages) == []
    assert "Data and pipelines are up to date" in run_in_project(["dvc", "status"], root)


def test_a_folder_without_dvc_records_nothing(tmp_path: Path) -> None:
    (tmp_path / "out_x").write_text("x\n")
    assert record_in_dvc(tmp_path, ["write@x"]) == []
