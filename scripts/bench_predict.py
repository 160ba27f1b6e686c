"""Benchmark of survey prediction: sections per second and peak memory of `predict_survey` on a volume,
at two volume sizes, to show that memory stays flat as the volume grows.

    .venv/bin/python scripts/bench_predict.py --inlines 8 32 --crosslines 320 --samples 256

Writes a synthetic int16 volume (amplitudes in the thousands, like field data) as SEG-Y (or `.npy`) trace
by trace into a temporary folder, then predicts it along the inlines in a fresh process per size, with the
amplitude mapping fitted over the whole volume, the classes written as `.npy` and as a SEG-Y copy. The
network is the benchmark's ViT-S with the LINEAR decoder (random weights: speed does not depend on them)
on tiles of the salt task's training size, 224 x 224 (`--network unet` for the UNet; `--network probe` for
a 1x1 convolution that leaves the pipeline's own cost, to measure large volumes quickly). Prints, per
size, the volume's size, sections/s, and the worker's peak RSS beside its RSS before prediction (model
loaded). Runs on CUDA when one is there.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import segyio
import torch
from torch import nn

from training.models import build_model
from training.survey import AmplitudeSettings, TilingSettings, predict_survey
from training.tasks import get_task

TASK = "salt"


def write_volume(path: Path, shape: tuple[int, int, int], seed: int = 0) -> Path:
    """An int16 volume of layered reflectors with noise, written one inline at a time."""
    rng = np.random.default_rng(seed)
    inlines, crosslines, samples = shape
    reflectivity = rng.normal(0.0, 3000.0, size=samples)
    if path.suffix == ".npy":
        volume = np.lib.format.open_memmap(path, mode="w+", dtype=np.int16, shape=shape)
    else:
        spec = segyio.spec()
        spec.format, spec.samples = int(segyio.SegySampleFormat.SIGNED_SHORT_2_BYTE), list(range(samples))
        spec.ilines, spec.xlines, spec.sorting = list(range(inlines)), list(range(crosslines)), 2
        volume = segyio.create(str(path), spec)
    for i in range(inlines):
        shift = (np.arange(crosslines) * 0.05 + i * 0.5).astype(int)
        section = reflectivity[(np.arange(samples)[None, :] + shift[:, None]) % samples]
        section = np.clip(section + rng.normal(0.0, 500.0, section.shape), -32000, 32000).astype(np.int16)
        if path.suffix == ".npy":
            volume[i] = section
        else:
            for j in range(crosslines):
                volume.header[i * crosslines + j] = {segyio.TraceField.INLINE_3D: i,
                                                     segyio.TraceField.CROSSLINE_3D: j}
            volume.iline[i] = section
    if path.suffix == ".npy":
        volume.flush()
    else:
        volume.close()
    return path


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class PipelineProbe(nn.Module):
    """A 1x1 convolution standing in for the network (`--network probe`): the figures then show what the
    prediction pipeline itself (reading, mapping, tiling, blending, writing) costs in time and memory."""

    def __init__(self, num_classes: int = 2) -> None:
        super().__init__()
        self.head = nn.Conv2d(1, num_classes, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head((x - 127.5) / 30.0)


def worker(source: Path, network: str, batch_size: int, threads: int | None) -> None:
    """Predict `source` and print a JSON line of figures."""
    if threads:
        torch.set_num_threads(threads)
    task = get_task(TASK)
    model = (PipelineProbe() if network == "probe" else
             build_model(network, task, weights="none", finetune="frozen", input_mean=127.5, input_std=30.0))
    before = peak_rss_mib()
    output = source.with_name(f"{source.stem}_classes.npy")
    result = predict_survey(model, source, output, tiling=TilingSettings(tile_shape=task.shape,
                                                                         batch_size=batch_size),
                            amplitude=AmplitudeSettings(target_range=(0.0, 255.0)), progress=False)
    print(json.dumps({"sections": result.sections, "seconds": result.seconds,
                      "sections_per_s": result.sections / result.seconds, "rss_before_mib": before,
                      "peak_rss_mib": peak_rss_mib()}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--inlines", type=int, nargs="+", default=[8, 32])
    parser.add_argument("--crosslines", type=int, default=320)
    parser.add_argument("--samples", type=int, default=256)
    parser.add_argument("--format", choices=["sgy", "npy"], default="sgy")
    parser.add_argument("--network", default="linear", help="unet, linear, pup, mla, dpt or probe (a 1x1 "
                        "convolution: the pipeline's own cost)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's); on a shared "
                        "machine, 1 avoids threads spinning against other processes")
    parser.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.network, args.batch_size, args.threads)
        return
    device = (torch.cuda.get_device_name() if torch.cuda.is_available()
              else f"CPU, {args.threads or torch.get_num_threads()} threads")
    print(f"{args.network} on tiles of {get_task(TASK).shape}, {device}")
    print("| volume (il x xl x samples) | file MiB | sections | sections/s | RSS before MiB | peak RSS MiB |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as folder:
        for inlines in args.inlines:
            shape = (inlines, args.crosslines, args.samples)
            source = write_volume(Path(folder) / f"volume_{inlines}.{args.format}", shape)
            threads = ["--threads", str(args.threads)] if args.threads else []
            command = [sys.executable, __file__, "--worker", str(source), "--network", args.network,
                       "--batch-size", str(args.batch_size), *threads]
            done = subprocess.run(command, capture_output=True, text=True, check=True)
            figures = json.loads(done.stdout.strip().splitlines()[-1])
            print(f"| {' x '.join(map(str, shape))} | {source.stat().st_size / 2**20:.1f} | "
                  f"{figures['sections']} | {figures['sections_per_s']:.2f} | "
                  f"{figures['rss_before_mib']:.0f} | {figures['peak_rss_mib']:.0f} |", flush=True)


if __name__ == "__main__":
    main()
