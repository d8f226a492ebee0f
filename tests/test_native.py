"""The native CPU kernel computes the step of docs/step.md: against the NumPy reference
and the plain step, for every built-in weight dependence, pairing and trace mode, with
imposed post spikes, real-valued input, weights outside their bounds and chunks that end
early, a chunk in one call and step by step; through the trainer, in calls split anywhere."""

import re
import threading

import numpy as np
import pytest

import canns_stdp
import reference
from canns_stdp import SpikingLayer, STDPTrainer
from canns_stdp.functional.dependence import DEPENDENCES, WeightBounds
from canns_stdp.functional.layer_step import LayerConfig, LayerParams, LayerState
from canns_stdp.functional.neurons import LIFParams
from canns_stdp.functional.stdp import STDPParams, TraceParams
from canns_stdp.functional.traces import TRACE_MODES
from canns_stdp.kernels import native_pair, native_steps, pair_layer

pytestmark = pytest.mark.skipif(not native_pair.native_available(warn=False), reason="numba is not installed")

N_IN, N_OUT, T = 60, 12, 150
# the kernel's chunk in one call (the compiled loop's) and step by step (the Python loop's)
KERNELS = {"chunk": native_pair.native_chunk, "steps": native_steps.native_steps_chunk}
NUMBERS = dict(threshold=8.0, lr=0.4, A_plus=0.05, A_minus=0.06, d_pre=0.9, d_post=0.85, a_pre=1.0,
               a_post=0.7, mu=0.6)


def run_native(W0, xs, posts=None, n_steps=None, plastic=True, dependence="additive", pairing="symmetric",
               trace_mode="cumulative", hardbound=True, leak=0.9, kernel="chunk", **numbers):
    p = {**NUMBERS, **numbers}
    config = LayerConfig(trace_add=TRACE_MODES[trace_mode], dependence=DEPENDENCES[dependence], pairing=pairing,
                         hardbound=hardbound)
    params = LayerParams(LIFParams(leak, p["threshold"], 0.0), TraceParams(p["d_pre"], p["d_post"], p["a_pre"],
                                                                            p["a_post"]),
                         STDPParams(p["lr"], p["A_plus"], p["A_minus"], WeightBounds(0.0, 1.0, p["mu"])))
    state = LayerState.zeros(W0.shape[1], W0.shape[0], W=W0)
    n = len(xs) if n_steps is None else n_steps
    state, spikes = KERNELS[kernel](config, params, state, (xs, posts), n, plastic)
    return native_pair.layer_weights(state), np.asarray(spikes)  # W out of the kernel's layout


def reference_run(W0, xs, posts=None, plastic=True, leak=0.9, **kw):
    p = {**NUMBERS, **kw}
    return reference.run(W0, xs, posts, leak=leak, plastic=plastic, **p)


def check(state, spikes, ref):
    reference.assert_layer_matches(state, spikes, ref, W_atol=1e-6, v_atol=1e-5)


@pytest.fixture
def inputs(rng):
    xs = (rng.random((T, N_IN)) < 0.15).astype(np.float32)
    W0 = rng.uniform(0.0, 0.5, (N_OUT, N_IN)).astype(np.float32)
    return xs, W0


@pytest.mark.parametrize("dependence", list(DEPENDENCES))
@pytest.mark.parametrize("pairing", ["symmetric", "causal", "strict"])
@pytest.mark.parametrize("trace_mode", ["cumulative", "nearest"])
@pytest.mark.parametrize("kernel", list(KERNELS))
def test_native_kernel_matches_reference(inputs, dependence, pairing, trace_mode, kernel):
    xs, W0 = inputs
    kw = dict(dependence=dependence, pairing=pairing, trace_mode=trace_mode)
    ref = reference_run(W0, xs, **kw)
    assert 0.05 < ref[-1].mean() < 0.7 and np.abs(ref[0] - W0).max() > 0.02
    check(*run_native(W0, xs, kernel=kernel, **kw), ref)


@pytest.mark.parametrize("kernel", list(KERNELS))
def test_imposed_post_spikes_real_valued_input_and_per_neuron_leak(rng, inputs, kernel):
    _, W0 = inputs
    xs = rng.uniform(0.2, 1.5, (T, N_IN)).astype(np.float32) * (rng.random((T, N_IN)) < 0.2)
    posts = (rng.random((T, N_OUT)) < 0.1).astype(np.float32)
    leak = np.linspace(0.5, 0.95, N_OUT).astype(np.float32)
    ref = reference_run(W0, xs, posts, leak=leak, pairing="causal")
    check(*run_native(W0, xs, posts, leak=leak, pairing="causal", kernel=kernel), ref)


@pytest.mark.parametrize("kernel", list(KERNELS))
def test_weights_outside_their_bounds_are_clipped_at_the_first_step(inputs, kernel):
    xs, W0 = inputs
    W0 = W0.copy()
    W0[3, :7] = 1.7
    W0[5, 10:20] = -0.4
    ref = reference_run(W0, xs)
    check(*run_native(W0, xs, kernel=kernel), ref)
    W_free, *_ = reference_run(W0, xs, hardbound=False)
    state, _ = run_native(W0, xs, hardbound=False, kernel=kernel)
    np.testing.assert_allclose(state.W, W_free, atol=1e-6)


@pytest.mark.parametrize("kernel", list(KERNELS))
def test_forward_only_and_a_chunk_that_ends_early(inputs, kernel):
    xs, W0 = inputs
    ref = reference_run(W0, xs[:90], plastic=False)
    state, spikes = run_native(W0, xs, n_steps=90, plastic=False, kernel=kernel)
    check(state, spikes, ref)
    np.testing.assert_array_equal(state.W, W0)
    assert not spikes[90:].any()


def test_the_trainer_runs_the_native_kernel_across_calls(monkeypatch, inputs):
    xs, W0 = inputs
    calls = []
    original = native_pair.native_chunk

    def spy(*args, **kwargs):
        calls.append(True)
        return original(*args, **kwargs)

    monkeypatch.setattr(pair_layer, "native_chunk", spy)
    monkeypatch.setattr(pair_layer, "NATIVE_MAX_FIRING", 1.0)  # busy as this layer is
    monkeypatch.setattr(pair_layer, "NATIVE_MAX_FIRED", N_OUT)
    monkeypatch.setattr(pair_layer, "EVENT_MAX_ACTIVITY", 1.0)
    monkeypatch.setattr(pair_layer, "NATIVE_MIN_SYNAPSES", 0)  # small as this layer is
    layer = SpikingLayer(N_IN, N_OUT, W_init=W0, threshold=NUMBERS["threshold"])
    trainer = STDPTrainer(layer, learning_rate=0.4, A_plus=0.05, A_minus=0.06, chunk_size=32)
    spikes = np.concatenate([trainer.train(xs[:41], return_spikes=True), trainer.train(xs[41:], return_spikes=True)])
    W_ref, v_ref, *_, s_ref = reference.run(W0, xs, threshold=8.0, lr=0.4, A_plus=0.05, A_minus=0.06)
    assert calls
    np.testing.assert_array_equal(spikes, s_ref)
    np.testing.assert_allclose(layer.W.value, W_ref, atol=1e-6)
    np.testing.assert_allclose(layer.v.value, v_ref, atol=1e-5)


def test_a_calls_chunks_write_their_spikes_into_the_array_it_returns(monkeypatch, inputs):
    """A call's native chunks write their spikes into consecutive rows of one array, which
    the call returns as it is (no concatenation); without spikes asked for, every chunk
    writes into the same room. Either way, the reference's spikes and weights."""
    xs, W0 = inputs
    rooms = []
    original = native_pair.native_chunk

    def spy(*args):
        rooms.append(args[-1])  # (..., closes, spikes)
        return original(*args)

    monkeypatch.setattr(pair_layer, "native_chunk", spy)
    for name, value in (("NATIVE_MAX_FIRING", 1.0), ("NATIVE_MAX_FIRED", N_OUT), ("EVENT_MAX_ACTIVITY", 1.0),
                        ("NATIVE_MIN_SYNAPSES", 0)):
        monkeypatch.setattr(pair_layer, name, value)  # (busy and small as this layer is)
    W_ref, *_, s_ref = reference.run(W0, xs, threshold=8.0, lr=0.4, A_plus=0.05, A_minus=0.06)
    for record in (True, False):
        rooms.clear()
        layer = SpikingLayer(N_IN, N_OUT, W_init=W0, threshold=NUMBERS["threshold"])
        trainer = STDPTrainer(layer, learning_rate=0.4, A_plus=0.05, A_minus=0.06, chunk_size=32)
        spikes = trainer.train(xs, return_spikes=record)
        assert len(rooms) == -(-len(xs) // 32) > 1
        if record:
            assert all(room.base is spikes.base for room in rooms)  # (rows of one buffer, no copy)
            np.testing.assert_array_equal(spikes, s_ref)
        else:
            assert spikes is None and all(room.base is rooms[0].base for room in rooms)
        np.testing.assert_allclose(layer.W.value, W_ref, atol=1e-6)


def test_outputs_that_are_not_rows_of_one_array_are_concatenated():
    from canns_stdp.loops import _joined
    whole = np.arange(24.0).reshape(6, 4).copy()  # (an array of its own, as the rows a kernel writes into)
    assert _joined(whole[:2], whole[2:5], whole[5:]) is whole
    shared = np.arange(24.0).reshape(6, 4)  # a view of another array's memory (as of a JAX array's)
    read_only = whole.copy()
    read_only.flags.writeable = False
    for parts in ([whole[2:], whole[:2]], [whole[:2], whole[3:]], [whole[:3], np.ones((3, 4))], [whole[:, :2]] * 3,
                  [whole[:2], whole[2:4]], [shared[:6]], [read_only[:2], read_only[2:]]):
        joined = _joined(*parts)
        assert joined is not parts[0].base and joined.flags.writeable
        np.testing.assert_array_equal(joined, np.concatenate(parts))


def test_the_spikes_a_call_returns_are_an_array_of_its_own(rng):
    """Whatever kernel ran the call, in however many chunks: a writable array that no
    JAX array shares."""
    xs = (rng.random((64, 20)) < 0.2).astype(np.float32)
    for kw in (dict(chunk_size=64), dict(chunk_size=16), dict(compiled=False)):
        layer = SpikingLayer(20, 5, threshold=0.5)
        spikes = STDPTrainer(layer, **kw).train(xs, return_spikes=True)
        assert spikes.shape == (64, 5) and spikes.flags.writeable
        assert not any(np.shares_memory(spikes, np.asarray(a.value)) for a in (layer.W, layer.v, layer.spike))
        spikes[0] = 1.0  # (a user may write into it)


def test_fused_false_and_a_chosen_xla_kernel_turn_it_off(monkeypatch, inputs):
    xs, W0 = inputs
    monkeypatch.setattr(pair_layer, "native_chunk", lambda *a, **k: pytest.fail("the native kernel ran"))
    monkeypatch.setattr(pair_layer, "native_steps_chunk", lambda *a, **k: pytest.fail("the native kernel ran"))
    for kw in (dict(fused=False), dict(event_driven=True), dict(event_driven=False)):
        STDPTrainer(SpikingLayer(N_IN, N_OUT, W_init=W0), chunk_size=32, **kw).train(xs[:40])


def test_quiet_layers_run_the_native_kernel_and_busy_or_small_ones_the_xla_kernels(monkeypatch, rng):
    kernels = []
    original = pair_layer._KernelChooser.configure

    def spy(self, state, chunk, offset):
        config, state, chunk = original(self, state, chunk, offset)
        kernels.append("native" if config.native else "event" if config.event_driven else "dense")
        return config, state, chunk

    monkeypatch.setattr(pair_layer._KernelChooser, "configure", spy)
    xs = (rng.random((256, 400)) < 0.02).astype(np.float32)
    # LTP that cannot be deferred (soft bounds): the native kernel where few neurons fire
    for n_out, threshold, quiet in ((50, 50.0, True), (50, 0.5, False), (5, 50.0, False)):  # 400x5: small
        kernels.clear()
        layer = SpikingLayer(400, n_out, W_init=np.full((n_out, 400), 0.1, np.float32), threshold=threshold)
        STDPTrainer(layer, chunk_size=64, weight_dependence="soft").train(xs)
        assert kernels[0] != "native"  # a fresh layer's activity is unknown
        assert (set(kernels[1:]) == {"native"}) if quiet else ("native" not in kernels)
    # additive LTP, deferred by the native kernel: however many neurons fire or inputs are active
    busy = (rng.random((256, 400)) < 0.3).astype(np.float32)
    for inputs, threshold in ((xs, 50.0), (xs, 0.5), (busy, 50.0)):
        kernels.clear()
        layer = SpikingLayer(400, 50, W_init=np.full((50, 400), 0.1, np.float32), threshold=threshold)
        STDPTrainer(layer, chunk_size=64).train(inputs)
        assert set(kernels) == {"native"}


@pytest.mark.parametrize("kernel", list(KERNELS))
def test_layers_wider_than_a_block_of_neurons(rng, kernel):
    n_out = native_pair._LANES + 7  # a whole block and a partial one
    xs = (rng.random((90, N_IN)) < 0.15).astype(np.float32)
    W0 = rng.uniform(0.0, 0.5, (n_out, N_IN)).astype(np.float32)
    ref = reference_run(W0, xs, pairing="strict")
    assert 0.05 < ref[-1].mean() < 0.7
    check(*run_native(W0, xs, pairing="strict", kernel=kernel), ref)


def _arrays(state, spikes):
    return [np.asarray(a) for a in (state.W, state.v, state.spike, state.trace_pre, state.trace_post, spikes)]


@pytest.mark.parametrize("threads", [2, 3])
@pytest.mark.parametrize("case", ["causal", "soft nearest", "imposed spikes, weights out of bounds"])
def test_threads_run_groups_of_blocks_and_give_one_threads_result(rng, monkeypatch, threads, case):
    """Blocks of neurons share nothing: split over threads (a layer of three blocks, the
    last partial), a chunk gives the reference's result and, bit for bit, one thread's."""
    n_out = 2 * native_pair._LANES + 22
    xs = (rng.random((600, N_IN)) < 0.15).astype(np.float32)  # (stretches of 128 steps: the threads share their terms)
    W0 = rng.uniform(0.0, 0.5, (n_out, N_IN)).astype(np.float32)
    kernel_options = {"causal": dict(pairing="causal"), "soft nearest": dict(dependence="soft", trace_mode="nearest")
                      }.get(case, {})
    if case.startswith("imposed"):  # (imposed spikes are read by block; every block clips its weights first)
        kernel_options["posts"] = (rng.random((len(xs), n_out)) < 0.1).astype(np.float32)
        W0[[3, 70, n_out - 1], :9] = 1.6
        W0[[5, 130], 20:30] = -0.3
    monkeypatch.setattr(native_pair, "NATIVE_THREADED_MIN_WORK", 0)  # (a chunk as small as this one)
    monkeypatch.setenv("CANNS_STDP_THREADS", "1")
    assert native_pair.block_groups(n_out, N_IN, len(xs)) == [(0, 3)]
    one = run_native(W0, xs, **kernel_options)
    monkeypatch.setenv("CANNS_STDP_THREADS", str(threads))
    assert native_pair.block_groups(n_out, N_IN, len(xs)) == {2: [(0, 2), (2, 3)], 3: [(0, 1), (1, 2), (2, 3)]}[threads]
    native_pair._release_rooms()
    many = run_native(W0, xs, **kernel_options)
    assert [key for key in native_pair._ROOMS if isinstance(key, tuple)]  # (the threads shared the pre terms)
    ref = reference_run(W0, xs, **kernel_options)
    assert 0.05 < ref[-1].mean() < 0.7
    check(*many, ref)
    for a, b in zip(_arrays(*many), _arrays(*one)):
        np.testing.assert_array_equal(a, b)


def test_a_thread_that_fails_stops_the_threads_that_share_its_terms(rng, monkeypatch):
    """Threads that share a chunk's pre terms wait for one another: where one fails
    before its first stretch (here the second group's, which computes the second
    stretch's terms), the others stop waiting and the call raises its error."""
    monkeypatch.setattr(native_pair, "NATIVE_THREADED_MIN_WORK", 0)
    monkeypatch.setenv("CANNS_STDP_THREADS", "2")
    n_out = 2 * native_pair._LANES
    xs = (rng.random((600, N_IN)) < 0.15).astype(np.float32)
    W0 = rng.uniform(0.0, 0.5, (n_out, N_IN)).astype(np.float32)
    chunk = native_pair._chunk

    def failing(*arguments):
        if arguments[-5] == 1:  # (the group's index)
            raise MemoryError("the second thread's room")
        return chunk(*arguments)

    monkeypatch.setattr(native_pair, "_chunk", failing)
    raised = []

    def run():
        try:
            run_native(W0, xs)
        except MemoryError as error:
            raised.append(error)

    caller = threading.Thread(target=run, daemon=True)  # (were the first thread to wait on, the test would hang)
    caller.start()
    caller.join(timeout=120)
    assert not caller.is_alive() and "the second thread's room" in str(raised[0])


@pytest.mark.parametrize("shared_terms", [True, False])
def test_the_trainer_splits_blocks_over_threads_with_deferred_ltp_across_calls(rng, monkeypatch, shared_terms):
    """Calls that leave spans open, on one thread and on two, where the threads share the
    pre terms and where each computes its own (as they do where the terms are large)."""
    if not shared_terms:
        monkeypatch.setattr(native_pair, "HANDOVER_MAX_TERMS", 0)
    n_in, n_out = 70, 150
    xs = (rng.random((300, n_in)) < 0.1).astype(np.float32)
    W0 = rng.uniform(0.0, 0.3, (n_out, n_in)).astype(np.float32)
    monkeypatch.setattr(native_pair, "NATIVE_THREADED_MIN_WORK", 0)
    monkeypatch.setattr(pair_layer, "NATIVE_MIN_SYNAPSES", 0)
    calls, spans = [], []
    original, chunk = native_pair.block_groups, native_pair.native_chunk
    monkeypatch.setattr(native_pair, "block_groups", lambda *a: calls.append(original(*a)) or calls[-1])
    monkeypatch.setattr(pair_layer, "native_chunk", lambda *a, **k: spans.append(a[6]) or chunk(*a, **k))
    results = {}
    for threads in ("1", "2"):
        monkeypatch.setenv("CANNS_STDP_THREADS", threads)
        layer = SpikingLayer(n_in, n_out, W_init=W0, threshold=4.0)
        trainer = STDPTrainer(layer, learning_rate=0.1, A_plus=0.02, A_minus=0.021)
        first = trainer.train(xs[:77], return_spikes=True)
        canns_stdp.release_host_memory()  # (the rooms for pre terms made anew: nothing read from the last call's)
        spikes = np.concatenate([first, trainer.train(xs[77:], return_spikes=True)])
        results[threads] = [np.asarray(a) for a in (layer.W.value, layer.v.value, layer.trace_pre.value, spikes)]
    assert min(spans) > 0  # (LTP deferred over spans, which the calls cut)
    assert {len(g) for g in calls} == {1, 2}  # one group of blocks with one thread, two with two
    W_ref, v_ref, pre_ref, _, s_ref = reference.run(W0, xs, threshold=4.0, lr=0.1, A_plus=0.02, A_minus=0.021)
    np.testing.assert_array_equal(results["2"][3], s_ref)
    np.testing.assert_allclose(results["2"][0], W_ref, atol=1e-6)
    for a, b in zip(results["2"], results["1"]):
        np.testing.assert_array_equal(a, b)


def test_passes_into_the_kernels_layout_and_out_of_it_on_threads(rng, monkeypatch):
    """Large weights go into the layout and out of it (settled on the way) a group of
    blocks per thread: against the layout and the settling written out in NumPy."""
    monkeypatch.setattr(native_pair, "NATIVE_THREADED_MIN_SYNAPSES", 0)
    monkeypatch.setenv("CANNS_STDP_THREADS", "3")
    lanes, (n_out, n_in) = native_pair._LANES, (3 * native_pair._LANES + 5, 33)
    W = rng.uniform(-0.2, 1.2, (n_out, n_in)).astype(np.float32)
    padded = np.zeros((-(-n_out // lanes) * lanes, n_in), np.float32)
    padded[:n_out] = W
    blocked = native_pair.kernel_weights(W)
    np.testing.assert_array_equal(blocked, padded.reshape(-1, lanes, n_in).transpose(0, 2, 1))
    np.testing.assert_array_equal(native_pair.out_of_layout(blocked, n_out), W)
    owed = rng.uniform(0.0, 0.1, n_out).astype(np.float32)
    rates = rng.uniform(0.0, 2.0, n_in).astype(np.float32)
    params = LayerParams(LIFParams(0.9, 1.0, 0.0), TraceParams(0.9, 0.9, 1.0, 1.0),
                         STDPParams(0.1, 0.01, 0.01, WeightBounds(0.0, 1.0, 1.0)))
    layer = LayerState.zeros(n_in, n_out, W=blocked)
    got = native_pair.settled(params, True, native_pair.OpenLedger(layer, owed, rates)).W
    want = np.clip(W + rates[None, :] * owed[:, None], np.float32(0.0), np.float32(1.0))
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-7)


def test_the_number_of_threads_can_be_given_and_is_checked(monkeypatch):
    monkeypatch.setenv("CANNS_STDP_THREADS", "2")
    assert native_pair.block_groups(400, 784, 5000) == [(0, 4), (4, 7)]  # (the last block holds 16 neurons)
    assert native_pair.block_groups(400, 784, 20) == [(0, 7)]  # too little work to share
    assert native_pair.block_groups(100, 784, 5000) == [(0, 1), (1, 2)]
    assert native_pair.block_groups(64, 784, 5000) == [(0, 1)]
    for bad in ("0", "two", "-1"):
        monkeypatch.setenv("CANNS_STDP_THREADS", bad)
        with pytest.raises(ValueError, match=f"CANNS_STDP_THREADS must be a positive integer, got '{bad}'"):
            native_pair.native_threads()


def test_without_numba_the_xla_kernels_run_and_the_library_says_so_once(monkeypatch, inputs):
    xs, W0 = inputs
    monkeypatch.setattr(native_pair, "numba", None)
    monkeypatch.setattr(native_pair, "_warned", [])
    monkeypatch.setattr(pair_layer, "NATIVE_MIN_SYNAPSES", 0)
    monkeypatch.setattr(pair_layer, "native_chunk", lambda *a, **k: pytest.fail("the native kernel ran"))
    with pytest.warns(RuntimeWarning, match=r"numba is not installed.*canns_stdp\[native\]") as caught:
        for _ in range(2):
            layer = SpikingLayer(N_IN, N_OUT, W_init=W0, threshold=NUMBERS["threshold"])
            STDPTrainer(layer, learning_rate=0.4, A_plus=0.05, A_minus=0.06).train(xs)
    assert sum("numba" in str(w.message) for w in caught) == 1
    W_ref, *_ = reference.run(W0, xs, threshold=8.0, lr=0.4, A_plus=0.05, A_minus=0.06)
    np.testing.assert_allclose(layer.W.value, W_ref, atol=2e-5)


def test_the_compiler_is_told_that_the_kernels_arrays_never_overlap():
    """The compiler pipeline the stretch kernel is built with marks a function's array
    arguments ``noalias`` for LLVM (numba's default pipeline does not), and a stack array
    holds what is written to it (here a sum, against NumPy's)."""
    import numba

    from canns_stdp.kernels.distinct import DistinctArrays, stack_lanes

    def row_sums(a, out):
        summed = stack_lanes(4)
        summed[:] = 0.0
        for i in range(a.shape[0]):
            for lane in range(4):
                summed[lane] += a[i, lane]
        for lane in range(4):
            out[lane] = summed[lane]

    def data_pointer_attributes(compiled):
        (llvm,) = compiled.inspect_llvm().values()
        (kernel,) = [line for line in llvm.splitlines() if line.startswith("define") and "%arg.a.4" in line]
        found = re.findall(r"ptr ([^,%]*)%arg\.(a|out)\.4\b", kernel)  # (an array's data: its fifth field)
        assert {name for _, name in found} == {"a", "out"}
        return [attributes for attributes, _ in found]

    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    distinct, plain = numba.njit(pipeline_class=DistinctArrays)(row_sums), numba.njit(row_sums)
    for compiled in (distinct, plain):
        out = np.empty(4, np.float32)
        compiled(a, out)
        np.testing.assert_array_equal(out, a.sum(axis=0))
    assert all("noalias" in attributes for attributes in data_pointer_attributes(distinct))
    assert not any("noalias" in attributes for attributes in data_pointer_attributes(plain))
