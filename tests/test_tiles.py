"""Weights moved into the native kernel's layout and out of it by tiles transposed in
registers, settled on the way: against the layout and the settling written out in NumPy,
bit for bit, and the finiteness they report against ``np.isfinite``."""

import numpy as np
import pytest

from canns_stdp import SpikingLayer, STDPTrainer
from canns_stdp._validation import _FINITE_BLOCK, all_finite, vouch_finite
from canns_stdp.functional.dependence import WeightBounds
from canns_stdp.functional.layer_step import LayerParams, LayerState
from canns_stdp.functional.neurons import LIFParams
from canns_stdp.functional.stdp import STDPParams, TraceParams
from canns_stdp.kernels import native_pair, pair_layer

pytestmark = pytest.mark.skipif(not native_pair.native_available(warn=False), reason="needs numba")

LANES = 64
# (neurons, inputs): less than a tile, whole tiles, whole blocks, and edges of each
SHAPES = [(3, 5), (16, 16), (64, 32), (70, 200), (100, 17), (130, 33), (3 * LANES + 5, 48), (400, 784)]
PARAMS = LayerParams(LIFParams(0.9, 1.0, 0.0), TraceParams(0.9, 0.9, 1.0, 1.0),
                     STDPParams(0.1, 0.01, 0.01, WeightBounds(0.0, 1.0, 1.0)))


def layout(W):
    """The kernel's layout written out: blocks of 64 neurons, input by input, padding zero."""
    n_out, n_in = W.shape
    padded = np.zeros((-(-n_out // LANES) * LANES, n_in), np.float32)
    padded[:n_out] = W
    return padded.reshape(-1, LANES, n_in).transpose(0, 2, 1)


def settled_reference(U, owed, rates, bases, hardbound):
    """``clip(U + rate_j * owed[k_j, i])``, ``k_j = bases[j]``: the product rounded to
    float32, then the sum; the bounds as the kernel's selects (a NaN becomes the lower
    bound)."""
    w = U + rates[None, :] * owed[bases, :].T
    if hardbound:
        w = np.where(w > np.float32(0.0), w, np.float32(0.0))
        w = np.where(w < np.float32(1.0), w, np.float32(1.0))
    return w


@pytest.mark.parametrize("n_out, n_in", SHAPES)
def test_weights_go_into_the_layout_and_back_bit_for_bit(rng, n_out, n_in):
    W = rng.uniform(-0.2, 1.2, (n_out, n_in)).astype(np.float32)
    blocked = native_pair.kernel_weights(W)
    np.testing.assert_array_equal(blocked, layout(W))
    np.testing.assert_array_equal(native_pair.out_of_layout(blocked, n_out), W)


@pytest.mark.parametrize("in_layout", [True, False])
@pytest.mark.parametrize("hardbound", [True, False])
@pytest.mark.parametrize("n_out, n_in", SHAPES)
def test_weights_settled_out_of_the_layout_equal_the_formula_bit_for_bit(rng, n_out, n_in, hardbound, in_layout):
    """Each input's owed LTP read in its own base (bases in every order, tile by tile);
    ``U`` in the kernel's layout (by tiles) or as ``(n_out, n_in)``."""
    U = rng.uniform(-0.5, 1.5, (n_out, n_in)).astype(np.float32)
    U[rng.random(U.shape) < 0.05] = np.nan  # (bounded, a NaN becomes the lower bound)
    U[0, 0] = U[-1, -1] = np.nan
    owed = rng.uniform(-0.1, 0.1, (native_pair.LEDGER_BASES, n_out)).astype(np.float32)
    rates = rng.uniform(0.0, 3.0, n_in).astype(np.float32)
    bases = rng.integers(0, native_pair.LEDGER_BASES, n_in).astype(np.int32)
    layer = LayerState.zeros(n_in, n_out, W=native_pair.kernel_weights(U) if in_layout else U)
    got = native_pair.settled(PARAMS, hardbound, native_pair.OpenLedger(layer, owed, rates, bases)).W
    want = settled_reference(U, owed, rates, bases, hardbound)
    np.testing.assert_array_equal(got, want)
    assert all_finite(got) == bool(np.isfinite(want).all()) == hardbound


def test_a_ledger_of_one_base_settles_as_it_did(rng):
    """An open ledger as earlier versions handed it on (``owed`` of each neuron, no bases):
    ``clip(U + rate_j * owed_i)``."""
    n_out, n_in = 130, 33
    U = rng.uniform(-0.5, 1.5, (n_out, n_in)).astype(np.float32)
    owed = rng.uniform(-0.1, 0.1, n_out).astype(np.float32)
    rates = rng.uniform(0.0, 3.0, n_in).astype(np.float32)
    layer = LayerState.zeros(n_in, n_out, W=native_pair.kernel_weights(U))
    got = native_pair.settled(PARAMS, True, native_pair.OpenLedger(layer, owed, rates)).W
    want = settled_reference(U, owed[None, :], rates, np.zeros(n_in, np.intp), True)
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("bad", [np.inf, -np.inf, np.nan])
def test_a_settled_weight_that_is_not_finite_is_found_in_a_tile_and_at_an_edge(rng, bad):
    """``settled`` vouches for weights it found finite, so the trainer's check reads them no
    more; one non-finite weight anywhere (inside a tile, in the neurons past the last
    whole tile, in the inputs past it) and it does not."""
    n_out, n_in = 300, 250  # (75,000 weights: more than all_finite checks at once)
    assert n_out * n_in > _FINITE_BLOCK and n_out % 16 and n_in % 16
    owed = np.zeros(n_out, np.float32)
    rates = np.zeros(n_in, np.float32)
    for i, j in ((5, 7), (n_out - 1, 3), (20, n_in - 1)):
        U = rng.uniform(0.0, 1.0, (n_out, n_in)).astype(np.float32)
        layer = LayerState.zeros(n_in, n_out, W=native_pair.kernel_weights(U))
        fine = native_pair.settled(PARAMS, False, native_pair.OpenLedger(layer, owed, rates)).W
        assert all_finite(fine)
        U[i, j] = bad
        layer = LayerState.zeros(n_in, n_out, W=native_pair.kernel_weights(U))
        got = native_pair.settled(PARAMS, False, native_pair.OpenLedger(layer, owed, rates)).W
        assert not all_finite(got), (i, j)
        np.testing.assert_array_equal(got, U)


def test_only_the_memory_of_the_vouched_array_is_taken_as_finite():
    a = np.ones(2 * _FINITE_BLOCK, np.float32)
    vouch_finite(a)
    b = a.copy()
    b[-1] = np.nan
    assert all_finite(a) and all_finite(a.reshape(2, -1)) and not all_finite(b)
    assert not all_finite(np.concatenate([a, [np.inf]]).astype(np.float32))
    vouch_finite(b[:_FINITE_BLOCK])  # (the next one replaces it)
    assert not all_finite(b)


def test_a_training_call_whose_weights_overflow_fails_and_changes_nothing(rng, monkeypatch):
    """Weights that the native kernel potentiates past the largest float32: the call
    raises and the layer keeps its state."""
    n_in, n_out = 256, 300
    for name, value in (("NATIVE_MIN_SYNAPSES", 0), ("NATIVE_MAX_FIRING", 1.0), ("NATIVE_MAX_FIRED", n_out)):
        monkeypatch.setattr(pair_layer, name, value)  # (the native kernel however many fire)
    xs = (rng.random((100, n_in)) < 0.02).astype(np.float32)
    W0 = rng.uniform(0.0, 0.3, (n_out, n_in)).astype(np.float32)
    W0[7] = np.finfo(np.float32).max
    layer = SpikingLayer(n_in, n_out, W_init=W0, threshold=2.0)
    ran = []
    monkeypatch.setattr(pair_layer, "native_chunk", lambda *a, **k: ran.append(1) or native_pair.native_chunk(*a, **k))
    before = {name: np.asarray(getattr(layer, name).value).copy() for name in ("W", "v", "trace_pre")}
    with pytest.raises(FloatingPointError, match=r"non-finite values in \['W'"):
        STDPTrainer(layer, hardbound=False, learning_rate=1e38).train(xs)
    assert ran
    for name, value in before.items():
        np.testing.assert_array_equal(getattr(layer, name).value, value)
