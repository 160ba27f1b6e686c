"""Checkpoints written in the authors' layout (seeded random values, their key names and shapes) import
into geofm models whose logits equal the authors' forward, re-implemented in tests/authors_reference.py."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from authors_reference import (
    authors_logits,
    decoder_layout,
    encoder_layout,
    parameter_count,
    random_state,
)

from training.models import count_parameters
from training.models.authors import AuthorsCheckpointError, load_authors_checkpoint
from training.tasks import get_task

SECTION = (28, 42)  # a 2 x 3 patch grid; the UNet's bottleneck is 1 x 2
TASK = get_task("seam").with_shape(SECTION)  # 6 classes
# The decoders' trainable parameters in the authors' code (REFERENCE.md), a check on the layouts written here.
PAPER_COUNTS = {"linear": 2_310, "pup": 915_270, "mla": 10_969_350, "dpt": 13_579_622, "unet": 4_317_990}
VIT_S_WITH_MASK_TOKEN = 22_056_192 + 384
LORA_PARAMETERS = 221_184
TOLERANCE = 1e-5  # of the largest logit, in float32 (seen: 4e-7 to 1.5e-6)

pytestmark = pytest.mark.usefixtures("single_torch_thread")


def _section(seed: int = 0) -> np.ndarray:
    """A raw float32 section with values in [0, 255), as the authors' uint8 cast expects."""
    return (np.random.default_rng(seed).random(SECTION) * 255).astype(np.float32)


def _save(state: dict[str, torch.Tensor], path: Path) -> Path:
    torch.save(state, path)
    return path


def _relative_error(got: torch.Tensor, expected: torch.Tensor) -> float:
    return float((got - expected).abs().max() / expected.abs().max())


def _geofm_logits(model: torch.nn.Module, section: np.ndarray,
                  dtype: torch.dtype = torch.float32) -> torch.Tensor:
    with torch.inference_mode():
        return model.to(dtype)(torch.from_numpy(section).to(dtype)[None, None]).double()


def _checkpoint(network: str, lora: bool = False, seed: int = 1) -> dict[str, torch.Tensor]:
    layout = decoder_layout(network, TASK.num_classes)
    if network != "unet":
        layout = encoder_layout(lora) | layout
    return random_state(layout, seed)


@pytest.mark.parametrize("network", sorted(PAPER_COUNTS))
def test_the_layouts_written_here_have_the_authors_parameter_counts(network: str) -> None:
    assert parameter_count(decoder_layout(network, 6)) == PAPER_COUNTS[network]
    assert parameter_count(encoder_layout(lora=False)) == VIT_S_WITH_MASK_TOKEN
    assert parameter_count(encoder_layout(lora=True)) == VIT_S_WITH_MASK_TOKEN + LORA_PARAMETERS


@pytest.mark.parametrize("network", ["linear", "pup", "mla", "dpt", "unet"])
def test_an_imported_checkpoint_gives_the_authors_logits(network: str, tmp_path: Path) -> None:
    state = _checkpoint(network)
    model = load_authors_checkpoint(_save(state, tmp_path / "unfrozen_small_maxiou_valid.pth"), network, TASK)
    section = _section()

    expected = authors_logits(network, state, section, TASK.patch_grid)
    got = _geofm_logits(model, section)

    assert got.shape == expected.shape == (1, TASK.num_classes, *SECTION)
    assert _relative_error(got, expected) < TOLERANCE
    assert model.input_scaling == "authors" and model.weights_source.startswith("authors:")
    assert not model.training


def test_in_float64_the_two_forwards_are_one_computation(tmp_path: Path) -> None:
    state = _checkpoint("mla")
    model = load_authors_checkpoint(_save(state, tmp_path / "mla.pth"), "mla", TASK)
    section = _section()
    expected = authors_logits("mla", state, section, TASK.patch_grid)
    assert _relative_error(_geofm_logits(model, section, torch.float64), expected) < 1e-12


def test_a_lora_checkpoint_with_its_second_file(tmp_path: Path) -> None:
    state = _checkpoint("dpt", lora=True)
    factors = {key: value for key, value in state.items() if ".lora_" in key}
    # The main file's factors are overridden by the LoRA file's, as the authors load the two in that order.
    stale = {key: (torch.zeros_like(value) if key in factors else value) for key, value in state.items()}
    model = load_authors_checkpoint(_save(stale, tmp_path / "lora_small_maxiou_valid.pth"), "dpt", TASK,
                                    finetune="lora", lora_path=_save(factors, tmp_path / "lora.pth"))
    section = _section(1)

    expected = authors_logits("dpt", state, section, TASK.patch_grid)
    without_lora = authors_logits("dpt", {k: v for k, v in state.items() if k not in factors}, section,
                                  TASK.patch_grid)

    got = _geofm_logits(model, section)
    assert _relative_error(got, expected) < TOLERANCE
    assert _relative_error(without_lora, expected) > 100 * TOLERANCE  # the factors matter in this test
    assert count_parameters(model.encoder, trainable_only=True) == LORA_PARAMETERS


def test_weights_that_already_hold_the_lora_update_are_used_as_they_are(tmp_path: Path) -> None:
    state = _checkpoint("linear", lora=True)
    merged = dict(state)
    for layer in [key[: -len(".lora_A")] for key in state if key.endswith(".lora_A")]:
        update = state[f"{layer}.lora_B"] @ state[f"{layer}.lora_A"] / 8
        merged[f"{layer}.weight"] = state[f"{layer}.weight"] + update
    model = load_authors_checkpoint(_save(merged, tmp_path / "linear.pth"), "linear", TASK, finetune="lora",
                                    lora_in_weights=True)
    section = _section(2)
    # What the authors' network computed while training in eval mode: the merged W alone.
    expected = authors_logits("linear", {k: v for k, v in merged.items() if ".lora_" not in k}, section,
                              TASK.patch_grid)
    assert _relative_error(_geofm_logits(model, section), expected) < TOLERANCE


def test_an_imported_model_pickles_and_takes_raw_sections(tmp_path: Path) -> None:
    model = load_authors_checkpoint(_save(_checkpoint("linear"), tmp_path / "linear.pth"), "linear", TASK)
    section = torch.from_numpy(_section())[None, None]
    restored = pickle.loads(pickle.dumps(model))
    with torch.inference_mode():
        assert torch.equal(restored(section), model(section))


def test_a_missing_and_an_unexpected_key_are_named_with_the_file(tmp_path: Path) -> None:
    state = _checkpoint("mla")
    state["decoder.net2_in.layer_one.0.weight"] = state.pop("decoder.net2_in.layer_1.0.weight")
    path = _save(state, tmp_path / "renamed.pth")
    with pytest.raises(AuthorsCheckpointError) as error:
        load_authors_checkpoint(path, "mla", TASK)
    message = str(error.value)
    assert str(path) in message
    assert "missing keys [decoder.net2_in.layer_1.0.weight] (1 in all)" in message
    assert "unexpected keys [decoder.net2_in.layer_one.0.weight] (1 in all)" in message


def test_a_checkpoint_of_another_class_count_is_named_by_its_first_wrong_shape(tmp_path: Path) -> None:
    path = _save(_checkpoint("linear"), tmp_path / "six_classes.pth")
    with pytest.raises(AuthorsCheckpointError, match=r"has 2 tensors of the wrong shape, first decoder.bias: "
                                                     r"\(6,\) in the file, \(2,\) in the model"):
        load_authors_checkpoint(path, "linear", get_task("salt").with_shape(SECTION))


def test_a_missing_encoder_key_is_named_with_the_file(tmp_path: Path) -> None:
    state = _checkpoint("linear")
    del state["encoder.blocks.3.ls1.gamma"]
    path = _save(state, tmp_path / "no_gamma.pth")
    with pytest.raises(AuthorsCheckpointError, match=rf"{path}.*missing keys \[blocks.3.ls1.gamma\]"):
        load_authors_checkpoint(path, "linear", TASK)


def test_lora_factors_must_match_the_mode(tmp_path: Path) -> None:
    with_factors = _save(_checkpoint("linear", lora=True), tmp_path / "lora.pth")
    with pytest.raises(AuthorsCheckpointError, match=r"LoRA factors \(encoder.blocks.0.attn.proj.lora_A"):
        load_authors_checkpoint(with_factors, "linear", TASK, finetune="full")
    without = _save(_checkpoint("linear"), tmp_path / "full.pth")
    with pytest.raises(AuthorsCheckpointError, match="no LoRA factors, which does not fit finetune='lora'"):
        load_authors_checkpoint(without, "linear", TASK, finetune="lora")


def test_a_lora_file_with_other_keys_is_refused(tmp_path: Path) -> None:
    path = _save(_checkpoint("linear", lora=True), tmp_path / "lora_small.pth")
    foreign = _save({"decoder.weight": torch.zeros(6, 384, 1, 1)}, tmp_path / "not_lora.pth")
    with pytest.raises(AuthorsCheckpointError, match=rf"LoRA file {foreign} holds keys .*\[decoder.weight\]"):
        load_authors_checkpoint(path, "linear", TASK, finetune="lora", lora_path=foreign)


def test_an_unreadable_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "truncated.pth"
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(AuthorsCheckpointError, match=f"cannot read authors' checkpoint {path}"):
        load_authors_checkpoint(path, "linear", TASK)
