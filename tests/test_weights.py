"""Encoder weight sources: the official DINOv2 checkpoint layout, timm state dicts (.pth and .safetensors,
other grids resampled), random initialisation said once in plain words, and clear errors for bad files."""

from __future__ import annotations

import logging
from pathlib import Path

import huggingface_hub.constants
import pytest
import timm
import torch
from safetensors.torch import save_file
from timm.layers import resample_abs_pos_embed

from training.models import WeightLoadError, build_model
from training.models.patch_grid import official_pos_embed
from training.models.weights import _log_random_encoder, create_vit, random_encoder_notice
from training.tasks import get_task

ENCODER = "vit_small_patch14_dinov2"

pytestmark = pytest.mark.usefixtures("single_torch_thread")


def _random_vit(**kwargs: object) -> torch.nn.Module:
    torch.manual_seed(7)
    return timm.create_model(ENCODER, pretrained=False, num_classes=0, **kwargs)


def _official_layout(vit: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The key layout of dinov2_vits14_pretrain.pth: timm's names plus the masked-modelling token."""
    state = {key: value.clone() for key, value in vit.state_dict().items()}
    state["mask_token"] = torch.zeros(1, vit.embed_dim)
    return state


def test_an_official_dinov2_checkpoint_loads_exactly(tmp_path: Path) -> None:
    source = _random_vit()
    official = _official_layout(source)
    assert official["pos_embed"].shape == (1, 37 * 37 + 1, 384)
    assert {"blocks.0.attn.qkv.weight", "blocks.0.ls1.gamma", "cls_token", "norm.weight"} <= set(official)
    path = tmp_path / "dinov2_vits14_pretrain.pth"
    torch.save(official, path)

    model = build_model("linear", get_task("salt"), weights=path, finetune="full")

    loaded = model.encoder.vit.state_dict()
    assert set(loaded) == set(official) - {"mask_token"}
    for key, value in loaded.items():
        if key != "pos_embed":
            assert torch.equal(value, official[key]), key
    # resampled once to salt's 20 x 20 grid, by the official formula (tests/test_parity.py checks it)
    assert torch.equal(loaded["pos_embed"], official_pos_embed(official["pos_embed"], (20, 20)))
    assert model.weights_source == f"file:{path.resolve()}"


def test_a_state_dict_in_memory_is_a_weight_source() -> None:
    official = _official_layout(_random_vit())
    model = build_model("linear", get_task("das"), weights=official, finetune="frozen")
    loaded = model.encoder.vit.state_dict()
    assert all(torch.equal(value, official[key]) for key, value in loaded.items())  # das: the 37 x 37 grid
    assert model.weights_source == "state dict"
    del official["norm.bias"]
    with pytest.raises(WeightLoadError, match=r"encoder state dict does not fit .*missing keys \[norm.bias"):
        create_vit(ENCODER, official)


def test_a_timm_safetensors_file_of_another_grid_is_resampled(tmp_path: Path) -> None:
    source = _random_vit(img_size=224)  # a 16 x 16 position grid
    path = tmp_path / "vit_s14_224.safetensors"
    save_file(source.state_dict(), str(path))

    vit, _ = create_vit(ENCODER, path)

    expected_pos = resample_abs_pos_embed(source.pos_embed.detach(), new_size=(37, 37), num_prefix_tokens=1)
    torch.testing.assert_close(vit.pos_embed.detach(), expected_pos)
    assert not torch.equal(vit.pos_embed[:, 1:3], torch.zeros_like(vit.pos_embed[:, 1:3]))
    assert torch.equal(vit.blocks[11].mlp.fc2.weight, source.blocks[11].mlp.fc2.weight)
    assert torch.equal(vit.cls_token, source.cls_token)


def test_none_is_said_once_in_plain_words_and_recorded(
    caplog: pytest.LogCaptureFixture, recwarn: pytest.WarningsRecorder
) -> None:
    _log_random_encoder.cache_clear()  # another test may have built a random encoder in this process
    with caplog.at_level(logging.WARNING, logger="geofm"):
        models = [build_model(network, get_task("salt"), weights="none") for network in ("linear", "pup")]
    assert [model.weights_source for model in models] == ["none", "none"]
    notices = [record.getMessage() for record in caplog.records if record.name == "geofm"]
    assert notices == [random_encoder_notice(ENCODER)]
    assert "randomly initialised, not pretrained" in notices[0]
    assert not [warning for warning in recwarn if "initialised" in str(warning.message).lower()]


def test_unet_needs_no_encoder_weights() -> None:
    model = build_model("unet", get_task("salt"), weights="/nowhere/dinov2.pth")
    assert model.weights_source == "none"


def test_the_hub_offline_says_what_to_do(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    with pytest.raises(WeightLoadError, match="Hugging Face hub.*local file.*'none'"):
        create_vit(ENCODER, "hub")


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "dinov2_vits14_pretrain.pth"
    with pytest.raises(FileNotFoundError, match=f"encoder weight file {path} does not exist"):
        create_vit(ENCODER, path)


def test_mismatched_keys_are_named_with_the_file(tmp_path: Path) -> None:
    state = _official_layout(_random_vit())
    state["blocks.0.attention.qkv.weight"] = state.pop("blocks.0.attn.qkv.weight")
    path = tmp_path / "renamed.pth"
    torch.save(state, path)
    with pytest.raises(WeightLoadError) as error:
        create_vit(ENCODER, path)
    message = str(error.value)
    assert str(path) in message
    assert "missing keys [blocks.0.attn.qkv.weight]" in message
    assert "unexpected keys [blocks.0.attention.qkv.weight]" in message


def test_a_tensor_of_the_wrong_shape_is_named(tmp_path: Path) -> None:
    state = _official_layout(_random_vit())
    state["norm.weight"] = torch.ones(383)
    path = tmp_path / "narrow.pth"
    torch.save(state, path)
    with pytest.raises(WeightLoadError) as error:
        create_vit(ENCODER, path)
    assert f"{path} has 1 tensors of the wrong shape, first norm.weight: (383,)" in str(error.value)


def test_an_unreadable_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "truncated.pth"
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(WeightLoadError, match=f"cannot read encoder weight file {path}"):
        create_vit(ENCODER, path)


def test_an_unknown_encoder_names_the_known_ones() -> None:
    with pytest.raises(ValueError, match="unknown encoder 'vit_huge'; known: vit_small_patch14"):
        create_vit("vit_huge", "none")
