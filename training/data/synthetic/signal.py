"""Building blocks shared by the generators: wavelets, layered earth models, smooth random curves, scaling.

Conventions: a section is (H, W) with H the time/depth axis (rows) and W the traces or channels; a
"period" is the Ricker wavelet's dominant period in samples, chosen from the section height so that small
demo sections still hold many reflections and full-size ones look like real seismic.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import convolve1d, gaussian_filter1d

from training.data.synthetic._bruges import bruges

SAMPLE_INTERVAL_S = 0.002


def require_two_classes(generator: str, num_classes: int, classes: str) -> None:
    """An error naming `generator` unless the task has the two classes it draws (`classes`, in order)."""
    if num_classes != 2:
        raise ValueError(f"{generator} generator: num_classes must be 2 ({classes}), got {num_classes}")


def wavelet_period(height: int) -> float:
    """The dominant period, in samples, of the wavelet used for a section `height` samples tall."""
    return float(np.clip(height / 40, 5.0, 24.0))


def ricker(period: float) -> np.ndarray:
    """A zero-phase Ricker wavelet (bruges) whose dominant period is `period` samples."""
    frequency = 1.0 / (period * SAMPLE_INTERVAL_S)
    return bruges.filters.ricker(3 * period * SAMPLE_INTERVAL_S, SAMPLE_INTERVAL_S, frequency, return_t=True)[
        0
    ]


def ricker_at(lag: np.ndarray, period: float) -> np.ndarray:
    """The Ricker wavelet of dominant period `period` evaluated at `lag` samples from its peak (any shape)."""
    frequency = 1.0 / (period * SAMPLE_INTERVAL_S)
    flat = bruges.filters.ricker(None, None, frequency, t=lag.ravel() * SAMPLE_INTERVAL_S, return_t=True)[0]
    return flat.reshape(lag.shape)


def bed_series(
    rng: np.random.Generator, length: int, thickness: float, contrast: float, base: float
) -> np.ndarray:
    """Log-impedance down a column of beds: exponential thicknesses of mean `thickness` samples, each bed
    `base` plus a normal deviate of scale `contrast`."""
    count = int(length / max(thickness, 1.0) * 2) + 2
    tops = np.cumsum(rng.exponential(thickness, count) + 1.0)
    bed_of_sample = np.minimum(np.searchsorted(tops, np.arange(length)), count - 1)
    return base + contrast * rng.standard_normal(count)[bed_of_sample]


def sample_beds(series: np.ndarray, relative_time: np.ndarray) -> np.ndarray:
    """The bed values at each point's relative geologic time (in samples; wraps around the series)."""
    return np.take(series, np.floor(relative_time).astype(np.int64), mode="wrap")


def synthetic_seismic(log_impedance: np.ndarray, period: float) -> np.ndarray:
    """Convolutional model: normal-incidence reflectivity (bruges) convolved down each trace with a Ricker."""
    reflectivity = bruges.reflection.acoustic_reflectivity(np.exp(log_impedance), axis=0)
    return convolve1d(reflectivity, ricker(period), axis=0, mode="constant")


def smooth_curve(rng: np.random.Generator, length: int, amplitude: float, wavelength: float) -> np.ndarray:
    """A smooth random curve of `length` points, zero mean, standard deviation about `amplitude`."""
    curve = gaussian_filter1d(rng.standard_normal(length + 1), max(wavelength / 4, 1.0), mode="wrap")[:length]
    return amplitude * (curve - curve.mean()) / (curve.std() + 1e-12)


def to_image_range(values: np.ndarray, symmetric: bool = True, percentile: float = 99.5) -> np.ndarray:
    """Map to float32 0..255 like the record's image-like inputs: clip at a percentile of the magnitude
    (symmetric, for wiggles around zero) or stretch min..max."""
    if symmetric:
        scale = np.percentile(np.abs(values), percentile) + 1e-12
        scaled = np.clip(values / scale, -1.0, 1.0) * 127.5 + 127.5
    else:
        low, high = values.min(), values.max()
        scaled = (values - low) / (high - low + 1e-12) * 255.0
    return scaled.astype(np.float32)
