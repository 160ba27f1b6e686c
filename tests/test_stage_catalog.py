"""The stage list is declared once (`training.stages.catalog`): dvc.yaml's stages, the `geofm` commands
they run, the Dagster jobs and assets, and the main job's plan are that list."""

from __future__ import annotations

from pathlib import Path

import yaml
from tiny_benchmark import REPO, load_tiny_settings

from pipelines.cli.main import COMMANDS
from pipelines.orchestration.benchmark_runner import benchmark_plan
from pipelines.orchestration.definitions import build_definitions
from training.settings import Project
from training.stages.catalog import STAGES, dvc_stage_names


def test_dvc_yaml_declares_the_catalog_s_stages_in_order_each_running_its_command() -> None:
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    assert list(stages) == dvc_stage_names() == ["raw", "prepare", "train", "train-encoder", "report",
                                                 "predictions"]
    for entry in STAGES:
        for name in filter(None, (entry.name, entry.encoder_axis)):
            declared = stages[name]
            command = (declared.get("do") or declared)["cmd"].split()
            assert command[:2] == ["geofm", entry.name]
            assert [word[2:] for word in command if word.startswith("--")] == list(entry.instance_options)


def test_the_encoder_axis_stage_is_the_training_stage_on_the_scan_s_lists() -> None:
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    train, scan = stages["train"], stages["train-encoder"]
    assert scan["matrix"] == {"task": "${tasks}", "model": "${encoder_scan.models}",
                              "encoder": "${encoder_scan.encoders}"}
    assert "--model ${item.model}.${item.encoder}" in scan["cmd"]
    assert (scan["deps"], scan["params"]) == (train["deps"], train["params"])
    run_folder = "${outputs.runs_dir}/${item.task}/${item.model}"
    for kind in ("outs", "metrics", "plots"):
        scanned = [next(iter(out)) for out in scan[kind]]
        assert [path.replace(f"{run_folder}.${{item.encoder}}", run_folder) for path in scanned] \
            == [next(iter(out)) for out in train[kind]]
        assert all(path.startswith(f"{run_folder}.${{item.encoder}}/") for path in scanned)


def test_each_stage_is_a_command_with_its_options() -> None:
    for entry in STAGES:
        assert COMMANDS[entry.name].module == entry.name
        assert tuple(COMMANDS[entry.name].options) == entry.instance_options


def test_the_dagster_jobs_and_assets_are_the_catalog_s(tmp_path: Path) -> None:
    settings = load_tiny_settings(tmp_path, ["das"], ["unet"])
    defs = build_definitions(Project(root=tmp_path, settings=settings))
    graph = defs.resolve_asset_graph()
    benchmark = [entry for entry in STAGES if entry.benchmark]  # no survey configured: no predictions
    assets = {key.to_user_string() for key in graph.get_all_asset_keys()}
    assert assets == {entry.asset for entry in benchmark}
    jobs = {job.name for job in defs.resolve_all_job_defs()} - {"__ASSET_JOB"}
    assert jobs == {entry.name for entry in benchmark}
    plan = [planned.job for planned in benchmark_plan(settings)]
    assert list(dict.fromkeys(plan)) == [entry.name for entry in benchmark]
