"""Forward parity with the authors' code, piece by piece: the position embeddings resampled once by the
official DINOv2 formula (encoder maps against tests/authors_reference.py), the `authors` input scaling
against numpy + Pillow + torchvision themselves, and the UNet's input."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from authors_reference import (
    authors_unet_input,
    authors_vit_input,
    encoder_layout,
    official_pos_embed,
    random_state,
    vit_maps,
)
from PIL import Image
from timm.layers import resample_abs_pos_embed

from training.models import build_model
from training.models.input_scaling import INPUT_SCALINGS
from training.models.patch_grid import official_pos_embed as geofm_pos_embed
from training.models.pil_resize import numpy_uint8, pil_bilinear_resize
from training.tasks import TASKS, get_task

TOLERANCE = 1e-5  # of the largest value, float32
NO_STATS = (torch.tensor(0.0), torch.tensor(1.0))

pytestmark = pytest.mark.usefixtures("single_torch_thread")


@pytest.fixture(scope="module")
def official_state() -> dict[str, torch.Tensor]:
    """A ViT-S/14 in the official layout (37 x 37 + 1 positions, mask token), seeded random values."""
    state = random_state(encoder_layout(lora=False), seed=3)
    return {key.removeprefix("encoder."): value for key, value in state.items()}


def _relative_error(got: torch.Tensor, expected: torch.Tensor) -> float:
    return float((got - expected).abs().max() / expected.abs().max())


@pytest.mark.parametrize("grid", [(2, 3), (3, 40), (72, 56), (20, 20), (37, 37)])
def test_position_embeddings_follow_the_official_formula(official_state: dict, grid: tuple[int, int]) -> None:
    pos = official_state["pos_embed"]
    expected = official_pos_embed(pos, grid[0] * 14, grid[1] * 14)
    assert torch.equal(geofm_pos_embed(pos, grid), expected)
    assert expected.shape == (1, grid[0] * grid[1] + 1, 384)
    if grid == (37, 37):  # the official forward uses the pretrained grid as it is
        assert torch.equal(expected, pos)


@pytest.mark.parametrize("grid", [(2, 3), (3, 40)])  # non-square; shrinking (2 x 3) and stretching (40)
def test_encoder_maps_equal_the_official_forward(official_state: dict, grid: tuple[int, int]) -> None:
    task = get_task("salt").with_shape((grid[0] * 14, grid[1] * 14))
    model = build_model("mla", task, weights=official_state, finetune="frozen").eval()
    x = torch.randn(1, 3, grid[0] * 14, grid[1] * 14, generator=torch.Generator().manual_seed(0))
    prefixed = {f"encoder.{key}": value for key, value in official_state.items()}
    with torch.inference_mode():
        maps = model.encoder(x)
        expected = vit_maps(prefixed, x)
        # timm's per-forward resampling (by size, antialiased), which this replaces, is visibly different:
        timm_pos = resample_abs_pos_embed(official_state["pos_embed"], new_size=list(grid),
                                          num_prefix_tokens=1)
    assert [tuple(m.shape) for m in maps] == [(1, 384, *grid)] * 4
    for got, want in zip(maps, expected, strict=True):
        assert _relative_error(got, want) < TOLERANCE
    assert _relative_error(timm_pos, official_pos_embed(official_state["pos_embed"], *x.shape[-2:])) > 0.01
    assert model.encoder.vit.pos_embed.shape == (1, grid[0] * grid[1] + 1, 384)


def test_the_vit_takes_only_its_grid(official_state: dict) -> None:
    task = get_task("salt").with_shape((28, 42))
    model = build_model("linear", task, weights=official_state, finetune="frozen")
    with pytest.raises(ValueError, match="encoder input 28x28 does not fit the encoder's 2x3 patch grid, "
                                         "built for 28x42 inputs"):
        model.encoder(torch.zeros(1, 3, 28, 28))


def _sections(shape: tuple[int, int], count: int = 2, seed: int = 0) -> np.ndarray:
    """Raw float32 sections, mostly in [0, 255], some values outside (the cast wraps them)."""
    values = np.random.default_rng(seed).random((count, *shape)) * 290 - 20
    return values.astype(np.float32)


@pytest.mark.parametrize("task_key", sorted(TASKS))
def test_authors_vit_input_is_their_loader_bit_for_bit(task_key: str) -> None:
    task = get_task(task_key)
    sections = _sections(task.shape)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # numpy warns when casting values outside uint8
        expected = torch.cat([authors_vit_input(section, task.patch_grid) for section in sections])
    got = INPUT_SCALINGS["authors"].vit(torch.from_numpy(sections)[:, None], *NO_STATS, task.vit_input_shape)
    assert got.dtype == torch.float32
    assert torch.equal(got.expand(-1, 3, -1, -1), expected)


SHRINKING = [((60, 50), (28, 42)), ((100, 37), (14, 518)), ((13, 97), (3, 1001))]


@pytest.mark.parametrize(("shape", "size"), SHRINKING)
def test_shrinking_is_pillow_horizontal_pass_first(shape: tuple[int, int], size: tuple[int, int]) -> None:
    """Pillow before 13 (the authors' 9.2 and 10.4) always resized horizontally first; two one-axis resizes
    are exactly that (Pillow 13 may start vertically, python-pillow/Pillow#9549)."""
    pixels = np.random.default_rng(1).integers(0, 256, shape, dtype=np.uint8)
    horizontal = Image.fromarray(pixels).resize((size[1], shape[0]), Image.Resampling.BILINEAR)
    expected = np.array(horizontal.resize((size[1], size[0]), Image.Resampling.BILINEAR))
    got = pil_bilinear_resize(torch.from_numpy(pixels).to(torch.int32), size)
    np.testing.assert_array_equal(got.numpy(), expected)


def test_numpy_uint8_cast_with_values_outside_the_byte_range() -> None:
    values = np.array([0.0, 0.99, 254.99, 255.5, 256.0, 300.7, -0.5, -1.0, -1.5, -256.3, 65539.2,
                       1e10, -1e10, np.nan, np.inf], dtype=np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        expected = np.uint8(values)
    np.testing.assert_array_equal(numpy_uint8(torch.from_numpy(values)).numpy(), expected)


def test_authors_unet_input_is_the_section_over_255() -> None:
    sections = _sections((30, 45))
    got = INPUT_SCALINGS["authors"].unet(torch.from_numpy(sections)[:, None], *NO_STATS)
    expected = torch.cat([authors_unet_input(section) for section in sections])
    assert torch.equal(got, expected)


def test_zscore_is_the_default_and_uses_the_statistics() -> None:
    task = get_task("salt").with_shape((28, 28))
    model = build_model("unet", task, input_mean=10.0, input_std=4.0)
    assert model.input_scaling == "zscore"
    x = torch.full((1, 1, 28, 28), 18.0)
    assert torch.equal(INPUT_SCALINGS[model.input_scaling].unet(x, model.input_mean, model.input_std),
                       torch.full_like(x, 2.0))

