"""The training loop.

`fit` trains with AdamW and a per-step schedule, selects the epoch with the best mIoU on the split it is
given as `val_set` (by the protocol of `config.regime`, see `training.regime`), checkpoints atomically
after every epoch and resumes from `last.pt` to exactly the weights an uninterrupted run would reach. The
checkpoint holds what training changes (trainable parameters, buffers, optimizer, scheduler, RNG states,
history) and the best epoch's trainable parameters and buffers; frozen parameters come from the model
passed in, which must be built as the first time (`training.resume`). On CUDA it runs under bf16
autocast (fused AdamW, `training.device`); on the CPU in fp32. Under torchrun, `fit` trains data-parallel
when given a `training.distributed.Distributed` (see there).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from training.accumulation import accumulate_gradients
from training.callbacks import EpochAnnouncer, FitCallback
from training.checkpoint import (
    cpu_copy,
    frozen_fingerprint,
    load_trainable_state,
    save_atomic,
    trainable_state,
)
from training.device import autocast, resolve_device
from training.distributed.context import SINGLE_PROCESS, Distributed
from training.errors import GeofmError
from training.evaluation import evaluation_pass
from training.fit_config import FitConfig
from training.loaders import plain_loader, selection_loader, steps_per_epoch, training_loader
from training.losses import SegmentationLoss, build_loss
from training.metrics import BatchMeanScores, ConfusionMatrix, SegmentationScores, scores_from_confusion
from training.regime import TrainingRegime, get_regime
from training.resume import LAST_CHECKPOINT, Progress, resume
from training.schedule import build_scheduler
from training.seeding import capture_rng_state, seed_everything

LOG = logging.getLogger("geofm")


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


class NonFiniteLossError(GeofmError, RuntimeError):
    """The training loss became NaN or infinite; the previous epoch's checkpoint is left as it was."""


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
        with autocast(device):
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


def _selection_metrics(regime: TrainingRegime, pooled: SegmentationScores,
                       batch_mean: BatchMeanScores) -> tuple[float, dict[str, float]]:
    """The score that selects the kept epoch, and the history entries the regime adds."""
    if regime.selection_protocol == "authors":
        scores = batch_mean.compute()
        return scores["miou"], {"val_authors_miou": scores["miou"], "val_authors_mpa": scores["mpa"]}
    return pooled.miou, {}


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
                                steps_per_epoch=steps_per_epoch(train_set, batch_size, config, distributed))
    loss_fn = build_loss(config.loss, num_classes)
    val_loader = selection_loader(val_set, batch_size, config, device, regime, distributed)
    last_path = Path(checkpoint_dir) / LAST_CHECKPOINT
    frozen = frozen_fingerprint(model)
    announcer = EpochAnnouncer(callbacks, checkpoint_dir)
    if last_path.exists():
        progress = resume(last_path, config, model, frozen, optimizer, scheduler)
        if distributed.is_main:
            announcer.catch_up(progress.history)
    else:
        seed_everything(config.seed)
        progress = Progress()
    trained = distributed.wrap(model, device)
    step_seconds = []

    for epoch in range(progress.epoch + 1, config.epochs + 1):
        lr = optimizer.param_groups[0]["lr"]
        sampler = distributed.train_sampler(train_set, seed=config.seed, epoch=epoch)
        loader = (plain_loader(train_set, batch_size, config, device, sampler) if sampler is not None else
                  training_loader(train_set, batch_size, config, device,
                                   torch.Generator().manual_seed(config.seed + epoch)))
        trained_epoch = _train_epoch(trained, loader, loss_fn, optimizer, scheduler, num_classes, device,
                                     epoch, config, regime)
        step_seconds.append(trained_epoch.step_seconds)
        LOG.info("epoch %d/%d: %.3f s per optimizer step", epoch, config.epochs, trained_epoch.step_seconds)
        train_loss, train_scores = _reduced(distributed, trained_epoch.loss_sum, trained_epoch.samples,
                                            trained_epoch.confusion)
        validation = evaluation_pass(model, val_loader, num_classes, device, loss_fn, desc="validate")
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
            save_atomic({"config": config.as_dict(), "frozen_fingerprint": frozen,
                         "model": trainable_state(model), "optimizer": optimizer.state_dict(),
                         "scheduler": scheduler.state_dict(), "rng": capture_rng_state(), **vars(progress),
                         "best_model": best_model}, last_path)
            announcer.tell(epoch, metrics)

    load_trainable_state(model, progress.best_model, f"the best epoch's state in {last_path}")
    return FitResult(progress.history, progress.best_epoch, progress.best_val_miou, tuple(step_seconds))
