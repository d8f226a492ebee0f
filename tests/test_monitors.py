"""Layer monitors record, during one call, what the NumPy reference computes at those steps."""

import jax.numpy as jnp
import numpy as np
import pytest

import reference
from canns_stdp import SpikingLayer, STDPTrainer, Trainer, rules
from canns_stdp.monitors import SpikeMonitor, StateMonitor, WeightMonitor

N_IN, N_OUT = 30, 6


@pytest.mark.parametrize("compiled", [True, False])
def test_monitors_record_what_the_reference_computes_at_their_steps(rng, compiled):
    xs = (rng.random((400, N_IN)) < 0.2).astype(np.float32)
    W0 = rng.uniform(0.1, 0.4, (N_OUT, N_IN)).astype(np.float32)
    trainer = STDPTrainer(SpikingLayer(N_IN, N_OUT, W_init=W0), learning_rate=0.5, chunk_size=25,
                          compiled=compiled, event_driven=False)
    spikes, v = SpikeMonitor(), StateMonitor("v", indices=[1, 4], every=50)
    weights = WeightMonitor(synapses=[0, 7, 100, 179], every=100)
    trainer.train(xs[:260], monitors=[spikes, v, weights])
    trainer.train(xs[260:], monitors=[spikes, v, weights])
    np.testing.assert_array_equal(v.steps, np.arange(50, 401, 50))
    np.testing.assert_array_equal(weights.steps, [100, 200, 300, 400])
    for k, row in zip(weights.steps, weights.values):
        W_ref = reference.run(W0, xs[:k], lr=0.5)[0]
        np.testing.assert_allclose(row, W_ref.reshape(-1)[[0, 7, 100, 179]], atol=2e-5)
    for k, row in zip(v.steps, v.values):
        np.testing.assert_allclose(row, reference.run(W0, xs[:k], lr=0.5)[1][[1, 4]], atol=2e-5)
    s_ref = reference.run(W0, xs, lr=0.5)[4]
    steps, neurons = np.nonzero(s_ref)
    np.testing.assert_array_equal(spikes.steps, steps + 1)
    np.testing.assert_array_equal(spikes.neurons, neurons)
    assert 0.05 < s_ref.mean() < 0.9


def test_monitors_sample_at_the_first_chunk_end_after_each_multiple(rng):
    trainer = Trainer(SpikingLayer(N_IN, N_OUT, seed=0), rules.pair(), chunk_size=64)
    weights = WeightMonitor(every=100)
    trainer.train((rng.random((300, N_IN)) < 0.2).astype(np.float32), monitors=[weights])
    np.testing.assert_array_equal(weights.steps, [128, 256, 300])  # chunk ends 64, 128, ..., 256, 300
    assert weights.values.shape == (3, N_IN * N_OUT)


def test_a_failed_call_records_nothing_and_bad_monitors_are_refused(rng):
    trainer = Trainer(SpikingLayer(N_IN, N_OUT, seed=0), rules.pair())
    weights = WeightMonitor(every=10)
    with pytest.raises(ValueError):
        trainer.train(np.full((20, N_IN), np.nan), monitors=[weights])
    assert weights.steps.size == 0
    blowing_up = STDPTrainer(SpikingLayer(N_IN, N_OUT, seed=0), hardbound=False, learning_rate=1e3, chunk_size=8,
                             weight_dependence=(lambda W: jnp.exp(W * 1e3), lambda W: jnp.ones_like(W)))
    with pytest.raises(FloatingPointError):  # fails after chunks were sampled: none is kept
        blowing_up.train(np.ones((40, N_IN), np.float32), monitors=[weights])
    assert weights.steps.size == 0
    with pytest.raises(ValueError, match=r"synapses must be integers in \[0, 180\), got \[180\]"):
        trainer.train(np.zeros((5, N_IN)), monitors=[WeightMonitor([180])])
    with pytest.raises(ValueError, match=r"variable must be one of"):
        StateMonitor("u")
    with pytest.raises(ValueError, match=r"every must be an integer >= 1, got 0"):
        WeightMonitor(every=0)
    with pytest.raises(TypeError, match=r"monitors must be canns_stdp.monitors monitors"):
        trainer.train(np.zeros((5, N_IN)), monitors=["weights"])


def test_spikes_recorded_as_bits_unpack_to_the_steps_and_neurons_of_the_spikes(rng):
    from canns_stdp.network.monitors import unpacked_spikes
    for n in (1, 31, 32, 33, 100):
        spikes = rng.random((17, n)) < 0.2
        padded = np.zeros((17, 32 * ((n + 31) // 32)), bool)
        padded[:, :n] = spikes
        # neuron j is bit j % 32 of little-endian word j // 32
        words = np.packbits(padded, axis=1, bitorder="little").view("<u4")
        expected = np.nonzero(spikes)
        for given in (words, np.hstack([words, words])[:, :words.shape[1]]):  # a view of wider records, too
            steps, neurons = unpacked_spikes(given)
            np.testing.assert_array_equal(steps, expected[0])
            np.testing.assert_array_equal(neurons, expected[1])
    steps, neurons = unpacked_spikes(np.zeros((5, 3), np.uint32))
    assert steps.size == neurons.size == 0
