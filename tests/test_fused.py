"""The fused Pallas kernel computes the step of docs/step.md (interpreted on CPU, compiled on GPU)."""

import numpy as np
import pytest

import reference
from canns_stdp import SpikingLayer, STDPTrainer
from canns_stdp.functional import dependence as dep
from canns_stdp.functional import traces
from canns_stdp.functional.dependence import WeightBounds
from canns_stdp.functional.fused import FusedTiling, fused_train
from canns_stdp.functional.layer_step import LayerConfig, LayerParams, LayerState
from canns_stdp.functional.neurons import LIFParams
from canns_stdp.functional.stdp import STDPParams, TraceParams

N_IN, N_OUT = 90, 37  # neither a power of two nor a multiple of the row block: padding is exercised
RATES = dict(lr=0.2, A_plus=0.05, A_minus=0.06)
TILINGS = {"resident": FusedTiling(rows=8), "streaming": FusedTiling(rows=4, cols=32)}
CASES = [
    dict(),
    dict(pairing="causal", dependence="soft"),
    dict(pairing="strict", dependence="hard", trace_mode="nearest"),
    dict(dependence="power", mu=0.7, hardbound=False),
]


def functional_setup(threshold, case):
    case = dict(case)
    config = LayerConfig(trace_add=traces.TRACE_MODES[case.pop("trace_mode", "cumulative")],
                         dependence=dep.DEPENDENCES[case.pop("dependence", "additive")],
                         pairing=case.pop("pairing", "symmetric"), hardbound=case.pop("hardbound", True))
    bounds = WeightBounds(0.0, 1.0, case.pop("mu", 1.0))
    params = LayerParams(lif=LIFParams(0.9, threshold, 0.0), traces=TraceParams(0.95, 0.9, 1.0, 0.8),
                         stdp=STDPParams(RATES["lr"], RATES["A_plus"], RATES["A_minus"], bounds))
    assert not case
    return config, params


def reference_kw(case):
    return dict(case, d_pre=0.95, d_post=0.9, a_pre=1.0, a_post=0.8, **RATES)


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("tiling", list(TILINGS))
def test_fused_kernel_matches_reference(rng, case, tiling):
    T, n_steps = 160, 150  # the last ten rows are padding: they must change nothing
    xs = (rng.random((T, N_IN)) < 0.1).astype(np.float32)
    W0 = rng.uniform(0.0, 0.2, (N_OUT, N_IN)).astype(np.float32)
    v0 = rng.uniform(0.0, 1.0, N_OUT).astype(np.float32)
    tr_pre0, tr_post0 = rng.uniform(0, 1, N_IN).astype(np.float32), rng.uniform(0, 1, N_OUT).astype(np.float32)
    W_ref, v_ref, pre_ref, post_ref, s_ref = reference.run(
        W0, xs[:n_steps], threshold=5.0, state=(v0, tr_pre0, tr_post0), **reference_kw(case))
    assert 0.02 < s_ref.mean() < 0.8, "the test needs spikes and silences"
    assert np.abs(W_ref - W0).max() > 0.05

    config, params = functional_setup(5.0, case)
    state = LayerState(W0, v0, np.zeros(N_OUT, np.float32), tr_pre0, tr_post0)
    state, spikes = fused_train(config, params, state, xs, n_steps=n_steps, tiling=TILINGS[tiling])
    np.testing.assert_array_equal(spikes[:n_steps], s_ref)
    assert not np.any(spikes[n_steps:])
    np.testing.assert_allclose(state.W, W_ref, atol=2e-5)
    np.testing.assert_allclose(state.v, v_ref, atol=2e-5)
    np.testing.assert_allclose(state.trace_pre, pre_ref, atol=1e-5)
    np.testing.assert_allclose(state.trace_post, post_ref, atol=1e-5)
    np.testing.assert_array_equal(state.spike, s_ref[-1])


@pytest.mark.parametrize("tiling", list(TILINGS))
def test_fused_kernel_with_imposed_post_spikes_and_per_neuron_thresholds(rng, tiling):
    T = 80
    xs = (rng.random((T, N_IN)) < 0.2).astype(np.float32)
    posts = (rng.random((T, N_OUT)) < 0.2).astype(np.float32)
    W0 = rng.uniform(0.0, 0.2, (N_OUT, N_IN)).astype(np.float32)
    thresholds = rng.uniform(3.0, 7.0, N_OUT).astype(np.float32)
    W_ref, v_ref, *_, s_ref = reference.run(W0, xs, posts, threshold=thresholds, **reference_kw({}))
    config, params = functional_setup(thresholds, {})
    state, spikes = fused_train(config, params, LayerState.zeros(N_IN, N_OUT, W=W0), xs, posts,
                                tiling=TILINGS[tiling])
    np.testing.assert_array_equal(spikes, posts)
    np.testing.assert_allclose(state.W, W_ref, atol=2e-5)
    np.testing.assert_allclose(state.v, v_ref, atol=2e-5)

    W_free, v_free, *_, s_free = reference.run(W0, xs, threshold=thresholds, **reference_kw({}))
    state, spikes = fused_train(config, params, LayerState.zeros(N_IN, N_OUT, W=W0), xs,
                                tiling=TILINGS[tiling])
    assert 0.02 < s_free.mean() < 0.8
    np.testing.assert_array_equal(spikes, s_free)
    np.testing.assert_allclose(state.W, W_free, atol=2e-5)


@pytest.mark.parametrize("compiled", [True, False])
def test_trainer_with_fused_kernel_matches_reference_across_calls(rng, compiled):
    xs = (rng.random((300, N_IN)) < 0.1).astype(np.float32)
    W0 = rng.uniform(0.0, 0.2, (N_OUT, N_IN)).astype(np.float32)
    W_ref, v_ref, pre_ref, post_ref, s_ref = reference.run(W0, xs, threshold=5.0, lr=0.2, A_plus=0.05,
                                                           A_minus=0.06)
    layer = SpikingLayer(N_IN, N_OUT, W_init=W0, threshold=5.0)
    trainer = STDPTrainer(layer, learning_rate=0.2, A_plus=0.05, A_minus=0.06, fused=True,
                          compiled=compiled, chunk_size=64)
    first = trainer.train(xs[:130], return_spikes=True)  # two calls, chunks of 64: state carries over
    second = trainer.train(xs[130:], return_spikes=True)
    np.testing.assert_array_equal(np.concatenate([first, second]), s_ref)
    np.testing.assert_allclose(layer.W.value, W_ref, atol=2e-5)
    np.testing.assert_allclose(layer.v.value, v_ref, atol=2e-5)
    np.testing.assert_allclose(layer.trace_pre.value, pre_ref, atol=1e-5)
    np.testing.assert_allclose(layer.trace_post.value, post_ref, atol=1e-5)


def test_fused_true_refuses_a_batched_input_and_changes_nothing(rng):
    layer = SpikingLayer(N_IN, N_OUT, seed=0)
    trainer = STDPTrainer(layer, fused=True)
    before = {name: np.array(getattr(layer, name).value) for name in ("W", "v", "trace_pre", "trace_post")}
    with pytest.raises(ValueError, match=r"fused=True needs a dense, unbatched layer.*\(4, 90\)"):
        trainer.train(np.ones((5, 4, N_IN), np.float32))
    for name, value in before.items():
        np.testing.assert_array_equal(getattr(layer, name).value, value)


def test_fused_true_refuses_a_user_weight_dependence():
    trainer = STDPTrainer(SpikingLayer(N_IN, N_OUT, seed=0), fused=True,
                          weight_dependence=(lambda W: 1.0 - W, lambda W: W))
    with pytest.raises(ValueError, match="built-in weight dependence"):
        trainer.train(np.ones((3, N_IN), np.float32))


def test_bad_fused_value():
    with pytest.raises(ValueError, match="fused must be True, False or 'auto', got 'yes'"):
        STDPTrainer(SpikingLayer(3, 2), fused="yes")


def test_default_tiling_keeps_rows_resident_up_to_16384_inputs_and_streams_wider_ones():
    small, large, wide = (FusedTiling.default(*shape) for shape in ((784, 400), (16384, 16384), (32768, 512)))
    assert small.cols is None and -(-400 // small.rows) >= 132  # at least a program per SM of an H100
    assert large.cols is None and large.rows * 16384 // (32 * large.num_warps) <= 32  # W's registers per thread
    assert wide.cols is not None and 32768 % wide.cols == 0


def test_trainer_with_fused_kernel_on_real_valued_input(rng):
    xs = rng.uniform(0.0, 1.0, (120, N_IN)).astype(np.float32) * (rng.random((120, N_IN)) < 0.2)
    W0 = rng.uniform(0.0, 0.2, (N_OUT, N_IN)).astype(np.float32)
    W_ref, v_ref, *_, s_ref = reference.run(W0, xs, threshold=3.0, lr=0.2, A_plus=0.05, A_minus=0.06)
    assert 0.02 < s_ref.mean() < 0.8
    layer = SpikingLayer(N_IN, N_OUT, W_init=W0, threshold=3.0)
    trainer = STDPTrainer(layer, learning_rate=0.2, A_plus=0.05, A_minus=0.06, fused=True, chunk_size=64)
    np.testing.assert_array_equal(trainer.train(xs, return_spikes=True), s_ref)
    np.testing.assert_allclose(layer.W.value, W_ref, atol=2e-5)
    np.testing.assert_allclose(layer.x.value, xs[-1])


@pytest.mark.parametrize("mode", ["cumulative", "nearest"])
def test_trace_affine_is_one_trace_step(rng, mode):
    tr = rng.uniform(0, 2, 50).astype(np.float32)
    x = (rng.random(50) < 0.4).astype(np.float32) * rng.uniform(0.5, 1.5, 50).astype(np.float32)
    decay, amplitude = np.float32(0.9), np.float32(0.7)
    want = decay * tr + amplitude * x if mode == "cumulative" else np.where(x > 0, amplitude, decay * tr)
    a, b = traces.trace_affine(traces.TRACE_MODES[mode], decay, x, amplitude)
    np.testing.assert_allclose(np.asarray(a) * tr + np.asarray(b), want, rtol=1e-6)
