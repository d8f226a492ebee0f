"""A step's active inputs, listed by the native kernel from masks of 64 entries built in
vector instructions: against NumPy's ``flatnonzero``, with the entries that test the
comparison (-0.0, the smallest subnormal, NaN, infinities) at every position of a mask
and at its edges; and the inverse, 64 floats written from a mask's bits (a block's
spikes), against NumPy's own unpacking of the bits."""

import numpy as np
import pytest

from canns_stdp.kernels import native_pair

pytestmark = pytest.mark.skipif(not native_pair.native_available(warn=False), reason="needs numba")

if native_pair.numba is not None:
    from canns_stdp.kernels.native_pair import _list_active, numba
    from canns_stdp.kernels.nonzero import nonzero_bits, ones_at_bits, ones_at_mask

    @numba.njit
    def written(bits, out, start):
        ones_at_bits(bits, out, start)

    @numba.njit
    def written_by_mask(bits, out, start):
        ones_at_mask(bits, out, start)

    @numba.njit
    def masks(x):
        return np.array([nonzero_bits(x, np.int64(start)) for start in range(0, x.shape[0] - 63, 64)], np.uint64)

    @numba.njit
    def listed(x, count):
        active, values = np.full(count + x.shape[0], -1, np.int32), np.full(count + x.shape[0], -1.0, np.float32)
        stop = _list_active(x, active, values, count)
        return active[:stop], values[:stop]

    @numba.njit
    def listed_second_row(xs):
        return listed(xs[:, 0][1], 0)

SPECIAL = np.array([-0.0, 0.0, np.float32(1e-45), -np.float32(1e-45), np.nan, np.inf, -np.inf, 1.0, -2.5, 3e38],
                   np.float32)


def entries(rng, n, p):
    """``n`` float32 entries: zeros (both signs) where not active, else values of every kind."""
    x = np.where(rng.random(n) < 0.5, np.float32(0.0), np.float32(-0.0)).astype(np.float32)
    active = rng.random(n) < p
    x[active] = rng.choice(SPECIAL[2:], int(active.sum()))
    return x


def expected_mask(x64):
    nonzero = (x64.view(np.int32) & np.int32(0x7FFFFFFF)) != 0
    return sum(1 << int(j) for j in np.flatnonzero(nonzero))


@pytest.mark.parametrize("p", [0.0, 0.02, 0.5, 1.0])
def test_masks_of_64_entries_have_a_bit_set_where_an_entry_is_nonzero(rng, p):
    x = entries(rng, 64 * 6, p)
    x[0], x[63], x[64], x[127] = SPECIAL[2], SPECIAL[4], -0.0, SPECIAL[9]  # (a mask's first and last bits)
    got = masks(x)
    assert [int(m) for m in got] == [expected_mask(x[s:s + 64]) for s in range(0, x.size, 64)]


def test_each_special_entry_at_each_position_of_a_mask():
    for value in SPECIAL:
        for position in range(64):
            x = np.zeros(64, np.float32)
            x[position] = value
            assert int(masks(x)[0]) == expected_mask(x), (value, position)


@pytest.mark.parametrize("n", [1, 5, 63, 64, 65, 127, 128, 200, 784])
@pytest.mark.parametrize("p", [0.0, 0.05, 1.0])
def test_active_inputs_are_listed_ascending_after_those_already_listed(rng, n, p):
    x = entries(rng, n, p)
    count = 3  # (appended after earlier steps' entries)
    active, values = listed(x, count)
    want = np.flatnonzero((x.view(np.int32) & np.int32(0x7FFFFFFF)) != 0)
    np.testing.assert_array_equal(active[count:], want)
    np.testing.assert_array_equal(values[count:].view(np.int32), x[want].view(np.int32))
    assert (active[:count] == -1).all()


@pytest.mark.parametrize("n", [64, 200])
def test_inputs_not_next_to_each_other_in_memory_are_listed_alike(rng, n):
    x = entries(rng, 2 * n, 0.3)
    strided = x[::2]  # (listed entry by entry)
    active, values = listed(strided, 0)
    want = np.flatnonzero(strided != 0)
    np.testing.assert_array_equal(active, want)
    np.testing.assert_array_equal(values.view(np.int32), strided[want].view(np.int32))


@pytest.mark.parametrize("n", [64, 200])
def test_a_row_typed_as_maybe_strided_whose_entries_are_next_to_each_other_is_listed_by_masks(rng, n):
    x = entries(rng, 2 * n, 0.3)
    active, values = listed_second_row(x.reshape(2, 1, n))  # (as the ensemble's shared input: xs[:, 0])
    want = np.flatnonzero(x[n:] != 0)
    np.testing.assert_array_equal(active, want)
    np.testing.assert_array_equal(values.view(np.int32), x[n:][want].view(np.int32))


@pytest.mark.parametrize("start", [0, 1, 64, 70])
def test_a_mask_written_as_64_floats_is_one_where_a_bit_is_set_and_leaves_the_rest(rng, start):
    for bits in [0, 1, 1 << 63, (1 << 64) - 1, int(rng.integers(0, 1 << 63)) * 2 + 1]:
        out = np.full(start + 64 + 3, -7.0, np.float32)
        written(np.uint64(bits), out, np.int64(start))
        little_endian = np.array([bits], "<u8").view(np.uint8)
        want = np.unpackbits(little_endian, bitorder="little").astype(np.float32)
        np.testing.assert_array_equal(out[start:start + 64], want)
        assert (out[:start] == -7.0).all() and (out[start + 64:] == -7.0).all()


@pytest.mark.parametrize("n, step", [(64, 1), (30, 1), (64, 2), (100, 3)])
def test_a_mask_written_into_fewer_or_strided_entries_writes_those_there_are(rng, n, step):
    bits = int(rng.integers(0, 1 << 63)) * 2 + 1
    want = np.unpackbits(np.array([bits], "<u8").view(np.uint8), bitorder="little").astype(np.float32)
    room = np.full(n * step, -7.0, np.float32)
    out = room[::step]
    written_by_mask(np.uint64(bits), out, np.int64(0))
    m = min(64, out.size)
    np.testing.assert_array_equal(out[:m], want[:m])
    assert (out[m:] == -7.0).all() and (np.delete(room, np.arange(0, room.size, step)) == -7.0).all()
