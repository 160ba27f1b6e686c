"""Stage `report`: every configured run's metrics.json gathered into the benchmark's tables: the pooled
headline, and the paper's protocol beside the paper with what else differs from the authors' computation."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from training.atomic import remove_stale_in, write_atomic
from training.authors_code import paper_differences
from training.catalog import parse_model_key
from training.errors import MissingInputError
from training.report import METRIC_TABLES, STD_SUFFIX, benchmark_tables, tables_markdown
from training.settings import ProjectPaths, Settings
from training.stages.outputs import METRICS_FILE
from training.stages.scale_table import scale_markdown, scale_tables


@dataclass(frozen=True)
class Report:
    """The benchmark tables (`training.report.METRIC_TABLES` and their std), as markdown, the runs
    that were missing, and the encoder scale table per task (`scale_table.py`; empty without a scan)."""

    tables: dict[str, pd.DataFrame]
    markdown: str
    missing: list[str]
    scale: dict[str, pd.DataFrame] = field(default_factory=dict)


def build_report(settings: Settings, root: Path) -> Report:
    """Collect every configured run's metrics.json into the tables and write them to the reports dir."""
    paths = ProjectPaths.of(settings, root)
    remove_stale_in(paths.reports_dir)
    results, missing = [], []
    for task_key in settings.tasks:
        # the benchmark tables hold the runs on model.encoder; the other encoders' go to the scale table
        for model_key in (key for key in settings.models if parse_model_key(key).encoder is None):
            path = paths.run_dir(task_key, model_key) / METRICS_FILE
            if not path.is_file():
                missing.append(f"{task_key}/{model_key}")
                continue
            metrics = json.loads(path.read_text())
            scores = [*METRIC_TABLES, *(f"{key}{STD_SUFFIX}" for key in METRIC_TABLES)]
            results.append({key: metrics.get(key) for key in ("task", "network", "mode", *scores)})
    if not results:
        raise MissingInputError(f"no trained model's {METRICS_FILE} under {paths.runs_dir}: train first")
    declared = {key: task.title for key, task in settings.task_specs.items() if settings.declared(key)}
    tables = benchmark_tables(results, paper_differences(settings), settings.model.encoder, declared)
    scale = scale_tables(settings, root)
    markdown = tables_markdown(tables) + ("\n" + scale_markdown(scale, settings) if scale else "")
    write_atomic(paths.reports_dir / "benchmark.md", markdown)
    for key, table in tables.items():
        write_atomic(paths.reports_dir / f"{key}.csv", table.to_csv())
    return Report(tables, markdown, missing, scale)
