"""Reward-modulated STDP (docs/step.md, "Reward-modulated rules") against NumPy written here."""

import importlib.util
import math

import numpy as np
import pytest

from canns_stdp import RewardSTDPTrainer, SpikingLayer, STDPTrainer
from examples_loader import load_example as load

f32 = np.float32


# -- independent NumPy transcription of steps 1-7 of docs/step.md with the reward rules ------------
def reward_reference(W, xs, rewards, posts=None, *, rule, tau_z=25.0, tau_c=1000.0, tau_d=None,
                     dt=1.0, leak=0.9, threshold=1.0, v_reset=0.0, d_pre=0.95, d_post=0.95,
                     lr=0.01, A_plus=0.005, A_minus=0.00525, w_min=0.0, w_max=1.0,
                     pairing="symmetric", hardbound=True):
    """Returns ``(W, eligibility, dopamine, spikes)`` after running every step."""
    W = np.array(W, f32)
    n_out, n_in = W.shape
    v, tr_pre, tr_post = np.zeros(n_out, f32), np.zeros(n_in, f32), np.zeros(n_out, f32)
    z = np.zeros_like(W)  # MSTDPET eligibility
    c = np.zeros_like(W)  # R-STDP eligibility
    D = f32(0.0)
    d_z, d_c = f32(math.exp(-dt / tau_z)), f32(math.exp(-dt / tau_c))
    d_D = None if tau_d is None else f32(math.exp(-dt / tau_d))
    zeta = np.zeros_like(W)
    out = []
    for t, x in enumerate(np.asarray(xs, f32)):
        r = f32(rewards[t])
        pre_decayed = f32(d_pre) * tr_pre
        tr_pre = pre_decayed + x
        v = f32(leak) * v + W @ x
        s = (v >= threshold).astype(f32) if posts is None else np.asarray(posts[t], f32)
        v = np.where(s == 1, f32(v_reset), v).astype(f32)
        post_decayed = f32(d_post) * tr_post
        tr_post = post_decayed + s
        out.append(s)
        P, Q = {"symmetric": (tr_pre, tr_post), "causal": (tr_pre, post_decayed),
                "strict": (pre_decayed, post_decayed)}[pairing]
        zeta = f32(A_plus) * np.outer(s, P) - f32(A_minus) * np.outer(Q, x)
        if rule == "mstdp":
            dW = f32(lr) * r * zeta
            D = r
        elif rule == "mstdpet":
            z = d_z * z + zeta / f32(tau_z)
            dW = f32(lr) * r * z
            D = r
        else:  # rstdp
            c = d_c * c + zeta
            D = r if d_D is None else d_D * D + r
            dW = f32(lr) * D * c
        W = W + dW
        if hardbound:
            W = np.clip(W, w_min, w_max)
    elig = {"mstdp": zeta, "mstdpet": z, "rstdp": c}[rule]
    return W, elig, D, np.array(out)


def make_trainer(rule, W, compiled=True, layer_kw=None, **kw):
    layer = SpikingLayer(input_size=W.shape[1], output_size=W.shape[0], W_init=W, **(layer_kw or {}))
    return layer, RewardSTDPTrainer(layer, rule=rule, compiled=compiled, **kw)


def random_problem(rng, T=400, n_in=12, n_out=5, rate=0.2):
    W = rng.uniform(0.1, 0.6, (n_out, n_in)).astype(f32)
    xs = (rng.random((T, n_in)) < rate).astype(f32)
    rewards = rng.normal(0.0, 1.0, T).astype(f32)
    return W, xs, rewards


RULE_CASES = [
    ("mstdp", {}, {}),
    ("mstdpet", {"tau_z": 7.0}, {"tau_z": 7.0}),
    ("rstdp", {"tau_c": 30.0}, {"tau_c": 30.0}),
    ("rstdp", {"tau_c": 30.0, "tau_d": 5.0}, {"tau_c": 30.0, "tau_d": 5.0}),
]


@pytest.mark.parametrize("rule,kw,ref_kw", RULE_CASES)
@pytest.mark.parametrize("compiled", [True, False])
def test_rules_match_numpy_reference(rng, rule, kw, ref_kw, compiled):
    W, xs, rewards = random_problem(rng)
    layer, tr = make_trainer(rule, W, compiled, learning_rate=2.0, A_plus=0.05, A_minus=0.06,
                             pairing="causal", chunk_size=64, **kw)
    spikes = tr.train(xs, reward=rewards, return_spikes=True)
    W_ref, e_ref, D_ref, s_ref = reward_reference(W, xs, rewards, rule=rule, lr=2.0, A_plus=0.05,
                                                  A_minus=0.06, pairing="causal", **ref_kw)
    assert s_ref.sum() > 20  # the neurons fire on their own: the forward pass is exercised
    np.testing.assert_array_equal(np.asarray(spikes), s_ref)
    np.testing.assert_allclose(np.asarray(layer.W.value), W_ref, atol=2e-5)
    np.testing.assert_allclose(np.asarray(tr.eligibility.value), e_ref, atol=2e-5)
    np.testing.assert_allclose(float(tr.dopamine.value), D_ref, rtol=1e-5, atol=1e-6)
    assert not np.allclose(W_ref, W, atol=1e-3)  # the weights did change


@pytest.mark.parametrize("rule,kw", [("mstdp", {}), ("mstdpet", {"tau_z": 5.0}),
                                     ("rstdp", {"tau_c": 20.0, "tau_d": 10.0})])
def test_compiled_equals_uncompiled_with_large_rates(rng, rule, kw):
    W, xs, rewards = random_problem(rng, T=1500, n_in=20, n_out=6, rate=0.15)
    posts = (rng.random((1500, 6)) < 0.1).astype(f32)
    results = []
    for compiled in (True, False):
        layer, tr = make_trainer(rule, W, compiled, learning_rate=5.0, A_plus=0.05, A_minus=0.05,
                                 chunk_size=128, **kw)
        tr.train(xs[:700], reward=rewards[:700])  # own spikes, then imposed ones
        s = tr.train(xs[700:], reward=rewards[700:], post_spikes=posts[700:], return_spikes=True)
        results.append((np.asarray(layer.W.value), np.asarray(tr.eligibility.value), np.asarray(s)))
    (W1, e1, s1), (W2, e2, s2) = results
    np.testing.assert_array_equal(s1, s2)
    np.testing.assert_allclose(W1, W2, atol=1e-5)
    np.testing.assert_allclose(e1, e2, atol=1e-5)
    assert 0.05 < W1.std()  # large, bounded changes happened


# -- Florian (2007) single-synapse demonstration ---------------------------------------
def florian_reference(rule):
    """Florian's equations for one synapse, written out with scalars (1 ms steps)."""
    pre_times, post_times = {10, 85, 115, 135}, {15, 75, 110, 140}
    d = math.exp(-1.0 / 20.0)
    tau_z = 25.0
    lr, A_plus, A_minus = 0.1, 1.0, 1.0
    w, P, Q, z = 0.2, 0.0, 0.0, 0.0
    traj = [w]
    for t in range(200):
        pre, post = float(t in pre_times), float(t in post_times)
        r = 1.0 if t < 100 else -1.0
        P = d * P + pre    # presynaptic trace
        Q = d * Q + post   # postsynaptic trace
        zeta = A_plus * post * P - A_minus * pre * Q
        if rule == "stdp":
            w += lr * zeta
        elif rule == "mstdp":
            w += lr * r * zeta
        else:
            z = math.exp(-1.0 / tau_z) * z + zeta / tau_z
            w += lr * r * z
        w = min(max(w, 0.0), 1.0)
        traj.append(w)
    return np.array(traj)


def test_florian_demonstration_matches_equations():
    res = load("reward_florian").run(compiled=True)
    for rule in ("stdp", "mstdp", "mstdpet"):
        ref = florian_reference(rule)
        np.testing.assert_allclose(res[rule], ref, atol=1e-5, err_msg=rule)
    # the qualitative picture of Florian's Fig. 1
    assert np.allclose(res["stdp"][:101], res["mstdp"][:101])        # same while r = +1
    assert res["mstdp"][111] < res["mstdp"][110] and res["stdp"][111] > res["stdp"][110]
    assert np.all(np.diff(res["mstdpet"][16:76]) > 0)                 # continuous change


def test_one_call_equals_one_step_at_a_time():
    """The example trains one step per call; one call over all steps gives the same."""
    example = load("reward_florian")
    xs, posts, reward = example.protocol()
    layer, tr = make_trainer("mstdpet", np.full((1, 1), 0.2, f32), compiled=False,
                             layer_kw=dict(tau_pre=20.0, tau_post=20.0), learning_rate=0.1,
                             A_plus=1.0, A_minus=1.0, tau_z=25.0)
    tr.train(xs, reward=reward, post_spikes=posts)
    assert float(layer.W.value[0, 0]) == pytest.approx(florian_reference("mstdpet")[-1], abs=1e-6)
    steps = make_trainer("mstdpet", np.full((1, 1), 0.2, f32), compiled=True, chunk_size=16,
                         layer_kw=dict(tau_pre=20.0, tau_post=20.0), learning_rate=0.1,
                         A_plus=1.0, A_minus=1.0, tau_z=25.0)
    for a in range(0, 200, 37):  # uneven pieces
        steps[1].train(xs[a:a + 37], reward=reward[a:a + 37], post_spikes=posts[a:a + 37])
    assert float(steps[0].W.value[0, 0]) == pytest.approx(float(layer.W.value[0, 0]), abs=1e-7)
    assert float(steps[1].eligibility.value[0, 0]) == pytest.approx(float(tr.eligibility.value[0, 0]), abs=1e-8)


# -- properties --------------------------------------------------------------------------
def test_mstdp_with_unit_reward_is_stdp(rng):
    W, xs, _ = random_problem(rng, T=300)
    layer_a, tr = make_trainer("mstdp", W, learning_rate=3.0, A_plus=0.04, A_minus=0.05)
    tr.train(xs, reward=1.0)
    layer_b = SpikingLayer(input_size=W.shape[1], output_size=W.shape[0], W_init=W)
    STDPTrainer(layer_b, learning_rate=3.0, A_plus=0.04, A_minus=0.05).train(xs)
    np.testing.assert_allclose(np.asarray(layer_a.W.value), np.asarray(layer_b.W.value), atol=1e-6)


@pytest.mark.parametrize("rule", ["mstdp", "mstdpet", "rstdp"])
def test_zero_reward_changes_no_weight(rng, rule):
    W, xs, _ = random_problem(rng, T=300)
    layer, tr = make_trainer(rule, W, learning_rate=10.0, A_plus=0.1, A_minus=0.1, tau_z=5.0,
                             tau_c=50.0, tau_d=10.0 if rule == "rstdp" else None)
    spikes = tr.train(xs, reward=0.0, return_spikes=True)
    assert np.asarray(spikes).sum() > 0
    np.testing.assert_array_equal(np.asarray(layer.W.value), W)
    if rule != "mstdp":  # the eligibility still follows the pairings
        assert np.abs(np.asarray(tr.eligibility.value)).max() > 0


@pytest.mark.parametrize("rule", ["mstdp", "mstdpet", "rstdp"])
def test_weights_stay_in_bounds(rng, rule):
    W, xs, rewards = random_problem(rng, T=600)
    layer, tr = make_trainer(rule, W, learning_rate=50.0, A_plus=0.1, A_minus=0.1, tau_z=5.0,
                             tau_c=20.0, w_min=0.1, w_max=0.5)
    tr.train(xs, reward=5 * rewards)
    Wn = np.asarray(layer.W.value)
    assert Wn.min() >= 0.1 and Wn.max() <= 0.5
    assert np.isclose(Wn, 0.1).any() and np.isclose(Wn, 0.5).any()  # bounds were reached


def test_reset_state_and_checkpoint_state(rng):
    W, xs, rewards = random_problem(rng, T=100)
    layer, tr = make_trainer("rstdp", W, tau_c=50.0, tau_d=10.0, learning_rate=1.0)
    tr.train(xs, reward=rewards)
    saved = tr.get_state()
    assert np.abs(np.asarray(saved.eligibility)).max() > 0 and float(saved.dopamine) != 0
    W_trained = np.asarray(layer.W.value).copy()
    tr.reset_state()
    assert not np.asarray(tr.eligibility.value).any() and float(tr.dopamine.value) == 0
    assert not np.asarray(layer.trace_pre.value).any() and not np.asarray(layer.v.value).any()
    np.testing.assert_array_equal(np.asarray(layer.W.value), W_trained)  # weights are kept
    tr.set_state(saved)
    np.testing.assert_array_equal(np.asarray(tr.eligibility.value), np.asarray(saved.eligibility))
    with pytest.raises(ValueError, match="eligibility must have shape"):
        tr.set_state((np.zeros((2, 2)), 0.0))


# -- bad input -----------------------------------------------------------------------------
def snapshot(layer, tr):
    names = ("W", "x", "v", "spike", "trace_pre", "trace_post")
    return [np.asarray(getattr(layer, n).value).copy() for n in names] + [
        np.asarray(tr.eligibility.value).copy(), np.asarray(tr.dopamine.value).copy()]


@pytest.mark.parametrize("reward,error,match", [
    (np.ones(9), ValueError, r"reward must be one number or have shape \(10,\).*\(9,\)"),
    (np.ones((10, 1)), ValueError, r"shape \(10,\).*\(10, 1\)"),
    (np.ones((10, 3)), ValueError, r"got shape \(10, 3\)"),
    (np.r_[np.ones(4), np.nan, np.ones(5)], ValueError, r"reward must be finite, got nan at step 4"),
    (np.inf, ValueError, r"reward must be finite, got inf at step 0"),
    (None, TypeError, "reward is required"),
    ("high", TypeError, "reward must hold real numbers"),
    (True, TypeError, "reward must be a number"),
])
def test_bad_reward_raises_and_changes_nothing(rng, reward, error, match):
    W, xs, rewards = random_problem(rng, T=30)
    layer, tr = make_trainer("mstdpet", W, tau_z=5.0, learning_rate=1.0)
    tr.train(xs[:20], reward=rewards[:20])  # non-trivial state to protect
    before = snapshot(layer, tr)
    with pytest.raises(error, match=match):
        tr.train(xs[20:], reward=reward)
    for a, b in zip(before, snapshot(layer, tr)):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("attr,value,match", [
    ("tau_z", 0.0, "tau_z must be > 0, got 0.0"),
    ("tau_z", -3.0, "tau_z must be > 0"),
    ("tau_c", float("nan"), "tau_c must be finite"),
    ("tau_d", -1.0, "tau_d must be > 0"),
    ("tau_d", "fast", "tau_d must be a real number"),
    ("rule", "dopamine", "rule must be one of"),
])
def test_invalid_parameters_raise_and_change_nothing(rng, attr, value, match):
    W, xs, rewards = random_problem(rng, T=30)
    kw = {"rule": "rstdp", "tau_d": 10.0}
    with pytest.raises((ValueError, TypeError), match=match):
        make_trainer(W=W, **{**kw, attr: value})
    layer, tr = make_trainer(W=W, **kw)
    tr.train(xs[:20], reward=rewards[:20])
    before = snapshot(layer, tr)
    setattr(tr, attr, value)  # changed after construction: caught by train()
    with pytest.raises((ValueError, TypeError), match=match):
        tr.train(xs[20:], reward=rewards[20:])
    for a, b in zip(before, snapshot(layer, tr)):
        np.testing.assert_array_equal(a, b)


# -- a learning task where the reward does the work ---------------------------------------
def test_distal_reward_singles_out_the_rewarded_synapse(tmp_path):
    """Izhikevich (2007), scaled: 400 s, rewards 200-600 ms after the pairing."""
    example = load("reward_distal")
    res = example.main(["--seconds", "400", "--delay-min", "200", "--delay-max", "600",
                        "--lr", "1.5e-4", "--out", str(tmp_path)])
    assert res["n_rewards"] > 60
    assert res["target"] > res["others_p99"] + 0.15      # above every percentile of the rest
    assert res["target"] > 0.9 and abs(res["others_mean"] - 0.5) < 0.05
    if importlib.util.find_spec("matplotlib"):
        assert (tmp_path / "reward_distal.png").stat().st_size > 10_000
    # control: the same dopamine pulses, no longer timed by the rewarded pairings
    ctrl = example.train(400, delay=(200, 600), learning_rate=1.5e-4, shuffle_reward=True,
                         segments=1)
    assert ctrl["target"] < ctrl["others_p99"]


def test_no_recompilation_for_new_lengths_rules_or_time_constants(rng):
    from canns_stdp.loops import _run_chunk

    W, xs, rewards = random_problem(rng, T=500)
    layer, tr = make_trainer("mstdpet", W, tau_z=5.0, chunk_size=64)
    tr.train(xs[:10], reward=rewards[:10])
    size = _run_chunk._cache_size()
    tr.train(xs[:333], reward=rewards[:333])
    tr.tau_z, tr.learning_rate = 9.0, 0.5
    tr.train(xs, reward=1.0)
    tr.rule, tr.tau_c, tr.tau_d = "rstdp", 40.0, 8.0  # the rule is three numbers
    tr.train(xs, reward=rewards)
    tr.rule = "mstdp"
    tr.train(xs[:50], reward=rewards[:50])
    assert _run_chunk._cache_size() == size


def test_predict_batch_runs_the_layer_without_plasticity(rng):
    W, xs, rewards = random_problem(rng, T=200)
    layer, tr = make_trainer("mstdpet", W, tau_z=5.0, learning_rate=1.0)
    tr.train(xs[:100], reward=rewards[:100])
    before = snapshot(layer, tr)
    spikes = tr.predict_batch(xs[100:])
    _, _, _, _, s_ref = __import__("reference").run(before[0], xs[100:], plastic=False,
                                                    state=(before[2], before[4], before[5]))
    np.testing.assert_array_equal(np.asarray(spikes), s_ref)
    np.testing.assert_array_equal(np.asarray(layer.W.value), before[0])
    np.testing.assert_array_equal(np.asarray(tr.eligibility.value), before[6])
