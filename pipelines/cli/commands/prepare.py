"""`geofm prepare --task T`: one task's arrays and data card, then validated (DVC stage `prepare@T`)."""

from __future__ import annotations

import argparse

from training.settings import Project
from training.stages.prepare import prepare, validate_prepared_data


def run(args: argparse.Namespace, project: Project) -> None:
    prepared = prepare(project.settings, project.root, args.task)
    validate_prepared_data(project.settings, project.root, args.task)
    print(f"prepared {args.task} in {prepared.folder}\n{prepared.card.to_string()}")
