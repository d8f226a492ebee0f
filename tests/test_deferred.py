"""Deferred LTP (functional.event's ledger) computes the step of docs/step.md, as the dense kernel does."""

import math

import jax
import numpy as np
import pytest

import reference
import canns_stdp.kernels.pair_layer as trainer_module
from canns_stdp import SpikingLayer, STDPTrainer
from canns_stdp.functional.dependence import WeightBounds
from canns_stdp.functional.event import deferred_span, input_events
from canns_stdp.functional.layer_step import (LayerConfig, LayerParams, LayerState, begin_span, end_span,
                                              train_step)
from canns_stdp.functional.neurons import LIFParams
from canns_stdp.functional.stdp import STDPParams, TraceParams
from canns_stdp.functional.traces import TRACE_MODES

N_IN, N_OUT = 60, 40

CASES = [  # (reference keywords, spikes in, weights start uniform in [0, w0_max])
    dict(),
    dict(pairing="causal", trace_mode="nearest"),
    dict(pairing="strict", hardbound=False),
    dict(w_max=0.22, A_plus=0.08),          # LTP saturates at w_max: the deferred sums are clipped
    dict(A_plus=-0.03, A_minus=-0.02),      # signed amplitudes: owed LTP is negative
]


def run_spans(W0, xs, posts, span, ref_kw):
    """The deferred step over ``xs``, the ledger settled and reopened every ``span`` steps."""
    kw = dict(dict(lr=0.2, A_plus=0.05, A_minus=0.06, w_max=1.0, pairing="symmetric",
                   trace_mode="cumulative", hardbound=True), **ref_kw)
    deferred = LayerConfig(pairing=kw["pairing"], trace_add=TRACE_MODES[kw["trace_mode"]], hardbound=kw["hardbound"],
                           event_driven=True, deferred_ltp=True)
    params = jax.tree_util.tree_map(np.float32, LayerParams(
        lif=LIFParams(0.9, 2.0, 0.0), traces=TraceParams(),
        stdp=STDPParams(kw["lr"], kw["A_plus"], kw["A_minus"], WeightBounds(0.0, kw["w_max"]))))
    step = jax.jit(train_step, static_argnums=0)
    state, spikes = LayerState.zeros(N_IN, N_OUT, W=W0.T.copy()), []
    events = input_events(xs, N_IN)
    for t, x in enumerate(xs):
        post = None if posts is None else posts[t]
        if t % span == 0:  # a span ends: settle what is owed, start a new ledger
            state = end_span(deferred, params, state) if t else state
            state = begin_span(deferred, params, state, (x, post, events[t]))
        state, s = step(deferred, params, state, x, post, events[t])
        spikes.append(np.asarray(s))
    state = end_span(deferred, params, state)
    return state._replace(W=state.W.T), np.array(spikes)


@pytest.mark.parametrize("ref_kw", CASES)
@pytest.mark.parametrize("imposed", [False, True])
def test_deferred_spans_match_reference(rng, ref_kw, imposed):
    T = 150
    xs = (rng.random((T, N_IN)) < 0.1).astype(np.float32)
    W0 = rng.uniform(0.0, 0.2, (N_OUT, N_IN)).astype(np.float32)
    posts = (rng.random((T, N_OUT)) < 0.3).astype(np.float32) if imposed else None
    kw = dict(dict(lr=0.2, A_plus=0.05, A_minus=0.06), **ref_kw)
    W_ref, v_ref, pre_ref, post_ref, s_ref = reference.run(W0, xs, posts, threshold=2.0, **kw)
    assert 0.02 < s_ref.mean() < 0.8
    assert np.abs(W_ref - W0).max() > 0.02
    if "w_max" in ref_kw:
        assert (W_ref == np.float32(ref_kw["w_max"])).mean() > 0.05  # clipping happened
    state, spikes = run_spans(W0, xs, posts, 32, ref_kw)
    np.testing.assert_array_equal(spikes, s_ref)
    np.testing.assert_allclose(state.W, W_ref, atol=2e-5)
    np.testing.assert_allclose(state.v, v_ref, atol=2e-5)
    np.testing.assert_allclose(state.trace_pre, pre_ref, atol=1e-5)
    np.testing.assert_allclose(state.trace_post, post_ref, atol=1e-5)


def test_deferred_spans_with_real_valued_signed_input(rng):
    T = 120
    xs = (rng.random((T, N_IN)) < 0.1) * rng.uniform(-1.0, 1.5, (T, N_IN))
    xs = xs.astype(np.float32)
    W0 = rng.uniform(0.0, 0.3, (N_OUT, N_IN)).astype(np.float32)
    W_ref, v_ref, *_, s_ref = reference.run(W0, xs, threshold=2.0, lr=0.2, A_plus=0.05, A_minus=0.06)
    assert 0.02 < s_ref.mean() < 0.8 and (xs < 0).any()
    state, spikes = run_spans(W0, xs, None, 40, {})
    np.testing.assert_array_equal(spikes, s_ref)
    np.testing.assert_allclose(state.W, W_ref, atol=2e-5)
    np.testing.assert_allclose(state.v, v_ref, atol=2e-5)


def opened_spans(monkeypatch):
    """The configs the trainer's loops open chunks with (traced once per compilation)."""
    seen = []

    def spy(config, params, state, inputs):
        seen.append(config)
        return begin_span(config, params, state, inputs)

    monkeypatch.setattr(trainer_module, "begin_span", spy)
    return seen


@pytest.mark.parametrize("compiled", [True, False])
@pytest.mark.parametrize("threshold", [1.0, 3.0])  # most neurons fire / few do: deferred either way
def test_trainer_defers_ltp_and_matches_reference(rng, monkeypatch, compiled, threshold):
    T, n_in = 600, 96
    xs = (rng.random((T, n_in)) < 0.05).astype(np.float32)
    W0 = rng.uniform(0.0, 0.3, (N_OUT, n_in)).astype(np.float32)
    rates = dict(A_plus=0.05, A_minus=0.06)
    W_ref, v_ref, *_, s_ref = reference.run(W0, xs, threshold=threshold, lr=0.02, **rates)
    assert 0.01 < s_ref.mean() < 0.9 and np.abs(W_ref - W0).max() > 0.02
    seen = opened_spans(monkeypatch)
    layer = SpikingLayer(n_in, N_OUT, W_init=W0, threshold=threshold)
    trainer = STDPTrainer(layer, compiled=compiled, learning_rate=0.02, fused=False, event_driven=True, **rates)
    np.testing.assert_array_equal(trainer.train(xs, return_spikes=True), s_ref)
    np.testing.assert_allclose(layer.W.value, W_ref, atol=2e-5)
    np.testing.assert_allclose(layer.v.value, v_ref, atol=2e-5)
    assert any(config.deferred_ltp for config in seen)


def test_trainer_without_deferrable_rule_keeps_the_column_kernel(rng, monkeypatch):
    xs = (rng.random((200, N_IN)) < 0.05).astype(np.float32)
    W0 = rng.uniform(0.0, 0.3, (N_OUT, N_IN)).astype(np.float32)
    W_ref, *_, s_ref = reference.run(W0, xs, threshold=2.0, lr=0.02, dependence="soft")
    seen = opened_spans(monkeypatch)
    layer = SpikingLayer(N_IN, N_OUT, W_init=W0, threshold=2.0)
    trainer = STDPTrainer(layer, learning_rate=0.02, weight_dependence="soft", event_driven=True)
    np.testing.assert_array_equal(trainer.train(xs, return_spikes=True), s_ref)
    np.testing.assert_allclose(layer.W.value, W_ref, atol=2e-5)
    assert not any(config.deferred_ltp for config in seen)


def test_large_layer_defers_ltp_instead_of_cutting_blocks(rng, monkeypatch):
    n_in, n_out = 1100, 1000  # 4.4 MB of weights: dense chunks would run in neuron blocks
    xs = (rng.random((48, n_in)) < 0.02).astype(np.float32)
    W0 = rng.uniform(0.0, 0.1, (n_out, n_in)).astype(np.float32)
    W_ref, v_ref, *_, s_ref = reference.run(W0, xs, threshold=1.0, lr=0.02, A_plus=0.05, A_minus=0.06)
    assert 0.01 < s_ref.mean() < 0.9
    seen = opened_spans(monkeypatch)
    layer = SpikingLayer(n_in, n_out, W_init=W0, threshold=1.0)
    trainer = STDPTrainer(layer, learning_rate=0.02, A_plus=0.05, A_minus=0.06, chunk_size=16, fused=False)
    np.testing.assert_array_equal(trainer.train(xs, return_spikes=True), s_ref)
    np.testing.assert_allclose(layer.W.value, W_ref, atol=2e-5)
    assert any(config.deferred_ltp for config in seen)


def ledger_rounding(ltp_rate, d, trace_bound, span):
    """Worst case, written out: |lr A+| * trace_bound * sum_{k=1..span} d^-k, read back with 2 eps."""
    owed = abs(ltp_rate) * trace_bound * sum(d ** -k for k in range(1, span + 1))
    return 2 * np.finfo(np.float32).eps * owed


@pytest.mark.parametrize("ltp_rate, d, trace_bound, scale", [
    (5e-5, 0.95, 20.0, 1.0),      # the benchmark job
    (1e-3, 0.95, 20.0, 1.0),
    (5e-5, 0.8, 5.0, 0.5),
    (1e-4, 1.0, 100.0, 1.0),      # no decay: owed LTP grows linearly
])
def test_deferred_span_is_the_longest_within_dense_rounding(ltp_rate, d, trace_bound, scale):
    span = deferred_span(ltp_rate, d, trace_bound, scale, 1024)
    dense_rounding = lambda L: L * np.finfo(np.float32).eps / 2 * scale  # noqa: E731
    assert span in (0, 16, 32, 64, 128, 256, 512, 1024)
    if span:
        assert ledger_rounding(ltp_rate, d, trace_bound, span) <= dense_rounding(span) * (1 + 1e-9)
        assert -span * math.log(d) < 60
    if span < 1024 and 2 * span >= 16:
        longer = 2 * span
        assert (ledger_rounding(ltp_rate, d, trace_bound, longer) > dense_rounding(longer)
                or -longer * math.log(d) >= 60)


def test_deferred_span_refuses_what_cannot_be_deferred():
    assert deferred_span(5e-5, 0.0, 20.0, 1.0, 256) == 0    # the trace vanishes in one step: d^-c overflows
    assert deferred_span(0.5, 0.95, 20.0, 1.0, 256) == 0    # rates too large for even 16 steps
    assert deferred_span(5e-5, 0.95, 20.0, 1.0, 8) == 0     # spans shorter than 16 are not worth a ledger
    assert deferred_span(5e-5, 0.95, 20.0, 1.0, 100) == 100  # a user's chunk size that fits is kept
