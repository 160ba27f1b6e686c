"""What one training cost: the mean seconds per optimizer step and the peak memory, written beside its
scores (`artifacts/cost.json`) for the report's scale table. Not a score: the benchmark's metrics and their
comparison with a reference leave it out."""

from __future__ import annotations

import json
import resource
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

COST_FILE = "cost.json"
GIB = 2**30


@dataclass(frozen=True)
class TrainingCost:
    """`step_seconds`: mean wall time of an optimizer step over the epochs this process trained (None when
    it trained none: a resume after the last epoch); `peak_memory_gib`: CUDA's peak allocated memory, or on
    the CPU the process's peak resident memory (an upper bound: it includes whatever ran before);
    `memory`: which of the two."""

    step_seconds: float | None
    peak_memory_gib: float
    memory: str

    def write(self, folder: Path) -> None:
        (folder / COST_FILE).write_text(json.dumps(asdict(self), indent=1) + "\n")

    @classmethod
    def read(cls, folder: Path) -> TrainingCost | None:
        path = folder / COST_FILE
        return cls(**json.loads(path.read_text())) if path.is_file() else None


def measured_cost(step_seconds: Sequence[float], device: torch.device) -> TrainingCost:
    """The cost of a training that ran `step_seconds` (one mean per epoch) on `device`."""
    seconds = statistics.fmean(step_seconds) if step_seconds else None
    if device.type == "cuda":
        return TrainingCost(seconds, torch.cuda.max_memory_allocated(device) / GIB, "cuda allocated")
    return TrainingCost(seconds, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / GIB,
                        "process peak RSS")
