"""The native CPU kernel with deferred LTP (a ledger per block of neurons with a base for
each span, settled at the end of each settling period) computes the step of
docs/step.md: against the NumPy reference, for the additive rule with every pairing and
trace mode, saturating and signed LTP, imposed spikes, real-valued signed input, weights
outside their bounds, layers wider than a block, chunks that end inside a span, calls
that cross several periods; through the trainer, however many neurons fire."""

import numpy as np
import pytest

import reference
from canns_stdp import SpikingLayer, STDPTrainer
from canns_stdp.functional.dependence import DEPENDENCES, WeightBounds
from canns_stdp.functional.event import deferred_span
from canns_stdp.functional.layer_step import LayerConfig, LayerParams, LayerState
from canns_stdp.functional.neurons import LIFParams
from canns_stdp.functional.stdp import STDPParams, TraceParams
from canns_stdp.functional.traces import TRACE_MODES
from canns_stdp.kernels import native_pair, native_steps, pair_layer
from canns_stdp.monitors import WeightMonitor

pytestmark = pytest.mark.skipif(not native_pair.native_available(warn=False), reason="numba is not installed")

N_IN, N_OUT = 60, 40
BASE = dict(threshold=2.0, lr=0.2, A_plus=0.05, A_minus=0.06, w_max=1.0, pairing="symmetric",
            trace_mode="cumulative", hardbound=True)
# the kernel's chunk in one call (the compiled loop's) and step by step (the Python loop's)
KERNELS = {"chunk": native_pair.native_chunk, "steps": native_steps.native_steps_chunk}
CASES = [
    dict(),
    dict(pairing="causal", trace_mode="nearest"),
    dict(pairing="strict", hardbound=False),
    dict(w_max=0.22, A_plus=0.08),      # LTP saturates at w_max: the owed sums are clipped
    dict(A_plus=-0.03, A_minus=-0.02),  # signed amplitudes: owed LTP is negative
]


def run_native(W0, xs, posts=None, span=32, n_steps=None, kernel="chunk", **kw):
    p = {**BASE, **kw}
    config = LayerConfig(trace_add=TRACE_MODES[p["trace_mode"]], dependence=DEPENDENCES["additive"],
                         pairing=p["pairing"], hardbound=p["hardbound"])
    params = LayerParams(LIFParams(0.9, p["threshold"], 0.0), TraceParams(0.95, 0.95, 1.0, 1.0),
                         STDPParams(p["lr"], p["A_plus"], p["A_minus"], WeightBounds(0.0, p["w_max"], 1.0)))
    state = LayerState.zeros(W0.shape[1], W0.shape[0], W=W0)
    n = len(xs) if n_steps is None else n_steps
    state, spikes = KERNELS[kernel](config, params, state, (xs, posts), n, True, span)
    return native_pair.layer_weights(state), np.asarray(spikes)  # W out of the kernel's layout


def check(state, spikes, ref):
    reference.assert_layer_matches(state, spikes, ref, W_atol=2e-5, v_atol=2e-5)


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("imposed", [False, True])
@pytest.mark.parametrize("kernel", list(KERNELS))
def test_deferred_native_kernel_matches_reference(rng, case, imposed, kernel):
    T = 150  # two stretches of 64 steps and part of a third: spans end inside a call
    xs = (rng.random((T, N_IN)) < 0.1).astype(np.float32)
    W0 = rng.uniform(0.0, 0.2, (N_OUT, N_IN)).astype(np.float32)
    posts = (rng.random((T, N_OUT)) < 0.3).astype(np.float32) if imposed else None
    ref = reference.run(W0, xs, posts, **{**BASE, **case})
    assert 0.02 < ref[-1].mean() < 0.8 and np.abs(ref[0] - W0).max() > 0.02
    if "w_max" in case:
        assert (ref[0] == np.float32(case["w_max"])).mean() > 0.05  # clipping happened
    for span in (16, 32, 64):
        check(*run_native(W0, xs, posts, span, kernel=kernel, **case), ref)


@pytest.mark.parametrize("kernel", list(KERNELS))
def test_real_valued_signed_input_and_weights_outside_their_bounds(rng, kernel):
    T = 120
    xs = ((rng.random((T, N_IN)) < 0.1) * rng.uniform(-1.0, 1.5, (T, N_IN))).astype(np.float32)
    W0 = rng.uniform(0.0, 0.3, (N_OUT, N_IN)).astype(np.float32)
    W0[3, :7], W0[5, 10:20] = 1.7, -0.4  # clipped at the first step, as the plain step clips every synapse
    ref = reference.run(W0, xs, **BASE)
    assert 0.02 < ref[-1].mean() < 0.8 and (xs < 0).any()
    check(*run_native(W0, xs, span=16, kernel=kernel), ref)


@pytest.mark.parametrize("kernel", list(KERNELS))
def test_layers_wider_than_a_block_and_a_chunk_that_ends_early(rng, kernel):
    n_out, T = native_pair._LANES + 7, 100
    xs = (rng.random((T, N_IN)) < 0.1).astype(np.float32)
    W0 = rng.uniform(0.0, 0.2, (n_out, N_IN)).astype(np.float32)
    ref = reference.run(W0, xs[:77], **BASE)
    state, spikes = run_native(W0, xs, span=32, n_steps=77, kernel=kernel)
    check(state, spikes, ref)
    assert not spikes[77:].any()


def test_the_trainer_defers_ltp_in_the_native_kernel_however_many_neurons_fire(monkeypatch, rng):
    spans = []
    original = native_pair.native_chunk

    def spy(*args):
        spans.append(args[6])  # (config, params, state, chunk, n_steps, plastic, span, ...)
        return original(*args)

    monkeypatch.setattr(pair_layer, "native_chunk", spy)
    monkeypatch.setattr(pair_layer, "NATIVE_MIN_SYNAPSES", 0)  # small as this layer is
    xs = (rng.random((300, 200)) < 0.05).astype(np.float32)
    W0 = rng.uniform(0.0, 0.3, (70, 200)).astype(np.float32)
    numbers = dict(threshold=1.5, lr=0.02, A_plus=0.01, A_minus=0.0105)
    layer = SpikingLayer(200, 70, W_init=W0, threshold=numbers["threshold"])
    trainer = STDPTrainer(layer, learning_rate=0.02, A_plus=0.01, A_minus=0.0105, chunk_size=64)
    spikes = np.concatenate([trainer.train(xs[:100], return_spikes=True), trainer.train(xs[100:], return_spikes=True)])
    W_ref, v_ref, *_, s_ref = reference.run(W0, xs, **numbers)
    expected = deferred_span(0.02 * 0.01, 0.95, 1.0 / 0.05, 1.0, native_pair.NATIVE_STRETCH)
    assert s_ref.mean() > 0.2 and expected == 64 and set(spans[1:]) == {expected}  # busy: still native
    np.testing.assert_array_equal(spikes, s_ref)
    np.testing.assert_allclose(layer.W.value, W_ref, atol=2e-5)
    np.testing.assert_allclose(layer.v.value, v_ref, atol=2e-5)



def test_each_call_defers_over_a_span_its_largest_input_allows(monkeypatch, rng):
    """The span comes from the largest input magnitude of the call, read as the call
    checks its input: the same array made 30 times larger in place gives a second call
    the shorter span of its new values."""
    spans = []
    original = native_pair.native_chunk
    monkeypatch.setattr(pair_layer, "native_chunk", lambda *args: spans.append(args[6]) or original(*args))
    monkeypatch.setattr(pair_layer, "NATIVE_MIN_SYNAPSES", 0)
    xs = (rng.random((64, 200)) < 0.05).astype(np.float32)
    layer = SpikingLayer(200, 70, W_init=rng.uniform(0.0, 0.3, (70, 200)), threshold=1e6)
    trainer = STDPTrainer(layer, learning_rate=0.02, A_plus=0.01, A_minus=0.0105, chunk_size=64)
    trainer.train(xs)
    xs *= -30.0
    trainer.train(xs)
    one, thirty = (deferred_span(0.02 * 0.01, 0.95, bound / 0.05, 1.0, native_pair.NATIVE_STRETCH) for bound in (1, 30))
    assert one == 64 and 0 < thirty < one and spans == [one, thirty]

@pytest.mark.parametrize("kernel", list(KERNELS))
def test_a_call_that_starts_inside_a_span_without_its_ledger(rng, kernel):
    """A chunk's call starting at step 5 of a span with no ledger handed on (the layer
    changed since the call before): a ledger opens there, weights out of bounds included."""
    T = 100
    xs = (rng.random((T, N_IN)) < 0.1).astype(np.float32)
    W0 = rng.uniform(0.0, 0.2, (N_OUT, N_IN)).astype(np.float32)
    W0[2, :9] = 1.4
    v0, pre0, post0 = (rng.uniform(0.0, 1.0, n).astype(np.float32) for n in (N_OUT, N_IN, N_OUT))
    ref = reference.run(W0, xs, state=(v0, pre0, post0), **BASE)
    p = BASE
    config = LayerConfig(trace_add=TRACE_MODES["cumulative"], dependence=DEPENDENCES["additive"], hardbound=True)
    params = LayerParams(LIFParams(0.9, p["threshold"], 0.0), TraceParams(0.95, 0.95, 1.0, 1.0),
                         STDPParams(p["lr"], p["A_plus"], p["A_minus"], WeightBounds(0.0, p["w_max"], 1.0)))
    state = LayerState(W0, v0, np.zeros(N_OUT, np.float32), pre0, post0)
    state, spikes = KERNELS[kernel](config, params, state, (xs, None), T, True, 16, 5, True)
    state = native_pair.layer_weights(state)
    check(state, np.asarray(spikes), ref)


def test_chunks_that_end_inside_spans_and_calls_split_anywhere(monkeypatch, rng):
    """Chunks of 100 steps (spans of 64 cut at every chunk's end), calls cut anywhere:
    bitwise the one call's result, and the reference's."""
    monkeypatch.setattr(pair_layer, "NATIVE_MIN_SYNAPSES", 0)  # small as this layer is
    xs = (rng.random((777, 200)) < 0.05).astype(np.float32)
    W0 = rng.uniform(0.0, 0.3, (40, 200)).astype(np.float32)

    def trainer():
        return STDPTrainer(SpikingLayer(200, 40, W_init=W0, threshold=2.0), learning_rate=0.2, chunk_size=100)

    assert deferred_span(0.2 * 0.005, 0.95, 1.0 / 0.05, 1.0, native_pair.NATIVE_STRETCH) == 64  # deferred
    whole, split = trainer(), trainer()
    spikes = whole.train(xs, return_spikes=True)
    cuts = [0, 37, 150, 333, 501, 777]
    split_spikes = np.concatenate([split.train(xs[a:b], return_spikes=True) for a, b in zip(cuts, cuts[1:])])
    W_ref, v_ref, *_, s_ref = reference.run(W0, xs, threshold=2.0, lr=0.2)
    np.testing.assert_array_equal(spikes, s_ref)
    np.testing.assert_array_equal(split_spikes, spikes)
    np.testing.assert_array_equal(split.model.W.value, whole.model.W.value)
    np.testing.assert_allclose(whole.model.W.value, W_ref, atol=2e-5)
    assert np.abs(W_ref - W0).max() > 0.05


def test_layers_far_larger_than_the_cache_run_long_stretches_to_the_same_result(monkeypatch, rng):
    """Layers of 16 MiB of weights or more (and 1,024 neurons or more) run stretches of 1,024
    steps, others of up to 1,024 inputs 128, the rest 64; forced on a small layer, with
    spans of 64 inside them and calls cut inside a stretch, long stretches give the short
    stretches' result bitwise, and the reference's."""
    assert native_pair.stretch_for(1024, 4096) == native_pair.LONG_STRETCH == 1024
    assert native_pair.stretch_for(4096, 4096) == 1024
    assert native_pair.stretch_for(400, 784) == native_pair.stretch_for(100, 1024) == native_pair.MEDIUM_STRETCH == 128
    assert native_pair.stretch_for(1000, 8192) == native_pair.stretch_for(400, 1025) == 64
    assert native_pair.stretch_for(1024, 2048) == 64  # 8 MiB
    monkeypatch.setattr(pair_layer, "NATIVE_MIN_SYNAPSES", 0)  # small as this layer is
    xs = (rng.random((1300, 200)) < 0.05).astype(np.float32)
    W0 = rng.uniform(0.0, 0.3, (70, 200)).astype(np.float32)

    def run(cuts):
        trainer = STDPTrainer(SpikingLayer(200, 70, W_init=W0, threshold=2.0), learning_rate=0.2, chunk_size=1100)
        spikes = np.concatenate([trainer.train(xs[a:b], return_spikes=True) for a, b in zip(cuts, cuts[1:])])
        return spikes, np.asarray(trainer.model.W.value)

    short = run([0, 1300])
    stretches = []

    def long_stretches(n_out, n_in):
        stretches.append(native_pair.LONG_STRETCH)
        return native_pair.LONG_STRETCH
    monkeypatch.setattr(native_pair, "stretch_for", long_stretches)
    for cuts in ([0, 1300], [0, 300, 700, 1150, 1300]):
        spikes, W = run(cuts)
        np.testing.assert_array_equal(spikes, short[0])
        np.testing.assert_array_equal(W, short[1])
    assert stretches  # the long stretches ran
    W_ref, *_, s_ref = reference.run(W0, xs, threshold=2.0, lr=0.2)
    np.testing.assert_array_equal(short[0], s_ref)
    np.testing.assert_allclose(short[1], W_ref, atol=2e-5)
    assert np.abs(W_ref - W0).max() > 0.05


@pytest.mark.parametrize("compiled", [True, False])
def test_long_stretches_defer_ltp_over_spans_as_long_as_the_rounding_allows(monkeypatch, rng, compiled):
    """Where stretches are 1,024 steps long, a span may be longer than 64 steps: 128 for a
    learning rate under which the ledger over 128 steps rounds no more than the dense
    step (256 would round more). Forced on a small layer, compiled and step by step, with
    calls cut inside spans: the reference's result, the calls' bitwise the one's."""
    monkeypatch.setattr(pair_layer, "NATIVE_MIN_SYNAPSES", 0)  # small as this layer is
    monkeypatch.setattr(native_pair, "stretch_for", lambda n_out, n_in: native_pair.LONG_STRETCH)
    lr = 0.01
    assert deferred_span(lr * 0.005, 0.95, 1.0 / 0.05, 1.0, native_pair.LONG_STRETCH) == 128
    spans = []
    kernel = "native_chunk" if compiled else "native_steps_chunk"
    original = getattr(pair_layer, kernel)

    def spy(config, params, state, chunk, n_steps, plastic, span, *rest):
        spans.append(span)
        return original(config, params, state, chunk, n_steps, plastic, span, *rest)
    monkeypatch.setattr(pair_layer, kernel, spy)
    xs = (rng.random((1300, 200)) < 0.05).astype(np.float32)
    W0 = rng.uniform(0.0, 0.3, (70, 200)).astype(np.float32)

    def run(cuts):
        trainer = STDPTrainer(SpikingLayer(200, 70, W_init=W0, threshold=2.0), learning_rate=lr, chunk_size=1100,
                              compiled=compiled)
        spikes = np.concatenate([trainer.train(xs[a:b], return_spikes=True) for a, b in zip(cuts, cuts[1:])])
        return spikes, np.asarray(trainer.model.W.value)

    whole = run([0, 1300])
    assert set(spans) == {128}
    spikes, W = run([0, 300, 700, 1150, 1300])
    np.testing.assert_array_equal(spikes, whole[0])
    np.testing.assert_array_equal(W, whole[1])
    W_ref, *_, s_ref = reference.run(W0, xs, threshold=2.0, lr=lr)
    np.testing.assert_array_equal(whole[0], s_ref)
    np.testing.assert_allclose(whole[1], W_ref, atol=2e-5)
    assert np.abs(W_ref - W0).max() > 0.002


def test_a_native_layers_chunks_are_at_least_a_stretch_long(monkeypatch, rng):
    """At 4,096 inputs the trainer's chunks would be 256 steps (4 MiB of input); where the
    native kernel runs stretches of 1,024 steps, its chunks are that long (a chunk cuts a
    stretch short), unless the user set a chunk size."""
    monkeypatch.setattr(native_pair, "stretch_for", lambda n_out, n_in: native_pair.LONG_STRETCH)
    steps = []
    original = pair_layer.native_chunk

    def spy(config, params, state, chunk, n_steps, *rest):
        steps.append(n_steps)
        return original(config, params, state, chunk, n_steps, *rest)
    monkeypatch.setattr(pair_layer, "native_chunk", spy)
    xs = (rng.random((1100, 4096)) < 0.01).astype(np.float32)
    W0 = rng.uniform(0.0, 0.05, (20, 4096)).astype(np.float32)
    for chunk_size, expected in ((None, [1024, 76]), (256, [256, 256, 256, 256, 76])):
        steps.clear()
        STDPTrainer(SpikingLayer(4096, 20, W_init=W0, threshold=2.0), chunk_size=chunk_size).train(xs)
        assert steps == expected


@pytest.mark.parametrize("compiled", [True, False])
def test_weights_read_between_chunks_are_not_changed_by_the_chunks_after(monkeypatch, rng, compiled):
    """The chunks of a call hand ``W`` on in the kernel's layout, updated in place; what a
    monitor reads between them (``W`` as ``(n_out, n_in)``, spans settled) is the
    reference's weights at that step and stays so while the call goes on."""
    monkeypatch.setattr(pair_layer, "NATIVE_MIN_SYNAPSES", 0)  # small as this layer is
    xs = (rng.random((450, 200)) < 0.05).astype(np.float32)
    W0 = rng.uniform(0.0, 0.3, (70, 200)).astype(np.float32)  # two blocks of neurons, the second padded
    trainer = STDPTrainer(SpikingLayer(200, 70, W_init=W0, threshold=2.0), learning_rate=0.2, chunk_size=96,
                          compiled=compiled)
    chunks = []  # whether each chunk is given W in the kernel's layout
    kernel = "native_chunk" if compiled else "native_steps_chunk"
    original = getattr(pair_layer, kernel)

    def spy(config, params, state, *rest):
        layer = state.layer if isinstance(state, native_pair.OpenLedger) else state
        chunks.append(native_pair.in_kernel_layout(layer.W))
        return original(config, params, state, *rest)
    monkeypatch.setattr(pair_layer, kernel, spy)
    weights = WeightMonitor(every=96)
    trainer.train(xs, monitors=[weights])
    assert chunks[0] is False and all(chunks[1:]) and len(chunks) == 5  # W handed on in the kernel's layout
    np.testing.assert_array_equal(weights.steps, [96, 192, 288, 384])
    for k, row in zip(weights.steps, weights.values):
        W_ref = reference.run(W0, xs[:k], threshold=2.0, lr=0.2)[0]
        np.testing.assert_allclose(row.reshape(70, 200), W_ref, atol=2e-5)
        assert np.abs(W_ref - W0).max() > 0.02  # (each sample a different W)
    W_ref = reference.run(W0, xs, threshold=2.0, lr=0.2)[0]  # (450 steps: the call ends inside a span)
    np.testing.assert_allclose(trainer.model.W.value, W_ref, atol=2e-5)


def test_a_call_that_fails_after_going_on_from_an_open_span_leaves_it_as_it_was(monkeypatch, rng):
    """A call ending inside a span keeps its ledger and ``U`` in the kernel's layout for
    the next; a next call that fails (after its first chunk updated its weights) leaves
    them as they were: the call after it gives the one call's result, bitwise."""
    monkeypatch.setattr(pair_layer, "NATIVE_MIN_SYNAPSES", 0)  # small as this layer is
    xs = (rng.random((600, 200)) < 0.05).astype(np.float32)
    W0 = rng.uniform(0.0, 0.3, (70, 200)).astype(np.float32)

    def trainer():
        return STDPTrainer(SpikingLayer(200, 70, W_init=W0, threshold=2.0), learning_rate=0.2, chunk_size=256)

    whole, split = trainer(), trainer()
    whole.train(xs)
    split.train(xs[:100])  # 100 = a span of 64 and 36 steps: left open
    assert isinstance(split._open_chunk[0].arrays["U"], native_pair.BlockedWeights)
    before = {name: np.asarray(getattr(split.model, name).value) for name in ("W", "v", "trace_pre")}
    original, calls = pair_layer.native_chunk, []

    def failing(*args, **kwargs):
        calls.append(True)
        if len(calls) == 2:  # the first chunk ran, from the open span's weights
            raise KeyboardInterrupt
        return original(*args, **kwargs)
    monkeypatch.setattr(pair_layer, "native_chunk", failing)
    with pytest.raises(KeyboardInterrupt):
        split.train(xs[100:])
    for name, value in before.items():
        np.testing.assert_array_equal(getattr(split.model, name).value, value)
    monkeypatch.setattr(pair_layer, "native_chunk", original)
    split.train(xs[100:])
    np.testing.assert_array_equal(split.model.W.value, whole.model.W.value)
    np.testing.assert_allclose(whole.model.W.value, reference.run(W0, xs, threshold=2.0, lr=0.2)[0], atol=2e-5)


@pytest.mark.parametrize("kernel", list(KERNELS))
def test_spans_in_which_no_neuron_of_a_block_fires(rng, kernel):
    """A block none of whose neurons fires in a span owes no LTP, and its rows are left as
    they are as the span ends: a block that never fires (the second of three), and spans
    of no input at all, in which the others stop firing."""
    T, n_out = 200, 150
    xs = (rng.random((T, N_IN)) < 0.15).astype(np.float32)
    xs[60:140] = 0.0
    W0 = rng.uniform(0.0, 0.2, (n_out, N_IN)).astype(np.float32)
    threshold = np.full(n_out, 1.5, np.float32)
    threshold[64:128] = 1e9
    ref = reference.run(W0, xs, **{**BASE, "threshold": threshold})
    spikes = ref[-1]
    assert spikes[:, 64:128].sum() == 0 and spikes[:60, :64].sum() > 0 and spikes[140:, 128:].sum() > 0
    assert spikes[80:140].sum() == 0  # (whole spans of 16 and 32 steps without a spike)
    assert np.abs(ref[0] - W0)[:64].max() > 0.02
    for span in (16, 32):
        check(*run_native(W0, xs, span=span, kernel=kernel, threshold=threshold), ref)


@pytest.mark.parametrize("long_stretches", [False, True])
@pytest.mark.parametrize("kernel", list(KERNELS))
def test_calls_that_cross_several_settling_periods(rng, monkeypatch, kernel, long_stretches):
    """Spans of 16 steps are settled once every 8 of them (128 steps), each span's LTP owed
    in every base opened before it: a call of 400 steps crosses three period ends, in
    three blocks of neurons, against the reference (spans of 32: a period of 256). With
    stretches of 1,024 steps, periods end inside a stretch."""
    if long_stretches:
        monkeypatch.setattr(native_pair, "stretch_for", lambda n_out, n_in: native_pair.LONG_STRETCH)
    T, n_out = 400, 150
    xs = (rng.random((T, N_IN)) < 0.1).astype(np.float32)
    W0 = rng.uniform(0.0, 0.2, (n_out, N_IN)).astype(np.float32)
    ref = reference.run(W0, xs, **{**BASE, "threshold": 1.5})
    assert native_pair.settling_period(16) == 128 and native_pair.settling_period(32) == 256
    spikes = ref[-1]
    assert all(spikes[lo:lo + 16].sum() > 0 for lo in range(0, T, 16))  # (LTP owed in every span)
    assert np.abs(ref[0] - W0).max() > 0.05
    for span in (16, 32):
        check(*run_native(W0, xs, span=span, kernel=kernel, threshold=1.5), ref)
