"""The encoder scan: model keys `<network>-<mode>.<encoder>` train the same network on another encoder, as
their own DVC stage, Dagster partition, run folder and registered model; the plain keys keep their names;
the report's benchmark tables hold the runs on `model.encoder` and its scale table every encoder, with
parameters, scores, s/step and peak memory of each training."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from recording_tracker import RecordingStore
from tiny_benchmark import write_tiny_params

from assets.partitions import model_partitions
from pipelines.tracking.locations import registered_model_name
from training.authors_code import paper_differences
from training.catalog import ModelKey, parse_model_key
from training.cost import COST_FILE
from training.encoders import ENCODER_SPECS
from training.models import build_model, count_parameters
from training.settings import Settings, SettingsError, load_settings, settings_from_mapping
from training.stages.outputs import ARTIFACTS_DIR, SEEDS_DIR
from training.stages.prepare import prepare
from training.stages.raw import materialize_raw
from training.stages.report import build_report
from training.stages.scale_table import scanned_encoders
from training.stages.training_stage import run_training_stage
from training.tasks import get_task

DINOV3 = "vit_small_patch16_dinov3"
SCAN = f"linear-lora.{DINOV3}"
MODELS = ("unet", "linear-lora", SCAN)


def test_a_scan_key_names_the_network_mode_and_encoder() -> None:
    assert parse_model_key(SCAN) == ModelKey("linear", "lora", DINOV3)
    assert parse_model_key(SCAN).key == SCAN
    assert parse_model_key("linear-lora") == ModelKey("linear", "lora")  # unchanged: model.encoder
    assert parse_model_key(SCAN).encoder_or("vit_small_patch14_dinov2") == DINOV3
    assert parse_model_key("dpt-full").encoder_or("vit_small_patch14_dinov2") == "vit_small_patch14_dinov2"


@pytest.mark.parametrize(("key", "message"), [
    (f"unet.{DINOV3}", "only the ViT networks"),
    ("mla-lora.vit_tiny", "unknown encoder 'vit_tiny'"),
    ("mla-lora.vit_7b_patch16_dinov3", "GiB"),
    (f"mla-lorax.{DINOV3}", "unknown fine-tuning mode"),
])
def test_bad_scan_keys_are_named(key: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_model_key(key)


def test_scanning_model_encoder_itself_is_refused_naming_the_plain_key() -> None:
    with pytest.raises(ValueError, match="write 'mla-lora'"):
        Settings(models=("mla-lora.vit_small_patch14_dinov2",))
    assert scanned_encoders(Settings(models=MODELS)) == ["vit_small_patch14_dinov2", DINOV3]
    assert scanned_encoders(Settings()) == ["vit_small_patch14_dinov2"]


def test_the_encoder_axis_adds_each_scanned_model_on_each_encoder_after_the_plain_ones() -> None:
    assert Settings().benchmark_models == Settings().models  # the default: no scan
    scan = Settings(models=("unet", "linear-lora", "dpt-lora"),
                    encoder_scan={"encoders": (DINOV3, "vit_base_patch14_dinov2"), "models": ("dpt-lora",)})
    assert scan.benchmark_models == ("unet", "linear-lora", "dpt-lora", f"dpt-lora.{DINOV3}",
                                     "dpt-lora.vit_base_patch14_dinov2")
    assert scan.model_key(f"dpt-lora.{DINOV3}") == ModelKey("dpt", "lora", DINOV3)
    assert scanned_encoders(scan) == ["vit_small_patch14_dinov2", DINOV3, "vit_base_patch14_dinov2"]


@pytest.mark.parametrize(("params", "message"), [
    ({"encoder_scan": {"encoders": ["vit_small_patch14_dinov2"]}},
     "params: encoder_scan.encoders: 'vit_small_patch14_dinov2' is model.encoder"),
    ({"model": {"encoder": DINOV3}, "encoder_scan": {"encoders": [DINOV3]}},
     f"params: encoder_scan.encoders: '{DINOV3}' is model.encoder"),
    ({"encoder_scan": {"encoders": [DINOV3, DINOV3]}},
     f"encoder_scan.encoders: encoder '{DINOV3}' is listed twice"),
    ({"encoder_scan": {"encoders": ["vit_huge_plus_patch16_dinov3"]}}, r"encoder_scan.encoders\[0\]: .* GiB"),
    ({"encoder_scan": {"encoders": ["vit_tiny"]}}, r"encoder_scan.encoders\[0\]: Input should be"),
    ({"encoder_scan": {"models": ["unet"]}}, "encoder_scan.models: 'unet' has no encoder to scan"),
    ({"encoder_scan": {"models": [SCAN]}}, f"encoder_scan.models: '{SCAN}' names its encoder already"),
    ({"encoder_scan": {"models": ["mla-lora", "mla-lora"]}},
     "encoder_scan.models: model 'mla-lora' is listed twice"),
    ({"models": ["unet", "mla-lora"], "encoder_scan": {"encoders": [DINOV3]}},
     "params: encoder_scan.models: 'linear-lora' is not in models"),
    ({"models": ["mla-lora", f"mla-lora.{DINOV3}"],
      "encoder_scan": {"encoders": [DINOV3], "models": ["mla-lora"]}},
     f"params: models: 'mla-lora.{DINOV3}' is also a training of encoder_scan"),
])
def test_a_bad_encoder_axis_is_refused_at_load_naming_the_key(params: dict, message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        settings_from_mapping(params)


def test_a_scan_is_its_own_partition_and_registered_model_and_the_plain_names_stay() -> None:
    partitions = model_partitions(["das", "salt"], list(MODELS))
    keys = set(partitions.get_partition_keys())
    assert {f"{SCAN}|das", "linear-lora|das", "unet|salt"} <= keys
    assert registered_model_name("das", SCAN) == f"geofm-das-{SCAN}"
    assert registered_model_name("das", "linear-lora") == "geofm-das-linear-lora"


@pytest.mark.parametrize("mode", ["frozen", "lora", "full"])
@pytest.mark.parametrize("name", ["vit_small_patch14_dinov2", DINOV3])
def test_the_registry_counts_the_parameters_each_mode_trains(name: str, mode: str) -> None:
    task = get_task("das")
    with torch.device("meta"):
        model = build_model("linear", task, encoder=name, weights="none", finetune=mode)
    grid = model.encoder.patch_grid
    expected = ENCODER_SPECS[name].trainable_parameters(mode, grid, lora_rank=8)
    assert count_parameters(model.encoder, trainable_only=True) == expected


@pytest.fixture(scope="module")
def scanned(tmp_path_factory: pytest.TempPathFactory) -> tuple:
    """One tiny task, the UNet and LINEAR on DINOv2 ViT-S/14 (model.encoder) and on DINOv3 ViT-S/16."""
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("scan")
    settings = load_settings(write_tiny_params(root, ["das"], MODELS))
    materialize_raw(settings, root)
    prepare(settings, root, "das")
    store = RecordingStore()
    outcomes = {model: run_training_stage(settings, root, "das", model, store, launcher="test")
                for model in MODELS}
    return settings, root, store, outcomes


def test_the_scan_trains_its_encoder_in_its_own_run_folder(scanned: tuple) -> None:
    _, root, store, outcomes = scanned
    params = {run.params["model"]: run.params for run in store.runs.values()}
    assert params[SCAN]["encoder"] == DINOV3
    assert params["linear-lora"]["encoder"] == "vit_small_patch14_dinov2"
    assert outcomes[SCAN].best.publication.model.registered_name == f"geofm-das-{SCAN}"
    seed_dir = root / "runs" / "das" / SCAN / SEEDS_DIR / str(outcomes[SCAN].seeds[0].result.seed)
    cost = json.loads((seed_dir / ARTIFACTS_DIR / COST_FILE).read_text())
    assert cost["step_seconds"] > 0 and cost["peak_memory_gib"] > 0


def test_a_finished_scan_training_is_reused(scanned: tuple) -> None:
    settings, root, store, _ = scanned
    runs = len(store.runs)
    again = run_training_stage(settings, root, "das", SCAN, store, launcher="test")
    assert all(seed.reused for seed in again.seeds)
    assert len(store.runs) == runs


def test_the_report_keeps_the_benchmark_tables_and_adds_the_scale_table(scanned: tuple) -> None:
    settings, root, _, outcomes = scanned
    report = build_report(settings, root)
    assert list(report.tables["miou"].dropna(how="all").index) == ["Unet", "DINOv2-LINEAR"]
    scale = report.scale["das"]
    assert list(scale.index) == ["DINOv2 ViT-S/14", "DINOv3 ViT-S/16"]
    assert scale.loc["DINOv3 ViT-S/16", "linear-lora mIoU"] == pytest.approx(outcomes[SCAN].miou)
    assert scale.loc["DINOv2 ViT-S/14", "linear-lora mIoU"] == pytest.approx(outcomes["linear-lora"].miou)
    assert scale.loc["DINOv3 ViT-S/16", "parameters"] == ENCODER_SPECS[DINOV3].parameters
    assert scale.loc["DINOv3 ViT-S/16", "trainable (lora)"] == 221_184
    assert (scale["linear-lora s/step"] > 0).all() and (scale["linear-lora peak GiB"] > 0).all()
    assert "## Encoder scale" in report.markdown and "random initialisation" in report.markdown
    assert "Encoder scale" in (Path(root) / "reports" / "benchmark.md").read_text()


def test_without_a_scan_the_report_has_no_scale_table(tmp_path: Path) -> None:
    settings = load_settings(write_tiny_params(tmp_path, ["das"], ["linear-lora"]))
    assert scanned_encoders(settings) == ["vit_small_patch14_dinov2"]


def test_the_paper_differences_name_a_scans_mode_not_its_encoder() -> None:
    lines = paper_differences(Settings(models=("unet", "mla-lora", f"dpt-frozen.{DINOV3}")))
    assert [line.split(" (")[0] for line in lines if line.startswith("fine-tuning")] == ["fine-tuning frozen"]
