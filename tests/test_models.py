"""The segmentation networks: exact parameter counts, label-sized logits at every task's real size, the
encoder's feature maps, and a few optimisation steps that lower the loss of every network."""

from __future__ import annotations

import pickle

import pytest
import torch
import torch.nn.functional as F

from training.models import NETWORKS, build_model, count_parameters
from training.models.decoders import DECODERS
from training.models.unet import UNet
from training.tasks import TASKS, get_task

VIT_S_EMBED = 384
VIT_S_PARAMETERS = 22_056_192  # with the pretrained 37 x 37 + 1 position embeddings
PRETRAINED_PATCHES = 37 * 37
# The authors' decoders measured on their code (ViT-S/14), see REFERENCE.md.
PAPER_PARAMETER_COUNTS = {
    6: {"linear": 2_310, "pup": 915_270, "mla": 10_969_350, "dpt": 13_579_622, "unet": 4_317_990},
    2: {"linear": 770, "pup": 914_882, "mla": 10_967_810, "dpt": 13_579_490, "unet": 4_317_858},
}
VIT_NETWORKS = tuple(name for name in NETWORKS if name != "unet")

pytestmark = pytest.mark.usefixtures("single_torch_thread")


def test_networks_are_the_benchmarks_five() -> None:
    assert NETWORKS == ("unet", "linear", "pup", "mla", "dpt")


@pytest.mark.parametrize("num_classes", sorted(PAPER_PARAMETER_COUNTS))
@pytest.mark.parametrize("network", NETWORKS)
def test_parameter_counts_match_the_authors(network: str, num_classes: int) -> None:
    module = UNet(1, num_classes) if network == "unet" else DECODERS[network](VIT_S_EMBED, num_classes)
    assert count_parameters(module) == PAPER_PARAMETER_COUNTS[num_classes][network]


def test_build_model_composes_vit_s_and_the_decoder() -> None:
    """The encoder holds the position embeddings of the task's grid (resampled once), not the 37 x 37."""
    model = build_model("dpt", get_task("seam"), finetune="full")
    assert model.encoder.embed_dim == VIT_S_EMBED
    encoder = VIT_S_PARAMETERS + (72 * 56 - PRETRAINED_PATCHES) * VIT_S_EMBED
    assert count_parameters(model.encoder) == encoder
    assert count_parameters(model) == encoder + PAPER_PARAMETER_COUNTS[6]["dpt"]


def test_vit_b_is_an_option_and_the_decoders_follow_its_width() -> None:
    model = build_model("linear", get_task("salt").with_shape((28, 28)), encoder="vit_base_patch14_dinov2")
    assert model.encoder.embed_dim == 768
    assert count_parameters(model.decoder) == 768 * 2 + 2
    with torch.inference_mode():
        assert model.eval()(torch.randn(1, 1, 28, 28)).shape == (1, 2, 28, 28)


def test_encoder_returns_normed_blocks_3_6_9_12_as_maps() -> None:
    model = build_model("mla", get_task("salt").with_shape((28, 42)), finetune="frozen")
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


def test_encoder_rejects_a_size_off_its_patch_grid() -> None:
    model = build_model("linear", get_task("salt"), finetune="frozen")
    with pytest.raises(ValueError, match="encoder input 30x42 does not fit the encoder's 20x20 patch grid"):
        model.encoder(torch.zeros(1, 3, 30, 42))


def test_dpt_logits_are_never_negative() -> None:
    """The authors' DPT head ends in a ReLU (parameter counts unchanged, tested above)."""
    torch.manual_seed(0)
    model = build_model("dpt", get_task("seam").with_shape((28, 42)), finetune="frozen").eval()
    with torch.inference_mode():
        logits = model(torch.randn(2, 1, 28, 42))
    assert isinstance(model.decoder.head[-1], torch.nn.ReLU)
    assert logits.min() == 0 and logits.max() > 0


@pytest.mark.parametrize("network", NETWORKS)
def test_authors_input_scaling_is_carried_by_the_model(network: str) -> None:
    """A model built with input_scaling="authors" takes raw sections, also after pickling (as MLflow logs it),
    and ignores the z-score statistics."""
    task = get_task("salt").with_shape((30, 45))
    torch.manual_seed(0)
    model = build_model(network, task, input_scaling="authors", unet_forward="authors").eval()
    torch.manual_seed(0)
    other_stats = build_model(network, task, input_scaling="authors", unet_forward="authors",
                              input_mean=50.0, input_std=9.0).eval()
    section = torch.rand(1, 1, 30, 45) * 255
    restored = pickle.loads(pickle.dumps(model))
    with torch.inference_mode():
        logits = model(section)
        assert torch.equal(restored(section), logits)
        assert torch.equal(other_stats(section), logits)
    assert restored.input_scaling == "authors"


def test_unknown_input_scaling_and_unet_forward_name_the_known_ones() -> None:
    task = get_task("salt")
    with pytest.raises(ValueError, match="unknown input scaling 'minmax'; known: zscore, authors"):
        build_model("unet", task, input_scaling="minmax")
    with pytest.raises(ValueError, match="unknown UNet forward 'keras'; known: geofm, authors"):
        build_model("unet", task, unet_forward="keras")


def _bottleneck_and_first_stage_input(model: torch.nn.Module, section: torch.Tensor) -> list[torch.Tensor]:
    seen: list[torch.Tensor] = []
    model.unet.downs[-1].register_forward_hook(lambda _module, _inputs, output: seen.append(output))
    model.unet.ups[0].register_forward_hook(lambda _module, inputs, _output: seen.append(inputs[0]))
    with torch.inference_mode():
        model(section)
    return seen


def test_the_authors_unet_forward_zero_pads_the_bottleneck() -> None:
    """Same weights, two forwards: ours upsamples the bottleneck into the first decoder stage, the authors'
    zero-pads it there (centred), as their U_Net does after discarding its upsampled copy."""
    task = get_task("seam").with_shape((32, 48))
    torch.manual_seed(0)
    ours = build_model("unet", task).eval()
    authors = build_model("unet", task, unet_forward="authors").eval()
    authors.load_state_dict(ours.state_dict())
    section = torch.randn(1, 1, 32, 48)

    bottleneck, joined = _bottleneck_and_first_stage_input(authors, section)
    assert joined.shape[-2:] == (4, 6) and bottleneck.shape[-2:] == (2, 3)
    assert torch.equal(joined[..., 1:3, 1:4], bottleneck)
    assert joined[..., 0, :].abs().max() == 0 and joined[..., :, 0].abs().max() == 0

    bottleneck, joined = _bottleneck_and_first_stage_input(ours, section)
    expected = F.interpolate(bottleneck, size=(4, 6), mode="bilinear", align_corners=True)
    torch.testing.assert_close(joined, expected, rtol=0, atol=0)


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
    with pytest.raises(ValueError, match="unknown network 'segformer'; known: unet, linear, pup"):
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
