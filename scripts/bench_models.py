"""Benchmark of the networks: parameters, training-step time and peak memory per task.

    .venv/bin/python scripts/bench_models.py --tasks salt das --networks unet linear mla --batch-size 1
    python scripts/bench_models.py --device cuda               # every task x network, paper batch sizes

For each task (at its real section size) and network, builds the model as the benchmark does (random
encoder weights, the chosen fine-tuning mode), then times `--steps` training steps (forward, weighted dice,
backward, AdamW step; bf16 autocast on CUDA, as `training.fit`) after `--warmup` untimed ones, and prints
the median step time, sections per second and peak memory (CUDA: the model's max allocated; CPU: the
process's peak RSS so far, so only a rise from one row to the next belongs to that row's model).
"""

from __future__ import annotations

import argparse
import resource
import statistics
import time
import warnings

import torch

from training.fit import resolve_device
from training.losses import build_loss
from training.models import NETWORKS, build_model, count_parameters
from training.tasks import TASKS, TaskSpec, get_task


def head_parameters(model: torch.nn.Module) -> int:
    """The decoder's parameters (the whole network for the UNet); tests/test_models.py holds them to the
    authors' counts."""
    return count_parameters(getattr(model, "decoder", model))


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def time_steps(model: torch.nn.Module, task: TaskSpec, batch_size: int, device: torch.device, warmup: int,
               steps: int) -> tuple[float, float]:
    """Median seconds per training step and peak memory (MiB) over `steps` timed steps."""
    model.to(device).train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5,
                                  fused=device.type == "cuda")
    loss_fn = build_loss("weighted_dice", task.num_classes)
    x = torch.rand(batch_size, 1, *task.shape, device=device) * 255
    y = torch.randint(0, task.num_classes, (batch_size, *task.shape), device=device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    durations = []
    for step in range(warmup + steps):
        start = time.perf_counter()
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            logits = model(x)
        loss = loss_fn(logits.float(), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        if step >= warmup:
            durations.append(time.perf_counter() - start)
    if device.type == "cuda":
        peak = torch.cuda.max_memory_allocated(device) / 2**20
    else:
        peak = peak_rss_mib()
    return statistics.median(durations), peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=list(TASKS))
    parser.add_argument("--networks", nargs="+", default=list(NETWORKS), choices=list(NETWORKS))
    parser.add_argument("--finetune", default="lora", choices=("frozen", "full", "lora"))
    parser.add_argument("--batch-size", type=int, default=None, help="default: the paper's, per task")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--steps", type=int, default=3)
    args = parser.parse_args()
    device = resolve_device(args.device)
    warnings.filterwarnings("ignore", message="weights='none'")
    cpu = f"cpu, {torch.get_num_threads()} threads"
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else cpu
    print(f"device {name}; torch {torch.__version__}; fine-tuning {args.finetune}; "
          f"{args.warmup} warm-up + {args.steps} timed steps")
    print(f"{'task':7}{'network':8}{'batch':>6}{'head params':>13}{'trainable':>11}"
          f"{'s/step':>9}{'sections/s':>11}{'peak MiB':>10}")
    for task_key in args.tasks:
        task = get_task(task_key)
        batch_size = args.batch_size or task.paper_batch_size
        for network in args.networks:
            model = build_model(network, task, finetune=args.finetune)
            seconds, peak = time_steps(model, task, batch_size, device, args.warmup, args.steps)
            print(f"{task_key:7}{network:8}{batch_size:>6}{head_parameters(model):>13,}"
                  f"{count_parameters(model, trainable_only=True):>11,}{seconds:>9.3f}"
                  f"{batch_size / seconds:>11.2f}{peak:>10.0f}")
            del model
            if device.type == "cuda":
                torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
