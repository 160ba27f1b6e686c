"""Statistics are exact: the same values give the same numbers, bit for bit, whatever the order, the
chunking or the kernels that sum them."""

from __future__ import annotations

import json
import math
from fractions import Fraction

import numpy as np
import pytest

from training.data.stats import NonFiniteError, RunningMoments


def _exact(values: np.ndarray) -> tuple[float, float]:
    """Mean and standard deviation in exact rational arithmetic, no numpy reduction and no BLAS involved,
    each rounded once to float (the std as the square root of the rounded exact variance)."""
    exact = [Fraction(value) for value in values.ravel().tolist()]
    mean = sum(exact) / len(exact)
    variance = sum((value - mean) ** 2 for value in exact) / len(exact)
    return float(mean), math.sqrt(float(variance))


def _summary(moments: RunningMoments) -> bytes:
    return json.dumps([moments.mean, moments.std, moments.minimum, moments.maximum]).encode()


def _samples(kind: str) -> np.ndarray:
    """Four float32 'sections' of 37x29 values of a kind that sums badly in floating point."""
    rng = np.random.default_rng(5)
    shape = (4, 37, 29)
    if kind == "image":
        return (rng.random(shape) * 255).astype(np.float32)
    if kind == "offset":  # a large mean and a small spread: E[x^2] - E[x]^2 cancels catastrophically
        return (1e6 + rng.standard_normal(shape)).astype(np.float32)
    if kind == "wide":  # magnitudes from 1e-30 to 1e30, both signs, exact zeros of both signs
        values = rng.standard_normal(shape) * np.exp(rng.uniform(-69, 69, shape))
        values.reshape(-1)[:8] = [0.0, -0.0, 1e-45, -1e-45, 3e38, -3e38, 1.0, -1.0]
        return values.astype(np.float32)
    raise ValueError(kind)


@pytest.mark.parametrize("kind", ["image", "offset", "wide"])
def test_mean_and_std_are_the_exact_values_rounded(kind: str) -> None:
    values = _samples(kind)
    moments = RunningMoments()
    for sample in values:
        moments.add(sample)
    assert (moments.mean, moments.std) == _exact(values)
    assert (moments.minimum, moments.maximum) == (float(values.min()), float(values.max()))
    assert moments.count == values.size


@pytest.mark.parametrize("kind", ["image", "offset", "wide"])
def test_statistics_do_not_depend_on_order_or_chunking(kind: str) -> None:
    """Other machines sum in other orders and chunks (SIMD width, BLAS kernels, buffer sizes): each such
    order is simulated here, and all must give the same bytes."""
    values = _samples(kind)
    flat = values.reshape(-1)
    feeds = {
        "per sample": list(values),
        "samples reversed, each reversed": [sample[::-1, ::-1] for sample in values[::-1]],
        "shuffled values, one array": [np.random.default_rng(1).permutation(flat)],
        "uneven chunks": np.array_split(flat, [1, 2, 1000, 1001, 3000]),
        "one value at a time": [flat[i : i + 1] for i in range(200)] + [flat[200:]],
    }
    summaries = set()
    for feed in feeds.values():
        for block_size in (7, 1024, 1 << 15):
            moments = RunningMoments(block_size=block_size)
            for chunk in feed:
                moments.add(chunk)
            summaries.add(_summary(moments))
    assert len(summaries) == 1


def test_exact_where_a_float_sum_depends_on_its_order() -> None:
    values = np.array([2.0**100, 1.0, -(2.0**100)], dtype=np.float32)
    # float64 sums of these values give 0 or 1 depending on the order.
    assert (values[0] + np.float64(values[1])) + values[2] != (values[0] + values[2]) + np.float64(values[1])
    for order in ([0, 1, 2], [0, 2, 1], [1, 2, 0]):
        moments = RunningMoments()
        moments.add(values[order])
        assert moments.mean == 1 / 3
    # Zeros of either sign count as 0.0, whichever of the two an order meets first.
    moments = RunningMoments()
    moments.add(np.array([-0.0, 0.0], dtype=np.float32))
    assert math.copysign(1.0, moments.minimum) == math.copysign(1.0, moments.maximum) == 1.0


def test_non_finite_or_wide_values_are_refused() -> None:
    moments = RunningMoments()
    for bad in (np.nan, np.inf, -np.inf):
        with pytest.raises(NonFiniteError, match="NaN or inf"):
            moments.add(np.array([1.0, bad], dtype=np.float32))
    with pytest.raises(TypeError, match="float32"):
        moments.add(np.zeros(3, dtype=np.float64))
    assert moments.count == 0 and (moments.mean, moments.std) == (0.0, 0.0)
