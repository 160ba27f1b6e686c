"""Stage `report`: every configured run's metrics.json gathered into the benchmark's tables: the pooled
headline, and the paper's protocol beside the paper with what else differs from the authors' computation."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from training.atomic import remove_stale_in, write_atomic
from training.authors_code import paper_differences
from training.errors import MissingInputError
from training.report import METRIC_TABLES, STD_SUFFIX, benchmark_tables, tables_markdown
from training.settings import ProjectPaths, Settings
from training.stages.outputs import METRICS_FILE


@dataclass(frozen=True)
class Report:
    """The benchmark tables (`training.report.METRIC_TABLES` and their std), as markdown, and the runs
    that were missing."""

    tables: dict[str, pd.DataFrame]
    markdown: str
    missing: list[str]


def build_report(settings: Settings, root: Path) -> Report:
    """Collect every configured run's metrics.json into the tables and write them to the reports dir."""
    paths = ProjectPaths.of(settings, root)
    remove_stale_in(paths.reports_dir)
    results, missing = [], []
    for task_key in settings.tasks:
        for model_key in settings.models:
            path = paths.run_dir(task_key, model_key) / METRICS_FILE
            if not path.is_file():
                missing.append(f"{task_key}/{model_key}")
                continue
            metrics = json.loads(path.read_text())
            scores = [*METRIC_TABLES, *(f"{key}{STD_SUFFIX}" for key in METRIC_TABLES)]
            results.append({key: metrics.get(key) for key in ("task", "network", "mode", *scores)})
    if not results:
        raise MissingInputError(f"no trained model's {METRICS_FILE} under {paths.runs_dir}: train first")
    tables = benchmark_tables(results, paper_differences(settings))
    markdown = tables_markdown(tables)
    write_atomic(paths.reports_dir / "benchmark.md", markdown)
    for key, table in tables.items():
        write_atomic(paths.reports_dir / f"{key}.csv", table.to_csv())
    return Report(tables, markdown, missing)
