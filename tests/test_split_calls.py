"""A sequence split across calls, with or without a checkpoint between, trains bitwise as
one call does, whatever kernel runs it (chunks and spans of deferred LTP follow the
trainer's step count)."""

import numpy as np
import pytest

import canns_stdp.kernels.pair_layer as pair_layer
import reference
from canns_stdp import SpikingLayer, STDPTrainer
from canns_stdp.checkpoint import CheckpointError, read_checkpoint, write_checkpoint
from canns_stdp.functional.layer_step import begin_span
from canns_stdp.kernels.native_pair import LEDGER_BASES, native_available, native_chunk

N_IN, N_OUT, T = 200, 40, 1500
STATE = ("W", "v", "spike", "trace_pre", "trace_post")
KERNELS = {  # trainer keywords; which kernel runs the chunks
    "native": dict(fused="auto", event_driven="auto"),       # the native CPU kernel (numba)
    "deferred": dict(),                                      # deferred LTP (enough neurons fire)
    "column": dict(event_driven=True, weight_dependence="soft"),  # LTP cannot be deferred
    "dense": dict(event_driven=False),
    "python": dict(compiled=False, chunk_size=64),           # deferred LTP in the Python loop
}
THRESHOLD, LR = 2.0, 0.2


@pytest.fixture
def problem(rng):
    xs = (rng.random((T, N_IN)) < 0.04).astype(np.float32)
    W0 = rng.uniform(0.0, 0.3, (N_OUT, N_IN)).astype(np.float32)
    return xs, W0


def trainer_for(W0, **kw):
    layer = SpikingLayer(N_IN, N_OUT, W_init=W0, threshold=THRESHOLD)
    # XLA kernels; event-driven ones on this small layer too (by default it runs dense steps)
    return STDPTrainer(layer, learning_rate=LR, **{"chunk_size": 256, "fused": False, "event_driven": True, **kw})


def state_of(trainer):
    return {name: np.asarray(getattr(trainer.model, name).value) for name in STATE}


def deferred_spans_opened(monkeypatch):
    seen = []

    def spy(config, params, state, inputs):
        seen.append(config.deferred_ltp)
        return begin_span(config, params, state, inputs)

    monkeypatch.setattr(pair_layer, "begin_span", spy)
    return seen


def native_chunks_run(monkeypatch):
    seen = []

    def spy(*args, **kwargs):
        seen.append(True)
        return native_chunk(*args, **kwargs)

    monkeypatch.setattr(pair_layer, "native_chunk", spy)
    return seen


@pytest.mark.parametrize("kernel", [k for k in KERNELS if k != "native" or native_available(warn=False)])
def test_calls_split_anywhere_give_bitwise_the_one_call_result(problem, tmp_path, monkeypatch, kernel):
    xs, W0 = problem
    T_short = 700 if kernel == "python" else T
    xs = xs[:T_short]
    seen = deferred_spans_opened(monkeypatch)
    native = native_chunks_run(monkeypatch)
    monkeypatch.setattr(pair_layer, "NATIVE_MAX_FIRING", 1.0)  # the native kernel runs however many fire,
    monkeypatch.setattr(pair_layer, "NATIVE_MAX_FIRED", N_OUT)
    monkeypatch.setattr(pair_layer, "NATIVE_MIN_SYNAPSES", 0)  # on however small a layer
    monkeypatch.setattr(pair_layer, "EVENT_MIN_SYNAPSES", 0)
    whole = trainer_for(W0, **KERNELS[kernel])
    spikes = whole.train(xs, return_spikes=True)
    dependence = KERNELS[kernel].get("weight_dependence", "additive")
    W_ref, v_ref, *_, s_ref = reference.run(W0, xs, threshold=THRESHOLD, lr=LR, dependence=dependence)
    np.testing.assert_array_equal(spikes, s_ref)  # the one call is right, to begin with
    np.testing.assert_allclose(whole.model.W.value, W_ref, atol=2e-5)
    assert 0.1 < s_ref.mean() < 0.9 and np.abs(W_ref - W0).max() > 0.03
    assert any(seen) == (kernel in ("deferred", "python"))
    assert any(native) == (kernel == "native")

    cuts = [0, 283, 301, 517, T_short - 89, T_short]  # none on a chunk or span boundary
    split = trainer_for(W0, **KERNELS[kernel])
    for k, (a, b) in enumerate(zip(cuts, cuts[1:])):
        if k == 2:  # a checkpoint between two calls, mid-chunk
            split.save(tmp_path / "mid.npz")
            split = STDPTrainer.load(tmp_path / "mid.npz")
            assert split.steps_trained == a
        split.train(xs[a:b])
    assert split.steps_trained == T_short
    for name, value in state_of(whole).items():
        np.testing.assert_array_equal(state_of(split)[name], value, err_msg=name)


def test_a_checkpoint_mid_span_stores_the_open_ledger(problem, tmp_path):
    xs, W0 = problem
    trainer = trainer_for(W0)
    trainer.train(xs[:283])
    trainer.save(tmp_path / "mid.npz")
    _, arrays = read_checkpoint(tmp_path / "mid.npz")
    assert int(arrays["trainer/run.steps"]) == 283
    assert arrays["trainer/run.U"].shape == (N_IN, N_OUT)  # W.T less the LTP it is owed
    assert float(arrays["trainer/run.clock"]) > 0


@pytest.mark.parametrize("kernel", [k for k in ("deferred", "native") if k != "native" or native_available(warn=False)])
def test_a_layer_changed_between_calls_starts_afresh(problem, monkeypatch, kernel):
    """A chunk and its span of deferred LTP left open (the XLA kernels' ledger or the
    native kernel's), then the layer changed: the next call starts from the new layer."""
    xs, W0 = problem
    trainer = native_trainer_for(W0, monkeypatch) if kernel == "native" else trainer_for(W0)
    trainer.train(xs[:283])  # leaves a chunk, and a ledger, open
    W1 = np.flip(W0, axis=1).copy()
    trainer.model.reset_state()
    trainer.model.W.value = W1
    trainer.train(xs[283:])
    W_ref, v_ref, *_ = reference.run(W1, xs[283:], threshold=THRESHOLD, lr=LR)
    np.testing.assert_allclose(trainer.model.W.value, W_ref, atol=2e-5)
    np.testing.assert_allclose(trainer.model.v.value, v_ref, atol=2e-5)


def native_trainer_for(W0, monkeypatch, **kw):
    monkeypatch.setattr(pair_layer, "NATIVE_MIN_SYNAPSES", 0)  # small as this layer is
    return trainer_for(W0, **KERNELS["native"], **kw)


@pytest.mark.parametrize("entry, value, message", [
    ("run.U", np.zeros((3, 3), np.float32), r"run\.U must be finite float32 of shape \(200, 40\)"),
    ("run.clock", np.float32(np.nan), r"run\.clock must be finite"),
    ("run.steps", np.int64(-4), r"run\.steps must be an int64 scalar"),
    ("run.kernel", np.int64(7), r"run\.kernel must be an int64 scalar in \[0, 3\]"),
    ("run.extra", np.int64(1), r"unknown trainer entries \['run\.extra'\]"),
])
def test_a_forged_open_chunk_is_refused(problem, tmp_path, entry, value, message):
    xs, W0 = problem
    trainer = trainer_for(W0)
    trainer.train(xs[:283])
    trainer.save(tmp_path / "mid.npz")
    meta, arrays = read_checkpoint(tmp_path / "mid.npz")
    arrays[f"trainer/{entry}"] = value
    write_checkpoint(tmp_path / "forged.npz", meta["objects"], arrays, meta.get("extra"))
    with pytest.raises(CheckpointError, match=message):
        STDPTrainer.load(tmp_path / "forged.npz")


@pytest.mark.skipif(not native_available(warn=False), reason="numba is not installed")
def test_the_native_kernels_open_span_goes_into_a_checkpoint_and_out_again(problem, tmp_path, monkeypatch):
    xs, W0 = problem
    trainer = native_trainer_for(W0, monkeypatch, chunk_size=512)
    trainer.train(xs[:283])  # 283 = 4 spans of 64 and 27 steps: a settling period left open
    trainer.save(tmp_path / "mid.npz")
    _, arrays = read_checkpoint(tmp_path / "mid.npz")
    assert arrays["trainer/run.U"].shape == (N_OUT, N_IN)  # W less the LTP it is owed
    owed, bases = arrays["trainer/run.owed"], arrays["trainer/run.bases"]
    assert owed.shape == (LEDGER_BASES, N_OUT) and np.abs(owed[4]).max() > 0 and not owed[5:].any()  # (5 opened)
    assert arrays["trainer/run.rates"].shape == (N_IN,)
    assert bases.dtype == np.int32 and bases.shape == (N_IN,) and bases.max() == 4
    assert len(np.unique(bases)) > 1 and bases.min() >= 0  # (inputs last active in different spans)
    # the settled W a user reads between the calls is the reference's
    W_ref, *_ = reference.run(W0, xs[:283], threshold=THRESHOLD, lr=LR)
    np.testing.assert_allclose(trainer.model.W.value, W_ref, atol=2e-5)
    for name, value, message in [("run.owed", np.zeros(3, np.float32), r"run\.owed must be finite float32 of shape"),
                                 ("run.bases", np.full(N_IN, LEDGER_BASES, np.int32),
                                  r"run\.bases must be int32 of shape \(200,\) in \[0, 7\]"),
                                 ("run.bases", np.zeros(N_IN, np.int64), r"run\.bases must be int32"),
                                 ("run.fired", np.zeros(N_OUT, np.float32), r"incomplete ledger")]:
        meta, forged = read_checkpoint(tmp_path / "mid.npz")
        forged[f"trainer/{name}"] = value
        write_checkpoint(tmp_path / "forged.npz", meta["objects"], forged, meta.get("extra"))
        with pytest.raises(CheckpointError, match=message):
            STDPTrainer.load(tmp_path / "forged.npz")


@pytest.mark.skipif(not native_available(warn=False), reason="numba is not installed")
def test_a_checkpoint_with_a_native_ledger_of_one_base_goes_on_from_it(problem, tmp_path, monkeypatch):
    """Earlier versions left the native kernel's ledger open in one base, the span's own
    (``owed`` of each neuron, no bases: ``U = W - rate_j * owed_i``, every rate ``tr_j
    d^-c`` in that span). Such a checkpoint, its ledger owing LTP, loads and goes on to
    the reference's weights."""
    xs, W0 = problem
    trainer = native_trainer_for(W0, monkeypatch, chunk_size=512)
    trainer.train(xs[:283])  # (its ledger left open after step 27 of the chunk's fifth span of 64)
    trainer.save(tmp_path / "mid.npz")
    meta, arrays = read_checkpoint(tmp_path / "mid.npz")
    W_mid = np.asarray(trainer.model.W.value)
    _, _, trace_pre, *_ = reference.run(W0, xs[:283], threshold=THRESHOLD, lr=LR)
    rates = (trace_pre * 0.95 ** -27.0).astype(np.float32)  # (a silent input's trace decays by d a step)
    arrays.pop("trainer/run.bases")
    owed = arrays["trainer/run.owed"][4]  # (what the span's own base owes)
    assert np.abs(owed).max() > 0
    arrays.update({"trainer/run.U": W_mid - rates[None, :] * owed[:, None], "trainer/run.owed": owed,
                   "trainer/run.rates": rates})
    write_checkpoint(tmp_path / "one_base.npz", meta["objects"], arrays, meta.get("extra"))
    loaded = STDPTrainer.load(tmp_path / "one_base.npz")
    np.testing.assert_allclose(loaded.model.W.value, W_mid, atol=1e-6)
    ran = native_chunks_run(monkeypatch)
    loaded.train(xs[283:])
    assert ran
    W_ref, *_ = reference.run(W0, xs, threshold=THRESHOLD, lr=LR)
    np.testing.assert_allclose(loaded.model.W.value, W_ref, atol=2e-5)
