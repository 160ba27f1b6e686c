"""The training loop and the evaluation of a trained model.

`fit` trains with AdamW and a per-step schedule, selects the epoch with the best mIoU on the split it is
given as `val_set` (by the protocol of `config.regime`, see `training.regime`), checkpoints atomically
after every epoch and resumes from `last.pt` to exactly the weights an uninterrupted run would reach. The
checkpoint holds what training changes (trainable parameters, buffers, optimizer, scheduler, RNG states,
history) and the best epoch's trainable parameters and buffers; frozen parameters come from the model
passed in, which must be built as the first time.
`evaluate` scores a model on a dataset under both protocols of `training.metrics`. On CUDA both run under
bf16 autocast (fused AdamW); on the CPU in fp32. Under torchrun, `fit` trains data-parallel when given a
`training.distributed.Distributed` (see there).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler
from torch.utils.data import DataLoader, Dataset, Sampler
from tqdm import tqdm

from training.accumulation import accumulate_gradients
from training.callbacks import EpochAnnouncer, FitCallback
from training.checkpoint import (
    check_trainable_state,
    cpu_copy,
    frozen_fingerprint,
    load_checkpoint,
    load_trainable_state,
    save_atomic,
    trainable_state,
)
from training.data.batching import BATCH_COMPOSITIONS, mirror_pair_batches, training_batches
from training.distributed import SINGLE_PROCESS, Distributed
from training.errors import GeofmError
from training.losses import LOSSES, SegmentationLoss, build_loss
from training.metrics import BatchMeanScores, ConfusionMatrix, SegmentationScores, scores_from_confusion
from training.regime import REGIMES, TrainingRegime, get_regime
from training.schedule import SCHEDULES, build_scheduler
from training.seeding import capture_rng_state, restore_rng_state, seed_everything

LAST_CHECKPOINT = "last.pt"
RESUMABLE_CHANGES = frozenset({"device", "num_workers", "micro_batch_size"})
"""Settings that may differ between an interrupted run and its resume (they change no result beyond
float summation order)."""
LOG = logging.getLogger("geofm")


@dataclass
class FitConfig:
    """Training settings. The defaults are the paper's: AdamW (lr 1e-5, weight decay 0.01, betas 0.7/0.999),
    100 epochs, weighted dice, seed 1234, constant learning rate. `micro_batch_size`: sections per
    forward/backward pass, their gradients accumulated exactly into the batch's (`training.accumulation`);
    None: the whole batch at once. `regime`: the model's mode over the epochs and the selection of the kept
    epoch (`training.regime`)."""

    epochs: int = 100
    batch_size: int = 4
    lr: float = 1e-5
    weight_decay: float = 0.01
    betas: tuple[float, float] = (0.7, 0.999)
    warmup_epochs: int = 0
    schedule: str = "constant"
    loss: str = "weighted_dice"
    seed: int = 1234
    num_workers: int = 0
    device: str = "auto"
    batch_composition: str = "shuffled"
    micro_batch_size: int | None = None
    regime: str = "geofm"

    def __post_init__(self) -> None:
        if isinstance(self.betas, list):
            self.betas = tuple(self.betas)
        valid = {
            "epochs": _is_int(self.epochs, minimum=1),
            "batch_size": _is_int(self.batch_size, minimum=1),
            "lr": _is_number(self.lr) and self.lr > 0,
            "weight_decay": _is_number(self.weight_decay) and self.weight_decay >= 0,
            "betas": isinstance(self.betas, tuple) and len(self.betas) == 2
            and all(_is_number(b) and 0 <= b < 1 for b in self.betas),
            "warmup_epochs": _is_int(self.warmup_epochs, minimum=0) and self.warmup_epochs <= self.epochs,
            "schedule": self.schedule in SCHEDULES,
            "loss": self.loss in LOSSES,
            "seed": _is_int(self.seed, minimum=0),
            "num_workers": _is_int(self.num_workers, minimum=0),
            "batch_composition": self.batch_composition in BATCH_COMPOSITIONS,
            "micro_batch_size": self.micro_batch_size is None or _is_int(self.micro_batch_size, minimum=1),
            "regime": self.regime in REGIMES,
        }
        bad = [name for name, ok in valid.items() if not ok]
        if bad:
            raise ValueError("invalid fit settings: " + ", ".join(f"{n}={getattr(self, n)!r}" for n in bad)
                             + f" (schedules: {sorted(SCHEDULES)}; losses: {sorted(LOSSES)}; "
                             f"regimes: {sorted(REGIMES)})")


def _is_int(value: Any, minimum: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= minimum


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


@dataclass(frozen=True)
class FitResult:
    """history: one dict per epoch (epoch, train_loss, train_miou, val_loss, val_miou, val_mpa, lr);
    the model holds the weights of `best_epoch` after `fit`. step_seconds: the mean wall time of an optimizer
    step (forward, backward, update; not the loader) in each epoch this call trained (a resume times only
    the epochs it ran)."""

    history: list[dict[str, float]]
    best_epoch: int
    best_val_miou: float
    step_seconds: tuple[float, ...] = ()


@dataclass(frozen=True)
class EvaluationResult:
    """scores: the pooled confusion-matrix protocol (the default); batch_mean: the authors' protocol
    ({"miou", "mpa"}); confusion: the (C, C) counts, row = label, column = prediction."""

    scores: SegmentationScores
    batch_mean: dict[str, float]
    confusion: np.ndarray


class NonFiniteLossError(GeofmError, RuntimeError):
    """The training loss became NaN or infinite; the previous epoch's checkpoint is left as it was."""


def resolve_device(name: str) -> torch.device:
    """"auto" is CUDA when available, else the CPU; any other name must be a device torch can use here."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as error:
        raise ValueError(f"unknown device {name!r}: {error}") from error
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} was asked for, but CUDA is not available here")
    return device


def _autocast(device: torch.device) -> torch.autocast:
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")


@dataclass
class _PassResult:
    loss_sum: float
    samples: int
    confusion: ConfusionMatrix
    batch_mean: BatchMeanScores


@torch.inference_mode()
def _evaluation_pass(model: nn.Module, loader: DataLoader, num_classes: int, device: torch.device,
                     loss_fn: nn.Module | None = None, desc: str = "evaluate") -> _PassResult:
    model.eval()
    result = _PassResult(0.0, 0, ConfusionMatrix(num_classes), BatchMeanScores(num_classes))
    for x, y in tqdm(loader, desc=desc, leave=False, disable=None):
        x, y = x.to(device), y.to(device).long()
        with _autocast(device):
            logits = model(x)
        logits = logits.float()
        if loss_fn is not None:
            result.loss_sum += float(loss_fn(logits, y)) * len(y)
        result.samples += len(y)
        predicted = logits.argmax(dim=1)
        result.confusion.update(predicted, y)
        result.batch_mean.update(predicted, y)
    return result


@dataclass
class _EpochPass:
    loss_sum: float
    samples: int
    confusion: ConfusionMatrix
    step_seconds: float


def _gradient_step(model: nn.Module, x: torch.Tensor, y: torch.Tensor, loss_fn: SegmentationLoss,
                   device: torch.device, micro_batch_size: int | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Fill the parameters' gradients for one batch; returns its loss (detached) and predicted classes. The
    caller checks the loss is finite before stepping."""
    def forward(inputs: torch.Tensor) -> torch.Tensor:
        with _autocast(device):
            return model(inputs).float()

    if micro_batch_size is not None:
        step = accumulate_gradients(model, forward, x, y, loss_fn, micro_batch_size)
        return step.loss, step.predicted
    logits = forward(x)
    loss = loss_fn(logits, y)
    loss.backward()
    return loss.detach(), logits.detach().argmax(dim=1)


def _train_epoch(model: nn.Module, loader: DataLoader, loss_fn: SegmentationLoss, optimizer: Optimizer,
                 scheduler: LRScheduler, num_classes: int, device: torch.device, epoch: int,
                 config: FitConfig, regime: TrainingRegime) -> _EpochPass:
    """One pass over the training set: loss summed over samples, samples, running confusion, and the mean
    seconds of a step."""
    regime.prepare_epoch(model, epoch)
    running = ConfusionMatrix(num_classes)
    loss_sum = 0.0
    samples = 0
    seconds = 0.0
    bar = tqdm(loader, desc=f"epoch {epoch}/{config.epochs}", leave=False, disable=None)
    for step, (x, y) in enumerate(bar, start=1):
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True).long()
        started = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        loss, predicted = _gradient_step(model, x, y, loss_fn, device, config.micro_batch_size)
        value = loss.item()
        if not math.isfinite(value):
            raise NonFiniteLossError(f"non-finite training loss ({value}) at epoch {epoch}, step {step}; "
                                     "the checkpoint of the last completed epoch is kept")
        regime.drop_frozen_gradients(model, epoch)
        optimizer.step()
        scheduler.step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        seconds += time.perf_counter() - started
        loss_sum += value * len(y)
        samples += len(y)
        running.update(predicted, y)
        bar.set_postfix(loss=f"{value:.4f}", miou=f"{running.compute().miou:.3f}", refresh=False)
    return _EpochPass(loss_sum, samples, running, seconds / len(loader))


def _reduced(distributed: Distributed, loss_sum: float, samples: int,
             confusion: ConfusionMatrix) -> tuple[float, SegmentationScores]:
    """Mean loss per sample and scores of a pass, its sums and counts added over every process first."""
    loss_sum, samples = distributed.all_sum(np.array([loss_sum, samples], dtype=np.float64))
    return float(loss_sum / samples), scores_from_confusion(distributed.all_sum(confusion.matrix))


@dataclass
class _Progress:
    """What a resumed run needs besides the model, optimizer, scheduler and RNG states; `best_model` holds
    the best epoch's trainable parameters and buffers."""

    epoch: int = 0
    history: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int = 0
    best_val_miou: float = -math.inf
    best_model: dict[str, torch.Tensor] = field(default_factory=dict)


def _resume(path: Path, config: FitConfig, model: nn.Module, frozen: str, optimizer: Optimizer,
            scheduler: LRScheduler) -> _Progress:
    checkpoint = load_checkpoint(path)
    saved, current = checkpoint["config"], asdict(config)
    defaults = asdict(FitConfig())  # a setting added since the checkpoint was written had its default
    changed = [k for k in current if k not in RESUMABLE_CHANGES and saved.get(k, defaults[k]) != current[k]]
    if changed:
        raise ValueError(f"cannot resume from {path}: settings changed since it was written: "
                         + ", ".join(f"{k} {saved.get(k)!r} -> {current[k]!r}" for k in changed)
                         + "; use another checkpoint folder or delete it")
    check_trainable_state(model, checkpoint["model"], f"checkpoint {path}")
    if checkpoint["frozen_fingerprint"] != frozen:
        raise ValueError(f"cannot resume from {path}: the model's frozen parameters differ from those it was "
                         "trained with; build the model from the same encoder weights and seed, or delete "
                         "the checkpoint folder")
    load_trainable_state(model, checkpoint["model"], f"checkpoint {path}")
    optimizer.load_state_dict(checkpoint["optimizer"])
    scheduler.load_state_dict(checkpoint["scheduler"])
    restore_rng_state(checkpoint["rng"])
    # No best_model: the checkpoint's epoch is the best one (loaded tensors are not the model's own).
    best_model = checkpoint["model"] if checkpoint["best_model"] is None else checkpoint["best_model"]
    return _Progress(checkpoint["epoch"], checkpoint["history"], checkpoint["best_epoch"],
                     checkpoint["best_val_miou"], best_model)


def _loader(dataset: Dataset, batch_size: int, config: FitConfig, device: torch.device,
            sampler: Sampler[int] | None = None) -> DataLoader:
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=config.num_workers,
                      pin_memory=device.type == "cuda")


def _selection_loader(dataset: Dataset, batch_size: int, config: FitConfig, device: torch.device,
                      regime: TrainingRegime, distributed: Distributed) -> DataLoader:
    """The selection split's batches: the authors' protocol scores `batch_size` samples with their mirrors
    a batch, in order; the pooled one any batches."""
    if regime.selection_protocol == "authors":
        return DataLoader(dataset, batch_sampler=mirror_pair_batches(dataset, batch_size),
                          num_workers=config.num_workers, pin_memory=device.type == "cuda")
    return _loader(dataset, batch_size, config, device, sampler=distributed.eval_sampler(dataset))


def _selection_metrics(regime: TrainingRegime, pooled: SegmentationScores,
                       batch_mean: BatchMeanScores) -> tuple[float, dict[str, float]]:
    """The score that selects the kept epoch, and the history entries the regime adds."""
    if regime.selection_protocol == "authors":
        scores = batch_mean.compute()
        return scores["miou"], {"val_authors_miou": scores["miou"], "val_authors_mpa": scores["mpa"]}
    return pooled.miou, {}


def _training_loader(dataset: Dataset, batch_size: int, config: FitConfig, device: torch.device,
                     generator: torch.Generator) -> DataLoader:
    """One epoch's batches of one process, composed as `config.batch_composition` says."""
    batches = training_batches(config.batch_composition, dataset, batch_size, generator)
    return DataLoader(dataset, batch_sampler=batches, generator=generator, num_workers=config.num_workers,
                      pin_memory=device.type == "cuda")


def _steps_per_epoch(train_set: Dataset, batch_size: int, config: FitConfig, distributed: Distributed) -> int:
    if distributed.world_size > 1:
        return math.ceil(distributed.local_length(train_set) / batch_size)
    return len(training_batches(config.batch_composition, train_set, batch_size, torch.Generator()))


def fit(model: nn.Module, train_set: Dataset, val_set: Dataset, num_classes: int, config: FitConfig,
        checkpoint_dir: Path, callbacks: Sequence[FitCallback] = (),
        distributed: Distributed = SINGLE_PROCESS) -> FitResult:
    """Train `model` on `train_set`, select the best epoch by validation mIoU and leave it in `model`.

    Items of both datasets are (x (1, H, W) float32, y (H, W) integer class indices, widened to int64
    on the device). When `checkpoint_dir/last.pt` exists, training resumes from it (the settings must
    match, except device and num_workers, and so must the model's frozen parameters, which checkpoints
    leave out). A fresh run seeds every generator with `config.seed`; build the model before calling
    (after seeding, if its initialization must be reproducible). The model stays on the training device.

    With `distributed` (a process of a torchrun training), each process trains on its share of every batch
    of `config.batch_size` and only the main process writes the checkpoint and tells the callbacks.
    """
    device = resolve_device(config.device)
    for name, dataset in (("training", train_set), ("validation", val_set)):
        if len(dataset) == 0:
            raise ValueError(f"the {name} set is empty")
    trainable = [p for p in model.parameters() if p.requires_grad]
    if not trainable:
        raise ValueError("the model has no trainable parameter")
    if distributed.world_size > 1 and config.micro_batch_size is not None:
        raise ValueError(f"train.micro_batch_size {config.micro_batch_size} runs in one process only; use "
                         "null with several processes (each already holds only its share of a batch)")
    regime = get_regime(config.regime)
    if distributed.world_size > 1 and regime.selection_protocol != "pooled":
        raise ValueError(f"train.regime {config.regime!r} runs in one process only (its selection scores "
                         "whole mirror-pair batches); use 'geofm' with several processes")
    if distributed.world_size > 1 and config.batch_composition != "shuffled":
        raise ValueError(f"train.batch_composition {config.batch_composition!r} runs in one process only; "
                         "use 'shuffled' with several processes (the distributed sampler keeps each sample's "
                         "mirror on the same process)")
    model.to(device)
    batch_size = distributed.local_batch(config.batch_size)
    optimizer = torch.optim.AdamW(trainable, lr=config.lr, betas=config.betas,
                                  weight_decay=config.weight_decay, fused=device.type == "cuda")
    scheduler = build_scheduler(config.schedule, optimizer, epochs=config.epochs,
                                warmup_epochs=config.warmup_epochs,
                                steps_per_epoch=_steps_per_epoch(train_set, batch_size, config, distributed))
    loss_fn = build_loss(config.loss, num_classes)
    val_loader = _selection_loader(val_set, batch_size, config, device, regime, distributed)
    last_path = Path(checkpoint_dir) / LAST_CHECKPOINT
    frozen = frozen_fingerprint(model)
    announcer = EpochAnnouncer(callbacks, checkpoint_dir)
    if last_path.exists():
        progress = _resume(last_path, config, model, frozen, optimizer, scheduler)
        if distributed.is_main:
            announcer.catch_up(progress.history)
    else:
        seed_everything(config.seed)
        progress = _Progress()
    trained = distributed.wrap(model, device)
    step_seconds = []

    for epoch in range(progress.epoch + 1, config.epochs + 1):
        lr = optimizer.param_groups[0]["lr"]
        sampler = distributed.train_sampler(train_set, seed=config.seed, epoch=epoch)
        loader = (_loader(train_set, batch_size, config, device, sampler) if sampler is not None else
                  _training_loader(train_set, batch_size, config, device,
                                   torch.Generator().manual_seed(config.seed + epoch)))
        trained_epoch = _train_epoch(trained, loader, loss_fn, optimizer, scheduler, num_classes, device,
                                     epoch, config, regime)
        step_seconds.append(trained_epoch.step_seconds)
        LOG.info("epoch %d/%d: %.3f s per optimizer step", epoch, config.epochs, trained_epoch.step_seconds)
        train_loss, train_scores = _reduced(distributed, trained_epoch.loss_sum, trained_epoch.samples,
                                            trained_epoch.confusion)
        validation = _evaluation_pass(model, val_loader, num_classes, device, loss_fn, desc="validate")
        val_loss, scores = _reduced(distributed, validation.loss_sum, validation.samples,
                                    validation.confusion)
        selected, extra = _selection_metrics(regime, scores, validation.batch_mean)
        metrics = {"train_loss": train_loss, "train_miou": train_scores.miou, "val_loss": val_loss,
                   "val_miou": scores.miou, "val_mpa": scores.mpa, "lr": lr, **extra}
        progress.history.append({"epoch": epoch, **metrics})
        progress.epoch = epoch
        if selected > progress.best_val_miou:
            progress.best_epoch, progress.best_val_miou = epoch, selected
            progress.best_model = cpu_copy(trainable_state(model))
        # The best weights are written once: when this epoch is the best, they are the model's own.
        best_model = None if progress.best_epoch == epoch else progress.best_model
        if distributed.is_main:
            save_atomic({"config": asdict(config), "frozen_fingerprint": frozen,
                         "model": trainable_state(model), "optimizer": optimizer.state_dict(),
                         "scheduler": scheduler.state_dict(), "rng": capture_rng_state(), **vars(progress),
                         "best_model": best_model}, last_path)
            announcer.tell(epoch, metrics)

    load_trainable_state(model, progress.best_model, f"the best epoch's state in {last_path}")
    return FitResult(progress.history, progress.best_epoch, progress.best_val_miou, tuple(step_seconds))


def evaluate(model: nn.Module, dataset: Dataset, num_classes: int, batch_size: int,
             device: str = "auto") -> EvaluationResult:
    """Score `model` on every item of `dataset` (in order) under both protocols of `training.metrics`."""
    if len(dataset) == 0:
        raise ValueError("the evaluation set is empty")
    target = resolve_device(device)
    model.to(target)
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, pin_memory=target.type == "cuda")
    result = _evaluation_pass(model, loader, num_classes, target)
    return EvaluationResult(result.confusion.compute(), result.batch_mean.compute(), result.confusion.matrix)
