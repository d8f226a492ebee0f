"""Inputs that used to be accepted silently now raise a clear error and change nothing."""

import numpy as np
import pytest

from canns_stdp import SpikingLayer, STDPTrainer, Trainer, rules

N_IN, N_OUT = 6, 3


def layer_arrays(layer):
    return {n: np.array(getattr(layer, n).value) for n in ("W", "v", "spike", "trace_pre", "trace_post")}


def assert_same(before, layer):
    for name, value in before.items():
        np.testing.assert_array_equal(getattr(layer, name).value, value, err_msg=name)


def trained_layer():
    rng = np.random.default_rng(0)
    layer = SpikingLayer(N_IN, N_OUT, W_init=rng.uniform(0.2, 0.6, (N_OUT, N_IN)))
    STDPTrainer(layer).train((rng.random((20, N_IN)) < 0.5).astype(np.float32))
    return layer


@pytest.mark.parametrize("change, match", [
    (dict(W=np.full((N_OUT, N_IN), np.nan, np.float32)), r"layer.W must be finite"),
    (dict(W=np.zeros((N_IN, N_OUT), np.float32)), r"layer.W must have shape \(3, 6\), got shape \(6, 3\)"),
    (dict(v=np.full(N_OUT, np.inf, np.float32)), r"layer.v must be finite"),
    (dict(trace_pre=np.zeros(N_IN + 1, np.float32)), r"layer.trace_pre must have shape"),
    (dict(v=np.zeros((2, N_OUT), np.float32)), r"layer.spike must have shape \(2, 3\)"),  # batches disagree
])
def test_set_state_checks_shapes_and_finiteness(change, match):
    layer = trained_layer()
    before = layer_arrays(layer)
    with pytest.raises(ValueError, match=match):
        layer.set_state(layer.get_state()._replace(**change))
    assert_same(before, layer)


def test_set_state_accepts_a_consistent_batch():
    layer = trained_layer()
    batched = layer.get_state((2,))
    layer.set_state(batched)
    assert layer.v.value.shape == (2, N_OUT)


def test_forward_keeps_the_non_finite_guarantee():
    layer = SpikingLayer(N_IN, N_OUT, W_init=np.full((N_OUT, N_IN), -1.0, np.float32))
    before = layer_arrays(layer)
    with pytest.raises(FloatingPointError, match="forward produced non-finite values in .*'v'"):
        layer.forward(np.full(N_IN, 3e38, np.float32))  # W x overflows float32 to -inf
    assert_same(before, layer)


@pytest.mark.parametrize("kwargs, match", [
    (dict(tau_post=1e-30), r"decay exp\(-dt/tau\) is 0 in float32"),
    (dict(dt=1e30, tau_pre=20.0), r"decay exp\(-dt/tau\) is 0 in float32"),
    (dict(dt=1e300), r"dt must be finite in float32"),
    (dict(threshold=1e39), r"threshold must be finite in float32"),
])
def test_layer_parameters_are_checked_in_float32(kwargs, match):
    with pytest.raises(ValueError, match=match):
        SpikingLayer(N_IN, N_OUT, seed=0, **kwargs)


@pytest.mark.parametrize("kwargs, match", [
    (dict(learning_rate=1e39), r"learning_rate must be finite in float32"),
    (dict(w_min=0.0, w_max=1e-46), r"w_min must be < w_max in float32"),
])
def test_trainer_parameters_are_checked_in_float32(kwargs, match):
    layer = trained_layer()
    before = layer_arrays(layer)
    with pytest.raises(ValueError, match=match):
        STDPTrainer(layer, **kwargs)
    trainer = Trainer(layer, rules.pair())
    for name, value in kwargs.items():
        setattr(trainer, name, value)
    with pytest.raises(ValueError, match=match):
        trainer.train(np.ones((5, N_IN), np.float32))
    assert_same(before, layer)


def test_amplitudes_beyond_float32_are_refused():
    with pytest.raises(ValueError, match="A_plus must be finite in float32"):
        rules.pair(A_plus=1e39)
