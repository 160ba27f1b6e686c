"""Every stage of a profile measured end to end, as a user runs it: wall time, peak resident memory and, per
training, seconds per optimizer step; through `dvc repro` in a fresh copy of the project, then through
Dagster (`geofm benchmark`) in the same folder, where the trainings identical to the finished ones are reused.

    .venv/bin/python scripts/measure_stages.py --profile paper-smoke --output reports/paper-smoke.md

The copy holds the project's files as they are in the working tree (tracked and untracked, not ignored), with
`profile:` set in its params.yaml; it gets its own git and DVC repository. Stages run one at a time with the
virtual environment of this checkout first on PATH, and DVC_NO_ANALYTICS=1. Peak memory is the largest
resident set of one process of the stage's command (`os.wait4`: the command and the children it waited
for). Step time is the trainings' `step_seconds` (the mean of each epoch's mean seconds per optimizer step:
forward, backward, update), read from each seed's metrics.json. Each measurement is appended to
`<workdir>/measurements.jsonl` as it is taken: `--workdir DIR --resume` goes on after an interruption, and
`--table-only` prints the table of what was measured so far.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from training.data.splits import validation_count
from training.settings import Project, Settings
from training.stages.outputs import dvc_stage_instance
from training.tasks import TaskSpec

ROOT = Path(__file__).resolve().parents[1]
MEASUREMENTS = "measurements.jsonl"
LOGS = "measure-logs"
DAGSTER_STAGE = "dagster benchmark"
DAGSTER_PARAMS = "params-dagster.yaml"


@dataclass(frozen=True)
class Measurement:
    """One command: which stage (task and model for a training), wall seconds, peak RSS, s/step."""

    stage: str
    front_door: str
    seconds: float
    peak_rss_bytes: int
    task: str = ""
    model: str = ""
    step_seconds: float | None = None


def project_files(source: Path) -> list[str]:
    """The working tree's files git knows or would add (ignored ones, such as .venv and data, left out)."""
    listing = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                             cwd=source, check=True, capture_output=True).stdout.decode()
    return [name for name in listing.split("\0") if name and (source / name).is_file()]


def set_profile(params: Path, profile: str) -> None:
    """Make `profile` the active one in a params.yaml (its top-level `profile:` line, comments kept)."""
    text = params.read_text()
    edited, count = re.subn(r"^profile:[^\n#]*", f"profile: {profile}", text, flags=re.MULTILINE)
    if count != 1:
        raise SystemExit(f"{params}: expected one top-level `profile:` line, found {count}")
    params.write_text(edited)


def fresh_copy(source: Path, workdir: Path, profile: str, env: dict[str, str]) -> None:
    """A copy of the project at `workdir` with its own git and DVC repository, `profile` active."""
    for name in project_files(source):
        target = workdir / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source / name, target)
    set_profile(workdir / "params.yaml", profile)
    identity = ["-c", "user.name=measure_stages", "-c", "user.email=measure_stages@localhost"]
    for command in (["git", "init", "-q"], ["dvc", "init", "-q"], ["git", "add", "-A"],
                    ["git", *identity, "commit", "-q", "-m", f"measure_stages: profile {profile}"]):
        subprocess.run(command, cwd=workdir, env=env, check=True)


def run_measured(command: Sequence[str], workdir: Path, env: dict[str, str], log: Path) -> tuple[float, int]:
    """Run `command` in `workdir`, its output appended to `log`; (wall seconds, peak RSS in bytes). A
    failure stops the script, naming the command and the log."""
    log.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with log.open("ab") as output:
        process = subprocess.Popen(command, cwd=workdir, env=env, stdout=output, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - started
    if process.returncode != 0:
        tail = log.read_text(errors="replace")[-3000:]
        raise SystemExit(f"`{' '.join(command)}` failed with status {process.returncode} after {seconds:.0f} "
                         f"s; its log: {log}\n{tail}")
    return seconds, usage.ru_maxrss * 1024  # Linux reports KiB


def step_seconds(project: Project, task: str, model: str) -> float | None:
    """The mean `step_seconds` over the seeds of one training (None when its metrics do not record it)."""
    values = []
    for seed in project.settings.train.seeds:
        metrics = project.paths.run_dir(task, model) / "seeds" / str(seed) / "metrics.json"
        value = json.loads(metrics.read_text()).get("step_seconds") if metrics.is_file() else None
        if value is not None:
            values.append(float(value))
    return sum(values) / len(values) if values else None


def diagonal_order(tasks: Sequence[str], models: Sequence[str]) -> list[tuple[str, str]]:
    """Every task x model, diagonal after diagonal: after k diagonals every task has k models and every
    model k tasks, so an interrupted measurement has timed every task and every network early."""
    return [(task, models[(index + diagonal) % len(models)])
            for diagonal in range(len(models)) for index, task in enumerate(tasks)]


def dvc_stages(project: Project) -> list[tuple[str, str, str]]:
    """(DVC stage, task, model) in a valid order for `dvc repro`, the trainings in `diagonal_order`."""
    settings = project.settings
    trainings = diagonal_order(settings.tasks, settings.benchmark_models)
    return [("raw", "", ""), *((f"prepare@{task}", task, "") for task in settings.tasks),
            *((dvc_stage_instance(settings, "train", task, model), task, model) for task, model in trainings),
            ("report", "", ""), *((f"predictions@{name}", "", "") for name in settings.predict.surveys)]


def read_measurements(path: Path) -> list[Measurement]:
    if not path.is_file():
        return []
    return [Measurement(**json.loads(line)) for line in path.read_text().splitlines() if line.strip()]


def record(path: Path, measurement: Measurement) -> None:
    with path.open("a") as out:
        out.write(json.dumps(asdict(measurement)) + "\n")


def finished_grid(cells: set[tuple[str, str]], tasks: Sequence[str],
                  models: Sequence[str]) -> tuple[list[str], list[str]]:
    """The largest tasks x models grid whose every training is in `cells` (ties: the first tasks)."""
    best: tuple[list[str], list[str]] = ([], [])
    for count in range(1, len(tasks) + 1):
        for chosen in itertools.combinations(tasks, count):
            grid_models = [m for m in models if all((t, m) in cells for t in chosen)]
            if len(chosen) * len(grid_models) > len(best[0]) * len(best[1]):
                best = (list(chosen), grid_models)
    return best


def restricted_params(workdir: Path, tasks: Sequence[str], models: Sequence[str]) -> str:
    """A params file of the copy whose benchmark is the `tasks` x `models` grid (the rest unchanged; the
    encoder scan's trainings among `models` as their keys, its list of encoders emptied)."""
    text = (workdir / "params.yaml").read_text()
    for key, values in (("tasks", tasks), ("models", models), ("  encoders", ())):
        text, count = re.subn(rf"^{key}:[^\n]*", f"{key}: [{', '.join(values)}]", text, flags=re.MULTILINE)
        if count != 1:
            raise SystemExit(f"{workdir / 'params.yaml'}: expected one top-level `{key}:` line, found "
                             f"{count}")
    (workdir / DAGSTER_PARAMS).write_text(text)
    return DAGSTER_PARAMS


def dagster_runs(workdir: Path) -> list[Measurement]:
    """Wall time of each Dagster run of the copy's instance (one per stage, over its partitions)."""
    import dagster as dg

    os.environ["DAGSTER_HOME"] = str(workdir / ".dagster_home")
    instance = dg.DagsterInstance.get()
    records = sorted(instance.get_run_records(), key=lambda record: record.start_time or 0.0)
    return [Measurement(f"{r.dagster_run.job_name} {_partitions(r.dagster_run.tags)}".strip(),
                        "dagster run", (r.end_time or 0.0) - (r.start_time or 0.0), 0)
            for r in records]


def _partitions(tags: dict[str, str]) -> str:
    """A run's partition, or its range of partitions (`first..last`); empty when unpartitioned."""
    if "dagster/partition" in tags:
        return tags["dagster/partition"]
    ends = [tags.get(f"dagster/asset_partition_range_{end}") for end in ("start", "end")]
    return "..".join(ends) if all(ends) else ""


def measure(workdir: Path, profile: str, env: dict[str, str], dagster: bool, deadline: float) -> None:
    """Every DVC stage not measured yet, one at a time (no training starts after `deadline`, a
    `time.monotonic()`), then the Dagster benchmark over the grid of finished trainings; appended as
    measured."""
    project = Project.load(workdir)
    path = workdir / MEASUREMENTS
    done = {(m.front_door, m.stage) for m in read_measurements(path)}
    for stage, task, model in dvc_stages(project):
        if ("dvc", stage) in done:
            continue
        if model and time.monotonic() > deadline:
            print(f"time is up: {stage} not run", flush=True)
            continue
        print(f"dvc repro {stage} ...", flush=True)
        seconds, peak = run_measured(["dvc", "repro", "--single-item", stage], workdir, env,
                                     workdir / LOGS / f"{stage.replace('@', '_')}.log")
        measured = Measurement(stage, "dvc", seconds, peak, task, model,
                               step_seconds(project, task, model) if model else None)
        record(path, measured)
        print(f"  {seconds:.0f} s, peak {peak / 2**30:.2f} GiB", flush=True)
    trained = {(m.task, m.model) for m in read_measurements(path) if m.model}
    everything = len(trained) == len(project.settings.tasks) * len(project.settings.benchmark_models)
    if everything and ("dvc", "repro (nothing to do)") not in done:
        seconds, peak = run_measured(["dvc", "repro"], workdir, env, workdir / LOGS / "repro_all.log")
        status = subprocess.run(["dvc", "status"], cwd=workdir, env=env, capture_output=True,
                                text=True).stdout
        if "up to date" not in status:
            raise SystemExit(f"`dvc status` after `dvc repro` lists changes:\n{status}")
        record(path, Measurement("repro (nothing to do)", "dvc", seconds, peak))
    if dagster and not any(m.front_door == "dagster" for m in read_measurements(path)):
        tasks, models = finished_grid(trained, project.settings.tasks, project.settings.benchmark_models)
        params = "params.yaml" if everything else restricted_params(workdir, tasks, models)
        print(f"geofm benchmark (Dagster) over {tasks} x {models} ...", flush=True)
        seconds, peak = run_measured([sys.executable, "-m", "pipelines", "--params", params, "--profile",
                                      profile, "benchmark"], workdir, env, workdir / LOGS / "dagster.log")
        record(path, Measurement(f"{DAGSTER_STAGE} ({len(tasks)} x {len(models)})", "dagster", seconds, peak))
    if dagster and not any(m.front_door == "dagster run" for m in read_measurements(path)):
        for run in dagster_runs(workdir):
            record(path, run)


def _cell(value: float | None, digits: int) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def markdown_table(measurements: Sequence[Measurement], profile: str) -> str:
    """One row per measured command: stage, task, model, front door, wall time, peak RSS, s/step."""
    rows = ["| stage | task | model | front door | wall (s) | peak RSS (GiB) | s/step |",
            "|---|---|---|---|---:|---:|---:|"]
    rows += [f"| {m.stage} | {m.task} | {m.model} | {m.front_door} | {m.seconds:.0f} | "
             f"{_cell(m.peak_rss_bytes / 2**30 if m.peak_rss_bytes else None, 2)} | "
             f"{_cell(m.step_seconds, 1)} |" for m in measurements]
    by_door: dict[str, float] = {}
    for m in measurements:
        if m.front_door != "dagster run":  # the Dagster benchmark's runs, already in its total
            by_door[m.front_door] = by_door.get(m.front_door, 0.0) + m.seconds
    totals = ", ".join(f"{door} {seconds / 60:.1f} min" for door, seconds in by_door.items())
    machine = (f"{platform.machine()}, {os.cpu_count()} cores, "
               f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB, CPU only")
    return f"Profile `{profile}` on {machine}; total wall time: {totals}.\n\n" + "\n".join(rows)


def _batch(settings: Settings, task: TaskSpec) -> str:
    """The configured batch, and the one a step holds when the training split is smaller."""
    batch = settings.train.batch_size_for(task)
    train_count = task.train_count
    if settings.data.source == "synthetic":
        train_count = settings.data.synthetic.train_count
    samples = min(batch, train_count - validation_count(train_count, settings.data.val_fraction))
    pairs = settings.train.batch_composition == "mirror_pairs"
    configured, used = (f"{batch}+{batch}", f"{samples}+{samples}") if pairs else (str(batch), str(samples))
    return configured if used == configured else f"{configured}, {used} here"


def grid_table(measurements: Sequence[Measurement], project: Project) -> str:
    """The DVC trainings as a task x model grid: wall time, peak RSS and seconds per step of each cell."""
    settings = project.settings
    cells = {(m.task, m.model): m for m in measurements if m.front_door == "dvc" and m.model}
    rows = [f"| task (section, batch) | {' | '.join(settings.benchmark_models)} |",
            f"|---|{'---:|' * len(settings.benchmark_models)}"]
    for key, task in settings.task_specs.items():
        label = f"{key} ({task.shape[0]}x{task.shape[1]}, {_batch(settings, task)})"
        shown = [f"{m.seconds:.0f} s, {m.peak_rss_bytes / 2**30:.1f} GiB, {_cell(m.step_seconds, 0)} s/step"
                 if (m := cells.get((key, model))) else "not run" for model in settings.benchmark_models]
        rows.append(f"| {label} | {' | '.join(shown)} |")
    return "\n".join(rows)


def _environment(source: Path, workdir: Path) -> dict[str, str]:
    """The source's virtual environment first on PATH; PYTHONPATH makes its commands import the copy's code
    (the environment's editable install points at the source)."""
    env = dict(os.environ, DVC_NO_ANALYTICS="1", HF_HUB_OFFLINE="1", PYTHONPATH=str(workdir))
    env["PATH"] = f"{source / '.venv' / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env.pop("DAGSTER_HOME", None)  # the copy's own .dagster_home
    return env


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", default="paper-smoke", help="params.yaml profile to run")
    parser.add_argument("--source", type=Path, default=ROOT, help="the project to copy (default: this one)")
    parser.add_argument("--workdir", type=Path, help="where the copy goes (default: a new temporary folder)")
    parser.add_argument("--resume", action="store_true", help="go on in an existing --workdir")
    parser.add_argument("--table-only", action="store_true", help="print the table of --workdir and stop")
    parser.add_argument("--no-dagster", action="store_true", help="measure the DVC front door only")
    parser.add_argument("--output", type=Path, help="also write the table to this markdown file")
    parser.add_argument("--budget-minutes", type=float, default=math.inf,
                        help="start no training after this long; Dagster then runs the largest finished grid")
    args = parser.parse_args()
    source = args.source.resolve()
    if args.resume or args.table_only:
        if args.workdir is None or not (args.workdir / ".dvc").is_dir():
            raise SystemExit("--resume and --table-only need the --workdir of an earlier measurement")
        workdir = args.workdir.resolve()
    else:
        workdir = (args.workdir or Path(tempfile.mkdtemp(prefix=f"geofm-{args.profile}-"))).resolve()
        if workdir.exists() and any(workdir.iterdir()):
            raise SystemExit(f"{workdir} is not empty: give a new folder, or --resume to go on there")
        workdir.mkdir(parents=True, exist_ok=True)
        print(f"copying {source} to {workdir} (profile {args.profile})", flush=True)
        fresh_copy(source, workdir, args.profile, _environment(source, workdir))
    env = _environment(source, workdir)
    if not args.table_only:
        measure(workdir, args.profile, env, dagster=not args.no_dagster,
                deadline=time.monotonic() + args.budget_minutes * 60)
    measurements = read_measurements(workdir / MEASUREMENTS)
    table = (markdown_table(measurements, args.profile) + "\n\nTrainings (`dvc repro`), wall time, peak RSS, "
             "s/step:\n\n" + grid_table(measurements, Project.load(workdir)))
    print(table)
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(table + "\n")


if __name__ == "__main__":
    main()
