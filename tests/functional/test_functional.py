"""The pure functions, called directly, jitted, vmapped and differentiated."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from canns_stdp.functional import (
    LayerConfig, LayerParams, LayerState, LIFParams, WeightBounds, additive, cumulative_trace,
    decay_from_tau, hard, lif_step, nearest_trace, power, soft, train_step,
)
from canns_stdp.functional.dependence import resolve_dependence


def test_decay_from_tau():
    assert decay_from_tau(20.0) == pytest.approx(math.exp(-1 / 20))
    assert decay_from_tau(20.0, dt=0.5, method="euler") == pytest.approx(1 - 0.5 / 20)
    with pytest.raises(ValueError, match="tau must be a positive finite number, got -1"):
        decay_from_tau(-1.0)


def test_traces_against_closed_form():
    # a single spike at step 0, then silence: cumulative = a d^t, nearest the same;
    # two spikes: cumulative adds, nearest resets
    d, a = 0.8, 0.5
    tr_c = tr_n = jnp.zeros(1)
    spikes = [1, 0, 0, 1, 0]
    hist_c, hist_n = [], []
    for s in spikes:
        tr_c = cumulative_trace(tr_c, jnp.array([float(s)]), d, a)
        tr_n = nearest_trace(tr_n, jnp.array([float(s)]), d, a)
        hist_c.append(float(tr_c[0]))
        hist_n.append(float(tr_n[0]))
    np.testing.assert_allclose(hist_c, [a, a * d, a * d**2, a * d**3 + a, (a * d**3 + a) * d], rtol=1e-6)
    np.testing.assert_allclose(hist_n, [a, a * d, a * d**2, a, a * d], rtol=1e-6)


def test_weight_dependences_against_formulas():
    W = jnp.array([[-0.1, 0.0, 0.3, 1.0, 1.2]])
    b = WeightBounds(0.0, 1.0, 0.5)
    w = np.asarray(W)
    np.testing.assert_array_equal(hard(W, b)[0], [[1, 1, 1, 0, 0]])
    np.testing.assert_array_equal(hard(W, b)[1], [[0, 0, 1, 1, 1]])
    np.testing.assert_allclose(soft(W, b)[0], np.maximum(1 - w, 0), rtol=1e-6)
    np.testing.assert_allclose(soft(W, b)[1], np.maximum(w, 0), rtol=1e-6)
    np.testing.assert_allclose(power(W, b)[0], np.maximum(1 - w, 0) ** 0.5, rtol=1e-6)
    np.testing.assert_allclose(power(W, b)[1], np.maximum(w, 0) ** 0.5, rtol=1e-6)
    assert float(additive(W, b)[0]) == 1.0
    dep = resolve_dependence((jnp.tanh, jnp.square))
    assert dep == resolve_dependence((jnp.tanh, jnp.square))  # reused compiled code
    np.testing.assert_allclose(dep(W, b)[1], w**2, rtol=1e-6)


def test_lif_step_threshold_reset_and_imposed_spikes():
    p = LIFParams(leak=0.5, threshold=1.0, v_reset=-0.3)
    s, v = lif_step(p, jnp.array([1.0, 1.0, 0.0]), jnp.array([0.5, 0.4, 2.0]))
    np.testing.assert_array_equal(s, [1, 0, 1])
    np.testing.assert_allclose(v, [-0.3, 0.9, -0.3])
    s, v = lif_step(p, jnp.zeros(3), jnp.array([5.0, 0.0, 0.0]), jnp.array([0.0, 1.0, 0.0]))
    np.testing.assert_array_equal(s, [0, 1, 0])
    np.testing.assert_allclose(v, [5.0, -0.3, 0.0])


def test_train_step_composes_with_jit_vmap_and_grad():
    config = LayerConfig()
    params = LayerParams()
    state = LayerState.zeros(4, 2, W=jnp.full((2, 4), 0.6))
    x = jnp.array([1.0, 1.0, 0.0, 0.0])
    eager, s = train_step(config, params, state, x)
    jitted, _ = jax.jit(train_step, static_argnums=0)(config, params, state, x)
    np.testing.assert_allclose(eager.W, jitted.W, atol=1e-7)
    # symmetric pairing, both neurons fire (1.2 >= 1), traces 1: dW = lr (A+ - A-) on active inputs
    np.testing.assert_array_equal(s, [1, 1])
    np.testing.assert_allclose(eager.W[:, :2], 0.6 + 0.01 * (0.005 - 0.00525), rtol=1e-6)
    np.testing.assert_allclose(eager.W[:, 2:], 0.6)
    # a batch of independent layers through vmap
    xs = jnp.stack([x, jnp.zeros(4)])
    states = jax.tree_util.tree_map(lambda a: jnp.stack([a, a]), state)
    batched, spikes = jax.vmap(lambda st, xi: train_step(config, params, st, xi))(states, xs)
    np.testing.assert_array_equal(spikes, [[1, 1], [0, 0]])
    np.testing.assert_allclose(batched.W[1], state.W)
    # the weight change is differentiable with respect to the learning rate
    def total_weight(lr):
        p = params._replace(stdp=params.stdp._replace(lr=lr))
        return train_step(config, p, state, x)[0].W.sum()
    g = jax.grad(total_weight)(0.01)
    assert float(g) == pytest.approx(4 * (0.005 - 0.00525), rel=1e-5)
