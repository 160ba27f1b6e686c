"""Faults (the deep-fault task): folded reflectors displaced along dipping fault planes.

Each fault is a line crossing the section at a dip of up to 35 degrees from vertical; the hanging wall
is shifted by a throw of a fraction to a few wavelet periods. Label 1 marks the fault trace, a line about
three samples wide, as in fault-labelling data sets.
"""

from __future__ import annotations

import numpy as np

from training.data.synthetic.signal import (
    bed_series,
    require_two_classes,
    sample_beds,
    smooth_curve,
    synthetic_seismic,
    to_image_range,
    wavelet_period,
)

FAULT_HALF_WIDTH = 1.5


def generate(
    rng: np.random.Generator, shape: tuple[int, int], num_classes: int
) -> tuple[np.ndarray, np.ndarray]:
    """One faulted section (float32, 0..255) and its fault-trace labels (int8, 1 = fault)."""
    require_two_classes("fault", num_classes, "background, fault")
    height, width = shape
    period = wavelet_period(height)
    depth = np.arange(height, dtype=np.float64)[:, None]
    trace = np.arange(width, dtype=np.float64)[None, :]
    relative_time = depth - smooth_curve(rng, width, 0.05 * height, width)[None, :]
    faults = np.zeros((height, width), dtype=bool)
    for _ in range(rng.integers(1, 4)):
        dip = np.deg2rad(rng.uniform(-35, 35))
        crossing = rng.uniform(0.15, 0.85) * width
        offset = trace - crossing - (depth - height / 2) * np.tan(dip)
        relative_time = relative_time - rng.choice((-1, 1)) * rng.uniform(0.6, 2.5) * period * (offset > 0)
        faults |= np.abs(offset) * np.cos(dip) < FAULT_HALF_WIDTH
    beds = bed_series(rng, 4 * (height + width), period, 0.15, base=8.0)
    seismic = synthetic_seismic(sample_beds(beds, relative_time), period)
    seismic += 0.1 * seismic.std() * rng.standard_normal(seismic.shape)
    return to_image_range(seismic), faults.astype(np.int8)
