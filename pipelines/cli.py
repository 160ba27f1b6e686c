"""`geofm`: the benchmark's command line. DVC's stages call `raw`, `prepare`, `train` and `report`;
`benchmark` (and `demo`, the same on the demo profile) runs the whole benchmark through Dagster; `predict`
segments a section of your own with a logged model."""

from __future__ import annotations

import argparse
import io
import logging
import os
import sys
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pipelines.store import BenchmarkStore
from training import benchmark
from training.config import load_params
from training.data.atomic import write_atomic
from training.data.sections import read_section
from training.data.validate import DataValidationError
from training.inference import predict_section, prediction_figure

PAPER_COMMAND = "geofm --profile paper benchmark"
NEXT_STEPS = """
Browse the results:
  Dagster UI : DAGSTER_HOME=$PWD/.dagster_home .venv/bin/dagster dev        (then http://127.0.0.1:3000)
  MLflow UI  : .venv/bin/mlflow ui --backend-store-uri sqlite:///mlflow/mlflow.db   (then http://127.0.0.1:5000)
Segment a section of your own (.sgy/.segy, .npy, or .dat with --shape H W) with a registered model:
  .venv/bin/geofm predict --model geofm-salt-mla-lora --input line.sgy --output classes.npy
Run the paper's settings (Zenodo data, full sizes, 100 epochs; a GPU and days):
  {paper}      or      dvc exp run -S profile=paper
"""


def _root(args: argparse.Namespace) -> Path:
    return Path(args.root).resolve()


def _params(args: argparse.Namespace) -> dict[str, Any]:
    """The effective parameters: the params file under the root, with the chosen profile."""
    return load_params(_root(args) / args.params, args.profile)


def raw(args: argparse.Namespace) -> None:
    """Write or fetch the raw data, then validate every file."""
    params = _params(args)
    folder = benchmark.materialize_raw(params, _root(args))
    summaries = benchmark.validate_raw_data(params, _root(args))
    print(f"raw data in {folder}: " + ", ".join(f"{key} {s.counts}" for key, s in summaries.items()))


def prepare(args: argparse.Namespace) -> None:
    """Prepare one task's arrays and data card, then validate them."""
    params = _params(args)
    folder, card = benchmark.prepare(params, _root(args), args.task)
    benchmark.validate_prepared_data(params, _root(args), args.task)
    print(f"prepared {args.task} in {folder}\n{card.to_string()}")


def train(args: argparse.Namespace) -> None:
    """Train and test one model, tracked in MLflow; its version becomes `best` if it is."""
    params = _params(args)
    store = BenchmarkStore.for_project(params, _root(args))
    with store.training_run(params, args.task, args.model, launcher="cli") as tracker:
        run = benchmark.train_and_evaluate(params, _root(args), args.task, args.model, tracker)
        url = tracker.run_url
    promoted = store.promote(run["model_ref"], run["best_val_miou"])
    print(f"{args.task}/{args.model}: test mIoU {run['miou']:.4f}, mPA {run['mpa']:.4f} "
          f"(majority baseline {run['majority_baseline_miou']:.4f}); {run['model_ref'].uri}"
          f"{' promoted to best' if promoted else ''}; {url}")


def report(args: argparse.Namespace) -> None:
    """Build both tables from the runs' metrics.json, log them to MLflow and print them."""
    params = _params(args)
    result = benchmark.build_report(params, _root(args))
    BenchmarkStore.for_project(params, _root(args)).log_report(params, result.tables)
    print(result.markdown)
    if result.missing:
        print(f"not trained yet: {', '.join(result.missing)}", file=sys.stderr)


def predict(args: argparse.Namespace) -> None:
    """Segment one section (.dat, .npy or SEG-Y) with a logged model; write the classes as .npy."""
    store = BenchmarkStore.for_project(_params(args), _root(args))
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


def run_main_job(args: argparse.Namespace) -> None:
    """The whole benchmark through Dagster, recorded in .dagster_home; prints the tables at the end."""
    import dagster as dg

    from pipelines.definitions import build_definitions
    from pipelines.main_job import dagster_instance, release_stale_runs, run_benchmark

    warnings.filterwarnings("ignore", category=dg.BetaWarning)

    params, root = _params(args), _root(args)
    print(f"benchmark, profile {params.get('profile')}: {len(params['tasks'])} tasks x "
          f"{len(params['models'])} models; Dagster instance {root / '.dagster_home'}")
    instance = dagster_instance(root)
    for run_id in release_stale_runs(instance):
        print(f"marked run {run_id} failed: its process is gone")
    defs = build_definitions(root, args.params, params.get("profile"))
    outcome = run_benchmark(defs, instance, params)
    print((root / params["outputs"]["reports_dir"] / "benchmark.md").read_text())
    for check in outcome.failed_checks:
        print(f"failed check: {check}", file=sys.stderr)
    print(NEXT_STEPS.format(paper=PAPER_COMMAND))


def demo(args: argparse.Namespace) -> None:
    """The main job on the offline demo profile."""
    args.profile = "demo"
    run_main_job(args)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="geofm", description=__doc__)
    parser.add_argument("--root", default=".", help="project folder (default: the current one)")
    parser.add_argument("--params", default="params.yaml", help="parameters file, relative to the root")
    parser.add_argument("--profile", help="params.yaml profile to apply (default: the file's `profile`)")
    commands = parser.add_subparsers(dest="command", required=True)
    table: dict[str, tuple[Callable[[argparse.Namespace], None], Sequence[str]]] = {
        "raw": (raw, ()), "prepare": (prepare, ("task",)), "train": (train, ("task", "model")),
        "report": (report, ()), "benchmark": (run_main_job, ()), "demo": (demo, ()),
        "predict": (predict, ("model", "input", "output")),
    }
    for name, (handler, options) in table.items():
        command = commands.add_parser(name, help=(handler.__doc__ or "").splitlines()[0])
        for option in options:
            command.add_argument(f"--{option}", required=True)
        command.set_defaults(handler=handler)
    predictor = commands.choices["predict"]
    predictor.add_argument("--shape", nargs=2, type=int, metavar=("HEIGHT", "WIDTH"),
                           help="section size, needed for a raw .dat file")
    predictor.add_argument("--figure", help="also write section and prediction side by side to this PNG")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; a bad parameter or data file ends with its message and status 2, no traceback."""
    os.environ.setdefault("DVC_NO_ANALYTICS", "1")
    # MLflow's notices (database set-up, pickled models) would break the progress bars.
    logging.getLogger("mlflow").setLevel(logging.ERROR)
    args = _parser().parse_args(argv)
    try:
        args.handler(args)
    except (DataValidationError, FileNotFoundError, KeyError, ValueError) as error:
        print(f"geofm {args.command}: {error}", file=sys.stderr)
        return 2
    return 0
