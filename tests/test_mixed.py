"""A conv-STDP → pooling → conv-STDP stack, its STDP "gradients", and one optax step
mixing them with Adam, against NumPy loops (tests/conv_reference.py)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import conv_reference as ref
from canns_stdp import ConvSpikingLayer
from canns_stdp.functional.network import init_states, network_step
from canns_stdp.functional.pooling import Pool
from canns_stdp.mixed import stdp_grads, stdp_stage

RULE = dict(learning_rate=0.7, A_plus=0.05, A_minus=0.0525)
REF_RULE = dict(lr=0.7, A_plus=0.05, A_minus=0.0525)
T, B = 8, 3


def stack(rng, reduction="mean"):
    W1 = rng.uniform(0.1, 0.6, (4, 1, 3, 3)).astype(np.float32)
    W2 = rng.uniform(0.0, 0.5, (6, 2, 2, 2)).astype(np.float32)
    l1 = ConvSpikingLayer(1, 4, 3, input_shape=(8, 8), padding=1, W_init=W1, threshold=0.8)
    l2 = ConvSpikingLayer(4, 6, 2, input_shape=(4, 4), groups=2, W_init=W2, tau_pre=5.0, tau_post=8.0)
    (c1, p1), (c2, p2) = (stdp_stage(l, batch_reduction=reduction, **RULE) for l in (l1, l2))
    return (c1, Pool((2, 2)), c2), (p1, None, p2), (jnp.asarray(W1), None, jnp.asarray(W2))


def reference(W1, W2, xs, reduction):
    """Layer 1 over all steps, pooled, then layer 2 (weights fixed, so layers decouple)."""
    g1, _, _, _, s1 = ref.run(ref.conv_maps((1, 1), ((1, 1), (1, 1)), (1, 1), 1), W1, xs,
                              reduction=reduction, threshold=0.8, fixed=True, **REF_RULE)
    pooled = ref.max_pool(s1, 2)
    g2, _, _, _, s2 = ref.run(ref.conv_maps((1, 1), ((0, 0), (0, 0)), (1, 1), 2), W2, pooled,
                              reduction=reduction, d_pre=np.exp(-1 / 5), d_post=np.exp(-1 / 8),
                              fixed=True, **REF_RULE)
    return -g1, -g2, s2.sum(0)


@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_stack_grads_equal_reference(rng, reduction):
    stages, params, weights = stack(rng, reduction)
    xs = (rng.random((T, B, 1, 8, 8)) < 0.5).astype(np.float32)
    states = init_states(stages, weights, xs.shape[1:])
    grads, states_after, counts = jax.jit(stdp_grads, static_argnums=0)(stages, params, weights, states, jnp.asarray(xs))
    g1, g2, c_ref = reference(np.asarray(weights[0]), np.asarray(weights[2]), xs, reduction)
    assert c_ref.mean() > 0.3 and np.abs(g2).max() > 0.01, "the test needs spikes in both layers"
    assert grads[1] is None
    np.testing.assert_array_equal(counts, c_ref)
    # each step's change is LTP − LTD of two conv Hebbian sums over 64 positions and 3 samples
    # (terms of order 1): float32 rounds those sums to about 1e-5 before they cancel
    np.testing.assert_allclose(grads[0], g1, atol=5e-5)
    np.testing.assert_allclose(grads[2], g2, atol=5e-5)
    np.testing.assert_array_equal(states_after[0].W, weights[0])      # weights held fixed

    # uncompiled: a plain Python loop over the same step, op by op
    carry = (states, tuple(None if w is None else jnp.zeros_like(w) for w in weights), jnp.zeros_like(counts))
    with jax.disable_jit():
        for x in xs:
            carry, _ = network_step(stages, params, carry, jnp.asarray(x))
    np.testing.assert_allclose(carry[1][0], grads[0], rtol=2e-5, atol=1e-6)
    np.testing.assert_allclose(carry[1][2], grads[2], rtol=2e-5, atol=1e-6)
    np.testing.assert_array_equal(carry[2], counts)


def test_pool_against_loops(rng):
    x = rng.random((2, 3, 6, 7)).astype(np.float32)
    np.testing.assert_array_equal(Pool((2, 2))(jnp.asarray(x)), ref.max_pool(x, 2))
    avg = np.asarray(Pool((3, 2), stride=(3, 2), kind="avg")(jnp.asarray(x)))
    np.testing.assert_allclose(avg[0, 1, 1, 2], x[0, 1, 3:6, 4:6].mean(), rtol=1e-6)
    assert Pool((3, 2)).output_shape((2, 3, 6, 7)) == (2, 3, 2, 3) == avg.shape
    with pytest.raises(ValueError, match="kind must be 'max' or 'avg', got 'min'"):
        Pool((2, 2), kind="min")


def test_one_jitted_optax_step_mixes_stdp_and_adam(rng):
    optax = pytest.importorskip("optax")
    stages, sparams, weights = stack(rng)
    xs = (rng.random((T, B, 1, 8, 8)) < 0.5).astype(np.float32)
    y = np.array([1, 0, 2])
    n_feat = 6 * 3 * 3
    readout = {"w": jnp.asarray(rng.normal(size=(n_feat, 3)) * 0.1, jnp.float32), "b": jnp.zeros(3)}
    params = {"stdp": weights, "readout": readout}
    labels = {"stdp": ("stdp", None, "stdp"), "readout": {"w": "gd", "b": "gd"}}
    opt = optax.multi_transform({"stdp": optax.sgd(1.0), "gd": optax.adam(0.01)}, labels)
    opt_state = opt.init(params)

    @jax.jit
    def step(params, opt_state, xs, y):
        states = init_states(stages, params["stdp"], xs.shape[1:])
        g_stdp, _, counts = stdp_grads(stages, sparams, params["stdp"], states, xs)
        f = counts.reshape(counts.shape[0], -1) / xs.shape[0]
        def loss(r):
            return optax.softmax_cross_entropy_with_integer_labels(f @ r["w"] + r["b"][None], y).mean()
        g_read = jax.grad(loss)(params["readout"])
        updates, opt_state = opt.update({"stdp": g_stdp, "readout": g_read}, opt_state, params)
        return optax.apply_updates(params, updates), opt_state

    new, _ = step(params, opt_state, jnp.asarray(xs), jnp.asarray(y))
    g1, g2, counts = reference(np.asarray(weights[0]), np.asarray(weights[2]), xs, "mean")
    # STDP layers: SGD(1) on -ΣΔW is exactly +ΣΔW
    np.testing.assert_allclose(new["stdp"][0], np.asarray(weights[0]) - g1, atol=2e-5)
    np.testing.assert_allclose(new["stdp"][2], np.asarray(weights[2]) - g2, atol=2e-5)
    # readout: softmax cross-entropy gradient by hand, first Adam step = -lr·g/(|g| + eps)
    f = counts.reshape(B, -1) / T
    z = f @ np.asarray(readout["w"], np.float64)
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    d = (p - np.eye(3)[y]) / B
    for name, g in (("w", f.T @ d), ("b", d.sum(0))):
        np.testing.assert_allclose(new["readout"][name] - np.asarray(readout[name]),
                                   -0.01 * g / (np.abs(g) + 1e-8), atol=1e-5)
