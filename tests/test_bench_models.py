"""`scripts/bench_models.py --encoders`: every ViT network once per encoder (the UNet once), and a batch that
runs out of memory retried in halved micro-batches."""

from __future__ import annotations

import argparse
import importlib.util
import sys

import pytest
import torch
from tiny_benchmark import REPO

from training.models import build_model
from training.tasks import get_task

_SPEC = importlib.util.spec_from_file_location("bench_models", REPO / "scripts" / "bench_models.py")
bench = importlib.util.module_from_spec(_SPEC)
sys.modules[_SPEC.name] = bench  # its dataclasses look their module up
_SPEC.loader.exec_module(bench)

pytestmark = pytest.mark.usefixtures("single_torch_thread")


def test_each_vit_network_runs_per_encoder_and_the_unet_once() -> None:
    pairs = list(bench.encoder_networks(["a", "b"], ["unet", "linear", "dpt"]))
    assert pairs == [("a", "unet"), ("a", "linear"), ("a", "dpt"), ("b", "linear"), ("b", "dpt")]


def test_an_out_of_memory_batch_is_retried_in_halved_micro_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    passes: list[int] = []
    task = get_task("salt").with_shape((28, 28))
    model = build_model("linear", task, encoder="vit_small_patch16_dinov3", weights="none")
    original = model.forward

    def forward_fitting_two(x: torch.Tensor) -> torch.Tensor:
        passes.append(len(x))
        if len(x) > 2:
            raise torch.OutOfMemoryError("CUDA out of memory")
        return original(x)

    monkeypatch.setattr(model, "forward", forward_fitting_two)
    x, y = torch.rand(5, 1, 28, 28) * 255, torch.randint(0, 2, (5, 28, 28))
    args = argparse.Namespace(warmup=0, steps=1)
    micro, seconds, _ = bench.time_fitting_step(model, "linear", task, x, y, torch.device("cpu"), args)
    assert micro == 2 and seconds > 0
    assert passes == [5, 3, 2, 2, 1]  # 5 fails, 3 fails, then passes of 2, 2 and 1
