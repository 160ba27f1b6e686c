"""The Dagster code location that `dagster dev` loads (pyproject's `[tool.dagster]`): strict reproducibility's
kernel pins first, while torch is not loaded, then the definitions (whose assets load torch). The step
processes of the multiprocess executor load this module too, and inherit the pinned environment."""

import os
from pathlib import Path

from pipelines.kernel_pinning import pin_kernels
from training.settings import Project

pin_kernels(Project.load(Path(os.environ.get("GEOFM_ROOT") or Path.cwd()),
                         profile=os.environ.get("GEOFM_PROFILE")).settings.train.reproducibility)

from pipelines.orchestration.definitions import defs  # noqa: E402  (after the pins: it loads torch)

__all__ = ["defs"]
