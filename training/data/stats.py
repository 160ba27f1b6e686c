"""Exact streaming statistics of sections: the same values give the same bytes on every machine.

Floating-point sums depend on their order, and numpy's and BLAS's order depends on the CPU's SIMD width,
the library build and the chunking of the data. So the sums of the values and of their squares (a float32
value and its square are exact in float64) are kept exactly, as integers, and the mean and standard
deviation are computed once from them: they are functions of the values alone, whatever the order, the
grouping into samples or the machine.

Each block of values is summed exactly by error-free extraction (Rump, Ogita and Oishi, "Accurate
floating-point summation", SIAM J. Sci. Comput. 31, 2008): adding and removing a power of two `sigma`
rounds every value to a grid so coarse that any float64 sum of the rounded values is exact; the remainders
are exact too and are summed the same way on a finer grid until none is left. Only elementwise IEEE
operations and sums whose every partial result is exact are used.
"""

from __future__ import annotations

import math

import numpy as np

BLOCK_SIZE = 1 << 15
"""Values summed at a time: 3 float64 buffers of this size stay in the CPU cache."""


class NonFiniteError(ValueError):
    """Values that hold NaN or inf, which have no mean."""


def class_counts(labels: np.ndarray, num_classes: int, scratch: np.ndarray | None = None) -> np.ndarray:
    """Pixels of each class 0..num_classes-1 (values outside that range are not counted). `scratch`, a
    bool array of the labels' shape, avoids an allocation per class."""
    scratch = np.empty(labels.shape, dtype=bool) if scratch is None else scratch
    counts = np.empty(num_classes, dtype=np.int64)
    for label in range(num_classes):
        counts[label] = np.count_nonzero(np.equal(labels, label, out=scratch))
    return counts


UNIT = 1 << 1074
"""Exact sums are kept as integers in units of 2**-1074, the smallest float64: every float is a whole
number of them."""


def units(value: float) -> int:
    """`value` in units of 2**-1074, exactly."""
    numerator, denominator = value.as_integer_ratio()
    return numerator * (UNIT // denominator)


def exact_sum(values: np.ndarray, exponent: int, work: np.ndarray) -> int:
    """The exact sum, in units of 2**-1074, of the float64 `values`, all below 2**exponent in magnitude.
    `values` is overwritten; `work` is scratch of the same size."""
    total = 0
    size_bits = values.size.bit_length()
    while True:
        # sigma >= 2 * size * max|v|: fl(fl(sigma + v) - sigma) is v rounded to a multiple of
        # 2**(exponent + size_bits - 52), below sigma / 2 in magnitude, so every partial sum is exact.
        sigma = math.ldexp(1.0, exponent + size_bits + 1)
        np.add(values, sigma, out=work)
        np.subtract(work, sigma, out=work)
        total += units(float(np.add.reduce(work)))
        np.subtract(values, work, out=values)  # the rounding error of each value, exact
        top = max(float(np.maximum.reduce(values)), -float(np.minimum.reduce(values)))
        if top == 0.0:
            return total
        exponent = math.frexp(top)[1]


class RunningMoments:
    """Count, exact sums of the values and of their squares, minimum and maximum of all values seen; the
    mean and standard deviation are the correctly rounded results of the exact sums."""

    def __init__(self, block_size: int = BLOCK_SIZE) -> None:
        self.count = 0
        self.total = 0
        """The sum of the values, in units of 2**-1074."""
        self.total_squares = 0
        """The sum of their squares, in units of 2**-1074."""
        self.minimum = math.inf
        self.maximum = -math.inf
        self._block_size = block_size
        self._buffers: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    def add(self, values: np.ndarray) -> None:
        """Count the float32 `values`, of any shape; an error if one is NaN or infinite."""
        if values.dtype.kind != "f" or values.dtype.itemsize > 4:
            # A wider value's square is not exact in float64.
            raise TypeError(f"RunningMoments counts float32 values, got {values.dtype}")
        flat = values.reshape(-1)
        for start in range(0, flat.size, self._block_size):
            self._add_block(flat[start : start + self._block_size])

    def _add_block(self, block: np.ndarray) -> None:
        if self._buffers is None:
            self._buffers = tuple(np.empty(self._block_size, dtype=np.float64) for _ in range(3))
        values, squares, work = (buffer[: block.size] for buffer in self._buffers)
        np.copyto(values, block)
        low, high = float(np.minimum.reduce(values)), float(np.maximum.reduce(values))
        top = max(high, -low)
        if not math.isfinite(top):
            raise NonFiniteError("values hold NaN or inf")
        self.count += block.size
        # `+ 0.0` turns -0.0 into 0.0: which of the two a min or max returns depends on the order.
        self.minimum = min(self.minimum, low + 0.0)
        self.maximum = max(self.maximum, high + 0.0)
        if top == 0.0:
            return
        exponent = math.frexp(top)[1]
        np.multiply(values, values, out=squares)
        self.total += exact_sum(values, exponent, work)
        self.total_squares += exact_sum(squares, 2 * exponent, work)

    @property
    def mean(self) -> float:
        # Python's int / int is correctly rounded.
        return self.total / (self.count * UNIT) if self.count else 0.0

    @property
    def std(self) -> float:
        """The population standard deviation: the square root of the exact variance, rounded to float."""
        if not self.count:
            return 0.0
        # variance = (S2 - S1**2 / n) / n, with S1 and S2 in units of 2**-1074
        numerator = self.count * self.total_squares * UNIT - self.total * self.total
        return math.sqrt(numerator / (self.count * self.count * UNIT * UNIT))
