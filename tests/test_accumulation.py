"""Exact gradient accumulation (`train.micro_batch_size`): for every loss, micro-batches give the full
batch's gradient and AdamW update within float32 rounding, where averaging the micro-batches' own losses
does not (dice); batch-norm running statistics, dropout masks, the NaN guard, settings and resume.

Tolerance (float32): each parameter's accumulated gradient is within 1e-5 of the full batch's, relative to
its norm (measured: about 1e-6, the rounding of sums taken in another order); parameters after AdamW steps
within 1e-6 relative (+ 1e-8 absolute).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from training.accumulation import accumulate_gradients
from training.distributed.context import Distributed
from training.fit import fit
from training.fit_config import fit_config
from training.losses import LOSSES, build_loss

CLASSES = 3
GRADIENT_TOLERANCE = 1e-5
pytestmark = pytest.mark.usefixtures("single_torch_thread")


def batch(count: int = 6, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """Sections whose class 2 is absent from the first half, so per-part class weights differ from the
    batch's: what makes averaging micro-batch dice losses wrong."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(count, 1, 20, 16, generator=generator)
    y = torch.randint(0, CLASSES, (count, 20, 16), generator=generator)
    first_half = y[: count // 2]
    first_half[first_half == 2] = 0
    return x, y


def network(norm: bool = False, dropout: float = 0.0, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    layers = [nn.Conv2d(1, 8, 3, padding=1), *([nn.BatchNorm2d(8)] if norm else []), nn.ReLU(),
              nn.Dropout2d(dropout), nn.Conv2d(8, CLASSES, 1)]
    return nn.Sequential(*layers)


def full_batch_gradients(model: nn.Module, loss_name: str, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    loss = build_loss(loss_name, CLASSES)(model(x), y)
    loss.backward()
    return loss.detach()


def relative_errors(model: nn.Module, reference: nn.Module) -> list[float]:
    return [float((p.grad - q.grad).norm() / q.grad.norm())
            for p, q in zip(model.parameters(), reference.parameters(), strict=True)]


@pytest.mark.parametrize("loss_name", sorted(LOSSES))
def test_statistics_add_up_over_parts_of_a_batch_and_give_the_loss(loss_name: str) -> None:
    loss_fn = build_loss(loss_name, CLASSES)
    x, y = batch()
    logits = network()(x)
    parts = loss_fn.statistics(logits[:2], y[:2]) + loss_fn.statistics(logits[2:], y[2:])
    torch.testing.assert_close(parts, loss_fn.statistics(logits, y), rtol=1e-6, atol=1e-4)
    torch.testing.assert_close(loss_fn.from_statistics(loss_fn.statistics(logits, y)), loss_fn(logits, y))


@pytest.mark.parametrize("loss_name", sorted(LOSSES))
@pytest.mark.parametrize("micro_batch_size", [1, 2, 4, 6])  # 4: parts of 4 and 2 sections
def test_micro_batches_give_the_full_batch_gradient_and_adamw_step(loss_name: str,
                                                                   micro_batch_size: int) -> None:
    x, y = batch()
    reference = network(norm=True).eval()  # batch norm in eval mode: the same normalization in both
    full_loss = full_batch_gradients(reference, loss_name, x, y)
    model = network(norm=True).eval()
    step = accumulate_gradients(model, model, x, y, build_loss(loss_name, CLASSES), micro_batch_size)

    torch.testing.assert_close(step.loss, full_loss, rtol=1e-6, atol=1e-7)
    assert torch.equal(step.predicted, reference(x).argmax(dim=1))
    assert max(relative_errors(model, reference)) < GRADIENT_TOLERANCE
    for trained in (reference, model):
        torch.optim.AdamW(trained.parameters(), lr=1e-3).step()
    for p, q in zip(model.parameters(), reference.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("loss_name", ["dice", "weighted_dice"])
def test_averaging_micro_batch_dice_losses_is_not_the_full_batch_gradient(loss_name: str) -> None:
    """The comparison above can fail: the naive accumulation of the dice losses is off by percents."""
    x, y = batch()
    reference = network()
    full_batch_gradients(reference, loss_name, x, y)
    naive = network()
    for part_x, part_y in zip(x.split(3), y.split(3), strict=True):
        (build_loss(loss_name, CLASSES)(naive(part_x), part_y) / 2).backward()
    assert max(relative_errors(naive, reference)) > 100 * GRADIENT_TOLERANCE


def test_dropout_draws_the_same_masks_in_both_passes() -> None:
    """The gradient is that of the loss of the statistics the first pass measured: the same masks."""
    x, y = batch()
    loss_fn = build_loss("weighted_dice", CLASSES)
    torch.manual_seed(7)
    reference = network(dropout=0.5).train()
    statistics = sum(loss_fn.statistics(reference(part_x), part_y)
                     for part_x, part_y in zip(x.split(2), y.split(2), strict=True))
    loss_fn.from_statistics(statistics).backward()
    after_reference = torch.get_rng_state()

    torch.manual_seed(7)
    model = network(dropout=0.5).train()
    step = accumulate_gradients(model, model, x, y, loss_fn, micro_batch_size=2)
    torch.testing.assert_close(step.loss, loss_fn.from_statistics(statistics).detach())
    assert max(relative_errors(model, reference)) < GRADIENT_TOLERANCE
    assert torch.equal(torch.get_rng_state(), after_reference)  # one pass's draws, not two


def test_batch_norm_in_training_mode_updates_its_statistics_once_per_micro_batch() -> None:
    x, y = batch()
    model = network(norm=True).train()
    accumulate_gradients(model, model, x, y, build_loss("dice", CLASSES), micro_batch_size=2)
    sequential = network(norm=True).train()
    with torch.no_grad():
        for part in x.split(2):
            sequential(part)
    norm, expected = model[1], sequential[1]
    assert int(norm.num_batches_tracked) == 3
    torch.testing.assert_close(norm.running_mean, expected.running_mean)
    torch.testing.assert_close(norm.running_var, expected.running_var)


def test_a_non_finite_loss_adds_no_gradient() -> None:
    x, y = batch()
    model = network()
    step = accumulate_gradients(model, model, x * torch.nan, y, build_loss("dice", CLASSES),
                                micro_batch_size=2)
    assert not torch.isfinite(step.loss)
    assert all(p.grad is None for p in model.parameters())


def dataset(count: int, seed: int) -> TensorDataset:
    x, y = batch(count, seed)
    return TensorDataset(x, y)


class TrainingForwardSizes(nn.Module):
    """The network, recording the number of sections of each training-mode forward."""

    def __init__(self) -> None:
        super().__init__()
        self.inner = network()
        self.sizes: list[int] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            self.sizes.append(len(x))
        return self.inner(x)


def test_fit_with_micro_batches_trains_the_weights_of_full_batches(tmp_path: Path) -> None:
    train, val = dataset(8, 1), dataset(4, 2)
    results, models = {}, {}
    for micro_batch_size in (None, 2):
        config = fit_config(epochs=2, batch_size=4, lr=1e-3, loss="weighted_dice", device="cpu",
                           micro_batch_size=micro_batch_size)
        models[micro_batch_size] = TrainingForwardSizes()
        results[micro_batch_size] = fit(models[micro_batch_size], train, val, CLASSES, config,
                                        tmp_path / str(micro_batch_size))
    # 2 epochs x 2 batches of 4: one forward each, or 2 micro-batches x 2 passes each
    assert models[None].sizes == [4] * 4 and models[2].sizes == [2] * 16
    for full, accumulated in zip(models[None].parameters(), models[2].parameters(), strict=True):
        torch.testing.assert_close(accumulated, full, rtol=1e-6, atol=1e-8)
    losses = {key: [row["train_loss"] for row in result.history] for key, result in results.items()}
    assert losses[2] == pytest.approx(losses[None], rel=1e-6)
    assert len(results[2].step_seconds) == 2 and all(seconds > 0 for seconds in results[2].step_seconds)


class StopAfterFirstEpoch:
    def on_epoch_end(self, epoch: int, metrics: dict[str, float]) -> None:
        raise KeyboardInterrupt(f"after epoch {epoch}")


def test_a_run_resumes_with_another_micro_batch_size(tmp_path: Path) -> None:
    train, val = dataset(8, 1), dataset(4, 2)
    config = fit_config(epochs=2, batch_size=4, lr=1e-3, loss="dice", device="cpu")
    straight = network()
    fit(straight, train, val, CLASSES, config, tmp_path / "straight")
    with pytest.raises(KeyboardInterrupt):
        fit(network(), train, val, CLASSES, config, tmp_path / "resumed", callbacks=[StopAfterFirstEpoch()])
    resumed = network(seed=3)
    result = fit(resumed, train, val, CLASSES, replace(config, micro_batch_size=3), tmp_path / "resumed")
    assert [row["epoch"] for row in result.history] == [1, 2] and len(result.step_seconds) == 1
    for p, q in zip(resumed.parameters(), straight.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=1e-6, atol=1e-8)


def test_bad_micro_batch_sizes_are_clear_errors(tmp_path: Path) -> None:
    for bad in (0, 2.5, True):
        with pytest.raises(ValueError, match="micro_batch_size"):
            fit_config(batch_size=4, micro_batch_size=bad)
    config = fit_config(epochs=1, batch_size=4, device="cpu", micro_batch_size=2)
    with pytest.raises(ValueError, match=r"micro_batch_size 2 runs in one process only"):
        fit(network(), dataset(8, 1), dataset(4, 2), CLASSES, config, tmp_path,
            distributed=Distributed(rank=0, world_size=2))
