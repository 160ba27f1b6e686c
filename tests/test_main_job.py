"""`geofm benchmark` as a user reads it: the terminal shows the header, the random-encoder notice once, the
progress bar, both tables, the expected warnings in one line and the next steps; library notices, warnings
and MLflow's own progress bars go to logs/benchmark.log."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from tiny_benchmark import REPO, write_tiny_params

from training.models.weights import random_encoder_notice


def test_the_main_job_prints_the_bar_the_tables_and_the_next_steps_only(tmp_path: Path) -> None:
    write_tiny_params(tmp_path, ["salt"], ["linear-lora"])
    (tmp_path / ".dagster_home").mkdir()
    shutil.copy(REPO / ".dagster_home" / "dagster.yaml", tmp_path / ".dagster_home")
    environment = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-m", "pipelines", "--root", str(tmp_path), "benchmark"],
                          cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    stray = [line for line in re.split(r"[\r\n]+", done.stderr) if line and not line.startswith("benchmark:")]
    assert stray == [], stray  # only the progress bar on stderr
    out = done.stdout
    assert out.startswith("benchmark, profile demo: 1 tasks x 1 models;"), out
    assert out.count(random_encoder_notice("vit_small_patch14_dinov2")) == 1
    assert "## mIoU" in out and "## mPA" in out and "Browse the results:" in out
    assert (tmp_path / "logs" / "benchmark.log").stat().st_size > 0
