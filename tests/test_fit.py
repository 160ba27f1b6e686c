"""The fit loop on a tiny learnable problem: learning, model selection, exact resume, the NaN guard,
callbacks, evaluation, schedules and settings."""

from __future__ import annotations

import math
from dataclasses import fields
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.optim.optimizer import register_optimizer_step_pre_hook
from torch.utils.data import TensorDataset

from training.callbacks import TOLD_FILE
from training.checkpoint import load_checkpoint
from training.evaluation import evaluate
from training.fit import NonFiniteLossError, fit
from training.fit_config import RESOLVED_PER_TRAINING, STAGE_ONLY, FitConfig, fit_config
from training.metrics import scores_from_confusion
from training.resume import LAST_CHECKPOINT
from training.schedule import build_scheduler
from training.seeding import seed_everything
from training.settings import TrainSettings

METRIC_KEYS = {"train_loss", "train_miou", "val_loss", "val_miou", "val_mpa", "lr"}


def blocks_dataset(count: int, seed: int, size: int = 16, block: int = 4) -> TensorDataset:
    """Items (x (1, H, W) float32, y (H, W) int64): labels constant on 4x4 blocks, and x > 0 exactly where
    the label is 1 (magnitudes noisy), so a per-pixel rule can be learnt and an oracle exists."""
    generator = torch.Generator().manual_seed(seed)
    coarse = torch.randint(0, 2, (count, size // block, size // block), generator=generator)
    labels = coarse.repeat_interleave(block, dim=1).repeat_interleave(block, dim=2)
    magnitude = 0.5 + torch.randn(count, size, size, generator=generator).abs()
    inputs = ((2 * labels - 1) * magnitude).unsqueeze(1).float()
    return TensorDataset(inputs, labels.long())


class TinyNet(nn.Module):
    """Conv, ReLU, dropout (so the resume test depends on the restored RNG state), 1x1 conv to 2 classes."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Dropout2d(0.2),
                                  nn.Conv2d(8, 2, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class Oracle(nn.Module):
    """Logits (-x, x): predicts class 1 exactly where x > 0 (or the opposite when `inverted`)."""

    def __init__(self, inverted: bool = False) -> None:
        super().__init__()
        self.sign = -1.0 if inverted else 1.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.sign * torch.cat([-x, x], dim=1)


class NanAfter(nn.Module):
    """Wraps a model and returns NaN logits from its (healthy_steps + 1)-th training forward on."""

    def __init__(self, inner: nn.Module, healthy_steps: int) -> None:
        super().__init__()
        self.inner = inner
        self.healthy_steps = healthy_steps
        self.training_calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.inner(x)
        if self.training:
            self.training_calls += 1
            if self.training_calls > self.healthy_steps:
                return logits * math.nan
        return logits


class Recorder:
    def __init__(self, stop_after: int | None = None) -> None:
        self.calls: list[tuple[int, dict[str, float]]] = []
        self.stop_after = stop_after

    def on_epoch_end(self, epoch: int, metrics: dict[str, float]) -> None:
        self.calls.append((epoch, metrics))
        if epoch == self.stop_after:
            raise KeyboardInterrupt(f"interrupted after epoch {epoch}")


class Snapshots:
    """Copies the model's whole state after each epoch; after epoch `spoil_after`, negates the last conv
    so that the next epoch validates worse and the best epoch is not the last."""

    def __init__(self, model: TinyNet, spoil_after: int | None = None) -> None:
        self.model = model
        self.spoil_after = spoil_after
        self.states: dict[int, dict[str, torch.Tensor]] = {}

    def on_epoch_end(self, epoch: int, metrics: dict[str, float]) -> None:
        self.states[epoch] = {name: t.detach().clone() for name, t in self.model.state_dict().items()}
        if epoch == self.spoil_after:
            with torch.no_grad():
                for parameter in self.model.body[3].parameters():
                    parameter.neg_()


def assert_same_state(left: dict[str, torch.Tensor], right: dict[str, torch.Tensor]) -> None:
    assert left.keys() == right.keys()
    assert all(torch.equal(left[name], right[name]) for name in left)


def frozen_first_conv(seed: int) -> TinyNet:
    """A TinyNet initialised from `seed` whose first conv is frozen, as a LoRA run freezes its encoder."""
    seed_everything(seed)
    model = TinyNet()
    model.body[0].requires_grad_(False)
    return model


TRAIN, VAL = blocks_dataset(16, seed=1), blocks_dataset(8, seed=2)
QUICK = fit_config(epochs=4, batch_size=4, lr=1e-2, loss="cross_entropy", seed=0, device="cpu")


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


def test_fit_learns_selects_the_best_epoch_and_calls_back(tmp_path: Path) -> None:
    seed_everything(0)
    model = TinyNet()
    before = evaluate(model, VAL, 2, batch_size=4, device="cpu").scores.miou
    recorder = Recorder()
    result = fit(model, TRAIN, VAL, 2, QUICK, tmp_path, callbacks=[recorder])

    losses = [row["train_loss"] for row in result.history]
    assert losses[-1] < 0.5 * losses[0]
    assert result.best_val_miou > before + 0.2 and result.best_val_miou > 0.9
    assert [row["epoch"] for row in result.history] == [1, 2, 3, 4]
    best = max(result.history, key=lambda row: row["val_miou"])
    assert (result.best_epoch, result.best_val_miou) == (best["epoch"], best["val_miou"])
    # The model holds the best epoch's weights.
    assert evaluate(model, VAL, 2, batch_size=4, device="cpu").scores.miou == result.best_val_miou
    assert [epoch for epoch, _ in recorder.calls] == [1, 2, 3, 4]
    assert all(set(metrics) == METRIC_KEYS for _, metrics in recorder.calls)
    assert recorder.calls[2][1]["val_miou"] == result.history[2]["val_miou"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [LAST_CHECKPOINT, TOLD_FILE]


def test_the_model_ends_with_the_best_epochs_whole_state(tmp_path: Path) -> None:
    model = frozen_first_conv(seed=0)
    snapshots = Snapshots(model, spoil_after=2)
    result = fit(model, TRAIN, VAL, 2, QUICK, tmp_path, callbacks=[snapshots])
    assert result.best_epoch == 2 and result.history[2]["val_miou"] < result.best_val_miou
    assert_same_state(model.state_dict(), snapshots.states[2])


def test_a_checkpoint_holds_what_training_changes_and_the_best_epoch_once(tmp_path: Path) -> None:
    model = frozen_first_conv(seed=0)
    snapshots = Snapshots(model, spoil_after=2)
    written: dict[int, dict] = {}

    class ReadCheckpoint:
        def on_epoch_end(self, epoch: int, metrics: dict[str, float]) -> None:
            written[epoch] = load_checkpoint(tmp_path / LAST_CHECKPOINT)

    result = fit(model, TRAIN, VAL, 2, QUICK, tmp_path, callbacks=[ReadCheckpoint(), snapshots])
    assert result.best_epoch == 2
    trained = {"body.3.weight", "body.3.bias"}  # the frozen first conv is left out
    for epoch, checkpoint in written.items():
        assert (checkpoint["epoch"], checkpoint["best_epoch"]) == (epoch, min(epoch, 2))
        assert_same_state(checkpoint["model"], {name: snapshots.states[epoch][name] for name in trained})
    # While the epoch written is the best, its weights are there once; later the best epoch's are kept.
    assert written[2]["best_model"] is None
    for epoch in (3, 4):
        assert_same_state(written[epoch]["best_model"], {name: snapshots.states[2][name] for name in trained})
    assert sorted(p.name for p in tmp_path.iterdir()) == [LAST_CHECKPOINT, TOLD_FILE]


def test_a_resume_tells_the_callbacks_each_epoch_they_missed_once(tmp_path: Path) -> None:
    interrupted = Recorder(stop_after=2)  # epoch 2 checkpointed, its callbacks did not all hear of it
    with pytest.raises(KeyboardInterrupt):
        fit(frozen_first_conv(seed=0), TRAIN, VAL, 2, QUICK, tmp_path, callbacks=[interrupted])
    assert (tmp_path / TOLD_FILE).read_text() == "1\n"

    resumed = Recorder()
    result = fit(frozen_first_conv(seed=0), TRAIN, VAL, 2, QUICK, tmp_path, callbacks=[resumed])
    assert [epoch for epoch, _ in resumed.calls] == [2, 3, 4]
    for (epoch, metrics), entry in zip(resumed.calls, result.history[1:], strict=True):
        assert {"epoch": epoch, **metrics} == entry
    finished = Recorder()
    fit(frozen_first_conv(seed=0), TRAIN, VAL, 2, QUICK, tmp_path, callbacks=[finished])
    assert finished.calls == []


def test_resume_takes_frozen_parameters_from_the_model_and_checks_them(tmp_path: Path) -> None:
    config = fit_config(epochs=3, batch_size=3, lr=1e-2, schedule="cosine", warmup_epochs=1, seed=5,
                       device="cpu")
    straight = frozen_first_conv(seed=0)
    fit(straight, TRAIN, VAL, 2, config, tmp_path / "straight")
    with pytest.raises(KeyboardInterrupt):
        fit(frozen_first_conv(seed=0), TRAIN, VAL, 2, config, tmp_path / "resumed",
            callbacks=[Recorder(stop_after=1)])

    with pytest.raises(ValueError, match=r"last\.pt: the model's frozen parameters differ"):
        fit(frozen_first_conv(seed=1), TRAIN, VAL, 2, config, tmp_path / "resumed")
    unfrozen = TinyNet()
    with pytest.raises(ValueError, match=r"last\.pt does not fit the model.*missing \[body\.0\.bias"):
        fit(unfrozen, TRAIN, VAL, 2, config, tmp_path / "resumed")
    resumed = frozen_first_conv(seed=0)
    fit(resumed, TRAIN, VAL, 2, config, tmp_path / "resumed")
    assert_same_state(resumed.state_dict(), straight.state_dict())


def test_resume_ends_exactly_where_an_uninterrupted_run_ends(tmp_path: Path) -> None:
    config = fit_config(epochs=3, batch_size=3, lr=1e-2, loss="weighted_dice", schedule="cosine",
                       warmup_epochs=1, seed=5, device="cpu")
    seed_everything(0)
    straight_model = TinyNet()
    straight = fit(straight_model, TRAIN, VAL, 2, config, tmp_path / "straight")

    seed_everything(0)
    with pytest.raises(KeyboardInterrupt, match="after epoch 1"):
        fit(TinyNet(), TRAIN, VAL, 2, config, tmp_path / "resumed", callbacks=[Recorder(stop_after=1)])
    assert load_checkpoint(tmp_path / "resumed" / LAST_CHECKPOINT)["epoch"] == 1
    seed_everything(99)  # a different initialization and RNG state: all of it must come from last.pt
    resumed_model = TinyNet()
    recorder = Recorder()
    resumed = fit(resumed_model, TRAIN, VAL, 2, config, tmp_path / "resumed", callbacks=[recorder])

    assert [epoch for epoch, _ in recorder.calls] == [1, 2, 3]  # epoch 1's callbacks were interrupted
    assert resumed.history == straight.history
    assert (resumed.best_epoch, resumed.best_val_miou) == (straight.best_epoch, straight.best_val_miou)
    straight_state, resumed_state = straight_model.state_dict(), resumed_model.state_dict()
    assert straight_state.keys() == resumed_state.keys()
    assert all(torch.equal(straight_state[k], resumed_state[k]) for k in straight_state)
    last_straight = load_checkpoint(tmp_path / "straight" / LAST_CHECKPOINT)["model"]
    last_resumed = load_checkpoint(tmp_path / "resumed" / LAST_CHECKPOINT)["model"]
    assert all(torch.equal(last_straight[k], last_resumed[k]) for k in last_straight)


def test_a_finished_run_is_not_trained_again(tmp_path: Path) -> None:
    config = fit_config(epochs=2, batch_size=4, lr=1e-2, loss="cross_entropy", device="cpu")
    first = fit(TinyNet(), TRAIN, VAL, 2, config, tmp_path)
    recorder = Recorder()
    model = TinyNet()
    again = fit(model, TRAIN, VAL, 2, config, tmp_path, callbacks=[recorder])
    assert recorder.calls == [] and again.history == first.history
    assert evaluate(model, VAL, 2, batch_size=4, device="cpu").scores.miou == first.best_val_miou


def test_resuming_with_changed_settings_is_an_error(tmp_path: Path) -> None:
    fit(TinyNet(), TRAIN, VAL, 2, fit_config(batch_size=4, epochs=1, lr=1e-2, device="cpu"), tmp_path)
    with pytest.raises(ValueError, match=r"last\.pt.*lr 0\.01 -> 0\.02"):
        fit(TinyNet(), TRAIN, VAL, 2, fit_config(batch_size=4, epochs=1, lr=2e-2, device="cpu"), tmp_path)


def test_a_damaged_checkpoint_is_an_error_naming_it(tmp_path: Path) -> None:
    (tmp_path / LAST_CHECKPOINT).write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match=r"cannot read checkpoint .*last\.pt"):
        fit(TinyNet(), TRAIN, VAL, 2, QUICK, tmp_path)


def test_a_non_finite_loss_stops_the_run_and_keeps_the_last_good_checkpoint(tmp_path: Path) -> None:
    steps_per_epoch = len(TRAIN) // QUICK.batch_size
    model = NanAfter(TinyNet(), healthy_steps=steps_per_epoch + 2)
    with pytest.raises(NonFiniteLossError, match=r"at epoch 2, step 3"):
        fit(model, TRAIN, VAL, 2, QUICK, tmp_path)
    last = load_checkpoint(tmp_path / LAST_CHECKPOINT)
    assert last["epoch"] == 1 and len(last["history"]) == 1
    assert all(torch.isfinite(t).all() for t in last["model"].values())
    assert not any(p.name.endswith(".tmp") for p in tmp_path.iterdir())


def test_only_trainable_parameters_reach_the_optimizer(tmp_path: Path) -> None:
    model = TinyNet()
    first_conv = model.body[0]
    first_conv.requires_grad_(False)
    frozen = first_conv.weight.clone()
    fit(model, TRAIN, VAL, 2, fit_config(batch_size=4, epochs=1, lr=1e-2, device="cpu"), tmp_path)
    optimizer = load_checkpoint(tmp_path / LAST_CHECKPOINT)["optimizer"]
    assert len(optimizer["param_groups"][0]["params"]) == 2  # the last conv's weight and bias
    assert torch.equal(first_conv.weight, frozen)
    with pytest.raises(ValueError, match="no trainable parameter"):
        fit(model.requires_grad_(False), TRAIN, VAL, 2, QUICK, tmp_path / "frozen")


def test_evaluate_scores_an_oracle_and_its_opposite() -> None:
    labelled = torch.stack([y for _, y in VAL])
    pixels_of_class_1 = int(labelled.sum())
    perfect = evaluate(Oracle(), VAL, 2, batch_size=3, device="cpu")
    assert perfect.confusion.tolist() == [[labelled.numel() - pixels_of_class_1, 0], [0, pixels_of_class_1]]
    assert perfect.scores == scores_from_confusion(perfect.confusion)
    assert (perfect.scores.miou, perfect.scores.mpa, perfect.scores.overall_accuracy) == (1.0, 1.0, 1.0)
    assert perfect.batch_mean == {"miou": 1.0, "mpa": 1.0}
    wrong = evaluate(Oracle(inverted=True), VAL, 2, batch_size=3, device="cpu")
    assert (wrong.scores.miou, wrong.batch_mean["miou"], wrong.batch_mean["mpa"]) == (0.0, 0.0, 0.0)
    with pytest.raises(ValueError, match="evaluation set is empty"):
        evaluate(Oracle(), TensorDataset(torch.zeros(0, 1, 4, 4), torch.zeros(0, 4, 4)), 2, 1, "cpu")


def test_schedules_warm_up_then_hold_or_decay() -> None:
    def factors(name: str) -> list[float]:
        optimizer = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0)
        scheduler = build_scheduler(name, optimizer, epochs=3, warmup_epochs=1, steps_per_epoch=2)
        seen = []
        for _ in range(6):
            seen.append(optimizer.param_groups[0]["lr"])
            optimizer.step()
            scheduler.step()
        return seen

    # warmup over 2 steps: 1/2, 1; then cosine over the remaining 4 steps: cos^2 of 0, pi/8, pi/4, 3pi/8
    assert factors("constant") == pytest.approx([0.5, 1.0, 1.0, 1.0, 1.0, 1.0])
    cosine = [0.5 * (1 + math.cos(math.pi * k / 4)) for k in range(4)]
    assert factors("cosine") == pytest.approx([0.5, 1.0, *cosine])
    with pytest.raises(ValueError, match="known: constant, cosine"):
        build_scheduler("step", torch.optim.SGD([nn.Parameter(torch.zeros(1))]), epochs=1, warmup_epochs=0,
                        steps_per_epoch=1)


def test_fit_follows_the_schedule_at_every_step_with_a_partial_last_batch(tmp_path: Path) -> None:
    """10 items in batches of 4 are 3 steps per epoch (the last of 2 items): warm-up over the 3 steps of
    epoch 1, then a half cosine over the 6 steps of epochs 2 and 3, read from the optimizer at each step."""
    config = fit_config(epochs=3, batch_size=4, lr=0.1, schedule="cosine", warmup_epochs=1,
                       loss="cross_entropy", seed=0, device="cpu")
    seen: list[float] = []
    hook = register_optimizer_step_pre_hook(lambda opt, *_: seen.append(opt.param_groups[0]["lr"]))
    try:
        result = fit(TinyNet(), blocks_dataset(10, seed=3), VAL, 2, config, tmp_path)
    finally:
        hook.remove()
    warmup = [0.1 * step / 3 for step in (1, 2, 3)]
    cosine = [0.1 * 0.5 * (1 + math.cos(math.pi * step / 6)) for step in range(6)]
    assert seen == pytest.approx(warmup + cosine)
    assert [row["lr"] for row in result.history] == pytest.approx([warmup[0], cosine[0], cosine[3]])


def test_the_loop_s_settings_are_the_train_settings_each_declared_once() -> None:
    loop = {field.name for field in fields(FitConfig)}
    declared = set(TrainSettings.model_fields)
    resolved = set(RESOLVED_PER_TRAINING.values())
    assert loop - resolved == declared - set(RESOLVED_PER_TRAINING) - STAGE_ONLY, (
        "every FitConfig field is a TrainSettings field (or resolved from one), and the other way round")
    config = fit_config(batch_size=4)
    assert (config.lr, config.weight_decay, config.betas, config.epochs) == (1e-5, 0.01, (0.7, 0.999), 100)
    assert (config.loss, config.seed, config.schedule) == ("weighted_dice", 1234, "constant")


def test_bad_settings_are_refused_by_the_settings_naming_the_field() -> None:
    for bad in ({"loss": "dice2"}, {"betas": 0.9}, {"epochs": 2, "warmup_epochs": 5}, {"lr": 0}):
        with pytest.raises(ValueError, match=next(iter(bad)) if "warmup_epochs" not in bad else "warmup"):
            fit_config(batch_size=4, **bad)
    with pytest.raises(ValueError, match="unknown device 'gpu0'"):
        fit(TinyNet(), TRAIN, VAL, 2, fit_config(batch_size=4, device="gpu0"), Path("unused"))
