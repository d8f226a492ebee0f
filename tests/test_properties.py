"""Property-based tests (hypothesis): invariants over random sizes, parameters and spike trains."""

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given, settings, strategies as st  # noqa: E402

from canns_stdp import SpikingLayer, STDPTrainer  # noqa: E402
from canns_stdp.functional.layer_step import LayerState  # noqa: E402

FAST = settings(max_examples=15, deadline=None, derandomize=True)
CHUNK = 8  # a small chunk keeps each new shape's compilation short
# A few sizes (1 and non-powers of two included) so that compilations are shared
# between examples; parameters, spike trains and options vary freely.
SIZES_IN, SIZES_OUT = (1, 3, 7), (1, 4)


@st.composite
def setups(draw, max_T=16):
    """Sizes, layer and trainer parameters, initial weights and traces, and spike trains."""
    n_in = draw(st.sampled_from(SIZES_IN))
    n_out = draw(st.sampled_from(SIZES_OUT))
    T = draw(st.integers(1, max_T))
    seed = draw(st.integers(0, 2**31 - 1))
    w_min = draw(st.floats(-1.0, 0.5))
    w_max = w_min + draw(st.floats(0.05, 2.0))
    layer_kw = dict(
        threshold=draw(st.floats(0.05, 2.0)),
        leak=draw(st.floats(0.0, 1.0)),
        trace_decay=draw(st.floats(0.05, 1.0)),
        trace_mode=draw(st.sampled_from(["cumulative", "nearest"])),
        a_pre=draw(st.floats(0.0, 2.0)),
        a_post=draw(st.floats(0.0, 2.0)),
    )
    trainer_kw = dict(
        learning_rate=draw(st.floats(0.0, 5.0)),
        A_plus=draw(st.floats(0.0, 0.5)),
        A_minus=draw(st.floats(0.0, 0.5)),
        w_min=w_min, w_max=w_max,
        pairing=draw(st.sampled_from(["symmetric", "causal", "strict"])),
        weight_dependence=draw(st.sampled_from(["additive", "hard", "soft", "power"])),
        mu=draw(st.floats(0.0, 2.0)),
        chunk_size=CHUNK,
    )
    rng = np.random.default_rng(seed)
    p = draw(st.floats(0.0, 1.0))
    xs = (rng.random((T, n_in)) < p).astype(np.float32)
    W0 = rng.uniform(w_min, w_max, (n_out, n_in)).astype(np.float32)
    traces = (rng.uniform(0, 2, n_in).astype(np.float32), rng.uniform(0, 2, n_out).astype(np.float32))
    return n_in, n_out, layer_kw, trainer_kw, xs, W0, traces, rng


def make(n_in, n_out, layer_kw, trainer_kw, W0, traces=None, **overrides):
    layer = SpikingLayer(n_in, n_out, W_init=W0, **layer_kw)
    if traces is not None:
        s = layer.get_state()
        layer.set_state(s._replace(trace_pre=traces[0], trace_post=traces[1]))
    return layer, STDPTrainer(layer, **{**trainer_kw, **overrides})


@FAST
@given(setups())
def test_weights_stay_within_bounds(setup):
    n_in, n_out, layer_kw, trainer_kw, xs, W0, traces, _ = setup
    layer, trainer = make(n_in, n_out, layer_kw, trainer_kw, W0, traces, compiled=False)
    trainer.train(xs)
    W = np.asarray(layer.W.value)
    assert np.isfinite(W).all()
    assert (W >= np.float32(trainer.w_min)).all() and (W <= np.float32(trainer.w_max)).all()


@FAST
@given(setups())
def test_no_spikes_no_change(setup):
    """No input spike and no output spike: ΔW = 0 whatever the traces hold."""
    n_in, n_out, layer_kw, trainer_kw, xs, W0, traces, _ = setup
    layer, trainer = make(n_in, n_out, layer_kw, trainer_kw, W0, traces, compiled=False)
    T = xs.shape[0]
    trainer.train(np.zeros_like(xs), post_spikes=np.zeros((T, n_out), np.float32))
    np.testing.assert_array_equal(np.asarray(layer.W.value), W0)


@FAST
@given(setups())
def test_zero_learning_rate_no_change(setup):
    n_in, n_out, layer_kw, trainer_kw, xs, W0, traces, _ = setup
    layer, trainer = make(n_in, n_out, layer_kw, trainer_kw, W0, traces, learning_rate=0.0,
                          compiled=False)
    trainer.train(xs)
    np.testing.assert_array_equal(np.asarray(layer.W.value), W0)


@settings(max_examples=10, deadline=None, derandomize=True)
@given(setups(max_T=30))
def test_compiled_equals_uncompiled(setup):
    n_in, n_out, layer_kw, trainer_kw, xs, W0, traces, _ = setup
    results = []
    for compiled in (True, False):
        layer, trainer = make(n_in, n_out, layer_kw, trainer_kw, W0, traces, compiled=compiled)
        out = trainer.train(xs, return_spikes=True)
        results.append((np.asarray(out), layer.get_state()))
    (s_c, a), (s_p, b) = results
    np.testing.assert_array_equal(s_c, s_p)
    for name in LayerState._fields:
        np.testing.assert_allclose(getattr(a, name), getattr(b, name), rtol=1e-6, atol=1e-6,
                                   err_msg=name)


@FAST
@given(setups())
def test_permuting_inputs_permutes_weight_change_columns(setup):
    """Relabelling the inputs relabels the columns of ΔW (output spikes imposed, so
    they cannot depend on the summation order of W x)."""
    n_in, n_out, layer_kw, trainer_kw, xs, W0, traces, rng = setup
    perm = rng.permutation(n_in)
    posts = (rng.random((xs.shape[0], n_out)) < 0.4).astype(np.float32)
    Ws = []
    for p in (np.arange(n_in), perm):
        layer, trainer = make(n_in, n_out, layer_kw, trainer_kw, W0[:, p],
                              (traces[0][p], traces[1]), compiled=False)
        trainer.train(xs[:, p], post_spikes=posts)
        Ws.append(np.asarray(layer.W.value) - W0[:, p])
    np.testing.assert_array_equal(Ws[1], Ws[0][:, perm])
