"""Weights written in place, in halves: the same values as the plain step (NumPy references)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import conv_reference
import reference
from canns_stdp import SpikingLayer, STDPTrainer
from canns_stdp.functional.in_place import (BUFFERED_ROWS_BYTES, IN_PLACE_BYTES, rows_buffer, through_buffer,
                                            writes_in_place, written_in_halves)

# 101 neurons (odd: unequal halves) x 400 inputs of float32: 161,600 bytes, written in halves
N_IN, N_OUT = 400, 101


@pytest.mark.parametrize("n_rows", [300, 301])
def test_written_in_halves_equals_the_whole_update(rng, n_rows):
    old = rng.uniform(-1.0, 1.0, (n_rows, 200)).astype(np.float32)
    scale = rng.uniform(0.5, 2.0, n_rows).astype(np.float32)

    @jax.jit
    def update(old, scale):
        return written_in_halves(old, lambda buf, lo, hi: jnp.clip(buf[lo:hi] * scale[lo:hi, None] + 0.25, -1, 1))

    expected = np.clip(old * scale[:, None] + np.float32(0.25), -1, 1)
    np.testing.assert_allclose(update(old, scale), expected, rtol=0, atol=1.2e-7)  # one rounding or two (FMA)


def test_writes_in_place_between_its_sizes():
    low, high = IN_PLACE_BYTES
    assert writes_in_place(jnp.zeros((N_OUT, N_IN)))
    assert not writes_in_place(jnp.zeros((2, low // 8 - 1)))       # too small to be split
    assert not writes_in_place(jnp.zeros((2, high // 8 + 1)))      # too large for one core's cache
    assert not writes_in_place(jnp.zeros((1, low // 4)))           # no halves


def test_through_buffer_returns_the_rows_and_keeps_the_rest(rng):
    buffer = rows_buffer(4, (3,))
    assert buffer.shape == (5, 3)
    rows = rng.random((4, 3)).astype(np.float32)
    buffer, back = jax.jit(through_buffer)(buffer, rows)
    np.testing.assert_array_equal(back, rows)
    np.testing.assert_array_equal(buffer[4], 0.0)


def test_large_rows_pass_without_a_buffer(rng):
    rows = BUFFERED_ROWS_BYTES // (4 * 1024) + 1  # float32 rows of 1024 entries, just over the size
    assert rows_buffer(rows - 1, (1024,)) is not None and rows_buffer(rows, (1024,)) is None
    values = rng.random((rows, 1024)).astype(np.float32)
    buffer, back = through_buffer(None, values)
    assert buffer is None and back is values


CASES = [dict(), dict(dependence="soft", pairing="causal"), dict(dependence="hard", pairing="strict", w_max=0.4)]


@pytest.mark.parametrize("ref_kw", CASES)
@pytest.mark.parametrize("compiled", [True, False])
def test_dense_step_in_halves_matches_reference(rng, ref_kw, compiled):
    T = 40
    xs = (rng.random((T, N_IN)) < 0.3).astype(np.float32)
    W0 = rng.uniform(0.0, 0.02, (N_OUT, N_IN)).astype(np.float32)
    kw = dict(dict(lr=0.5, A_plus=0.05, A_minus=0.06), **ref_kw)
    W_ref, v_ref, pre_ref, post_ref, s_ref = reference.run(W0, xs, threshold=6.0, **kw)
    assert 0.05 < s_ref.mean() < 0.95 and np.abs(W_ref - W0).max() > 0.01
    layer = SpikingLayer(N_IN, N_OUT, threshold=6.0, W_init=W0)
    assert writes_in_place(layer.W.value)
    trainer = STDPTrainer(layer, learning_rate=kw["lr"], A_plus=kw["A_plus"], A_minus=kw["A_minus"],
                          pairing=kw.get("pairing", "symmetric"), weight_dependence=kw.get("dependence", "additive"),
                          w_max=kw.get("w_max", 1.0), compiled=compiled, event_driven=False)
    spikes = trainer.train(xs, return_spikes=True)
    np.testing.assert_array_equal(spikes, s_ref)
    np.testing.assert_allclose(layer.W.value, W_ref, atol=2e-5)
    np.testing.assert_allclose(layer.v.value, v_ref, atol=2e-5)
    np.testing.assert_allclose(layer.trace_post.value, post_ref, atol=1e-5)


@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_batched_dense_step_in_halves_matches_reference(rng, reduction):
    xs = (rng.random((30, 3, N_IN)) < 0.3).astype(np.float32)
    W0 = rng.uniform(0.0, 0.02, (N_OUT, N_IN)).astype(np.float32)
    fast = dict(lr=0.5, A_plus=0.05, A_minus=0.06)
    W_ref, v_ref, _, _, s_ref = conv_reference.run(conv_reference.dense_maps(), W0, xs, reduction=reduction,
                                                   threshold=6.0, **fast)
    assert 0.05 < s_ref.mean() < 0.95
    layer = SpikingLayer(N_IN, N_OUT, threshold=6.0, W_init=W0)
    spikes = STDPTrainer(layer, learning_rate=fast["lr"], A_plus=fast["A_plus"], A_minus=fast["A_minus"],
                         batch_reduction=reduction).train(xs, return_spikes=True)
    np.testing.assert_array_equal(spikes, s_ref)
    np.testing.assert_allclose(layer.W.value, W_ref, atol=2e-5)
    np.testing.assert_allclose(layer.v.value, v_ref, atol=2e-5)
