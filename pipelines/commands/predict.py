"""`geofm predict`: segment a section of your own (.dat, .npy or SEG-Y) with a logged model."""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import numpy as np

from pipelines.store import BenchmarkStore
from training.data.atomic import write_atomic
from training.data.sections import read_section
from training.inference import predict_section, prediction_figure
from training.settings import Project


def run(args: argparse.Namespace, project: Project) -> None:
    store = BenchmarkStore.for_project(project.settings.mlflow, project.root)
    section = read_section(Path(args.input), tuple(args.shape) if args.shape else None)
    classes = predict_section(store.load_model(args.model), section)
    output, array = Path(args.output), io.BytesIO()
    np.save(array, classes)
    write_atomic(output, array.getvalue())
    if args.figure:
        prediction_figure(Path(args.figure), f"{args.model}: {Path(args.input).name}", section, classes)
    counts = np.bincount(classes.reshape(-1))
    print(f"{args.input}: {section.shape[0]}x{section.shape[1]} section -> {output} "
          f"(pixels per class: {', '.join(f'{c}: {n}' for c, n in enumerate(counts))})")
