"""Benchmark of the networks: parameters, training-step time and peak memory per task; with `--compare`,
the authors' fp32 eager step beside geofm's fast path, with FLOP/s, the loader's rate and result drift.

    .venv/bin/python scripts/bench_models.py --tasks salt das --networks unet linear mla --batch-size 1
    python scripts/bench_models.py --device cuda               # every task x network, paper batch sizes
    python scripts/bench_models.py --device cuda --compare [--compile]   # fp32 eager vs the fast path
    python scripts/bench_models.py --device cuda --networks linear dpt --encoders vit_small_patch14_dinov2 \
        vit_large_patch16_dinov3                                # the encoder scan: what fits where

For each task (at its real section size) and network, builds the model as the benchmark does (random
encoder weights, the chosen fine-tuning mode), then times `--steps` training steps (forward, weighted dice,
backward, AdamW step) after `--warmup` untimed ones, and prints the median step time, sections per second
and peak memory (CUDA: the max allocated; CPU: the process's peak RSS so far, so only a rise from one row to
the next belongs to that row's model). The plain table times the step as `training.fit` runs it, once per
`--encoders` entry (the UNet once: it has no encoder); on CUDA a batch that runs out of memory is split into
micro-batches (halved until one fits, gradients accumulated) and the row says how many sections a pass took.

`--compare` times, on the same initial weights and batch, the step in fp32 eager (the authors' way: fp32,
attention spelled out, AdamW's for-each kernel) and on geofm's fast path (bf16 autocast, fused AdamW, fused
scaled-dot-product attention, channels_last for the UNet, `torch.compile` with `--compile`), with the FLOPs
of one step counted by `torch.utils.flop_counter` (forward and backward; the optimizer's are negligible),
achieved TFLOP/s and the fast/fp32 speed-up; the loader's sections/s (PreparedDataset over synthetic
sections at the task's size, to the device) beside the fast step's; and, setting by setting, how far the
first forward's logits move from fp32 eager (relative L2 error and pixels whose class changes), flagged
when beyond the setting's tolerance (bf16: `BF16_TOLERANCE`; the others compute the same fp32 math). Peak
memory is shown on CUDA only (the CPU's peak RSS cannot be split between the two paths).
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import resource
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader
from torch.utils.flop_counter import FlopCounterMode

from training.data.dataset import PreparedDataset
from training.data.prepare import prepare_task
from training.data.synthetic import write_synthetic_dataset
from training.device import resolve_device
from training.encoders import DEFAULT_ENCODER, ENCODERS
from training.losses import build_loss
from training.models import NETWORKS, build_model, count_parameters
from training.tasks import TASKS, TaskSpec, get_task

BF16_TOLERANCE = 2e-2
"""Relative L2 logit error allowed to bf16 autocast: 8-bit mantissas (2**-8 per rounding) over a dozen
blocks."""
FP32_TOLERANCE = 1e-4
"""Relative L2 logit error allowed to settings that keep fp32 math (fused attention, channels_last,
compile): only the order of the sums changes."""


@dataclass(frozen=True)
class StepMode:
    """How a training step runs, setting by setting."""

    name: str
    bf16: bool = False
    fused_adamw: bool = False
    fused_attention: bool = False
    channels_last: bool = False
    compile: bool = False

    @property
    def tolerance(self) -> float:
        return BF16_TOLERANCE if self.bf16 else FP32_TOLERANCE


FP32_EAGER = StepMode("fp32 eager")


def fast_path(compile_model: bool) -> StepMode:
    return StepMode("fast", bf16=True, fused_adamw=True, fused_attention=True, channels_last=True,
                    compile=compile_model)


def fit_path(device: torch.device) -> StepMode:
    """The step as `training.fit` runs it: bf16 autocast and fused AdamW on CUDA, fused attention (timm's
    default), fp32 on the CPU."""
    cuda = device.type == "cuda"
    return StepMode("fit", bf16=cuda, fused_adamw=cuda, fused_attention=True)


def single_settings(fast: StepMode, network: str) -> Iterator[StepMode]:
    """fp32 eager with one fast-path setting switched on, for each setting of `fast` that `network` has
    (attention: the ViT's; channels_last: the UNet's), then `fast` itself."""
    applicable = {"bf16": True, "fused_attention": network != "unet", "channels_last": network == "unet",
                  "compile": True}
    for name, applies in applicable.items():
        if applies and getattr(fast, name):
            yield dataclasses.replace(FP32_EAGER, name=name, **{name: True})
    yield fast


def head_parameters(model: torch.nn.Module) -> int:
    """The decoder's parameters (the whole network for the UNet); tests/test_models.py holds them to the
    authors' counts."""
    return count_parameters(getattr(model, "decoder", model))


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def configured(model: nn.Module, mode: StepMode, network: str) -> nn.Module:
    """`model` with `mode`'s attention kernel and memory format, compiled if asked (a new module then)."""
    for module in model.modules():
        if hasattr(module, "fused_attn"):  # timm's Attention: F.scaled_dot_product_attention or spelled out
            module.fused_attn = mode.fused_attention
    if mode.channels_last and network == "unet":
        model.to(memory_format=torch.channels_last)
    return torch.compile(model) if mode.compile else model


def _inputs(mode: StepMode, network: str, x: torch.Tensor) -> torch.Tensor:
    return x.to(memory_format=torch.channels_last) if mode.channels_last and network == "unet" else x


def make_step(model: nn.Module, mode: StepMode, network: str, task: TaskSpec, x: torch.Tensor,
              y: torch.Tensor, micro_batch: int | None = None) -> Callable[[], torch.Tensor]:
    """One training step of `model` on (x, y) as `mode` runs it, in passes of `micro_batch` sections
    (None: the whole batch); returns the loss."""
    device = x.device
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=1e-5, fused=True if mode.fused_adamw else None)
    loss_fn = build_loss("weighted_dice", task.num_classes)
    runner, inputs = configured(model, mode, network), _inputs(mode, network, x)

    chunk = micro_batch or len(x)

    def step() -> torch.Tensor:
        optimizer.zero_grad(set_to_none=True)
        total = torch.zeros((), device=device)
        for start in range(0, len(x), chunk):
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=mode.bf16):
                logits = runner(inputs[start:start + chunk])
            loss = loss_fn(logits.float(), y[start:start + chunk]) * len(logits) / len(x)
            loss.backward()
            total += loss.detach()
        optimizer.step()
        return total

    return step


def time_step(step: Callable[[], torch.Tensor], device: torch.device, warmup: int,
              steps: int) -> tuple[float, float]:
    """Median seconds per step over `steps` timed steps after `warmup`, and peak memory (MiB)."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    durations = []
    for index in range(warmup + steps):
        start = time.perf_counter()
        step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        if index >= warmup:
            durations.append(time.perf_counter() - start)
    peak = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else peak_rss_mib()
    return statistics.median(durations), peak


def step_flops(model: nn.Module, network: str, task: TaskSpec, x: torch.Tensor, y: torch.Tensor) -> int:
    """FLOPs of one fp32 training step's forward and backward (the same math on every path)."""
    step = make_step(copy.deepcopy(model), FP32_EAGER, network, task, x, y)
    with FlopCounterMode(display=False) as counter:
        step()
    return counter.get_total_flops()


@torch.no_grad()
def logit_drift(model: nn.Module, mode: StepMode, network: str, x: torch.Tensor,
                reference: torch.Tensor) -> tuple[float, float]:
    """(relative L2 logit error, share of pixels whose class changes) of `mode`'s forward against the fp32
    eager logits `reference`, from the same weights."""
    runner = configured(copy.deepcopy(model), mode, network)
    with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=mode.bf16):
        logits = runner(_inputs(mode, network, x)).float()
    error = float(torch.linalg.vector_norm(logits - reference) / torch.linalg.vector_norm(reference))
    changed = float((logits.argmax(1) != reference.argmax(1)).float().mean())
    return error, changed


def loader_rate(task: TaskSpec, batch_size: int, device: torch.device, samples: int,
                num_workers: int) -> float:
    """Sections per second a DataLoader over `PreparedDataset` (flip pairs) delivers to `device`, for
    `samples` synthetic sections at the task's size (best of two epochs: the second reads the page cache)."""
    with tempfile.TemporaryDirectory() as scratch:
        raw, prepared = Path(scratch) / "raw", Path(scratch) / "prepared"
        write_synthetic_dataset(raw, {task.key: task}, samples, 2, seed=0)
        prepare_task(raw, prepared, task, 0.1, 1234)
        dataset = PreparedDataset(prepared, task.key, "train")
        loader = DataLoader(dataset, batch_size=batch_size, shuffle=True, num_workers=num_workers,
                            pin_memory=device.type == "cuda", persistent_workers=num_workers > 0)
        best = float("inf")
        for _ in range(2):
            start = time.perf_counter()
            for x, y in loader:
                x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True).long()
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            best = min(best, time.perf_counter() - start)
        return len(dataset) / best


def compare(task: TaskSpec, network: str, model: nn.Module, batch_size: int, device: torch.device,
            args: argparse.Namespace) -> None:
    """The comparison rows of one task x network (see the module's docstring)."""
    x = torch.rand(batch_size, 1, *task.shape, device=device) * 255
    y = torch.randint(0, task.num_classes, (batch_size, *task.shape), device=device)
    model.to(device).train()
    flops = step_flops(model, network, task, x, y)
    fast = fast_path(args.compile)
    timings = {}
    for mode in (FP32_EAGER, fast):
        step = make_step(copy.deepcopy(model), mode, network, task, x, y)
        timings[mode.name] = time_step(step, device, args.warmup, args.steps)
        if device.type == "cuda":
            torch.cuda.empty_cache()
    for mode in (FP32_EAGER, fast):
        seconds, peak = timings[mode.name]
        ratio = timings[FP32_EAGER.name][0] / seconds
        memory = f"{peak:>10.0f}" if device.type == "cuda" else f"{'-':>10}"  # RSS peaks are cumulative
        print(f"{task.key:7}{network:8}{batch_size:>6}  {mode.name:11}{seconds:>9.3f}"
              f"{batch_size / seconds:>11.2f}{memory}{flops / seconds / 1e12:>9.2f}{ratio:>8.2f}x")
    if args.loader_samples:
        rate = loader_rate(task, batch_size, device, args.loader_samples, args.num_workers)
        fast_rate = batch_size / timings[fast.name][0]
        verdict = "ok" if rate >= 2 * fast_rate else "LOADER-BOUND (< 2x the step)"
        print(f"{'':21}  loader: {rate:.1f} sections/s = {rate / fast_rate:.1f}x the fast step ({verdict})")
    with torch.no_grad():
        reference = configured(copy.deepcopy(model), FP32_EAGER, network)(x).float()
    for mode in single_settings(fast, network):
        error, changed = logit_drift(model, mode, network, x, reference)
        flag = "" if error <= mode.tolerance else f"  BEYOND TOLERANCE {mode.tolerance:g}"
        print(f"{'':21}  drift {mode.name:16} logits {error:.1e} (relative L2), classes changed "
              f"{changed:.2%}{flag}")


def encoder_networks(encoders: list[str], networks: list[str]) -> Iterator[tuple[str, str]]:
    """Every (encoder, network) to time: each ViT network per encoder, the UNet once."""
    for index, encoder in enumerate(encoders):
        yield from ((encoder, network) for network in networks if network != "unet" or index == 0)


def time_fitting_step(model: nn.Module, network: str, task: TaskSpec, x: torch.Tensor, y: torch.Tensor,
                      device: torch.device, args: argparse.Namespace) -> tuple[int, float, float]:
    """Sections per pass, median s/step and peak MiB of the fit path; on CUDA an out-of-memory batch is
    retried in halved micro-batches until one fits."""
    micro = len(x)
    while True:
        try:
            step = make_step(model, fit_path(device), network, task, x, y, micro_batch=micro)
            return micro, *time_step(step, device, args.warmup, args.steps)
        except torch.OutOfMemoryError:
            if micro == 1:
                raise
            micro = (micro + 1) // 2
            model.zero_grad(set_to_none=True)
            torch.cuda.empty_cache()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=list(TASKS))
    parser.add_argument("--networks", nargs="+", default=list(NETWORKS), choices=list(NETWORKS))
    parser.add_argument("--finetune", default="lora", choices=("frozen", "full", "lora"))
    parser.add_argument("--encoders", nargs="+", default=[DEFAULT_ENCODER], choices=ENCODERS,
                        help="timm encoders, each timed with every ViT network (docs/models.md)")
    parser.add_argument("--batch-size", type=int, default=None, help="default: the paper's, per task")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--compare", action="store_true", help="fp32 eager beside the fast path")
    parser.add_argument("--compile", action="store_true",
                        help="with --compare: torch.compile on the fast path")
    parser.add_argument("--loader-samples", type=int, default=32,
                        help="with --compare: synthetic sections the loader reads (0: skip the loader)")
    parser.add_argument("--num-workers", type=int, default=0, help="with --compare: the loader's workers")
    args = parser.parse_args()
    device = resolve_device(args.device)
    warnings.filterwarnings("ignore", message="weights='none'")
    cpu = f"cpu, {torch.get_num_threads()} threads"
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else cpu
    print(f"device {name}; torch {torch.__version__}; fine-tuning {args.finetune}; "
          f"{args.warmup} warm-up + {args.steps} timed steps")
    if args.compare:
        print(f"{'task':7}{'network':8}{'batch':>6}  {'path':11}{'s/step':>9}{'sections/s':>11}"
              f"{'peak MiB':>10}{'TFLOP/s':>9}{'vs fp32':>9}")
    else:
        print(f"{'encoder':32}{'task':7}{'network':8}{'batch':>6}{'micro':>6}{'head params':>13}"
              f"{'trainable':>11}{'s/step':>9}{'sections/s':>11}{'peak MiB':>10}")
    for task_key in args.tasks:
        task = get_task(task_key)
        batch_size = args.batch_size or task.paper_batch_size
        for encoder, network in encoder_networks(args.encoders, args.networks):
            model = build_model(network, task, encoder=encoder, weights="none", finetune=args.finetune)
            if args.compare:
                compare(task, network, model, batch_size, device, args)
            else:
                model.to(device).train()
                x = torch.rand(batch_size, 1, *task.shape, device=device) * 255
                y = torch.randint(0, task.num_classes, (batch_size, *task.shape), device=device)
                micro, seconds, peak = time_fitting_step(model, network, task, x, y, device, args)
                shown = "-" if network == "unet" else encoder
                print(f"{shown:32}{task_key:7}{network:8}{batch_size:>6}{micro:>6}"
                      f"{head_parameters(model):>13,}{count_parameters(model, trainable_only=True):>11,}"
                      f"{seconds:>9.3f}{batch_size / seconds:>11.2f}{peak:>10.0f}")
            del model
            if device.type == "cuda":
                torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
