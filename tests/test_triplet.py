"""Triplet STDP against independent NumPy transcriptions of Pfister & Gerstner (2006)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import reference
import triplet_reference as tref
from canns_stdp import SpikingLayer, STDPTrainer, TripletSTDPTrainer, rules
from canns_stdp.functional.triplet import triplet_parameters

N_IN, N_OUT = 30, 8
# Large amplitudes so that a divergence between code paths cannot hide under the tolerance.
FAST = dict(A2_plus=0.02, A3_plus=0.03, A2_minus=0.025, A3_minus=0.01, tau_x=40.0, tau_y=60.0)
REF_FAST = dict(A2_plus=0.02, A3_plus=0.03, A2_minus=0.025, A3_minus=0.01,
                d_x=np.exp(-1 / 40), d_y=np.exp(-1 / 60))

OPTIONS = [
    ({}, {}, {}),
    ({}, {"pairing": "causal"}, {"pairing": "causal"}),
    ({}, {"pairing": "strict"}, {"pairing": "strict"}),
    ({"trace_mode": "nearest"}, {}, {"trace_mode": "nearest"}),
    ({"tau_pre": 16.8, "tau_post": 33.7}, {}, {"d_pre": np.exp(-1 / 16.8), "d_post": np.exp(-1 / 33.7)}),
    ({"tau_pre": 16.8, "tau_post": 33.7, "decay": "euler", "dt": 0.5}, {},
     {"d_pre": 1 - 0.5 / 16.8, "d_post": 1 - 0.5 / 33.7, "d_x": 1 - 0.5 / 40, "d_y": 1 - 0.5 / 60}),
    ({"a_pre": 0.5, "a_post": 2.0}, {}, {"a_pre": 0.5, "a_post": 2.0}),
    ({}, {"weight_dependence": "soft"}, {"dependence": "soft"}),
    ({}, {"weight_dependence": "power", "mu": 0.5, "w_min": -0.2, "w_max": 0.9},
     {"dependence": "power", "mu": 0.5, "w_min": -0.2, "w_max": 0.9}),
    ({}, {"hardbound": False, "weight_dependence": "hard"}, {"hardbound": False, "dependence": "hard"}),
]


def data(rng, T, p=0.3):
    xs = (rng.random((T, N_IN)) < p).astype(np.float32)
    W0 = rng.uniform(0.0, 0.3, (N_OUT, N_IN)).astype(np.float32)
    return xs, W0


def train(W0, xs, layer_kw, trainer_kw, compiled, posts=None):
    layer = SpikingLayer(N_IN, N_OUT, W_init=W0, **layer_kw)
    trainer = TripletSTDPTrainer(layer, compiled=compiled, **{**FAST, **trainer_kw})
    spikes = trainer.train(xs, post_spikes=posts, return_spikes=True)
    return layer, trainer, spikes


@pytest.mark.parametrize("layer_kw, trainer_kw, ref_kw", OPTIONS)
def test_compiled_and_uncompiled_equal_reference(rng, layer_kw, trainer_kw, ref_kw):
    xs, W0 = data(rng, 150)
    ref = tref.run(W0, xs, **{**REF_FAST, **ref_kw})
    results = [train(W0, xs, layer_kw, trainer_kw, compiled) for compiled in (True, False)]
    for layer, trainer, spikes in results:
        np.testing.assert_allclose(np.asarray(layer.W.value), ref[0], atol=2e-5)
        for got, want in zip((layer.v, layer.trace_pre, layer.trace_post, trainer.r2, trainer.o2), ref[1:6]):
            np.testing.assert_allclose(np.asarray(got.value), want, atol=2e-5)
        np.testing.assert_array_equal(spikes, ref[6])
    assert ref[6].sum() > 20  # the neurons do fire: the LTP terms are exercised
    (l1, t1, _), (l2, t2, _) = results
    np.testing.assert_allclose(np.asarray(l1.W.value), np.asarray(l2.W.value), atol=1e-6)


def test_compiled_equals_uncompiled_over_thousands_of_steps(rng):
    xs, W0 = data(rng, 3000, p=0.1)
    posts = (rng.random((3000, N_OUT)) < 0.1).astype(np.float32)
    (l1, t1, _), (l2, t2, _) = (train(W0, xs, {}, {"weight_dependence": "soft"}, c, posts) for c in (True, False))
    np.testing.assert_allclose(np.asarray(l1.W.value), np.asarray(l2.W.value), atol=1e-5)
    np.testing.assert_allclose(np.asarray(t1.o2.value), np.asarray(t2.o2.value), atol=1e-5)


def test_without_triplet_terms_it_is_the_pair_rule(rng):
    xs, W0 = data(rng, 200)
    layer = SpikingLayer(N_IN, N_OUT, W_init=W0)
    trainer = TripletSTDPTrainer(layer, A2_plus=0.05, A3_plus=0.0, A2_minus=0.0525, A3_minus=0.0)
    trainer.train(xs)
    W_ref = reference.run(W0, xs, lr=1.0, A_plus=0.05, A_minus=0.0525)[0]
    np.testing.assert_allclose(np.asarray(layer.W.value), W_ref, atol=2e-5)


def test_training_in_pieces_equals_one_call_and_reset_state(rng):
    xs, W0 = data(rng, 120)
    whole, t_whole, _ = train(W0, xs, {}, {}, True)
    layer = SpikingLayer(N_IN, N_OUT, W_init=W0)
    trainer = TripletSTDPTrainer(layer, **FAST)
    trainer.train(xs[:50])
    trainer.train(xs[50:])
    np.testing.assert_allclose(np.asarray(layer.W.value), np.asarray(whole.W.value), atol=1e-6)
    np.testing.assert_allclose(np.asarray(trainer.r2.value), np.asarray(t_whole.r2.value), atol=1e-6)
    assert np.asarray(trainer.r2.value).any() and np.asarray(trainer.o2.value).any()
    W = np.asarray(layer.W.value).copy()
    trainer.reset_state()
    for name in ("v", "spike", "trace_pre", "trace_post", "x"):
        assert not np.asarray(getattr(layer, name).value).any(), name
    assert not np.asarray(trainer.r2.value).any() and not np.asarray(trainer.o2.value).any()
    np.testing.assert_array_equal(np.asarray(layer.W.value), W)


def test_predict_moves_all_traces_without_plasticity(rng):
    xs, W0 = data(rng, 20)
    layer = SpikingLayer(N_IN, N_OUT, W_init=W0)
    trainer = TripletSTDPTrainer(layer, **FAST)
    spikes = np.stack([np.asarray(trainer.predict(x)) for x in xs])
    ref = tref.run(W0, xs, **{**REF_FAST, "lr": 0.0})
    np.testing.assert_array_equal(spikes, ref[6])
    np.testing.assert_allclose(np.asarray(trainer.r2.value), ref[4], atol=1e-6)
    np.testing.assert_array_equal(np.asarray(layer.W.value), W0)
    trainer.reset_state()
    np.testing.assert_array_equal(np.asarray(trainer.predict_batch(xs)), ref[6])


def test_weights_stay_in_bounds(rng):
    xs, W0 = data(rng, 300, p=0.5)
    layer, _, _ = train(W0, xs, {}, {"w_min": 0.05, "w_max": 0.25}, True)
    W = np.asarray(layer.W.value)
    assert W.min() >= 0.05 and W.max() <= 0.25 and (W == 0.25).any()


def test_triplet_rule_composes_with_jit_vmap_and_grad():
    rule = rules.Triplet(A2_plus=0.01, A3_plus=0.02, A2_minus=0.015, A3_minus=0.005, d_x=1.0, d_y=1.0)
    W = jnp.full((2, 3), 0.4)
    x, s = jnp.array([1.0, 0.0, 1.0]), jnp.array([1.0, 0.0])
    P, Q, r2, o2 = jnp.array([1.0, 0.5, 1.2]), jnp.array([1.3, 0.2]), jnp.array([0.5, 0.1, 0.0]), jnp.array([2.0, 1.0])

    def change(rule, x):  # symmetric pairing: P and Q are the traces; d_x = d_y = 1: r2, o2 as given
        pre, post = rules.Activity(x, P, P), rules.Activity(s, Q, Q)
        return rule.update(rules.TripletTraces(r2, o2), pre, post, W, lambda a, b: jnp.outer(a, b))[0]

    dW = jax.jit(change)(rule, x)  # the rule is a pytree: its numbers are traced
    want = np.outer([1.0 * (0.01 + 0.02 * 2.0), 0.0], P) - np.outer(Q, [0.015 + 0.005 * 0.5, 0.0, 0.015])
    np.testing.assert_allclose(dW, want, rtol=1e-6)
    batched = jax.vmap(lambda xx: change(rule, xx))(jnp.stack([x, 2 * x]))
    np.testing.assert_allclose(batched[0], want, rtol=1e-6)
    grad = jax.grad(lambda a: change(rule.replace(A3_plus=a), x).sum())(0.02)
    np.testing.assert_allclose(grad, 2.0 * float(P.sum()), rtol=1e-6)  # d/dA3+ = o2_0 * sum(P)


def test_paper_parameter_sets_by_name():
    p = triplet_parameters("visual_cortex", "all_to_all")
    assert (p.tau_plus, p.tau_minus, p.tau_x, p.tau_y) == (16.8, 33.7, 101.0, 125.0)
    assert (p.A2_plus, p.A3_plus, p.A2_minus, p.A3_minus) == (5e-10, 6.2e-3, 7e-3, 2.3e-4)
    assert triplet_parameters("hippocampal", "nearest").layer_kwargs()["trace_mode"] == "nearest"
    minimal = triplet_parameters("visual_cortex", "all_to_all", minimal=True)
    assert minimal.A2_plus == 0.0 and minimal.A3_minus == 0.0
    with pytest.raises(ValueError, match="data must be one of .* got 'retina'"):
        triplet_parameters("retina")
    with pytest.raises(ValueError, match="version must be one of .* got 'all'"):
        triplet_parameters("hippocampal", "all")
    with pytest.raises(ValueError, match="no minimal parameter set for \\('hippocampal', 'nearest'\\)"):
        triplet_parameters("hippocampal", "nearest", minimal=True)


def snapshot(layer, trainer):
    state = {k: np.array(getattr(layer, k).value) for k in ("W", "x", "v", "spike", "trace_pre", "trace_post")}
    state.update(r2=np.array(trainer.r2.value), o2=np.array(trainer.o2.value))
    return state


def assert_unchanged(layer, trainer, before):
    after = snapshot(layer, trainer)
    for k in before:
        np.testing.assert_array_equal(after[k], before[k], err_msg=k)


BAD = [
    (dict(A3_plus=-1.0), "A3_plus must be >= 0, got -1.0"),
    (dict(A2_minus=float("nan")), "A2_minus must be finite, got nan"),
    (dict(tau_x=0.0), "tau_x must be > 0, got 0.0"),
    (dict(tau_y=-3.0), "tau_y must be > 0, got -3.0"),
    (dict(learning_rate=-1.0), "learning_rate must be >= 0, got -1.0"),
    (dict(mu=-0.5, weight_dependence="power"), "mu must be >= 0, got -0.5"),
    (dict(weight_dependence="quadratic"), "weight_dependence must be one of .* got 'quadratic'"),
    (dict(weight_dependence=(lambda W: W[:, :2], lambda W: W)), r"f_plus must return a scalar or shape \(8, 30\)"),
    (dict(pairing="acausal"), "pairing must be one of"),
    (dict(w_min=1.0, w_max=0.5), "w_min must be < w_max"),
]


@pytest.mark.parametrize("kwargs, message", BAD)
def test_bad_parameters_raise_and_leave_state_unchanged(rng, kwargs, message):
    xs, W0 = data(rng, 40)
    with pytest.raises((ValueError, TypeError), match=message):
        TripletSTDPTrainer(SpikingLayer(N_IN, N_OUT, W_init=W0), **kwargs)
    layer, trainer, _ = train(W0, xs, {}, {}, True)
    before = snapshot(layer, trainer)
    for name, value in kwargs.items():
        setattr(trainer, name, value)
    with pytest.raises((ValueError, TypeError), match=message):
        trainer.train(xs)
    assert_unchanged(layer, trainer, before)


def test_bad_input_and_euler_decay_too_coarse_leave_state_unchanged(rng):
    xs, W0 = data(rng, 40)
    layer, trainer, _ = train(W0, xs, {}, {}, False)
    before = snapshot(layer, trainer)
    with pytest.raises(ValueError, match=r"patterns must have shape \(T, 30\)"):
        trainer.train(np.zeros((5, N_IN + 1)))
    with pytest.raises(ValueError, match="post_spikes must hold spikes"):
        trainer.train(xs, post_spikes=np.full((40, N_OUT), 0.5))
    layer.decay, layer.tau_pre = "euler", 20.0
    trainer.tau_x = 0.5
    with pytest.raises(ValueError, match=r"Euler decay 1 - dt/tau = -1.0 is outside"):
        trainer.train(xs)
    assert_unchanged(layer, trainer, before)


def test_pair_trainer_is_unaffected_by_triplet_module(rng):
    xs, W0 = data(rng, 100)
    layer = SpikingLayer(N_IN, N_OUT, W_init=W0)
    STDPTrainer(layer, learning_rate=1.0, A_plus=0.05, A_minus=0.0525).train(xs)
    np.testing.assert_allclose(np.asarray(layer.W.value),
                               reference.run(W0, xs, lr=1.0, A_plus=0.05, A_minus=0.0525)[0], atol=2e-5)
