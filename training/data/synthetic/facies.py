"""Seismic facies (the SEAM task): stacked facies units, each with its own bed thickness, impedance
contrast and geometry, so each class has a distinct reflection character.

Units follow an undulating stratigraphy; labels are the unit index (0 at the top), in stratigraphic order
as in the SEAM AI labels, with random unit thicknesses.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from training.data.synthetic.signal import (
    bed_series,
    sample_beds,
    smooth_curve,
    synthetic_seismic,
    to_image_range,
    wavelet_period,
)


@dataclass(frozen=True)
class FaciesCharacter:
    """How one facies reflects: bed thickness (in wavelet periods), impedance contrast between beds, dip
    (samples per trace), lateral wobble (in periods, its wavelength a fraction of the width) and chaos
    (trace-to-trace jitter of the beds, in periods)."""

    thickness: float
    contrast: float
    dip: float = 0.0
    wobble: float = 0.0
    chaos: float = 0.0


FACIES = (
    FaciesCharacter(thickness=3.0, contrast=0.02),  # transparent, nearly reflection-free
    FaciesCharacter(thickness=0.6, contrast=0.25),  # thin, strong, parallel beds
    FaciesCharacter(thickness=2.0, contrast=0.10),  # thick, moderate, parallel beds
    FaciesCharacter(thickness=1.0, contrast=0.20, chaos=1.5),  # chaotic, laterally incoherent
    FaciesCharacter(thickness=1.0, contrast=0.15, dip=0.35),  # dipping clinoforms
    FaciesCharacter(thickness=1.0, contrast=0.18, wobble=0.8),  # wavy, hummocky
)


def _unit_tops(rng: np.random.Generator, height: int, count: int) -> np.ndarray:
    """Relative times of the tops of units 1..count-1: random thicknesses, each at least 1/(2*count) of the
    section, all inside the section's middle 84%."""
    shares = rng.dirichlet(np.full(count, 4.0)) * 0.5 + 0.5 / count
    return 0.08 * height + 0.84 * height * np.cumsum(shares)[:-1]


def generate(
    rng: np.random.Generator, shape: tuple[int, int], num_classes: int
) -> tuple[np.ndarray, np.ndarray]:
    """One facies section (float32, 0..255) and its facies labels (int8, 0..num_classes-1)."""
    if not 2 <= num_classes <= len(FACIES):
        raise ValueError(f"facies generator: num_classes must be 2..{len(FACIES)}, got {num_classes}")
    height, width = shape
    period = wavelet_period(height)
    depth = np.arange(height, dtype=np.float64)[:, None]
    trace = np.arange(width, dtype=np.float64)[None, :]
    undulation = smooth_curve(rng, width, amplitude=0.02 * height, wavelength=width / 2)[None, :]
    relative_time = depth - undulation
    labels = np.searchsorted(_unit_tops(rng, height, num_classes), relative_time).astype(np.int8)

    log_impedance = np.empty((height, width))
    series_length = 4 * (height + width)
    for facies_class, character in enumerate(FACIES[:num_classes]):
        inside = labels == facies_class
        local_time = relative_time + character.dip * trace
        if character.wobble:
            local_time = local_time + smooth_curve(rng, width, character.wobble * period, width / 8)[None, :]
        if character.chaos:
            local_time = local_time + character.chaos * period * rng.standard_normal((1, width))
        beds = bed_series(
            rng,
            series_length,
            character.thickness * period,
            character.contrast,
            base=8.0 + 0.04 * facies_class,
        )
        log_impedance[inside] = sample_beds(beds, local_time)[inside]
    seismic = synthetic_seismic(log_impedance, period)
    seismic += 0.05 * seismic.std() * rng.standard_normal(seismic.shape)
    return to_image_range(seismic), labels
