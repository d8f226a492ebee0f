"""STDPTrainer against the NumPy transcription of docs/step.md, compiled and uncompiled."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import reference
from canns_stdp import SpikingLayer, STDPTrainer
from canns_stdp.loops import _run_chunk

N_IN, N_OUT = 40, 12
# Large rates so that a divergence between code paths cannot hide under the tolerance.
FAST = dict(learning_rate=1.0, A_plus=0.05, A_minus=0.0525)
REF_FAST = dict(lr=1.0, A_plus=0.05, A_minus=0.0525)

OPTIONS = [
    ({}, {}, {}),
    ({}, {"pairing": "causal"}, {"pairing": "causal"}),
    ({}, {"pairing": "strict"}, {"pairing": "strict"}),
    ({"trace_mode": "nearest"}, {}, {"trace_mode": "nearest"}),
    ({"trace_mode": "nearest"}, {"pairing": "strict"}, {"trace_mode": "nearest", "pairing": "strict"}),
    ({"tau_pre": 15.0, "tau_post": 30.0}, {}, {"d_pre": np.exp(-1 / 15), "d_post": np.exp(-1 / 30)}),
    ({"tau_pre": 15.0, "tau_post": 30.0, "decay": "euler", "dt": 0.5}, {},
     {"d_pre": 1 - 0.5 / 15, "d_post": 1 - 0.5 / 30}),
    ({"a_pre": 0.5, "a_post": 2.0, "leak": 0.8, "threshold": 0.7, "v_reset": -0.2}, {},
     {"a_pre": 0.5, "a_post": 2.0, "leak": 0.8, "threshold": 0.7, "v_reset": -0.2}),
    ({}, {"weight_dependence": "hard"}, {"dependence": "hard"}),
    ({}, {"weight_dependence": "soft"}, {"dependence": "soft"}),
    ({}, {"weight_dependence": "power", "mu": 0.5}, {"dependence": "power", "mu": 0.5}),
    ({}, {"w_min": -0.5, "w_max": 0.8}, {"w_min": -0.5, "w_max": 0.8}),
    ({}, {"hardbound": False, "weight_dependence": "soft"}, {"hardbound": False, "dependence": "soft"}),
]


def data(rng, T, p=0.3):
    xs = (rng.random((T, N_IN)) < p).astype(np.float32)
    W0 = rng.uniform(0.0, 0.3, (N_OUT, N_IN)).astype(np.float32)
    return xs, W0


def train(W0, xs, layer_kw, trainer_kw, compiled, posts=None, fast=True):
    layer = SpikingLayer(N_IN, N_OUT, W_init=W0, **layer_kw)
    trainer = STDPTrainer(layer, compiled=compiled, **(FAST if fast else {}), **trainer_kw)
    spikes = trainer.train(xs, post_spikes=posts, return_spikes=True)
    return layer, np.asarray(spikes)


@pytest.mark.parametrize("layer_kw, trainer_kw, ref_kw", OPTIONS)
def test_compiled_and_uncompiled_equal_reference(rng, layer_kw, trainer_kw, ref_kw):
    xs, W0 = data(rng, 150)
    W_ref, v_ref, pre_ref, post_ref, s_ref = reference.run(W0, xs, **REF_FAST, **ref_kw)
    assert s_ref.mean() > 0.05, "the test needs output spikes"
    for compiled in (True, False):
        layer, spikes = train(W0, xs, layer_kw, trainer_kw, compiled)
        np.testing.assert_array_equal(spikes, s_ref)
        np.testing.assert_allclose(layer.W.value, W_ref, atol=2e-5)
        np.testing.assert_allclose(layer.v.value, v_ref, atol=2e-5)
        np.testing.assert_allclose(layer.trace_pre.value, pre_ref, atol=1e-5)
        np.testing.assert_allclose(layer.trace_post.value, post_ref, atol=1e-5)
        np.testing.assert_array_equal(layer.spike.value, s_ref[-1])


@pytest.mark.parametrize("layer_kw, trainer_kw, ref_kw", OPTIONS)
def test_compiled_equals_uncompiled_over_thousands_of_steps(rng, layer_kw, trainer_kw, ref_kw):
    xs, W0 = data(rng, 2000)
    layer_c, s_c = train(W0, xs, layer_kw, trainer_kw, True)
    layer_u, s_u = train(W0, xs, layer_kw, trainer_kw, False)
    assert s_c.sum() > 100 and np.abs(np.asarray(layer_c.W.value) - W0).max() > 0.1
    np.testing.assert_array_equal(s_c, s_u)
    assert np.abs(np.asarray(layer_c.W.value) - np.asarray(layer_u.W.value)).max() <= 1e-5


def test_imposed_post_spikes_match_reference(rng):
    xs, W0 = data(rng, 200)
    posts = (rng.random((200, N_OUT)) < 0.2).astype(np.float32)
    W_ref, *_, s_ref = reference.run(W0, xs, posts, **REF_FAST)
    for compiled in (True, False):
        layer, spikes = train(W0, xs, {}, {}, compiled, posts=posts)
        np.testing.assert_array_equal(spikes, posts)
        np.testing.assert_allclose(layer.W.value, W_ref, atol=2e-5)


def test_user_weight_dependence(rng):
    xs, W0 = data(rng, 100)
    f_plus = lambda W: jnp.exp(-W)          # noqa: E731
    f_minus = lambda W: W ** 2              # noqa: E731
    np_dep = lambda W, lo, hi, mu: (np.exp(-W).astype(np.float32), (W ** 2).astype(np.float32))  # noqa: E731
    W_ref, *_ = reference.run(W0, xs, **REF_FAST, dependence=np_dep)
    for compiled in (True, False):
        layer, _ = train(W0, xs, {}, {"weight_dependence": (f_plus, f_minus)}, compiled)
        np.testing.assert_allclose(layer.W.value, W_ref, atol=2e-5)


def test_training_continues_from_layer_state(rng):
    xs, W0 = data(rng, 300)
    whole, _ = train(W0, xs, {}, {}, True)
    layer = SpikingLayer(N_IN, N_OUT, W_init=W0)
    trainer = STDPTrainer(layer, **FAST)
    for part in (xs[:7], xs[7:150], xs[150:151], xs[151:]):
        trainer.train(part)
    np.testing.assert_allclose(layer.W.value, whole.W.value, atol=1e-6)
    np.testing.assert_allclose(layer.trace_pre.value, whole.trace_pre.value, atol=1e-6)


def test_uncompiled_steps_leave_the_callers_arrays_alone(rng):
    # the Python loop hands each step's state buffers to the next (donation): it must start from copies
    xs, W0 = data(rng, 40)
    layer = SpikingLayer(N_IN, N_OUT, W_init=W0)
    held = [layer.W.value, layer.v.value, layer.trace_pre.value]
    STDPTrainer(layer, compiled=False, **FAST).train(xs)
    assert not np.array_equal(layer.W.value, W0)
    np.testing.assert_array_equal(np.asarray(held[0]), W0)
    np.testing.assert_array_equal(np.asarray(held[1]), 0.0)
    np.testing.assert_array_equal(np.asarray(held[2]), 0.0)


def test_default_parameters_are_canns_defaults(rng):
    xs, _ = data(rng, 400, p=0.05)
    W0 = rng.uniform(0, 0.4, (N_OUT, N_IN)).astype(np.float32)
    layer, spikes = train(W0, xs, {}, {}, True, fast=False)
    W_ref, *_, s_ref = reference.run(W0, xs)  # docs/step.md defaults
    np.testing.assert_array_equal(spikes, s_ref)
    np.testing.assert_allclose(layer.W.value, W_ref, atol=1e-6)


def test_canns_compiled_transcription(rng):
    """The CANNs 1.5 compiled step, transcribed: traces from zero, decay 0.95, clip [0, 1]."""
    xs = (rng.random((300, N_IN)) < 0.2).astype(np.float32)
    W = rng.normal(0, 0.05, (N_OUT, N_IN)).astype(np.float32) + np.float32(0.1)
    layer = SpikingLayer(N_IN, N_OUT, W_init=W)
    STDPTrainer(layer).train(list(xs))  # a list of rows, as CANNs users pass it
    f = np.float32
    tp, tq, v = np.zeros(N_IN, f), np.zeros(N_OUT, f), np.zeros(N_OUT, f)
    for x in xs:
        tp = f(0.95) * tp + x
        v = f(0.9) * v + W @ x
        s = (v >= 1).astype(f)
        v = np.where(s > 0, f(0), v)
        tq = f(0.95) * tq + s
        W = np.clip(W + f(0.01) * (f(0.005) * np.outer(s, tp) - f(0.00525) * np.outer(tq, x)), 0, 1)
    np.testing.assert_allclose(layer.W.value, W, atol=1e-6)


def test_no_spikes_no_change(rng):
    _, W0 = data(rng, 1)
    for compiled in (True, False):
        layer, spikes = train(W0, np.zeros((50, N_IN), np.float32), {}, {}, compiled)
        assert spikes.sum() == 0
        np.testing.assert_array_equal(layer.W.value, W0)


@pytest.mark.parametrize("dep", ["additive", "hard", "soft", "power"])
def test_weights_stay_in_bounds(rng, dep):
    xs = (rng.random((500, N_IN)) < 0.5).astype(np.float32)
    W0 = rng.uniform(-0.2, 0.6, (N_OUT, N_IN)).astype(np.float32).clip(-0.1, 0.5)
    layer = SpikingLayer(N_IN, N_OUT, W_init=W0, threshold=0.5)
    STDPTrainer(layer, learning_rate=5.0, A_plus=0.2, A_minus=0.2, w_min=-0.1, w_max=0.5,
                weight_dependence=dep).train(xs)
    W = np.asarray(layer.W.value)
    assert W.min() >= -0.1 and W.max() <= 0.5


def test_real_valued_currents(rng):
    xs = rng.uniform(-0.5, 1.0, (120, N_IN)).astype(np.float32)
    W0 = rng.uniform(0, 0.2, (N_OUT, N_IN)).astype(np.float32)
    W_ref, *_, s_ref = reference.run(W0, xs, **REF_FAST)
    layer, spikes = train(W0, xs, {}, {}, True)
    np.testing.assert_array_equal(spikes, s_ref)
    np.testing.assert_allclose(layer.W.value, W_ref, atol=2e-5)


def test_no_recompilation_for_new_lengths_or_parameters(rng):
    xs, W0 = data(rng, 700)
    layer = SpikingLayer(N_IN, N_OUT, W_init=W0)
    trainer = STDPTrainer(layer)
    trainer.train(xs[:10])
    size = _run_chunk._cache_size()
    trainer.train(xs[:333])
    trainer.learning_rate = 0.02
    layer.threshold = 0.9
    trainer.train(xs)
    assert _run_chunk._cache_size() == size


def test_eager_python_loop_matches_compiled(rng):
    xs, W0 = data(rng, 40)
    layer_c, s_c = train(W0, xs, {}, {}, True)
    with jax.disable_jit():
        layer_e, s_e = train(W0, xs, {}, {}, False)
    np.testing.assert_array_equal(s_c, s_e)
    np.testing.assert_allclose(layer_c.W.value, layer_e.W.value, atol=1e-6)


def test_progress_bar_does_not_change_result(rng, capsys):
    xs, W0 = data(rng, 300)
    plain, _ = train(W0, xs, {}, {"chunk_size": 64}, True)  # the fused kernel's rounding depends on chunks
    layer = SpikingLayer(N_IN, N_OUT, W_init=W0)
    STDPTrainer(layer, chunk_size=64, **FAST).train(xs, progress=True)
    np.testing.assert_array_equal(layer.W.value, plain.W.value)
    assert "300" in capsys.readouterr().err
