"""A training every seed of which already finished identically, as the front doors answer it without the
model stack: each seed's scores (its metrics.json) and its record in the store. The lookup itself reads
the tracking store (`pipelines.orchestration.reuse.reused_training`); the Dagster assets receive it as a
resource, so this layer only names its shape."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from training.settings import Settings
    from training.tracking import Publication


@dataclass(frozen=True)
class ReusedSeed:
    """One seed's finished training as its metrics.json and the store record it."""

    seed: int
    scores: dict[str, object]
    publication: Publication


ReusedTraining = Callable[["Settings", Path, str, str], "list[ReusedSeed] | None"]
"""(settings, root, task, model) -> every seed when all are reused and nothing of the stage would change,
else None (then the full stage decides)."""
