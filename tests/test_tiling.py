"""Tiled prediction at the training resolution: tile placement, one tile against the plain forward, padding
instead of resizing, smooth seams, and a model trained on tiles predicting better in tiles than on a section
resized to its training size."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tiny_models import TileMeanSegmenter, TinySegmenter
from tiny_training import stripes, train_on_stripe_tiles

from training.metrics import confusion_counts, scores_from_confusion
from training.survey import TiledPredictor, predict_section
from training.survey.tiling import tile_starts

TILE = (32, 32)


def miou(prediction: np.ndarray, label: np.ndarray) -> float:
    matrix = confusion_counts(torch.from_numpy(prediction), torch.from_numpy(label), num_classes=2)
    return scores_from_confusion(matrix.numpy()).miou


def test_tiles_cover_the_section_with_the_overlap_and_end_flush() -> None:
    assert tile_starts(32, 32, 8) == [0]
    assert tile_starts(100, 32, 8) == [0, 24, 48, 68]
    for length, tile, overlap in [(100, 32, 8), (33, 32, 0), (224, 28, 7), (1000, 224, 56)]:
        starts = tile_starts(length, tile, overlap)
        covered = np.zeros(length, dtype=int)
        for start in starts:
            covered[start:start + tile] += 1
        assert covered.min() >= 1 and starts[-1] + tile == length
        strides = np.diff(starts)
        assert ((strides > 0) & (strides <= tile - overlap)).all()
    with pytest.raises(ValueError, match="shorter than one tile"):
        tile_starts(20, 32, 8)
    with pytest.raises(ValueError, match="overlap must be in"):
        tile_starts(100, 32, 32)


def test_a_section_of_one_tile_gets_the_plain_forwards_classes(single_torch_thread: None) -> None:
    torch.manual_seed(5)
    model = TinySegmenter(num_classes=3, input_mean=0.2, input_std=0.7, training_shape=(24, 40))
    section = np.random.default_rng(0).normal(size=(24, 40)).astype(np.float32)
    with torch.inference_mode():
        plain = model(torch.from_numpy(section)[None, None]).argmax(dim=1)[0].numpy()
    tiled = predict_section(model, section, device="cpu")
    assert tiled.dtype == np.uint8 and np.bincount(plain.reshape(-1)).min() > 20
    np.testing.assert_array_equal(tiled, plain)


def test_a_section_smaller_than_a_tile_is_one_tile_of_its_own_size(single_torch_thread: None) -> None:
    torch.manual_seed(1)
    model = TinySegmenter(num_classes=2, training_shape=(16, 16))
    section = np.random.default_rng(1).normal(size=(10, 7)).astype(np.float32)
    with torch.inference_mode():
        expected = model(torch.from_numpy(section)[None, None]).softmax(dim=1)[0]
    probabilities = TiledPredictor(model, device="cpu").probabilities(section)
    assert probabilities.shape == (2, 10, 7)
    torch.testing.assert_close(probabilities, expected)


class ShapeRecorder(TinySegmenter):
    """Records the shape of every batch of tiles it is given."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append(tuple(x.shape))
        return super().forward(x)


def test_tiles_follow_a_line_narrower_than_a_tile(single_torch_thread: None) -> None:
    """A 3-trace line 200 samples long: tiles 3 traces wide down its length, no tile padded to 16 wide."""
    model = ShapeRecorder(num_classes=2, training_shape=(16, 16))
    model.seen = []
    section = np.random.default_rng(4).normal(size=(200, 3)).astype(np.float32)
    predictor = TiledPredictor(model, batch_size=64, device="cpu")
    assert predictor.tile_for(200, 3) == (16, 3)
    probabilities = predictor.probabilities(section)
    assert probabilities.shape == (2, 200, 3) and torch.isfinite(probabilities).all()
    assert model.seen == [(len(tile_starts(200, 16, 4)), 1, 16, 3)]


def test_batching_does_not_change_the_prediction(single_torch_thread: None) -> None:
    torch.manual_seed(2)
    model = TinySegmenter(num_classes=2, training_shape=TILE)
    section = np.random.default_rng(2).normal(size=(70, 90)).astype(np.float32)
    one = TiledPredictor(model, batch_size=1, device="cpu").probabilities(section)
    many = TiledPredictor(model, batch_size=16, device="cpu").probabilities(section)
    torch.testing.assert_close(one, many)


@pytest.mark.parametrize("overlap", [8, 16])
def test_tile_seams_are_blended_into_bounded_steps(overlap: int, single_torch_thread: None) -> None:
    """Tiles of a ramp each see another mean: stitched, the probability jumps by a whole tile-to-tile step
    at a tile border; blended, no step between neighbouring pixels exceeds about 2/overlap of it."""
    section = np.tile(np.linspace(0, 255, 224, dtype=np.float32), (32, 1))
    model = TileMeanSegmenter(TILE, centre=127.5, scale=40.0)
    predictor = TiledPredictor(model, overlap=(overlap, overlap), device="cpu")
    blended = predictor.probabilities(section)[1].numpy()
    tile_means = [section[:, start:start + TILE[1]].mean() for start in tile_starts(224, TILE[1], overlap)]
    tile_probabilities = torch.sigmoid(2 * (torch.tensor(tile_means) - 127.5) / 40).numpy()
    stitched_step = np.abs(np.diff(tile_probabilities)).max()
    blended_step = np.abs(np.diff(blended, axis=1)).max()
    assert stitched_step > 0.2
    assert blended_step <= 2.2 / overlap * stitched_step
    assert np.abs(np.diff(blended, axis=0)).max() < 1e-5
    hard = TiledPredictor(model, overlap=(0, 0), device="cpu").probabilities(section)[1].numpy()
    assert np.abs(np.diff(hard, axis=1)).max() > 0.9 * np.abs(np.diff(tile_probabilities)).max()


def test_a_model_trained_on_tiles_predicts_better_in_tiles_than_resized(single_torch_thread: None) -> None:
    """The model's own forward squeezes a section 4 tiles wide into one tile, as a ViT segmenter does."""
    model = train_on_stripe_tiles(TILE)
    section, label = stripes(np.random.default_rng(1), (TILE[0], 4 * TILE[1]))
    tiled = predict_section(model, section, device="cpu")
    with torch.inference_mode():
        resized = model(torch.from_numpy(section)[None, None]).argmax(dim=1)[0].numpy().astype(np.uint8)
    tiled_miou, resized_miou = miou(tiled, label), miou(resized, label)
    assert tiled_miou > 0.9
    assert tiled_miou - resized_miou > 0.3, (tiled_miou, resized_miou)


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(
    not torch.cuda.is_available(), reason="no CUDA device"))])
def test_bfloat16_autocast_keeps_the_classes(device: str, single_torch_thread: None) -> None:
    model = train_on_stripe_tiles(TILE)
    section, _ = stripes(np.random.default_rng(3), (3 * TILE[0], 5 * TILE[1]))
    exact = TiledPredictor(model, device=device, precision="float32").classes(section)
    mixed = TiledPredictor(model, device=device, precision="bfloat16")
    assert mixed.autocast and (mixed.classes(section) == exact).mean() > 0.999
    assert TiledPredictor(model, device=device).autocast == (device == "cuda")
