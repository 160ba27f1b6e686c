"""Fine-tuning modes: which parameters train in each, LoRA's exact size, merged LoRA equal to unmerged,
and a merged model that survives pickling (MLflow logs models as pickles)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from peft.tuners.lora import LoraLayer

from training.models import FINETUNE_MODES, NETWORKS, build_model, count_parameters, merge_lora
from training.tasks import get_task

VIT_S_PARAMETERS = 22_056_192  # with the pretrained 37 x 37 position grid
VIT_S_LORA_PARAMETERS = 221_184  # rank 8 on qkv (384 -> 1152) and proj (384 -> 384) of 12 blocks
SALT_GRID = (20 * 20 - 37 * 37) * 384  # the encoder holds salt's 20 x 20 position grid, resampled once

pytestmark = pytest.mark.usefixtures("single_torch_thread")

EXPECTED_ENCODER_TRAINABLE = {"frozen": 0, "full": VIT_S_PARAMETERS + SALT_GRID,
                              "lora": VIT_S_LORA_PARAMETERS}


@pytest.mark.parametrize("mode", list(FINETUNE_MODES))
def test_trainable_parameters_per_mode(mode: str) -> None:
    model = build_model("pup", get_task("salt"), finetune=mode)
    assert model.finetune_mode == mode
    assert count_parameters(model.encoder, trainable_only=True) == EXPECTED_ENCODER_TRAINABLE[mode]
    assert count_parameters(model.decoder, trainable_only=True) == count_parameters(model.decoder) == 914_882
    base_parameters = count_parameters(model.encoder) - (VIT_S_LORA_PARAMETERS if mode == "lora" else 0)
    assert base_parameters == VIT_S_PARAMETERS + SALT_GRID


def test_lora_trains_only_attention_adapters_of_every_block() -> None:
    model = build_model("linear", get_task("salt"), finetune="lora", lora_rank=8)
    trainable = [name for name, p in model.encoder.named_parameters() if p.requires_grad]
    adapted = {name.split(".lora_")[0].split("model.")[-1] for name in trainable}
    assert adapted == {f"blocks.{i}.attn.{layer}" for i in range(12) for layer in ("qkv", "proj")}
    assert all(".lora_A." in name or ".lora_B." in name for name in trainable)


@pytest.mark.parametrize("mode", list(FINETUNE_MODES))
def test_unet_ignores_the_mode_and_trains_fully(mode: str) -> None:
    model = build_model("unet", get_task("seam"), finetune=mode)
    assert count_parameters(model, trainable_only=True) == count_parameters(model) == 4_317_990
    assert model.finetune_mode == "full"


def test_an_unknown_mode_names_the_known_ones() -> None:
    with pytest.raises(ValueError, match="mode 'partial'; known: frozen, full, lora"):
        build_model("linear", get_task("salt"), finetune="partial")


def test_merged_lora_gives_the_unmerged_outputs_and_survives_pickling(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = build_model("mla", get_task("salt").with_shape((42, 56)), finetune="lora").eval()
    with torch.no_grad():  # trained-looking adapters: peft starts B at zero, which would merge trivially
        for name, parameter in model.named_parameters():
            if ".lora_B." in name:
                parameter.normal_(std=0.05)
    section = torch.randn(2, 1, 42, 56)

    merged = merge_lora(model)

    assert not any(isinstance(module, LoraLayer) for module in merged.modules())
    assert any(isinstance(module, LoraLayer) for module in model.modules())
    with torch.inference_mode():
        unmerged_logits = model(section)
        merged_logits = merged(section)
    torch.testing.assert_close(merged_logits, unmerged_logits, atol=1e-5, rtol=1e-5)
    base_qkv = model.encoder.vit.model.blocks[0].attn.qkv.base_layer.weight
    assert not torch.allclose(merged.encoder.vit.blocks[0].attn.qkv.weight, base_qkv)

    path = tmp_path / "model.pt"
    torch.save(merged, path)
    restored = torch.load(path, weights_only=False).eval()
    with torch.inference_mode():
        assert torch.equal(restored(section), merged_logits)
    assert restored.weights_source == "none"
    assert restored.finetune_mode == "lora"


@pytest.mark.parametrize("network", NETWORKS)
def test_merging_a_model_without_lora_copies_it(network: str) -> None:
    model = build_model(network, get_task("salt").with_shape((28, 28)), finetune="full").eval()
    section = torch.randn(1, 1, 28, 28)
    copy = merge_lora(model)
    assert copy is not model
    with torch.inference_mode():
        assert torch.equal(copy(section), model(section))
