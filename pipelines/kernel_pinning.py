"""Process start for strict reproducibility: pin the CPU kernels in the environment before torch loads.

Called by the CLI (`geofm`, DVC's stages, torchrun's workers) once the settings are read, and by Dagster's
code location before it imports the assets; Dagster's multiprocess steps inherit the environment. Imports
nothing heavy: torch must not be loaded before the variables are set.
"""

from __future__ import annotations

import os
import sys
import warnings

from training.reproducibility import (
    STRICT_ENVIRONMENT,
    UnpinnedKernelsWarning,
    kernels_pinned,
    unpinned_message,
)


def pin_kernels(mode: str) -> None:
    """In strict mode, set `STRICT_ENVIRONMENT` in this process (children inherit it). When torch already
    loaded with other kernels, nothing can pin them any more: warn, naming the fix (the training records
    `kernels.pinned: false` in its params)."""
    if mode != "strict":
        return
    if "torch" in sys.modules:
        if not kernels_pinned():
            warnings.warn(unpinned_message(), UnpinnedKernelsWarning, stacklevel=2)
        return
    os.environ.update(STRICT_ENVIRONMENT)
