"""Lean checkpoints of a LoRA ViT: the frozen encoder is never written, and a run resumed on a model built
the same way ends with exactly the weights of an uninterrupted run."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch.utils.data import TensorDataset

from training.checkpoint import frozen_fingerprint, load_checkpoint, trainable_state
from training.fit import fit
from training.fit_config import fit_config
from training.models import build_model, count_parameters
from training.resume import LAST_CHECKPOINT
from training.seeding import seed_everything
from training.tasks import get_task

TASK = get_task("salt").with_shape((28, 28))
CONFIG = fit_config(epochs=2, batch_size=2, lr=1e-3, loss="cross_entropy", seed=3, device="cpu")

pytestmark = pytest.mark.usefixtures("single_torch_thread")


def lora_linear() -> torch.nn.Module:
    """The benchmark's way: seed, then build (so a random encoder is the same each time)."""
    seed_everything(CONFIG.seed)
    return build_model("linear", TASK, weights="none", finetune="lora")


def sections(count: int, seed: int) -> TensorDataset:
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(count, 1, *TASK.shape, generator=generator)
    return TensorDataset(x, (x[:, 0] > 0).long())


TRAIN, VAL = sections(4, seed=1), sections(2, seed=2)


class StopAfterFirstEpoch:
    def on_epoch_end(self, epoch: int, metrics: dict[str, float]) -> None:
        raise KeyboardInterrupt(f"interrupted after epoch {epoch}")


def test_a_lora_checkpoint_leaves_the_frozen_encoder_out_and_resumes_exactly(tmp_path: Path) -> None:
    straight = lora_linear()
    fit(straight, TRAIN, VAL, TASK.num_classes, CONFIG, tmp_path / "straight")
    with pytest.raises(KeyboardInterrupt):
        fit(lora_linear(), TRAIN, VAL, TASK.num_classes, CONFIG, tmp_path / "resumed",
            callbacks=[StopAfterFirstEpoch()])

    last = load_checkpoint(tmp_path / "resumed" / LAST_CHECKPOINT)
    frozen = count_parameters(straight) - count_parameters(straight, trainable_only=True)
    assert frozen > 20_000_000  # the ViT-S encoder
    assert last["model"].keys() == trainable_state(straight).keys()
    assert sum(t.numel() for t in last["model"].values()) < 1_000_000
    assert any("lora_A" in name for name in last["model"]) and "input_mean" in last["model"]
    assert last["best_model"] is None  # epoch 1 is the best so far: its weights are `model`

    resumed = lora_linear()
    fit(resumed, TRAIN, VAL, TASK.num_classes, CONFIG, tmp_path / "resumed")
    expected, actual = straight.state_dict(), resumed.state_dict()
    assert expected.keys() == actual.keys()
    assert all(torch.equal(expected[name], actual[name]) for name in expected)


def test_the_fingerprint_covers_the_frozen_parameters_only() -> None:
    model = lora_linear()
    before = frozen_fingerprint(model)
    assert frozen_fingerprint(lora_linear()) == before
    with torch.no_grad():
        next(p for p in model.parameters() if p.requires_grad).add_(1.0)
    assert frozen_fingerprint(model) == before
    frozen = next(p for name, p in model.named_parameters() if name.endswith("blocks.11.mlp.fc2.weight"))
    assert not frozen.requires_grad
    with torch.no_grad():
        frozen[0, 0] += 1e-3
    assert frozen_fingerprint(model) != before
