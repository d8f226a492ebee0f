"""Running a chunk one block of output neurons at a time computes the same steps (docs/step.md)."""

import jax
import numpy as np
import pytest

import reference
from canns_stdp import SpikingLayer, STDPTrainer
from canns_stdp.functional.event import input_events
from canns_stdp.kernels import pair_layer
from canns_stdp.functional.layer_step import LayerConfig, LayerParams, LayerState, NeuronBlocks, train_step
from canns_stdp.functional.neurons import LIFParams
from canns_stdp.functional.stdp import STDPParams
from canns_stdp.loops import blocked_chunks, drive

N_IN, N_OUT = 60, 40
RATES = dict(lr=0.2, A_plus=0.05, A_minus=0.06)


@pytest.mark.parametrize("event_driven", [False, True])
@pytest.mark.parametrize("imposed", [False, True])
@pytest.mark.parametrize("refractory", [0, 3])
def test_blocked_chunks_match_reference(rng, event_driven, imposed, refractory):
    T = 150
    xs = (rng.random((T, N_IN)) < 0.1).astype(np.float32)
    W0 = rng.uniform(0.0, 0.2, (N_OUT, N_IN)).astype(np.float32)
    posts = (rng.random((T, N_OUT)) < 0.1).astype(np.float32) if imposed else None
    W_ref, v_ref, pre_ref, post_ref, s_ref, left_ref = reference.run(W0, xs, posts, threshold=4.0, **RATES,
                                                                     refractory=refractory, return_left=True)
    assert 0.02 < s_ref.mean() < 0.8

    config = LayerConfig(event_driven=event_driven)
    params = jax.tree_util.tree_map(np.float32, LayerParams(lif=LIFParams(0.9, 4.0, 0.0, refractory),
                                                                  stdp=STDPParams(**RATES)))
    state = LayerState.zeros(N_IN, N_OUT, W=W0.T.copy() if event_driven else W0, refractory=refractory > 0)
    seq = (xs, posts) + ((input_events(xs, N_IN),) if event_driven else ())
    run_chunk = blocked_chunks(train_step, config, params, 64, NeuronBlocks(size=8, count=5))
    state, spikes = drive(run_chunk, state, seq, chunk_size=64, record=True)
    W = np.asarray(state.W).T if event_driven else np.asarray(state.W)
    np.testing.assert_array_equal(spikes, s_ref)
    np.testing.assert_allclose(W, W_ref, atol=2e-5)
    np.testing.assert_allclose(state.v, v_ref, atol=2e-5)
    np.testing.assert_allclose(state.trace_pre, pre_ref, atol=1e-5)
    np.testing.assert_allclose(state.trace_post, post_ref, atol=1e-5)
    np.testing.assert_array_equal(state.spike, s_ref[-1])
    if refractory:
        np.testing.assert_array_equal(state.refractory_left, left_ref)


def test_block_sizes_divide_the_layer_and_small_layers_are_not_cut():
    assert NeuronBlocks.for_layer(784, 400) is None  # 1.25 MB of weights: cached whole
    blocks = NeuronBlocks.for_layer(4096, 4096)
    assert blocks.size * blocks.count == 4096 and 4 * 4096 * blocks.size <= 2 << 20
    blocks = NeuronBlocks.for_layer(4096, 1000)
    assert blocks.size * blocks.count == 1000
    assert NeuronBlocks.for_layer(10_000, 997) is None  # a prime: no block size fits


def test_trainer_cuts_a_large_layer_into_blocks_without_changing_the_result(rng):
    n_in, n_out = 1100, 1000  # 4.4 MB of weights
    xs = (rng.random((40, n_in)) < 0.02).astype(np.float32)
    W0 = rng.uniform(0.0, 0.1, (n_out, n_in)).astype(np.float32)
    assert pair_layer._neuron_blocks(LayerParams(), (xs, None), LayerState.zeros(n_in, n_out)) is not None
    W_ref, v_ref, *_, s_ref = reference.run(W0, xs, threshold=1.0, **RATES)
    assert 0.01 < s_ref.mean() < 0.9
    layer = SpikingLayer(n_in, n_out, W_init=W0, threshold=1.0)
    trainer = STDPTrainer(layer, learning_rate=0.2, A_plus=0.05, A_minus=0.06, fused=False)
    np.testing.assert_array_equal(trainer.train(xs, return_spikes=True), s_ref)
    np.testing.assert_allclose(layer.W.value, W_ref, atol=2e-5)
    np.testing.assert_allclose(layer.v.value, v_ref, atol=2e-5)
