"""Benchmark of whole trainings at the paper's section sizes, without MLflow or Dagster: synthetic raw data,
preparation and the train stage's `train_and_evaluate` (fit, selection, test scoring, run files) for each
task x model, on the device at hand, in a temporary project.

    python scripts/bench_training.py --tasks das salt --models unet linear-lora --epochs 3 --train-count 16

Uses `params.yaml` under `--profile` (default paper-smoke: the authors' scaling, batches and UNet forward,
random encoder weights) with the counts, epochs and micro-batch size given here. Prints, per training: the
raw training samples (validation is carved from them), the epochs, the first epoch's seconds (model build
and loader start included), the mean of the later epochs' (train and validate), the seconds after the last
epoch (test scoring, merged model, files), the peak GPU memory and the test mIoU.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch
import yaml

from training.distributed.tracking import SilentTracker
from training.settings import load_settings
from training.stages.prepare import prepare
from training.stages.raw import materialize_raw
from training.stages.train import train_and_evaluate

REPO = Path(__file__).resolve().parent.parent


class EpochClock:
    """Fit callback keeping the time at which each epoch ended."""

    def __init__(self) -> None:
        self.ends: list[float] = []

    def on_epoch_end(self, epoch: int, metrics: dict[str, float]) -> None:
        self.ends.append(time.monotonic())


def write_params(root: Path, args: argparse.Namespace) -> Path:
    """The repository's params.yaml with this benchmark's tasks, models, counts and epochs."""
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params.update(profile=args.profile, tasks=args.tasks, models=args.models)
    profile = params["profiles"][args.profile]
    profile.setdefault("data", {}).update(source="synthetic")
    profile["data"].setdefault("synthetic", {}).update(train_count=args.train_count,
                                                       test_count=args.test_count)
    profile.setdefault("train", {}).update(epochs=args.epochs, micro_batch_size=args.micro_batch_size,
                                           seeds=[args.seed])
    path = root / "params.yaml"
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", default="paper-smoke")
    parser.add_argument("--tasks", nargs="+", default=["das"])
    parser.add_argument("--models", nargs="+", default=["unet", "linear-lora"])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--train-count", type=int, default=16)
    parser.add_argument("--test-count", type=int, default=4)
    parser.add_argument("--micro-batch-size", type=int, default=None,
                        help="samples per forward pass (default: the whole batch at once)")
    parser.add_argument("--seed", type=int, default=1234)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="geofm-bench-training-") as folder:
        root = Path(folder)
        settings = load_settings(write_params(root, args))
        cuda = torch.cuda.is_available()
        device = torch.cuda.get_device_name() if cuda else "cpu"
        micro = args.micro_batch_size or "whole batch"
        print(f"profile {args.profile} on {device}; torch {torch.__version__}; {args.train_count} train "
              f"samples per task, {args.epochs} epochs, micro-batch {micro}")
        started = time.monotonic()
        materialize_raw(settings, root)
        for task in settings.tasks:
            prepare(settings, root, task)
        print(f"raw and prepare: {time.monotonic() - started:.1f} s")
        print("task   model        samples  epochs  first s  later s/epoch  after s  peak GiB  test mIoU")
        for task in settings.tasks:
            for model in settings.models:
                if cuda:
                    torch.cuda.reset_peak_memory_stats()
                clock, start = EpochClock(), time.monotonic()
                result = train_and_evaluate(settings, root, task, model, SilentTracker(), args.seed, [clock])
                finished = time.monotonic()
                later = [b - a for a, b in zip(clock.ends, clock.ends[1:], strict=False)]
                per_epoch = statistics.mean(later) if later else float("nan")
                peak = torch.cuda.max_memory_allocated() / 2**30 if cuda else float("nan")
                print(f"{task:6s} {model:12s} {args.train_count:7d}  {len(clock.ends):6d}  "
                      f"{clock.ends[0] - start:7.1f}  {per_epoch:13.1f}  "
                      f"{finished - clock.ends[-1]:7.1f}  {peak:8.1f}  {result.miou:9.4f}")


if __name__ == "__main__":
    main()
