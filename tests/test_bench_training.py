"""`scripts/bench_training.py` runs whole trainings in a temporary project and prints one row per training."""

from __future__ import annotations

import os
import subprocess
import sys

from tiny_benchmark import REPO


def test_a_whole_training_at_full_size_prints_its_row() -> None:
    command = [sys.executable, "scripts/bench_training.py", "--tasks", "salt", "--models", "unet", "--epochs",
               "2", "--train-count", "3", "--test-count", "2", "--micro-batch-size", "2"]
    environment = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, cwd=REPO, env=environment, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    rows = [line.split() for line in done.stdout.splitlines() if line.startswith("salt ")]
    assert len(rows) == 1, done.stdout
    task, model, samples, epochs, first, later, after, _, miou = rows[0]
    assert (task, model, samples, epochs) == ("salt", "unet", "3", "2")
    assert float(first) > 0 and float(later) > 0 and float(after) > 0
    assert 0 <= float(miou) <= 1
