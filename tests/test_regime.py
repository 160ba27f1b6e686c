"""`train.regime`: the authors' (eval mode from epoch 2, LoRA factors frozen, selection on the test split by
the per-batch mIoU) against ours, on real models and small real data; and `model.position_grid: source`,
under which full fine-tuning trains the pretrained 37x37 grid, as the authors' unfrozen encoder."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from training.data.dataset import FlipPairedDataset
from training.fit import fit
from training.fit_config import fit_config
from training.models import build_model, count_parameters, merge_lora
from training.regime import REGIMES, get_regime, lora_factors
from training.stages.train import selection_note
from training.tasks import get_task

TASK = get_task("salt").with_shape((28, 42))  # a 2 x 3 patch grid, 2 classes
PRETRAINED_GRID = 37 * 37 + 1

pytestmark = pytest.mark.usefixtures("single_torch_thread")


class _Sections(FlipPairedDataset):
    def __init__(self, count: int, seed: int) -> None:
        super().__init__(count, flip_pairs=True)
        rng = np.random.default_rng(seed)
        self.labels = (rng.random((count, *TASK.shape)) > 0.6).astype(np.uint8)
        self.sections = (self.labels * 120 + rng.random((count, *TASK.shape)) * 100).astype(np.float32)

    def read_sample(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        return self.sections[index], self.labels[index]


def _batch_norms(model: nn.Module) -> list[nn.BatchNorm2d]:
    return [module for module in model.modules() if isinstance(module, nn.BatchNorm2d)]


def test_the_authors_regime_trains_in_train_mode_in_epoch_one_only() -> None:
    model = build_model("pup", TASK, finetune="lora")
    authors, ours = get_regime("authors"), get_regime("geofm")
    for epoch, training in ((1, True), (2, False), (50, False)):
        authors.prepare_epoch(model, epoch)
        assert all(norm.training is training for norm in _batch_norms(model)), epoch
        ours.prepare_epoch(model, epoch)
        assert all(norm.training for norm in _batch_norms(model)), epoch


def test_from_epoch_two_the_lora_factors_lose_their_gradient_and_nothing_else() -> None:
    model = build_model("linear", TASK, finetune="lora")
    x = torch.rand(2, 1, *TASK.shape) * 255
    model(x).sum().backward()
    assert len(lora_factors(model)) == 48  # qkv and proj of 12 blocks, A and B
    get_regime("geofm").drop_frozen_gradients(model, epoch=2)  # ours never drops one
    get_regime("authors").drop_frozen_gradients(model, epoch=1)
    assert all(p.grad is not None for p in lora_factors(model))
    get_regime("authors").drop_frozen_gradients(model, epoch=2)
    assert all(p.grad is None for p in lora_factors(model))
    assert all(p.grad is not None for p in model.decoder.parameters())


@pytest.mark.parametrize("regime", sorted(REGIMES))
def test_the_kept_epoch_is_the_best_by_the_regimes_criterion(regime: str, tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = build_model("unet", TASK, input_scaling="authors", unet_forward="authors")
    config = fit_config(epochs=3, batch_size=2, lr=1e-2, loss="weighted_dice", device="cpu",
                        batch_composition="mirror_pairs", regime=regime)
    result = fit(model, _Sections(4, seed=1), _Sections(3, seed=2), TASK.num_classes, config, tmp_path)
    criterion = "val_authors_miou" if regime == "authors" else "val_miou"
    scores = [entry[criterion] for entry in result.history]
    assert result.best_val_miou == max(scores)
    assert result.best_epoch == 1 + scores.index(max(scores))
    assert ("val_authors_miou" in result.history[0]) is (regime == "authors")


def test_the_regimes_say_where_they_select() -> None:
    assert get_regime("authors").selection_split == "test" and get_regime("authors").optimistic
    assert get_regime("geofm").selection_split == "val" and not get_regime("geofm").optimistic
    assert selection_note("authors").startswith("OPTIMISTIC: ")
    assert "validation" in selection_note("geofm") and "OPTIMISTIC" not in selection_note("geofm")
    with pytest.raises(KeyError, match="unknown training regime 'paper'; known: geofm, authors"):
        get_regime("paper")


def test_a_full_fine_tuning_on_the_source_grid_trains_the_37x37_grid() -> None:
    task = get_task("seam")  # a 72 x 56 grid: 4,033 positions instead of 1,370
    torch.manual_seed(0)
    on_task = build_model("linear", task, finetune="full")
    torch.manual_seed(0)
    on_source = build_model("linear", task, finetune="full", position_grid="source")
    assert on_source.encoder.vit.pos_embed.shape == (1, PRETRAINED_GRID, 384)
    difference = (72 * 56 - 37 * 37) * 384
    assert count_parameters(on_task, True) - count_parameters(on_source, True) == difference == 1_022_592


def test_the_source_grid_gives_the_same_forward_and_its_gradient_reaches_the_37x37_grid() -> None:
    torch.manual_seed(0)
    on_task = build_model("pup", TASK, finetune="full").eval()
    torch.manual_seed(0)
    on_source = build_model("pup", TASK, finetune="full", position_grid="source").eval()
    x = torch.rand(2, 1, *TASK.shape) * 255
    logits = on_source(x)
    assert torch.equal(logits, on_task(x))
    logits.sum().backward()
    gradient = on_source.encoder.vit.pos_embed.grad
    assert gradient.shape == (1, PRETRAINED_GRID, 384) and bool(gradient.abs().sum() > 0)
    exported = pickle.loads(pickle.dumps(merge_lora(on_source)))
    assert torch.equal(exported(x), logits.detach())


def test_an_unknown_position_grid_is_named() -> None:
    with pytest.raises(ValueError, match="unknown position grid 'tasks'; known: task, source"):
        build_model("linear", TASK, position_grid="tasks")
