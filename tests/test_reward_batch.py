"""Batched reward-modulated STDP (docs/step.md, "Batches" + "Reward-modulated rules") against NumPy
written here: every sample runs steps 1-5 and its own ζ_b, eligibility e_b and dopamine D_b;
the shared W changes once per step by the sum or mean over b of lr · D_b · e_b, then clips."""

import math

import numpy as np
import pytest

from canns_stdp import RewardSTDPTrainer, SpikingLayer

f32 = np.float32


# -- independent NumPy transcription: a loop over samples, then the batch reduction --------
def batch_reference(W, xs, rewards, *, rule, reduction, tau_z=25.0, tau_c=1000.0, tau_d=None,
                    leak=0.9, threshold=1.0, v_reset=0.0, d_pre=0.95, d_post=0.95,
                    lr=0.01, A_plus=0.005, A_minus=0.00525, w_min=0.0, w_max=1.0):
    """``xs`` ``(T, B, n_in)``, ``rewards`` ``(T, B)``; symmetric pairing, dt = 1.

    Returns ``(W, eligibility (B, n_out, n_in), dopamine (B,), spikes (T, B, n_out))``.
    """
    W = np.array(W, f32)
    n_out, n_in = W.shape
    T, B, _ = xs.shape
    v, s = np.zeros((B, n_out), f32), np.zeros((B, n_out), f32)
    tr_pre, tr_post = np.zeros((B, n_in), f32), np.zeros((B, n_out), f32)
    e, D = np.zeros((B, n_out, n_in), f32), np.zeros(B, f32)
    d_e = {"mstdp": 0.0, "mstdpet": math.exp(-1.0 / tau_z), "rstdp": math.exp(-1.0 / tau_c)}[rule]
    gain = 1.0 / tau_z if rule == "mstdpet" else 1.0
    d_D = 0.0 if tau_d is None else math.exp(-1.0 / tau_d)
    spikes = np.zeros((T, B, n_out), f32)
    for t in range(T):
        dW = np.zeros_like(W)
        for b in range(B):  # each sample with the weights of the start of the step
            x = xs[t, b]
            tr_pre[b] = f32(d_pre) * tr_pre[b] + x
            v[b] = f32(leak) * v[b] + W @ x
            s[b] = (v[b] >= threshold).astype(f32)
            v[b] = np.where(s[b] == 1, f32(v_reset), v[b])
            tr_post[b] = f32(d_post) * tr_post[b] + s[b]
            zeta = f32(A_plus) * np.outer(s[b], tr_pre[b]) - f32(A_minus) * np.outer(tr_post[b], x)
            e[b] = f32(d_e) * e[b] + f32(gain) * zeta
            D[b] = f32(d_D) * D[b] + rewards[t, b]
            dW += f32(lr) * D[b] * e[b]
        spikes[t] = s
        if reduction == "mean":
            dW /= B
        W = np.clip(W + dW, w_min, w_max)
    return W, e, D, spikes


RULES = [
    ("mstdp", {}),
    ("mstdpet", {"tau_z": 7.0}),
    ("rstdp", {"tau_c": 30.0}),
    ("rstdp", {"tau_c": 30.0, "tau_d": 5.0}),
]


def problem(rng, T=150, B=3, n_in=10, n_out=4, rate=0.25):
    W = rng.uniform(0.1, 0.6, (n_out, n_in)).astype(f32)
    xs = (rng.random((T, B, n_in)) < rate).astype(f32)
    rewards = rng.normal(0.0, 1.0, (T, B)).astype(f32)
    return W, xs, rewards


def make(rule, W, compiled=True, **kw):
    layer = SpikingLayer(input_size=W.shape[1], output_size=W.shape[0], W_init=W)
    return layer, RewardSTDPTrainer(layer, rule=rule, compiled=compiled, **kw)


def snapshot(layer, tr):
    names = ("W", "v", "spike", "trace_pre", "trace_post", "x")
    return ([np.array(getattr(layer, n).value) for n in names]
            + [np.array(tr.eligibility.value), np.array(tr.dopamine.value)])


def assert_same(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert x.shape == y.shape
        np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("rule,kw", RULES)
@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_batched_rules_match_numpy_reference(rng, rule, kw, reduction):
    W, xs, rewards = problem(rng)
    layer, tr = make(rule, W, learning_rate=2.0, A_plus=0.05, A_minus=0.06,
                     batch_reduction=reduction, chunk_size=32, **kw)
    spikes = tr.train(xs, reward=rewards, return_spikes=True)
    W_ref, e_ref, D_ref, s_ref = batch_reference(W, xs, rewards, rule=rule, reduction=reduction,
                                                 lr=2.0, A_plus=0.05, A_minus=0.06, **kw)
    assert s_ref.sum() > 20 and (s_ref.sum(axis=(0, 2)) > 0).all()  # every sample fires
    np.testing.assert_array_equal(np.asarray(spikes), s_ref)
    np.testing.assert_allclose(np.asarray(layer.W.value), W_ref, atol=2e-5)
    assert tr.eligibility.value.shape == (3, 4, 10) and tr.dopamine.value.shape == (3,)
    np.testing.assert_allclose(np.asarray(tr.eligibility.value), e_ref, atol=2e-5)
    np.testing.assert_allclose(np.asarray(tr.dopamine.value), D_ref, rtol=1e-5, atol=1e-6)
    assert not np.allclose(W_ref, W, atol=1e-3)  # the weights did change
    # the samples really differ (per-sample state, not one shared)
    assert not np.allclose(e_ref[0], e_ref[1])


@pytest.mark.parametrize("rule,kw", [("mstdp", {}), ("mstdpet", {"tau_z": 5.0}),
                                     ("rstdp", {"tau_c": 20.0, "tau_d": 10.0})])
def test_batched_compiled_equals_uncompiled_with_large_rates(rng, rule, kw):
    W, xs, rewards = problem(rng, T=500, B=4, n_in=16, n_out=5, rate=0.15)
    posts = (rng.random((500, 4, 5)) < 0.1).astype(f32)
    results = []
    for compiled in (True, False):
        layer, tr = make(rule, W, compiled, learning_rate=5.0, A_plus=0.05, A_minus=0.05,
                         chunk_size=64, batch_reduction="mean", **kw)
        tr.train(xs[:250], reward=rewards[:250])  # own spikes, then imposed ones
        s = tr.train(xs[250:], reward=rewards[250:], post_spikes=posts[250:], return_spikes=True)
        results.append((np.asarray(layer.W.value), np.asarray(tr.eligibility.value),
                        np.asarray(tr.dopamine.value), np.asarray(s)))
    (W1, e1, D1, s1), (W2, e2, D2, s2) = results
    np.testing.assert_array_equal(s1, s2)
    np.testing.assert_allclose(W1, W2, atol=1e-5)
    np.testing.assert_allclose(e1, e2, atol=1e-5)
    np.testing.assert_allclose(D1, D2, rtol=1e-6)
    assert 0.05 < W1.std()  # large, bounded changes happened


@pytest.mark.parametrize("rule,kw", RULES)
@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_batch_of_one_equals_unbatched(rng, rule, kw, reduction):
    W, xs, rewards = problem(rng, T=120, B=1)
    out = []
    for batched in (False, True):
        layer, tr = make(rule, W, learning_rate=2.0, A_plus=0.05, A_minus=0.06,
                         batch_reduction=reduction, **kw)
        x, r = (xs, rewards) if batched else (xs[:, 0], rewards[:, 0])
        s = tr.train(x, reward=r, return_spikes=True)
        out.append((np.asarray(layer.W.value), np.asarray(tr.eligibility.value).reshape(4, 10),
                    np.asarray(tr.dopamine.value).reshape(()), np.asarray(s).reshape(120, 4)))
    for a, b in zip(*out):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    assert not np.allclose(out[0][0], W, atol=1e-3)


@pytest.mark.parametrize("shape", ["scalar", "T"])
def test_reward_per_step_or_scalar_is_broadcast_to_the_batch(rng, shape):
    W, xs, _ = problem(rng, T=100, B=3)
    r_step = rng.normal(0.0, 1.0, 100).astype(f32)
    reward = f32(0.7) if shape == "scalar" else r_step
    full = np.broadcast_to(np.asarray(reward, f32).reshape(-1, 1) if shape == "T" else reward, (100, 3))
    layer, tr = make("rstdp", W, learning_rate=2.0, A_plus=0.05, A_minus=0.06, tau_c=30.0, tau_d=5.0)
    tr.train(xs, reward=reward)
    W_ref, e_ref, D_ref, _ = batch_reference(W, xs, np.array(full), rule="rstdp", reduction="sum",
                                             lr=2.0, A_plus=0.05, A_minus=0.06, tau_c=30.0, tau_d=5.0)
    np.testing.assert_allclose(np.asarray(layer.W.value), W_ref, atol=2e-5)
    np.testing.assert_allclose(np.asarray(tr.eligibility.value), e_ref, atol=2e-5)
    np.testing.assert_allclose(np.asarray(tr.dopamine.value), D_ref, rtol=1e-5)
    assert tr.dopamine.value.shape == (3,)


@pytest.mark.parametrize("bad,match", [
    (np.zeros((20, 4)), r"\(20, 3\).*got shape \(20, 4\)"),
    (np.zeros((3, 20)), r"got shape \(3, 20\)"),
    (np.zeros((21,)), r"got shape \(21,\)"),
    (np.zeros((20, 3, 1)), r"got shape \(20, 3, 1\)"),
    (np.where(np.arange(60).reshape(20, 3) == 31, np.nan, 0.0), r"finite.*step 10, sample 1"),
])
def test_bad_batched_rewards_raise_and_leave_state_unchanged(rng, bad, match):
    W, xs, rewards = problem(rng, T=20, B=3)
    layer, tr = make("mstdpet", W, learning_rate=2.0, A_plus=0.05, A_minus=0.06)
    tr.train(xs, reward=rewards)  # a batched state to keep
    before = snapshot(layer, tr)
    with pytest.raises(ValueError, match=match):
        tr.train(xs, reward=bad)
    assert_same(before, snapshot(layer, tr))


def test_stored_state_policy_broadcast_unbatched_refuse_other_batch(rng):
    W, xs, rewards = problem(rng, T=60, B=3)
    x1, r1 = xs[:, 0], rewards[:, 0]
    kw = dict(learning_rate=2.0, A_plus=0.05, A_minus=0.06, tau_c=30.0, tau_d=5.0,
              batch_reduction="mean")
    # unbatched T1 steps, then B identical copies with mean reduction == unbatched continuation
    ref_layer, ref = make("rstdp", W, **kw)
    ref.train(np.concatenate([x1, x1]), reward=np.concatenate([r1, r1]))
    layer, tr = make("rstdp", W, **kw)
    tr.train(x1, reward=r1)
    tr.train(np.repeat(x1[:, None], 3, axis=1), reward=r1)  # unbatched state broadcast
    np.testing.assert_allclose(np.asarray(layer.W.value), np.asarray(ref_layer.W.value), atol=1e-6)
    for b in range(3):
        np.testing.assert_allclose(np.asarray(tr.eligibility.value[b]),
                                   np.asarray(ref.eligibility.value), atol=1e-6)
    np.testing.assert_allclose(np.asarray(tr.dopamine.value), float(ref.dopamine.value), rtol=1e-6)
    # a stored batch of 3 is not reused for 2 samples, nor for unbatched input
    before = snapshot(layer, tr)
    with pytest.raises(ValueError, match="reset_state"):
        tr.train(xs[:, :2], reward=rewards[:, :2])
    with pytest.raises(ValueError, match="reset_state"):
        tr.train(x1, reward=r1)
    assert_same(before, snapshot(layer, tr))
    # predict_batch neither reads nor changes the modulation state
    tr.predict_batch(xs)
    np.testing.assert_array_equal(np.asarray(tr.eligibility.value), before[-2])
    tr.reset_state()
    assert tr.eligibility.value.shape == (4, 10) and tr.dopamine.value.shape == ()
    tr.train(xs[:, :2], reward=rewards[:, :2])
    assert tr.eligibility.value.shape == (2, 4, 10)


def test_set_state_takes_batched_state_and_checks_it(rng):
    W, _, _ = problem(rng)
    _, tr = make("mstdpet", W)
    e = rng.normal(size=(2, 4, 10)).astype(f32)
    tr.set_state((e, np.array([0.5, -1.0], f32)))
    np.testing.assert_array_equal(np.asarray(tr.get_state((2,)).eligibility), e)
    before = [np.array(tr.eligibility.value), np.array(tr.dopamine.value)]
    with pytest.raises(ValueError, match="dopamine"):
        tr.set_state((e, np.zeros(3, f32)))
    with pytest.raises(ValueError, match="eligibility"):
        tr.set_state((np.zeros((2, 4, 9), f32), np.zeros(2, f32)))
    with pytest.raises(ValueError, match="reset_state"):
        tr.get_state((3,))
    assert_same(before, [np.array(tr.eligibility.value), np.array(tr.dopamine.value)])


def test_checkpoint_round_trip_with_batched_eligibility(rng, tmp_path):
    W, xs, rewards = problem(rng, T=80, B=3)
    layer, tr = make("rstdp", W, learning_rate=2.0, A_plus=0.05, A_minus=0.06, tau_c=30.0, tau_d=5.0)
    tr.train(xs[:40], reward=rewards[:40])
    path = tr.save(tmp_path / "batched.npz")
    loaded = RewardSTDPTrainer.load(path)
    assert loaded.eligibility.value.shape == (3, 4, 10) and loaded.dopamine.value.shape == (3,)
    np.testing.assert_array_equal(np.asarray(loaded.eligibility.value), np.asarray(tr.eligibility.value))
    np.testing.assert_array_equal(np.asarray(loaded.dopamine.value), np.asarray(tr.dopamine.value))
    tr.train(xs[40:], reward=rewards[40:])
    loaded.train(xs[40:], reward=rewards[40:])  # continues exactly where the original was
    np.testing.assert_array_equal(np.asarray(loaded.model.W.value), np.asarray(layer.W.value))
    np.testing.assert_array_equal(np.asarray(loaded.eligibility.value), np.asarray(tr.eligibility.value))
