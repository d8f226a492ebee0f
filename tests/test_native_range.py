"""The range of a call's input found in one native pass (integer keys that order as the
floats do): against NumPy's ``min`` and ``max``, with infinities, signed zeros,
subnormals and NaNs anywhere, on one thread and split among several."""

import math

import numpy as np
import pytest

from canns_stdp import _validation
from canns_stdp.kernels import native_pair

pytestmark = pytest.mark.skipif(not native_pair.native_available(warn=False), reason="needs numba")

if native_pair.numba is not None:
    from canns_stdp.kernels.native_range import native_range

SPECIAL = np.array([np.inf, -np.inf, 0.0, -0.0, np.float32(1e-45), -np.float32(1e-45), 3.4e38, -3.4e38, 1.0, -1.0],
                   np.float32)


def same_range(got, x):
    want = float(np.min(x)), float(np.max(x))
    if math.isnan(want[0]):
        return all(math.isnan(v) for v in got)
    return got == want  # (a signed zero compares equal to the other)


@pytest.mark.parametrize("threads", [1, 2, 3, 7])
@pytest.mark.parametrize("n", [1, 2, 15, 16, 17, 1000])
def test_the_range_equals_numpys_with_special_values_anywhere(rng, threads, n):
    for trial in range(20):
        x = rng.normal(0.0, 100.0, n).astype(np.float32)
        picks = rng.integers(0, n, min(n, 3))
        x[picks] = rng.choice(SPECIAL, picks.size)
        got = native_range(x, threads)
        assert same_range(got, x), (x, got)


@pytest.mark.parametrize("threads", [1, 2])
def test_a_nan_anywhere_gives_nan_at_both_ends(rng, threads):
    for position in (0, 1, 499, 998, 999):
        for nan_bits in (0x7FC00000, 0xFFC00000, 0x7F800001, 0x7FFFFFFF):  # quiet, negative, signalling, largest
            x = rng.uniform(-1.0, 1.0, 1000).astype(np.float32)
            x.view(np.uint32)[position] = nan_bits
            lo, hi = native_range(x, threads)
            assert math.isnan(lo) and math.isnan(hi)


def test_all_negative_all_positive_and_only_zeros(rng):
    for x in (-rng.uniform(1.0, 2.0, 100), rng.uniform(1.0, 2.0, 100), np.zeros(100), -np.zeros(100)):
        x = x.astype(np.float32)
        assert same_range(native_range(x, 2), x)


def test_the_validation_of_a_large_input_names_the_first_entry_that_is_not_finite(rng):
    x = rng.uniform(0.0, 1.0, (_validation._NATIVE_RANGE_MIN // 64 + 5, 64)).astype(np.float32)
    assert _validation._range(x) == (float(x.min()), float(x.max()))
    x[300, 7], x[900, 1] = np.inf, np.nan
    with pytest.raises(ValueError, match=r"xs must be finite, got inf at index \(300, 7\)"):
        _validation.check_finite("xs", x)
