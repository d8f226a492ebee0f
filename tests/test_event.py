"""The event-driven kernel computes the step of docs/step.md, as the dense kernel does."""

import numpy as np
import pytest

import reference
from canns_stdp import SpikingLayer, STDPTrainer
from canns_stdp.kernels.policy import EVENT_MAX_ACTIVITY

N_IN, N_OUT = 96, 40
CASES = [
    ({}, {}, {}),
    ({}, {"pairing": "causal", "weight_dependence": "soft"}, {"pairing": "causal", "dependence": "soft"}),
    ({"trace_mode": "nearest"}, {"pairing": "strict", "weight_dependence": "hard"},
     {"trace_mode": "nearest", "pairing": "strict", "dependence": "hard"}),
    ({}, {"weight_dependence": "power", "mu": 0.7, "hardbound": False},
     {"dependence": "power", "mu": 0.7, "hardbound": False}),
]


RATES = dict(learning_rate=0.2, A_plus=0.05, A_minus=0.06)
RATES_REF = dict(lr=0.2, A_plus=0.05, A_minus=0.06)


def sparse_data(rng, T=400):
    xs = (rng.random((T, N_IN)) < 0.04).astype(np.float32)
    W0 = rng.uniform(0.0, 0.15, (N_OUT, N_IN)).astype(np.float32)
    return xs, W0


@pytest.mark.parametrize("layer_kw, trainer_kw, ref_kw", CASES)
@pytest.mark.parametrize("compiled", [True, False])
def test_event_kernel_matches_reference(rng, layer_kw, trainer_kw, ref_kw, compiled):
    xs, W0 = sparse_data(rng)
    W_ref, v_ref, *_, s_ref = reference.run(W0, xs, **RATES_REF, threshold=1.5, **ref_kw)
    assert 0.01 < s_ref.mean() < 0.9, "the test needs spikes and silences"
    assert np.abs(W_ref - W0).max() > 0.05
    layer = SpikingLayer(N_IN, N_OUT, W_init=W0, threshold=1.5, **layer_kw)
    trainer = STDPTrainer(layer, compiled=compiled, event_driven=True, chunk_size=64,
                          **RATES, **trainer_kw)
    spikes = trainer.train(xs, return_spikes=True)
    np.testing.assert_array_equal(spikes, s_ref)
    np.testing.assert_allclose(layer.W.value, W_ref, atol=2e-5)
    np.testing.assert_allclose(layer.v.value, v_ref, atol=2e-5)


def test_auto_switches_kernels_between_chunks_without_changing_the_result(rng):
    # quiet, then saturated, then quiet again: the auto trainer uses both kernels
    xs = np.concatenate([(rng.random((200, N_IN)) < p).astype(np.float32) for p in (0.03, 0.5, 0.03)])
    W0 = rng.uniform(-0.1, 0.15, (N_OUT, N_IN)).astype(np.float32)  # starts out of bounds
    results = {}
    for mode in ("auto", False):
        layer = SpikingLayer(N_IN, N_OUT, W_init=W0, threshold=1.5)
        trainer = STDPTrainer(layer, event_driven=mode, chunk_size=50, fused=False, **RATES)
        results[mode] = (np.asarray(trainer.train(xs, return_spikes=True)), np.asarray(layer.W.value))
    W_ref, *_, s_ref = reference.run(W0, xs, **RATES_REF, threshold=1.5)
    assert s_ref[:200].mean() < EVENT_MAX_ACTIVITY < s_ref[250:400].mean()  # both kernels run
    for spikes, W in results.values():
        np.testing.assert_array_equal(spikes, s_ref)
        np.testing.assert_allclose(W, W_ref, atol=2e-5)


def test_event_predict_batch_matches_dense(rng):
    xs, W0 = sparse_data(rng, 100)
    out = {}
    for mode in (True, False):
        layer = SpikingLayer(N_IN, N_OUT, W_init=W0, threshold=1.5)
        out[mode] = np.asarray(STDPTrainer(layer, event_driven=mode).predict_batch(xs))
        np.testing.assert_array_equal(layer.W.value, W0)
    s_ref = reference.run(W0, xs, threshold=1.5, plastic=False)[-1]
    assert s_ref.sum() > 0
    np.testing.assert_array_equal(out[True], s_ref)
    np.testing.assert_array_equal(out[False], s_ref)


def test_bad_event_driven_value():
    with pytest.raises(ValueError, match="event_driven must be True, False or 'auto', got 'yes'"):
        STDPTrainer(SpikingLayer(3, 2), event_driven="yes")


def test_input_events_against_numpy_nonzero(rng):
    from canns_stdp.functional.event import input_events

    for n_in in (3, 40):
        xs = (rng.random((20, n_in)) < 0.3).astype(np.float32)
        events = input_events(xs, n_in)
        assert events.shape[1] >= 8 and events.shape[1] & (events.shape[1] - 1) == 0
        for row, x in zip(events, xs):
            active = np.flatnonzero(x)
            np.testing.assert_array_equal(row[: len(active)], active)
            assert (row[len(active):] == n_in).all()
    assert input_events(np.ones((2, 40), np.float32), 16) is None


def test_the_python_loop_runs_dense_steps_below_its_own_size(rng, monkeypatch):
    """Under event_driven="auto" the Python loop (one dispatch per step) runs the dense step
    on layers below PYTHON_LOOP_EVENT_MIN_SYNAPSES synapses and the event kernels above it
    (where it runs the XLA kernels: without numba, or inside ``jax.disable_jit()``)."""
    import canns_stdp.kernels.pair_layer as pair_layer
    from canns_stdp.kernels.policy import EVENT_MIN_SYNAPSES, PYTHON_LOOP_EVENT_MIN_SYNAPSES

    monkeypatch.setattr(pair_layer, "python_loop_native", lambda: False)
    kernels = []
    original = pair_layer.python_steps

    def spy(step, config, *args, **kwargs):
        kernels.append(config.event_driven)
        return original(step, config, *args, **kwargs)
    monkeypatch.setattr(pair_layer, "python_steps", spy)
    xs = (rng.random((64, 784)) < 0.05).astype(np.float32)
    assert 784 * 100 < PYTHON_LOOP_EVENT_MIN_SYNAPSES < 784 * 400 and 784 * 100 >= EVENT_MIN_SYNAPSES
    for n_out, event_driven in ((100, False), (400, True)):
        trainer = STDPTrainer(SpikingLayer(784, n_out, threshold=10.0), compiled=False, chunk_size=32)
        trainer.train(xs)  # (a fresh layer's first chunk runs dense: its activity is unknown)
        kernels.clear()
        trainer.train(xs)
        assert set(kernels) == {event_driven}, n_out
