"""DAS events (the DAS task): seismic arrivals recorded along a fibre, in coherent and random noise.

Rows are time samples, columns are channels along the fibre. An event arrives with hyperbolic moveout (a
source near the fibre) or linear moveout (a plane wave), as a Ricker pulse whose amplitude varies along
the fibre. The noise is common-mode (the same wiggle on every channel), channel-coupling stripes and random
noise. Label 1 marks the pulse's main lobe.
"""

from __future__ import annotations

import numpy as np

from training.data.synthetic.signal import (
    require_two_classes,
    ricker_at,
    smooth_curve,
    to_image_range,
    wavelet_period,
)


def _arrival_times(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Arrival time (in samples) of one event at every channel: hyperbolic or linear moveout."""
    channel = np.arange(width, dtype=np.float64)
    apex_time = rng.uniform(0.1, 0.75) * height
    apex_channel = rng.uniform(0.0, 1.0) * width
    slowness = rng.uniform(0.15, 1.0) * height / width
    if rng.random() < 0.5:
        return np.sqrt(apex_time**2 + (slowness * (channel - apex_channel)) ** 2)
    return apex_time + rng.choice((-1, 1)) * 0.5 * slowness * (channel - apex_channel)


def generate(
    rng: np.random.Generator, shape: tuple[int, int], num_classes: int
) -> tuple[np.ndarray, np.ndarray]:
    """One DAS record (float32, 0..255) and its event labels (int8, 1 = event)."""
    require_two_classes("DAS", num_classes, "noise, event")
    height, width = shape
    period = wavelet_period(height) * 0.8
    time = np.arange(height, dtype=np.float64)[:, None]
    record = np.zeros((height, width))
    events = np.zeros((height, width), dtype=bool)
    for _ in range(rng.integers(1, 4)):
        lag = time - _arrival_times(rng, height, width)[None, :]
        amplitude = np.exp(smooth_curve(rng, width, 0.4, width / 3))[None, :]
        record += amplitude * ricker_at(lag, period)
        events |= np.abs(lag) < max(0.3 * period, 1.0)
    common_mode = smooth_curve(rng, height, 0.3, period)[:, None] * rng.uniform(0.5, 1.5, (1, width))
    coupling = rng.normal(1.0, 0.2, (1, width))
    record = (record + common_mode) * coupling + 0.25 * rng.standard_normal((height, width))
    return to_image_range(record), events.astype(np.int8)
