"""dvc.yaml on a tiny benchmark in a temporary copy of the repository: `dvc repro` runs every stage, a
second `dvc repro` runs none; a params change makes exactly the stages that read it stale; every stage
depends on the modules its command imports; and the DVC stages describe the same graph as the Dagster
assets."""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest
import yaml
from dvc.repo import Repo
from tiny_benchmark import REPO, copy_project_files, run_in_project, write_tiny_params

from assets import DVC_STAGE
from pipelines.orchestration.definitions import build_definitions
from training.settings import Project
from training.stages.catalog import STAGES
from training.stages.outputs import dvc_stage_instance, stage_outputs

_spec = importlib.util.spec_from_file_location("measure_rematerialize",
                                               REPO / "scripts" / "measure_rematerialize.py")
measure_rematerialize = importlib.util.module_from_spec(_spec)
sys.modules["measure_rematerialize"] = measure_rematerialize  # its dataclass looks its module up
_spec.loader.exec_module(measure_rematerialize)

TASKS = ("das",)
MODELS = ("unet", "linear-lora")
COPIED = ("training", "assets", "pipelines", "dvc.yaml", "pyproject.toml", ".dagster_home/dagster.yaml")



def _tiny_repo(root: Path, models: tuple[str, ...] = MODELS, encoders: tuple[str, ...] = ()) -> Path:
    """`root` made a git + DVC repository holding the project's code, dvc.yaml and tiny params."""
    copy_project_files(root, COPIED)
    write_tiny_params(root, TASKS, models, encoders)
    run_in_project(["git", "init", "-q"], root)
    run_in_project(["dvc", "init", "-q"], root)
    run_in_project(["dvc", "config", "core.analytics", "false"], root)
    return root


@pytest.fixture(scope="module")
def repo_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A git + DVC repository holding the project's code, dvc.yaml and tiny params."""
    return _tiny_repo(tmp_path_factory.mktemp("repo"))


@pytest.fixture(scope="module")
def reproduced(repo_copy: Path) -> tuple[str, str]:
    """The output of a first and a second `dvc repro`."""
    return run_in_project(["dvc", "repro"], repo_copy), run_in_project(["dvc", "repro"], repo_copy)


def test_repro_runs_every_stage_then_nothing(repo_copy: Path, reproduced: tuple[str, str]) -> None:
    first, second = reproduced
    for stage in ["raw", "prepare@das", "train@das-unet", "train@das-linear-lora", "report"]:
        assert f"Running stage '{stage}'" in first
    assert "Running stage" not in second
    assert "didn't change, skipping" in second or "Data and pipelines are up to date" in second
    assert (repo_copy / "dvc.lock").is_file()


@pytest.fixture(scope="module")
def after_dagster(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A new repository where `geofm benchmark` (what `geofm demo` runs) has run once."""
    root = _tiny_repo(tmp_path_factory.mktemp("dagster-then-dvc"))
    run_in_project(["geofm", "--root", str(root), "benchmark"], root)
    return root


def test_dvc_has_nothing_to_do_right_after_the_dagster_benchmark(after_dagster: Path) -> None:
    """`geofm benchmark` records each stage's outputs in DVC as it goes."""
    assert "Data and pipelines are up to date" in run_in_project(["dvc", "status"], after_dagster)
    repro = run_in_project(["dvc", "repro"], after_dagster)
    assert "Running stage" not in repro, repro


def test_the_rematerialize_script_times_a_reused_benchmark_and_dvc(after_dagster: Path) -> None:
    """scripts/measure_rematerialize.py (its daemon backfill aside, minutes long): the benchmark again, every
    training reused, in one run per stage; then DVC finds nothing to do."""
    rerun = measure_rematerialize.time_benchmark(after_dagster)
    status, repro = measure_rematerialize.time_dvc(after_dagster)
    assert (status.note, repro.note) == ("  then dvc status: up to date", "  then dvc repro: 0 stages ran")
    assert min(rerun.seconds, status.seconds, repro.seconds) > 0
    with dg.DagsterInstance.from_config(str(after_dagster / ".dagster_home")) as instance:
        runs = instance.get_runs(dg.RunsFilter(job_name="train"))
        records = instance.fetch_materializations(dg.AssetKey("trained_model"), limit=10).records
        reused = [record.event_log_entry.asset_materialization.metadata["reused_finished_training"].value
                  for record in records]
    assert len(runs) == 2  # the first benchmark's and the rerun's: every training in one run each time
    assert reused == [True] * len(MODELS) + [False] * len(MODELS)


def test_metrics_show_prints_miou_and_mpa(repo_copy: Path, reproduced: tuple[str, str]) -> None:
    shown = json.loads(run_in_project(["dvc", "metrics", "show", "--json"], repo_copy))
    metrics = next(iter(shown.values()))["data"]
    for model in MODELS:
        values = metrics[f"runs/das/{model}/metrics.json"]["data"]
        written = json.loads((repo_copy / f"runs/das/{model}/metrics.json").read_text())
        assert (values["miou"], values["mpa"]) == (written["miou"], written["mpa"])
    assert "Unet" in (repo_copy / "reports" / "benchmark.md").read_text()


def _dagster_graph(root: Path) -> tuple[dict[str, set[str]], dict[str, list[str]]]:
    """Stage instance -> upstream stage instances, and stage instance -> outputs, from the Dagster assets."""
    project = Project.load(root)
    graph = build_definitions(project).resolve_asset_graph()
    instances: dict[dg.AssetKey, list[tuple[str, dict]]] = {}
    for node in graph.asset_nodes:
        stage = node.metadata[DVC_STAGE]
        partitions = node.partitions_def.get_partition_keys() if node.partitions_def else [None]
        instances[node.key] = []
        for key in partitions:
            dims = key.keys_by_dimension if isinstance(key, dg.MultiPartitionKey) else {"task": key}
            name = dvc_stage_instance(project.settings, stage, dims.get("task"), dims.get("model"))
            instances[node.key].append((name, dims))
    upstream, outputs = {}, {}
    for node in graph.asset_nodes:
        stage = node.metadata[DVC_STAGE]
        for name, dims in instances[node.key]:
            parents = set()
            for parent in node.parent_keys:
                # Same task (prepare -> train), or every instance of an unpartitioned/All-mapped parent.
                parents |= {n for n, d in instances[parent] if d.get("task") in (None, dims.get("task"))
                            or stage == "report"}
            upstream[name] = parents
            outputs[name] = stage_outputs(project.settings, stage, dims.get("task"), dims.get("model"))
    return upstream, outputs


def _assert_one_graph(root: Path) -> set[str]:
    """DVC's stages of `root` and its Dagster assets' partitions: the same instances, upstream instances and
    outputs; the instances' names."""
    dagster_upstream, dagster_outputs = _dagster_graph(root)
    with Repo(str(root)) as repo:
        graph = repo.index.graph
        dvc_upstream = {stage.name: {parent.name for parent in graph.successors(stage)}
                        for stage in repo.index.stages}
        dvc_outputs = {stage.name: sorted(str(out.def_path) for out in stage.outs)
                       for stage in repo.index.stages}
    assert dvc_upstream == dagster_upstream
    assert dvc_outputs == {name: sorted(paths) for name, paths in dagster_outputs.items()}
    return set(dvc_upstream)


def test_dvc_stages_and_dagster_assets_are_one_graph(repo_copy: Path) -> None:
    assert not any(name.startswith("train-encoder") for name in _assert_one_graph(repo_copy))


def test_the_encoder_axis_expands_to_one_graph_in_both_front_doors(tmp_path: Path) -> None:
    """`encoder_scan`: the ViT models (not the UNet) once more per encoder, one DVC stage and one Dagster
    partition each, writing their own run folders; today's stages keep their names."""
    encoders = ("vit_small_patch16_dinov3", "vit_base_patch14_dinov2")
    names = _assert_one_graph(_tiny_repo(tmp_path, MODELS, encoders))
    trainings = {name for name in names if name.startswith("train")}
    assert trainings == {"train@das-unet", "train@das-linear-lora",
                         *(f"train-encoder@das-linear-lora-{encoder}" for encoder in encoders)}


def _stale_after(repo_copy: Path, change: dict) -> set[str]:
    """The stages `dvc status` lists after merging `change` into params.yaml (restored afterwards)."""
    path = repo_copy / "params.yaml"
    original = path.read_text()
    params = yaml.safe_load(original)
    for dotted, value in change.items():
        *parents, leaf = dotted.split(".")
        section = params
        for key in parents:
            section = section[key]
        section[leaf] = value
    try:
        path.write_text(yaml.safe_dump(params, sort_keys=False))
        return set(json.loads(run_in_project(["dvc", "status", "--json"], repo_copy)))
    finally:
        path.write_text(original)


def test_a_params_change_reruns_exactly_the_stages_that_read_it(
    repo_copy: Path, reproduced: tuple[str, str]
) -> None:
    trains = {f"train@das-{model}" for model in MODELS}
    assert _stale_after(repo_copy, {"profiles.demo.train.lr": 0.5}) == trains
    assert _stale_after(repo_copy, {"train.weight_decay": 0.5}) == trains
    assert _stale_after(repo_copy, {"data.split_seed": 7}) == {"prepare@das"}
    assert _stale_after(repo_copy, {"profiles.paper.train.lr": 0.5}) == set()
    assert _stale_after(repo_copy, {"mlflow.experiment": "elsewhere"}) == set()


def _imported_project_files(command: str) -> set[str]:
    """The project's source files a fresh interpreter imports to run `geofm <command>` (docstring-only
    package markers aside)."""
    script = ("import sys, pathlib, pipelines.cli.main as cli; cli.command_module(sys.argv[1]); "
              "print('\\n'.join(str(getattr(m, '__file__', None)) for m in list(sys.modules.values())))")
    listed = subprocess.run([sys.executable, "-c", script, command], cwd=REPO, capture_output=True, text=True,
                            check=True, env={**os.environ, "PYTHONPATH": str(REPO)}).stdout.split()
    files = set()
    for name in listed:
        path = Path(name)
        inside = path.is_absolute() and path.is_relative_to(REPO) and ".venv" not in path.parts
        if inside and path.suffix == ".py":
            code = [node for node in ast.parse(path.read_text()).body if not isinstance(node, ast.Expr)]
            if code or path.name != "__init__.py":
                files.add(path.relative_to(REPO).as_posix())
    return files


@pytest.mark.parametrize(("stage", "command"), [(name, entry.name) for entry in STAGES
                                                 for name in filter(None, (entry.name, entry.encoder_axis))])
def test_each_stage_depends_on_every_module_its_command_imports(stage: str, command: str) -> None:
    declared = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"][stage]
    deps = [dep for dep in (declared.get("do") or declared)["deps"] if "${" not in dep]
    uncovered = sorted(path for path in _imported_project_files(command)
                       if not any(path == dep or path.startswith(f"{dep}/") for dep in deps))
    assert uncovered == [], f"dvc.yaml stage {stage!r} misses code deps: {uncovered}"
