"""The segmentation networks: exact parameter counts, label-sized logits at every task's real size, the
encoder's feature maps, and a few optimisation steps that lower the loss of every network."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from training.models import NETWORKS, build_model, count_parameters
from training.models.decoders import DECODERS
from training.models.unet import UNet
from training.tasks import TASKS, get_task

VIT_S_EMBED = 384
VIT_S_PARAMETERS = 22_056_192
# The authors' decoders measured on their code (ViT-S/14), see REFERENCE.md.
PAPER_PARAMETER_COUNTS = {
    6: {"linear": 2_310, "pup": 915_270, "mla": 10_969_350, "dpt": 13_579_622, "unet": 4_317_990},
    2: {"linear": 770, "pup": 914_882, "mla": 10_967_810, "dpt": 13_579_490, "unet": 4_317_858},
}
VIT_NETWORKS = tuple(name for name in NETWORKS if name != "unet")

pytestmark = [
    pytest.mark.usefixtures("single_torch_thread"),
    pytest.mark.filterwarnings("ignore:weights='none'"),
]


def test_networks_are_the_benchmarks_five() -> None:
    assert NETWORKS == ("unet", "linear", "pup", "mla", "dpt")


@pytest.mark.parametrize("num_classes", sorted(PAPER_PARAMETER_COUNTS))
@pytest.mark.parametrize("network", NETWORKS)
def test_parameter_counts_match_the_authors(network: str, num_classes: int) -> None:
    module = UNet(1, num_classes) if network == "unet" else DECODERS[network](VIT_S_EMBED, num_classes)
    assert count_parameters(module) == PAPER_PARAMETER_COUNTS[num_classes][network]


def test_build_model_composes_vit_s_and_the_decoder() -> None:
    model = build_model("dpt", get_task("seam"), finetune="full")
    assert model.encoder.embed_dim == VIT_S_EMBED
    assert count_parameters(model.encoder) == VIT_S_PARAMETERS
    assert count_parameters(model) == VIT_S_PARAMETERS + PAPER_PARAMETER_COUNTS[6]["dpt"]


def test_vit_b_is_an_option_and_the_decoders_follow_its_width() -> None:
    model = build_model("linear", get_task("salt").with_shape((28, 28)), encoder="vit_base_patch14_dinov2")
    assert model.encoder.embed_dim == 768
    assert count_parameters(model.decoder) == 768 * 2 + 2
    with torch.inference_mode():
        assert model.eval()(torch.randn(1, 1, 28, 28)).shape == (1, 2, 28, 28)


def test_encoder_returns_normed_blocks_3_6_9_12_as_maps() -> None:
    model = build_model("mla", get_task("salt"), finetune="frozen")
    vit = model.encoder.vit
    x = torch.randn(1, 3, 28, 42)
    with torch.inference_mode():
        features = model.encoder(x)
        tokens = vit.norm_pre(vit._pos_embed(vit.patch_embed(x)))
        expected = []
        for block in vit.blocks:
            tokens = block(tokens)
            expected.append(vit.norm(tokens)[:, vit.num_prefix_tokens :])
        final = vit.forward_features(x)[:, vit.num_prefix_tokens :]
    assert [tuple(f.shape) for f in features] == [(1, VIT_S_EMBED, 2, 3)] * 4
    blocks_3_6_9_12 = (expected[2], expected[5], expected[8], expected[11])
    for feature, block_output in zip(features, blocks_3_6_9_12, strict=True):
        torch.testing.assert_close(feature.flatten(2).transpose(1, 2), block_output)
    torch.testing.assert_close(features[-1].flatten(2).transpose(1, 2), final)


def test_encoder_rejects_a_size_off_the_patch_grid() -> None:
    model = build_model("linear", get_task("salt"), finetune="frozen")
    with pytest.raises(ValueError, match="30x42 is not a multiple of the patch size 14"):
        model.encoder(torch.zeros(1, 3, 30, 42))


@pytest.mark.parametrize("network", NETWORKS)
def test_logits_come_back_at_an_odd_input_size(network: str) -> None:
    task = get_task("seam").with_shape((30, 45))  # ViT input 42 x 56, UNet pads to 32 x 48
    model = build_model(network, task).eval()
    with torch.inference_mode():
        logits = model(torch.randn(2, 1, 30, 45))
    assert logits.shape == (2, 6, 30, 45)
    assert torch.isfinite(logits).all()


def test_a_batch_that_is_not_one_channel_is_refused() -> None:
    model = build_model("unet", get_task("salt"))
    with pytest.raises(ValueError, match=r"\(B, 1, H, W\), got \(1, 3, 32, 32\)"):
        model(torch.zeros(1, 3, 32, 32))


def test_an_unknown_network_names_the_known_ones() -> None:
    with pytest.raises(ValueError, match="unknown network 'segformer'; known networks: unet, linear, pup"):
        build_model("segformer", get_task("salt"))


@pytest.mark.slow
@pytest.mark.parametrize("task_key", list(TASKS))
def test_every_network_gives_label_sized_logits_at_the_tasks_real_size(task_key: str) -> None:
    """Forward passes at the real size, batch 1. The ViT is run once per task (through the LINEAR model,
    whose forward hook keeps its features) and every decoder reads those features at their real size."""
    task = get_task(task_key)
    expected = (1, task.num_classes, *task.shape)
    section = torch.randn(1, 1, *task.shape)
    models = {name: build_model(name, task, finetune="frozen").eval() for name in NETWORKS}
    captured: list[list[torch.Tensor]] = []
    models["linear"].encoder.register_forward_hook(lambda _module, _inputs, output: captured.append(output))
    with torch.inference_mode():
        assert models["linear"](section).shape == expected
        assert models["unet"](section).shape == expected
        (features,) = captured
        assert [tuple(f.shape) for f in features] == [(1, VIT_S_EMBED, *task.patch_grid)] * 4
        for name in VIT_NETWORKS:
            assert models[name].decoder(features, task.shape).shape == expected, name


def _learnable_batch(size: int, num_classes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Two raw sections whose class is a checkerboard of 14-pixel squares, written into the amplitude."""
    rows = torch.arange(size)[:, None] // 14
    cols = torch.arange(size)[None, :] // 14
    labels = torch.stack([(rows + cols) % num_classes, (rows + 2 * cols) % num_classes])
    generator = torch.Generator().manual_seed(0)
    inputs = 50.0 + 20.0 * labels.float() + torch.randn(labels.shape, generator=generator)
    return inputs[:, None], labels


@pytest.mark.parametrize("network", NETWORKS)
def test_a_few_steps_lower_the_loss(network: str) -> None:
    torch.manual_seed(0)
    task = get_task("salt").with_shape((56, 56))
    model = build_model(network, task, input_mean=60.0, input_std=10.0).train()
    inputs, labels = _learnable_batch(56, task.num_classes)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=3e-4)
    losses = []
    for _ in range(10):
        loss = F.cross_entropy(model(inputs), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.6 * losses[0], losses
