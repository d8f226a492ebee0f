"""The native ensemble kernel computes each member's step of docs/step.md: against the
NumPy reference member by member (numbers, initial weights and inputs of their own; one
input for all, with and without a shared pre trace; imposed spikes; every pairing and
trace mode; chunks that end early), and through Ensemble against the members trained
alone."""

import numpy as np
import pytest

import reference
from canns_stdp import Ensemble, SpikingLayer, STDPTrainer
from canns_stdp.functional.dependence import DEPENDENCES, WeightBounds
from canns_stdp.functional.layer_step import LayerConfig, LayerParams, LayerState
from canns_stdp.functional.neurons import LIFParams
from canns_stdp.functional.stdp import STDPParams, TraceParams
from canns_stdp.functional.traces import TRACE_MODES
from canns_stdp.kernels import native_ensemble, native_pair
from canns_stdp.kernels.policy import NATIVE_MIN_SYNAPSES

pytestmark = pytest.mark.skipif(not native_pair.native_available(warn=False), reason="numba is not installed")

N_IN, N_OUT, T, K = 50, 70, 140, 3  # 70 neurons: a full block of 64 lanes and a padded one
f32 = np.float32


def member(k, d_pre=0.9):
    """Member k's numbers for the reference and for the kernel."""
    numbers = dict(threshold=6.0 + k, lr=0.2 + 0.3 * k, A_plus=0.05 - 0.01 * k, A_minus=0.06, d_pre=d_pre,
                   d_post=0.85 - 0.05 * k, a_pre=1.0, a_post=0.7, leak=0.9 - 0.1 * k, mu=0.6)
    p = {name: f32(value) for name, value in numbers.items()}
    params = LayerParams(LIFParams(p["leak"], p["threshold"], f32(0.0)),
                         TraceParams(p["d_pre"], p["d_post"], p["a_pre"], p["a_post"]),
                         STDPParams(p["lr"], p["A_plus"], p["A_minus"], WeightBounds(f32(0.0), f32(1.0), p["mu"])))
    return numbers, params


def run_kernel(W0, xs, posts=None, n_steps=T, d_pre=(0.9, 0.9, 0.9), trace_pre=None, plastic=True, span=0,
               **choices):
    config = LayerConfig(**choices)
    numbers = [native_pair.layer_numbers(member(k, d)[1], N_OUT) for k, d in enumerate(d_pre)]
    coef, lif_rows = (np.stack(a) for a in zip(*numbers))
    zeros = np.zeros((K, N_OUT), f32)
    pre = np.zeros((K, N_IN), f32) if trace_pre is None else trace_pre
    state = LayerState(W0, zeros, zeros, pre, zeros)
    state, spikes = native_ensemble.ensemble_chunk(config, coef, lif_rows, state, xs, posts, n_steps, plastic, span)
    return state, np.asarray(spikes)


def check(state, spikes, k, ref, atol=1e-6):
    """Member ``k``'s state and spikes against the reference."""
    member_state = type(state)(*(np.asarray(a)[k] for a in state))
    reference.assert_layer_matches(member_state, spikes[:, k], ref, W_atol=atol, v_atol=1e-5)


@pytest.fixture
def start(rng):
    W0 = rng.uniform(0.0, 0.5, (K, N_OUT, N_IN)).astype(f32)
    xs = (rng.random((T, N_IN)) < 0.15).astype(f32)
    return W0, xs


def reference_run(W0, xs, k, d_pre=0.9, **kw):
    numbers, _ = member(k, d_pre)
    return reference.run(W0, xs, **{**numbers, **kw})


@pytest.mark.parametrize("d_pre", [(0.9, 0.9, 0.9), (0.9, 0.8, 0.9)], ids=["shared-pre-trace", "own-pre-traces"])
@pytest.mark.parametrize("pairing", ["symmetric", "causal", "strict"])
@pytest.mark.parametrize("trace_mode", ["cumulative", "nearest"])
def test_one_input_for_all_matches_each_members_reference(start, d_pre, pairing, trace_mode):
    W0, xs = start
    state, spikes = run_kernel(W0, xs[:, None], d_pre=d_pre, pairing=pairing, trace_add=TRACE_MODES[trace_mode])
    for k in range(K):
        ref = reference_run(W0[k], xs, k, d_pre[k], pairing=pairing, trace_mode=trace_mode)
        assert 0.02 < ref[-1].mean() < 0.7 and np.abs(ref[0] - W0[k]).max() > 0.02
        check(state, spikes, k, ref)


@pytest.mark.parametrize("dependence", ["hard", "soft", "power"])
def test_inputs_and_imposed_spikes_of_their_own(rng, start, dependence):
    W0, _ = start
    xs = (rng.uniform(0.2, 1.5, (T, K, N_IN)) * (rng.random((T, K, N_IN)) < 0.2)).astype(f32)
    posts = (rng.random((T, K, N_OUT)) < 0.1).astype(f32)
    state, spikes = run_kernel(W0, xs, posts, dependence=DEPENDENCES[dependence])
    for k in range(K):
        check(state, spikes, k, reference_run(W0[k], xs[:, k], k, posts=posts[:, k], dependence=dependence))


@pytest.mark.parametrize("d_pre", [(0.9, 0.9, 0.9), (0.9, 0.8, 0.9)], ids=["shared-pre-trace", "own-pre-traces"])
@pytest.mark.parametrize("pairing", ["symmetric", "strict"])
def test_deferred_ltp_matches_each_members_reference(start, d_pre, pairing):
    W0, xs = start
    state, spikes = run_kernel(W0, xs[:, None], d_pre=d_pre, pairing=pairing, span=16)
    for k in range(K):
        ref = reference_run(W0[k], xs, k, d_pre[k], pairing=pairing)
        check(state, spikes, k, ref, atol=2e-5)


def test_pre_traces_that_differ_are_each_members_own(rng, start):
    W0, xs = start
    pre = np.stack([np.zeros(N_IN, f32), rng.uniform(0, 2, N_IN).astype(f32), np.zeros(N_IN, f32)])
    state, spikes = run_kernel(W0, xs[:, None], trace_pre=pre)
    for k in range(K):
        zeros = np.zeros(N_OUT, f32)
        check(state, spikes, k, reference_run(W0[k], xs, k, state=(zeros, pre[k], zeros)))


def test_a_chunk_that_ends_early_and_no_plasticity(start):
    W0, xs = start
    state, spikes = run_kernel(W0, xs[:, None], n_steps=77)
    assert not spikes[77:].any()
    for k in range(K):
        check(state, spikes, k, reference_run(W0[k], xs[:77], k))
    state, spikes = run_kernel(W0, xs[:, None], plastic=False)
    for k in range(K):
        check(state, spikes, k, reference_run(W0[k], xs, k, plastic=False))


def test_rooms_that_hold_anything_and_pre_terms_kept_from_call_to_call(start, monkeypatch):
    """The members' weights in the kernel's layout, the weights they end with and their
    spikes go into memory that may hold anything (it is used again from call to call:
    here it holds NaNs, padding lanes too); the shared pre terms' room is kept for the
    chunks after it that fit. Every call gives each member's reference."""
    W0, xs = start
    handed = []

    def host_empty(shape, dtype=f32):
        handed.append(np.full(shape, np.nan, dtype))
        return handed[-1]
    monkeypatch.setattr(native_ensemble, "host_empty", host_empty)
    rooms = native_pair._ROOMS
    rooms.clear()
    kept = None
    for n_steps, span in ((T, 16), (T // 2, 16), (T, 0)):  # (unbounded: no clipping would mend a padding lane)
        state, spikes = run_kernel(W0, xs[:, None], n_steps=n_steps, span=span, hardbound=False)
        assert not spikes[n_steps:].any()
        for k in range(K):
            check(state, spikes[:n_steps], k, reference_run(W0[k], xs[:n_steps], k, hardbound=False), atol=2e-5)
        blocked, = [a for a in handed if a.ndim == 4]  # (the layout's padding lanes zero, as the kernel takes them)
        assert not blocked[:, -1, :, N_OUT % 64:].any() and not np.isnan(blocked).any()
        handed.clear()
        (_, _, room), = rooms.values()
        assert kept is None or (room is kept) == (span == 16)  # (a room of other numbers is made anew)
        kept = room


N_BIG, M_BIG = 200, 90  # at least NATIVE_MIN_SYNAPSES: each member alone runs the native kernel


def test_the_ensemble_runs_the_native_kernel_and_members_end_where_they_end_alone(rng, monkeypatch):
    assert N_BIG * M_BIG >= NATIVE_MIN_SYNAPSES
    xs = (rng.random((300, N_BIG)) < 0.05).astype(f32)

    def make(k):
        return STDPTrainer(SpikingLayer(N_BIG, M_BIG, seed=k, threshold=1.0 + 0.3 * k), learning_rate=0.05 * (k + 1),
                           chunk_size=128)
    members, alone = [make(k) for k in range(3)], [make(k) for k in range(3)]
    calls = []
    chunk = native_ensemble.ensemble_chunk
    monkeypatch.setattr(native_ensemble, "ensemble_chunk", lambda *a, **kw: calls.append(1) or chunk(*a, **kw))
    ensemble = Ensemble(members)
    first, second = ensemble.train(xs[:170], return_spikes=True), ensemble.train(xs[170:], return_spikes=True)
    assert len(calls) == 4  # 170 and 130 steps, each in chunks of 128
    for k in range(3):
        spikes = alone[k].train(xs, return_spikes=True)
        assert 0.002 < spikes.mean() < 0.3
        np.testing.assert_array_equal(np.concatenate([first[k], second[k]]), spikes)
        for name in ("W", "v", "trace_pre", "trace_post"):
            np.testing.assert_allclose(getattr(members[k].model, name).value, getattr(alone[k].model, name).value,
                                       atol=1e-6)
        np.testing.assert_array_equal(members[k].model.x.value, xs[-1])
        assert members[k].steps_trained == 300
    predicted = ensemble.predict_batch(xs[:50])  # the neurons and traces run on, the weights stay
    assert len(calls) == 5
    for k in range(3):
        np.testing.assert_array_equal(predicted[k], alone[k].predict_batch(xs[:50]))
        np.testing.assert_allclose(members[k].model.v.value, alone[k].model.v.value, atol=1e-5)


def test_a_failed_native_call_changes_no_member(rng):
    members = [STDPTrainer(SpikingLayer(N_BIG, M_BIG, seed=k), learning_rate=lr, hardbound=False)
               for k, lr in enumerate([0.01, 1e38])]  # the second overflows
    before = [np.array(t.model.W.value) for t in members]
    with pytest.raises(FloatingPointError, match="member 1"):
        Ensemble(members).train((rng.random((40, N_BIG)) < 0.5).astype(f32) * 50.0)
    for t, W in zip(members, before):
        np.testing.assert_array_equal(t.model.W.value, W)
        assert not np.asarray(t.model.v.value).any()
