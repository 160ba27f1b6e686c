"""The encoder registry against timm (depth, width, patch size, parameter counts), the levels per depth,
every encoder at every task's real size (built on the meta device: no memory, no arithmetic), LoRA on the
same projections in both families, official DINOv3 and DINOv2-reg4 checkpoint layouts, the refused encoders,
and a short training of DINOv3 ViT-S/16 end to end."""

from __future__ import annotations

from pathlib import Path

import pytest
import timm
import torch
from peft.tuners.lora import LoraLayer

from training.encoders import (
    ENCODER_SPECS,
    REFUSED_ENCODERS,
    EncoderRefusedError,
    encoder_spec,
    quarter_levels,
)
from training.losses import build_loss
from training.models import WeightLoadError, build_model, count_parameters
from training.settings import ModelSettings
from training.tasks import TASKS, get_task

PRETRAINED_PATCHES = 37 * 37
LORA_RANK = 8

pytestmark = pytest.mark.usefixtures("single_torch_thread")


def _timm_meta(name: str) -> torch.nn.Module:
    with torch.device("meta"):
        return timm.create_model(name, pretrained=False, num_classes=0)


@pytest.mark.parametrize("name", [*ENCODER_SPECS, *REFUSED_ENCODERS])
def test_the_registry_states_what_timm_builds(name: str) -> None:
    vit = _timm_meta(name)
    if name in REFUSED_ENCODERS:
        assert REFUSED_ENCODERS[name] == count_parameters(vit)
        return
    spec = ENCODER_SPECS[name]
    assert (spec.depth, spec.embed_dim, spec.patch_size) == (len(vit.blocks), vit.embed_dim,
                                                             vit.patch_embed.patch_size[0])
    assert spec.parameters == count_parameters(vit)
    assert spec.registers == vit.num_prefix_tokens - 1  # the class token, then the registers


def test_timm_ships_no_dinov2_or_dinov3_vit_the_registry_forgets() -> None:
    """The `_qkvb` twins (separate q/v biases added outside `attn.qkv`, which LoRA would then miss) and the
    tiny one (only as `_qkvb`) are left out on purpose."""
    shipped = {name for name in timm.list_models("*dinov*") if "qkvb" not in name}
    assert shipped == set(ENCODER_SPECS) | set(REFUSED_ENCODERS)


def test_levels_are_the_quarters_of_the_depth_as_the_papers_pick_them() -> None:
    assert quarter_levels(12) == (2, 5, 8, 11)  # DPT ViT-B, SETR: blocks 3/6/9/12
    assert quarter_levels(24) == (5, 11, 17, 23)  # DPT ViT-L: blocks 6/12/18/24
    assert quarter_levels(40) == (9, 19, 29, 39)  # DINOv2 ViT-g segmentation: blocks 10/20/30/40
    with pytest.raises(ValueError, match="quarters"):
        quarter_levels(30)


@pytest.mark.parametrize("name", REFUSED_ENCODERS)
def test_huge_encoders_are_refused_naming_the_memory_they_need(name: str) -> None:
    with pytest.raises(EncoderRefusedError, match=r"GiB.*full fine-tuning with AdamW about [\d.]+ GiB"):
        encoder_spec(name)
    with pytest.raises(EncoderRefusedError, match=name):
        build_model("linear", get_task("salt"), encoder=name, weights="none")
    with pytest.raises(ValueError, match="GiB"):
        ModelSettings(encoder=name)


def _meta_model(network: str, task_key: str, name: str, finetune: str = "frozen") -> torch.nn.Module:
    with torch.device("meta"):
        return build_model(network, get_task(task_key), encoder=name, weights="none", finetune=finetune)


def _feature_shapes(model: torch.nn.Module, shape: tuple[int, int]) -> list[tuple[int, ...]]:
    captured: list[list[torch.Tensor]] = []
    model.encoder.register_forward_hook(lambda _module, _inputs, output: captured.append(output))
    logits = model(torch.zeros(1, 1, *shape, device="meta"))
    assert tuple(logits.shape[-2:]) == shape
    return [tuple(feature.shape) for feature in captured[0]]


@pytest.mark.parametrize("name", ENCODER_SPECS)
def test_every_encoder_at_every_tasks_real_size(name: str) -> None:
    """The grid follows the patch size (covering the ViT input of the paper's grid), the encoder gives four
    maps of its width from its levels, and its parameters are timm's with the task grid's position
    embeddings (DINOv2) or exactly timm's (DINOv3: rotary, nothing to resample)."""
    spec = ENCODER_SPECS[name]
    for task in TASKS.values():
        model = _meta_model("dpt", task.key, name)
        grid = model.encoder.patch_grid
        assert model.encoder.patch_size == spec.patch_size
        assert grid == task.for_patch_size(spec.patch_size).patch_grid
        assert all(pixels >= paper for pixels, paper in zip(model.vit_input_shape, task.vit_input_shape,
                                                             strict=True))
        assert model.encoder.levels == spec.levels
        assert _feature_shapes(model, task.shape) == [(1, spec.embed_dim, *grid)] * 4
        position_change = (grid[0] * grid[1] - PRETRAINED_PATCHES) * spec.embed_dim
        expected = spec.parameters + (position_change if spec.family == "dinov2" else 0)
        assert count_parameters(model.encoder) == expected


def test_seams_grid_for_patch_16_covers_its_1008_by_784_pixels() -> None:
    assert get_task("seam").for_patch_size(16).patch_grid == (63, 49)
    assert get_task("salt").for_patch_size(16).vit_input_shape == (288, 288)


@pytest.mark.parametrize("name", ["vit_small_patch16_dinov3", "vit_large_patch14_reg4_dinov2",
                                  "vit_giant_patch14_dinov2"])
@pytest.mark.parametrize("network", ["linear", "pup", "mla"])
def test_every_decoder_follows_the_encoders_width(name: str, network: str) -> None:
    spec = ENCODER_SPECS[name]
    model = _meta_model(network, "das", name)
    grid = get_task("das").for_patch_size(spec.patch_size).patch_grid  # 37 x 37 of 14, 33 x 33 of 16
    assert _feature_shapes(model, (512, 512))[-1] == (1, spec.embed_dim, *grid)


@pytest.mark.parametrize("name", ["vit_small_patch14_dinov2", "vit_small_patch14_reg4_dinov2",
                                  "vit_small_patch16_dinov3", "vit_large_patch16_dinov3",
                                  "vit_giant_patch14_dinov2"])
def test_lora_wraps_the_same_projections_in_every_family(name: str) -> None:
    spec = ENCODER_SPECS[name]
    encoder = _meta_model("linear", "salt", name, finetune="lora").encoder
    wrapped = sorted(name.split("blocks.", 1)[1].split(".", 1)[1] for name, module in
                     encoder.named_modules() if isinstance(module, LoraLayer))
    assert wrapped == sorted(["attn.qkv", "attn.proj"] * spec.depth)
    width = spec.embed_dim
    lora_parameters = spec.depth * LORA_RANK * ((width + 3 * width) + (width + width))
    assert count_parameters(encoder, trainable_only=True) == lora_parameters


def _official_dinov3_layout(vit: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The key layout of the official DINOv3 checkpoints: storage tokens, `ls1.gamma`, a qkv bias with its
    mask, the rotary periods and the masked-modelling token."""
    state: dict[str, torch.Tensor] = {}
    for key, value in vit.state_dict().items():
        key = key.replace("reg_token", "storage_tokens").replace("gamma_1", "ls1.gamma")
        state[key.replace("gamma_2", "ls2.gamma")] = value.clone()
    for block in range(len(vit.blocks)):
        state[f"blocks.{block}.attn.qkv.bias"] = torch.zeros(3 * vit.embed_dim)
        state[f"blocks.{block}.attn.qkv.bias_mask"] = torch.ones(3 * vit.embed_dim)
    state["rope_embed.periods"] = torch.ones(vit.embed_dim // vit.blocks[0].attn.num_heads // 4)
    state["mask_token"] = torch.zeros(1, vit.embed_dim)
    return state


def test_an_official_dinov3_checkpoint_loads_exactly(tmp_path: Path) -> None:
    torch.manual_seed(3)
    source = timm.create_model("vit_small_patch16_dinov3", pretrained=False, num_classes=0)
    path = tmp_path / "dinov3_vits16_pretrain.pth"
    torch.save(_official_dinov3_layout(source), path)
    model = build_model("linear", get_task("das"), encoder="vit_small_patch16_dinov3", weights=path,
                        finetune="frozen")
    loaded = model.encoder.vit.state_dict()
    assert set(loaded) == set(source.state_dict())
    for key, value in source.state_dict().items():
        assert torch.equal(loaded[key], value), key


def test_a_dinov3_checkpoint_with_missing_blocks_names_the_first_bad_keys(tmp_path: Path) -> None:
    source = timm.create_model("vit_small_patch16_dinov3", pretrained=False, num_classes=0)
    state = {key: value for key, value in _official_dinov3_layout(source).items()
             if not key.startswith("blocks.11.")}
    path = tmp_path / "truncated.pth"
    torch.save(state, path)
    with pytest.raises(WeightLoadError, match=r"missing keys \[blocks\.11\.attn\.proj\.bias"):
        build_model("linear", get_task("das"), encoder="vit_small_patch16_dinov3", weights=path)


def test_an_official_dinov2_register_checkpoint_folds_the_class_position_into_the_class_token() -> None:
    """The official reg4 checkpoints embed the class token's position (1 + 37 x 37 rows); timm embeds no
    prefix token, so that row joins the class token, as the official forward adds it."""
    torch.manual_seed(5)
    source = timm.create_model("vit_small_patch14_reg4_dinov2", pretrained=False, num_classes=0)
    official = {key: value.clone() for key, value in source.state_dict().items()}
    class_position = torch.randn(1, 1, source.embed_dim)
    official["pos_embed"] = torch.cat([class_position, official["pos_embed"]], dim=1)
    official["mask_token"] = torch.zeros(1, source.embed_dim)
    model = build_model("linear", get_task("das"), encoder="vit_small_patch14_reg4_dinov2", weights=official,
                        finetune="frozen")
    vit = model.encoder.vit
    assert torch.equal(vit.cls_token, source.cls_token + class_position)
    assert torch.equal(vit.pos_embed, source.pos_embed)  # das: the pretrained 37 x 37 grid as it is


def test_dinov3_small_trains_end_to_end_with_lora() -> None:
    """A few steps of the paper's loss on a tiny task: the loss falls, only LoRA factors and the decoder
    move."""
    torch.manual_seed(0)
    task = get_task("das").with_shape((32, 32))
    model = build_model("dpt", task, encoder="vit_small_patch16_dinov3", weights="none", finetune="lora")
    frozen_before = model.encoder.vit.model.blocks[0].attn.qkv.base_layer.weight.clone()
    x = torch.rand(4, 1, 32, 32) * 255
    y = (x[:, 0] > 127).long()
    loss_fn = build_loss("weighted_dice", task.num_classes)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    losses = []
    for _ in range(8):
        loss = loss_fn(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]
    assert torch.equal(model.encoder.vit.model.blocks[0].attn.qkv.base_layer.weight, frozen_before)


@pytest.mark.parametrize("name", ["vit_small_patch14_reg4_dinov2", "vit_small_patch16_dinov3"])
def test_the_authors_per_forward_position_grid_is_refused_without_a_class_position(name: str) -> None:
    """`position_grid: source` resamples a grid that embeds the class token: registers embed none and
    DINOv3's positions are rotary."""
    with torch.device("meta"), pytest.raises(ValueError, match="position_grid 'source'"):
        build_model("linear", get_task("das"), encoder=name, weights="none", position_grid="source")
