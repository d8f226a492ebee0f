"""Compiled chunks of a static length (every padded step runs, masked; what accelerators
run) compute what the loop of ``n_steps`` steps computes (to float rounding: XLA compiles the
two loops' arithmetic apart), and the NumPy reference."""

import numpy as np

import reference
from canns_stdp import rules
from canns_stdp.functional.layer_step import LayerState
from canns_stdp.functional.neurons import LIFParams
from canns_stdp.functional.dependence import WeightBounds
from canns_stdp.loops import compiled_chunks, drive
from canns_stdp.step import StepConfig, StepParams, StepState, plastic_step


def test_static_length_chunks_match_the_traced_loop_and_the_reference(rng):
    n_in, n_out, T, chunk = 30, 7, 45, 16
    xs = (rng.random((T, n_in)) < 0.2).astype(np.float32)
    W0 = rng.uniform(0.0, 0.4, (n_out, n_in)).astype(np.float32)
    params = StepParams(lif=LIFParams(threshold=1.5), lr=0.3, bounds=WeightBounds(0.0, 1.0),
                        rule=rules.pair(A_plus=0.05, A_minus=0.06))
    results = {}
    for static in (False, True):
        run_chunk = compiled_chunks(plastic_step, StepConfig(), params, chunk, static=static)
        state = StepState(LayerState.zeros(n_in, n_out, W=W0), ())
        # starts 5 steps into a chunk and ends inside one: both ends are padded
        state, spikes = drive(run_chunk, state, (xs, None), chunk_size=chunk, start=5, record=True)
        results[static] = (state.layer, np.asarray(spikes))
    W_ref, v_ref, pre_ref, post_ref, s_ref = reference.run(W0, xs, threshold=1.5, lr=0.3, A_plus=0.05,
                                                           A_minus=0.06)
    assert 0.05 < s_ref.mean() < 0.8
    for layer, spikes in results.values():
        np.testing.assert_array_equal(spikes, s_ref)
        np.testing.assert_allclose(layer.W, W_ref, atol=1e-6)
        np.testing.assert_allclose(layer.v, v_ref, atol=1e-5)
    for a, b in zip(results[False][0], results[True][0]):  # XLA may fuse the two loops' arithmetic apart
        np.testing.assert_allclose(a, b, atol=1e-6)
