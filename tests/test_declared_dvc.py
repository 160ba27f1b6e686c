"""DVC with a declared task beside a paper task: editing the declaration makes the shared `raw` stage
stale, and once it reran (the paper task's raw folder byte for byte as it was) only the declared task's
`prepare` is stale, never the paper task's."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from declared_projects import SEGY_SOURCE, declared_params, write_segy_project
from test_dvc import COPIED
from tiny_benchmark import copy_project_files, run_in_project

PREPARES = ["prepare@das", "prepare@horizons"]


@pytest.fixture(scope="module")
def repo_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A git + DVC repository with the project's code, a declared SEG-Y task and das, raw and prepared."""
    root = tmp_path_factory.mktemp("declared-repo")
    copy_project_files(root, COPIED)
    write_segy_project(root)
    raw = declared_params("horizons", SEGY_SOURCE)
    raw.update(tasks=["das", "horizons"], models=["unet"])
    raw["profiles"]["demo"]["data"]["synthetic"].update(train_count=4, test_count=2, shapes={"das": [28, 28]})
    (root / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    run_in_project(["git", "init", "-q"], root)
    run_in_project(["dvc", "init", "-q"], root)
    run_in_project(["dvc", "config", "core.analytics", "false"], root)
    run_in_project(["dvc", "repro", *PREPARES], root)
    return root


def _stale(root: Path, *stages: str) -> set[str]:
    return set(json.loads(run_in_project(["dvc", "status", "--json", *stages], root)))


def test_editing_a_declared_task_reruns_only_its_own_stages(repo_copy: Path) -> None:
    assert _stale(repo_copy, "raw", *PREPARES) == set()
    params = yaml.safe_load((repo_copy / "params.yaml").read_text())
    params["declared_tasks"]["horizons"]["source"]["val"] = [104, 104]
    (repo_copy / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    assert _stale(repo_copy, "raw", *PREPARES) == {"raw"}
    run_in_project(["dvc", "repro", "--single-item", "raw"], repo_copy)
    assert _stale(repo_copy, "raw", *PREPARES) == {"prepare@horizons"}
