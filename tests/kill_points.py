"""SIGKILL a `geofm` process at a chosen point of a training (a test tool, not a hook in geofm).

`install(point)` wraps, in the calling process only, the library function that marks the point; when it is
reached the process kills itself with SIGKILL, as the kernel's OOM killer or `kill -9` would, leaving
nothing flushed or cleaned. Polling files from outside cannot hit these points reliably: on a tiny
configuration an epoch, or the gap between logging a model and registering it, lasts milliseconds.
Points:

- `mid-epoch`: at the second batch of epoch 2 (epoch 1 checkpointed and logged, one step of epoch 2 taken);
- `after-checkpoint`: right after epoch 1's checkpoint is written, before the tracker hears of epoch 1;
- `while-logging`: with the model's artifacts uploaded and the logged model still PENDING (not finalized);
- `after-logging`: right after the run's model is logged to MLflow, before scores, files and registration;
- `while-staging`: with the run's artifacts half staged (the prediction figure written, not yet renamed);
- `after-registration`: right after the model version is created, before the best alias is set;
- `while-predicting`: `geofm predict` with its first slice of classes written to the temporary output.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable, Iterable, Iterator
from typing import Any

KILL_EPOCH = 2
"""The epoch of `mid-epoch` (whose first batch is trained) and the epoch before it, of `after-checkpoint`."""


def die() -> None:
    """SIGKILL this process: no handler, no `finally`, no atexit runs."""
    sys.stdout.flush()
    os.kill(os.getpid(), signal.SIGKILL)


def _after(function: Callable[..., Any], should_die: Callable[..., bool] = lambda *a, **k: True) -> Callable:
    """`function`, followed by death when `should_die(*its arguments)`."""

    def wrapped(*args: Any, **kwargs: Any) -> Any:
        result = function(*args, **kwargs)
        if should_die(*args, **kwargs):
            die()
        return result

    return wrapped


def _dying_batches(loader: Iterable, at_batch: int) -> Iterator:
    for number, batch in enumerate(loader, start=1):
        if number == at_batch:
            die()
        yield batch


def install(point: str) -> None:
    """Make this process die at `point` (see the module's docstring)."""
    from pipelines.tracking import store
    from pipelines.tracking.tracker import MlflowTracker
    from training import fit
    from training.stages import train

    if point == "mid-epoch":
        train_epoch = fit._train_epoch

        def train_epoch_then_die(model, loader, *args: Any, **kwargs: Any):  # noqa: ANN001, ANN202
            epoch = args[5]  # (loss_fn, optimizer, scheduler, num_classes, device, epoch, epochs)
            return train_epoch(model, _dying_batches(loader, 2) if epoch == KILL_EPOCH else loader, *args,
                               **kwargs)

        fit._train_epoch = train_epoch_then_die
    elif point == "after-checkpoint":
        fit.save_atomic = _after(fit.save_atomic, lambda state, path: state["epoch"] == KILL_EPOCH - 1)
    elif point == "while-logging":
        from mlflow import MlflowClient

        MlflowClient.log_model_artifacts = _after(MlflowClient.log_model_artifacts)
    elif point == "after-logging":
        MlflowTracker.log_model = _after(MlflowTracker.log_model)
    elif point == "while-staging":
        train.prediction_figure = _after(train.prediction_figure)
    elif point == "after-registration":
        store.BenchmarkStore._register = staticmethod(_after(store.BenchmarkStore._register))
    elif point == "while-predicting":
        from training.survey import outputs

        outputs.NpyOutput.write = _after(outputs.NpyOutput.write)
    else:
        raise ValueError(f"unknown kill point {point!r}; known: mid-epoch, after-checkpoint, while-logging, "
                         "after-logging, while-staging, after-registration, while-predicting")

