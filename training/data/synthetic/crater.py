"""Lunar craters (the crater task): hill-shaded fractal terrain with bowl-shaped craters and raised rims.

Terrain is 1/f noise; each crater is a depression of depth about a fifth of its radius, bounded by a
rim, rendered with a Lambertian hill shade under a random sun azimuth and a low sun. Label 1 marks the
crater floor inside the rim crest.
"""

from __future__ import annotations

import numpy as np

from training.data.synthetic.signal import require_two_classes, to_image_range


def fractal_terrain(rng: np.random.Generator, shape: tuple[int, int], relief: float) -> np.ndarray:
    """Elevation with a 1/f^2 power spectrum (rough at all scales), standard deviation `relief`."""
    height, width = shape
    frequency = np.hypot(*np.meshgrid(np.fft.fftfreq(height), np.fft.rfftfreq(width), indexing="ij"))
    spectrum = np.fft.rfft2(rng.standard_normal(shape)) / np.maximum(frequency, 1.0 / max(shape)) ** 1.8
    terrain = np.fft.irfft2(spectrum, s=shape)
    return relief * (terrain - terrain.mean()) / (terrain.std() + 1e-12)


def hillshade(elevation: np.ndarray, azimuth: float, altitude: float) -> np.ndarray:
    """Lambertian shading, 0..1, of a surface lit from `azimuth` at `altitude` (radians)."""
    slope_y, slope_x = np.gradient(elevation)
    slope = np.arctan(np.hypot(slope_x, slope_y))
    aspect = np.arctan2(-slope_x, slope_y)
    zenith = np.pi / 2 - altitude
    shade = np.cos(zenith) * np.cos(slope) + np.sin(zenith) * np.sin(slope) * np.cos(azimuth - aspect)
    return np.clip(shade, 0.0, 1.0)


def generate(
    rng: np.random.Generator, shape: tuple[int, int], num_classes: int
) -> tuple[np.ndarray, np.ndarray]:
    """One shaded-relief image (float32, 0..255) and its crater labels (int8, 1 = crater)."""
    require_two_classes("crater", num_classes, "terrain, crater")
    height, width = shape
    size = min(height, width)
    row, column = np.mgrid[0:height, 0:width].astype(np.float64)
    elevation = fractal_terrain(rng, shape, relief=0.006 * size)
    craters = np.zeros(shape, dtype=bool)
    for _ in range(rng.integers(1, 6)):
        radius = max(rng.uniform(0.04, 0.2) * size, 3.0)
        centre = rng.uniform(0.1, 0.9, 2) * (height, width)
        distance = np.hypot(row - centre[0], column - centre[1]) / radius
        bowl = 0.2 * radius * (np.minimum(distance, 1.0) ** 2 - 1.0)
        rim = 0.06 * radius * np.exp(-(((distance - 1.0) / 0.25) ** 2))
        elevation += bowl + rim
        craters |= distance < 1.0
    shade = hillshade(elevation, azimuth=rng.uniform(0, 2 * np.pi), altitude=np.deg2rad(rng.uniform(20, 45)))
    return to_image_range(shade, symmetric=False), craters.astype(np.int8)
