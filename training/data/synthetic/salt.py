"""Salt geobodies (the TGS task): a layered sedimentary section with a salt body cut into it.

Salt has one fast, uniform impedance: inside the body there are no reflections, and its top (and base)
is a strong reflector because the contrast to the sediments is large. Label 1 marks salt.
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

SEDIMENT_LOG_IMPEDANCE = 8.0
SALT_LOG_IMPEDANCE = 8.6


def salt_body(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """A star-shaped blob (radius varying smoothly with angle) centred inside the section."""
    height, width = shape
    size = min(height, width)
    centre = rng.uniform(0.25, 0.75, 2) * (height, width)
    depth, trace = np.mgrid[0:height, 0:width].astype(np.float64)
    angle = np.arctan2(depth - centre[0], trace - centre[1])
    radius = rng.uniform(0.15, 0.35) * size * np.ones_like(angle)
    for harmonic in (2, 3, 5):
        radius *= 1 + rng.uniform(0.0, 0.5 / harmonic) * np.cos(harmonic * angle + rng.uniform(0, 2 * np.pi))
    return np.hypot(depth - centre[0], trace - centre[1]) < radius


def generate(
    rng: np.random.Generator, shape: tuple[int, int], num_classes: int
) -> tuple[np.ndarray, np.ndarray]:
    """One section with salt (float32, 0..255) and its salt mask (int8, 1 = salt)."""
    require_two_classes("salt", num_classes, "sediment, salt")
    height, width = shape
    period = wavelet_period(height)
    relative_time = (
        np.arange(height, dtype=np.float64)[:, None]
        + rng.uniform(-0.2, 0.2) * np.arange(width)[None, :]
        + smooth_curve(rng, width, 0.03 * height, width / 2)[None, :]
    )
    beds = bed_series(rng, 4 * (height + width), period, 0.1, base=SEDIMENT_LOG_IMPEDANCE)
    log_impedance = sample_beds(beds, relative_time)
    salt = salt_body(rng, shape)
    log_impedance[salt] = SALT_LOG_IMPEDANCE
    seismic = synthetic_seismic(log_impedance, period)
    seismic += 0.08 * seismic.std() * rng.standard_normal(seismic.shape)
    return to_image_range(seismic), salt.astype(np.int8)
