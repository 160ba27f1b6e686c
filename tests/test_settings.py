"""`params.yaml` read into typed settings: profiles, one error per bad key naming its path and the allowed
values, refused before any stage runs (CLI and Dagster definitions alike), and the docs' reference table."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from tiny_benchmark import REPO

from training import catalog, losses, models, schedule
from training.settings import PROFILE_SECTIONS, SettingsError, load_settings, settings_from_mapping
from training.settings.docs import settings_reference

RAW = yaml.safe_load((REPO / "params.yaml").read_text())


def _with(change: dict, profile: str = "paper") -> str:
    """The error message of the repository's params with `change` (dotted keys) applied."""
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    for dotted, value in change.items():
        *parents, leaf = dotted.split(".")
        section = raw
        for key in parents:
            section = section[key]
        section[leaf] = value
    with pytest.raises(SettingsError) as caught:
        settings_from_mapping(raw, profile)
    return str(caught.value)


def test_profiles_overlay_the_base_keys() -> None:
    demo = load_settings(REPO / "params.yaml", profile="demo")
    paper = load_settings(REPO / "params.yaml", profile="paper")
    assert (demo.profile, demo.data.source, demo.model.weights, demo.train.epochs) == ("demo", "synthetic",
                                                                                      "none", 5)
    assert (paper.data.source, paper.model.weights, paper.train.lr) == ("zenodo", "hub", 1e-5)
    assert demo.task("seam").shape == (140, 112) and paper.task("seam").shape == (1006, 782)
    assert paper.train.batch_size_for(paper.task("salt")) == 32
    assert demo.train.betas == (0.7, 0.999) and demo.tasks == tuple(RAW["tasks"])


@pytest.mark.parametrize(("change", "message"), [
    ({"train.lr": "fast"}, "train.lr: Input should be a valid number, unable to parse string as a number, "
                           "got 'fast'"),
    ({"train.lr": -1}, "train.lr: Input should be greater than 0, got -1"),
    ({"models": ["unet", "linear-lora", "dtp-lora"]}, "models[2]: unknown network 'dtp' in model 'dtp-lora'; "
                                                      "known: unet (alone), linear, pup, mla, dpt"),
    ({"models": ["mla-lorra"]}, "models[0]: unknown fine-tuning mode 'lorra' in model 'mla-lorra'; known: "
                                "frozen, full, lora"),
    ({"models": ["unet", "unet"]}, "models: model 'unet' is listed twice"),
    ({"tasks": ["seam", "sam"]}, "tasks[1]: unknown task 'sam'; known: seam, salt, crater, das, fault"),
    ({"train.schedule": "cosin"}, "train.schedule: Input should be 'constant' or 'cosine', got 'cosin'"),
    ({"train.batch_size": 0}, "train.batch_size: expected a positive integer or 'paper', got 0"),
    ({"train.schedul": "cosine"}, "train.schedul: not a known setting"),
    ({"data.val_fraction": 0}, "data.val_fraction: Input should be greater than 0, got 0"),
    ({"train.warmup_epochs": 200}, "train: warmup_epochs (200) exceeds epochs (100)"),
    ({"data.synthetic.shapes": {"salty": [8, 8]}}, "data.synthetic.shapes.salty: unknown task 'salty'"),
    ({"profile": "papr"}, "profile: unknown profile 'papr'; known: demo, paper"),
    ({"profiles.paper": {"data": {}, "model": {}}}, "profiles.paper.train: missing"),
    ({"profiles.paper": {"data": {}, "model": {}, "train": {}, "outputs": {}}},
     "profiles.paper: a profile may overlay data, model, train, not 'outputs'"),
])
def test_a_bad_value_names_its_key_path_and_what_is_allowed(change: dict, message: str) -> None:
    profile = change.get("profile")
    assert message in _with(change, profile=profile or "paper")


def test_several_problems_are_reported_together() -> None:
    message = _with({"train.lr": "fast", "train.epochs": 0})
    assert "train.epochs: Input should be greater than or equal to 1" in message
    assert "train.lr:" in message


def test_yaml_syntax_errors_name_the_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "params.yaml"
    path.write_text("profile: demo\ntrain:\n  lr: [1e-3\n")
    with pytest.raises(SettingsError, match=r"params\.yaml: line \d+, column \d+: not valid YAML"):
        load_settings(path)
    with pytest.raises(SettingsError, match="params file not found"):
        load_settings(tmp_path / "missing.yaml")


def test_the_cli_refuses_bad_settings_before_any_stage_runs(tmp_path: Path) -> None:
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    raw["models"] = ["unet", "dtp-lora"]
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    done = subprocess.run([sys.executable, "-m", "pipelines", "--root", str(tmp_path), "raw"], cwd=REPO,
                          capture_output=True, text=True)
    assert done.returncode == 2
    assert "models[1]: unknown network 'dtp'" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "data").exists()


def test_the_dagster_definitions_refuse_bad_settings(tmp_path: Path) -> None:
    from pipelines.orchestration.definitions import build_definitions
    from training.settings import Project

    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    raw["profiles"]["demo"]["train"]["loss"] = "dicey"
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    with pytest.raises(SettingsError, match="train.loss: Input should be"):
        build_definitions(Project.load(tmp_path))


def test_every_profile_names_the_sections_dvc_tracks() -> None:
    for name, overlay in RAW["profiles"].items():
        assert set(overlay) == set(PROFILE_SECTIONS), name


def test_the_catalog_names_every_registry_key() -> None:
    assert catalog.NETWORKS == models.NETWORKS
    assert catalog.FINETUNE_MODES == tuple(models.FINETUNE_MODES)
    assert catalog.ENCODERS == models.ENCODERS
    assert set(catalog.LOSSES) == set(losses.LOSSES)
    assert set(catalog.SCHEDULES) == set(schedule.SCHEDULES)


def test_the_docs_document_every_setting() -> None:
    page = (REPO / "docs" / "configuration.md").read_text()
    block = re.search(r"<!-- settings-reference -->\n(.*?)<!-- /settings-reference -->", page, re.S)
    assert block, "docs/configuration.md lacks the settings reference block"
    assert block.group(1) == settings_reference(), (
        "docs/configuration.md's settings table is stale: paste `python -m training.settings.docs`")
