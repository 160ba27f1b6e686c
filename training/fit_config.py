"""What the training loop reads: a plain, check-free view of `training.settings.TrainSettings` for one task
and seed. The settings own every default, bound and description; this view adds none (a test keeps its
fields equal to the settings')."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from training.settings import TrainSettings

RESUMABLE_CHANGES = frozenset({"device", "num_workers", "micro_batch_size"})
"""Settings that may differ between an interrupted run and its resume (they change no result beyond
float summation order)."""
RESOLVED_PER_TRAINING = {"seeds": "seed"}
"""Settings resolved into one value per training: each seed of `seeds` is its own training."""
STAGE_ONLY = frozenset({"lock_wait_seconds", "reproducibility"})
"""Settings the stage reads around the loop (waiting for a busy checkpoint folder, the kernels of strict
reproducibility), not the loop itself."""


@dataclass(frozen=True)
class FitConfig:
    """The loop's settings (see `TrainSettings` for each), with `batch_size` resolved for the task (`paper`
    is the task's batch size in the paper) and one `seed`."""

    epochs: int
    batch_size: int
    lr: float
    weight_decay: float
    betas: tuple[float, float]
    warmup_epochs: int
    schedule: str
    loss: str
    seed: int
    num_workers: int
    batch_composition: str
    device: str
    regime: str
    micro_batch_size: int | None

    @classmethod
    def of(cls, train: TrainSettings, *, batch_size: int, seed: int) -> FitConfig:
        """The view of validated `train` settings for one task's batch size and one seed."""
        loop = train.model_dump(exclude={*RESOLVED_PER_TRAINING, *STAGE_ONLY, "batch_size"})
        return cls(**loop, batch_size=batch_size, seed=seed)

    def as_dict(self) -> dict[str, Any]:
        """Field -> value (what a checkpoint records)."""
        return {field.name: getattr(self, field.name) for field in fields(self)}


def fit_config(*, batch_size: int, **settings: Any) -> FitConfig:
    """A `FitConfig` from `TrainSettings(**settings)`, validated and with the settings' defaults, for tests
    and scripts; `seed` picks one seed (default: the settings' first)."""
    from training.settings import TrainSettings

    seed = settings.pop("seed", None)
    train = TrainSettings(**settings, **({} if seed is None else {"seeds": (seed,)}))
    return FitConfig.of(train, batch_size=batch_size, seed=train.seeds[0])


def setting_default(name: str) -> Any:
    """The default of loop setting `name` (what a checkpoint written before the setting existed had)."""
    from training.settings import TrainSettings

    return TrainSettings.model_fields[name].default
