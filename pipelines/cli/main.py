"""`geofm`: the benchmark's command line. DVC's stages call `raw`, `prepare`, `train` and `report`;
`benchmark` (and `demo`, the same on the demo profile) runs the whole benchmark through Dagster; `predict`
segments a section of your own with a logged model."""

from __future__ import annotations

import argparse
import errno
import importlib
import logging
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import ModuleType

from pipelines.cli.commands.options import add_compare_options, add_import_options, add_options
from pipelines.kernel_pinning import pin_kernels
from training.errors import GeofmError
from training.settings import Project
from training.stages.catalog import STAGES


@dataclass(frozen=True)
class Command:
    """One subcommand: its module under `pipelines.cli.commands`, required options and overrides."""

    module: str
    help: str
    options: Sequence[str] = ()
    profile: str | None = None
    extra: Callable[[argparse.ArgumentParser], None] = field(default=lambda parser: None)


STAGE_COMMANDS: dict[str, Command] = {
    entry.name: Command(entry.name, entry.summary, entry.instance_options) for entry in STAGES
}
"""One command per stage of `training.stages.catalog` (what `dvc.yaml`'s stages run)."""

COMMANDS: dict[str, Command] = {
    **STAGE_COMMANDS,
    "benchmark": Command("benchmark", "The whole benchmark through Dagster; prints the tables."),
    "demo": Command("benchmark", "The whole benchmark on the offline demo profile.", profile="demo"),
    "predict": Command("predict", "Segment a survey (2-D/3-D SEG-Y, .npy, .dat) with a logged model.",
                       ("model", "input", "output"), extra=add_options),
    "import": Command("import_authors", "Register a model trained with the authors' scripts.",
                      ("task", "model", "checkpoint"), extra=add_import_options),
    "compare": Command("compare", "Compare the runs' scores with a committed reference, within a tolerance.",
                       extra=add_compare_options),
}


def command_module(name: str) -> ModuleType:
    """The module that runs command `name` (imported now, not before: see `pipelines.cli.commands`)."""
    return importlib.import_module(f"pipelines.cli.commands.{COMMANDS[name].module}")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="geofm", description=__doc__)
    parser.add_argument("--root", default=".", help="project folder (default: the current one)")
    parser.add_argument("--params", default="params.yaml", help="parameters file, relative to the root")
    parser.add_argument("--profile", help="params.yaml profile to apply (default: the file's `profile`)")
    commands = parser.add_subparsers(dest="command", required=True)
    for name, command in COMMANDS.items():
        subparser = commands.add_parser(name, help=command.help, description=command.help)
        for option in command.options:
            subparser.add_argument(f"--{option}", required=True)
        command.extra(subparser)
    return parser


INTERRUPTED, PIPE_CLOSED = 130, 141
"""Exit statuses of Ctrl-C and of a closed standard output, as a shell reports those signals (128 + n)."""
FULL_OR_READ_ONLY = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM)
"""Errors of a file system that refuses a write: the user can act on them (free space, permissions)."""


def _close_stdout() -> None:
    """Point standard output at /dev/null, so that the interpreter's last flush does not fail again."""
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; an error the user can fix (a `GeofmError`, a full or read-only disk) ends with its
    one-sentence message and status 2, Ctrl-C with 130 and a closed standard output (`| head`) with 141.
    Any other exception is a bug: it keeps its traceback."""
    os.environ.setdefault("DVC_NO_ANALYTICS", "1")
    # MLflow's notices (database set-up, pickled models) would break the progress bars.
    logging.getLogger("mlflow").setLevel(logging.ERROR)
    args = _parser().parse_args(argv)
    command = COMMANDS[args.command]
    try:
        project = Project.load(args.root, args.params, command.profile or args.profile)
        pin_kernels(project.settings.train.reproducibility)  # before the command's module loads torch
        command_module(args.command).run(args, project)
    except GeofmError as error:
        print(f"geofm {args.command}: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"geofm {args.command}: interrupted; run the same command again to resume where it stopped",
              file=sys.stderr)
        return INTERRUPTED
    except BrokenPipeError:
        _close_stdout()
        print(f"geofm {args.command}: standard output was closed before all was printed", file=sys.stderr)
        return PIPE_CLOSED
    except OSError as error:
        if error.errno not in FULL_OR_READ_ONLY:
            raise
        print(f"geofm {args.command}: cannot write {error.filename or 'an output'}: {error.strerror}; free "
              "space or make the folder writable, then run the same command again", file=sys.stderr)
        return 2
    return 0
