"""The double-exponential PSP neuron, restricted nearest-spike STDP and the Masquelier task.

References are written here from the equations (kernel sums over spike times, pairings
from spike-time lists), not from the library's recurrences.
"""

import math

import jax.numpy as jnp
import numpy as np
import pytest

from canns_stdp.functional.dependence import WeightBounds
from canns_stdp.functional.psp import (PSPConfig, PSPLayerParams, PSPState, psp_lif_step,
                                       psp_params, psp_scale, psp_train_step)
from canns_stdp.functional.stdp import STDPParams, TraceParams
from canns_stdp.loops import run_compiled, run_python
from canns_stdp.tasks import masquelier

TAU_M, TAU_S = 10.0, 2.5


def kernel(k, tau_m=TAU_M, tau_s=TAU_S):
    """Continuous double exponential at integer lags, 0 for k <= 0 (not normalised)."""
    k = np.asarray(k, float)
    return np.where(k > 0, np.exp(-k / tau_m) - np.exp(-k / tau_s), 0.0)


@pytest.mark.parametrize("tau_m,tau_s", [(10.0, 2.5), (20.0, 5.0), (3.0, 7.0)])
def test_psp_is_the_sampled_double_exponential_with_peak_one(tau_m, tau_s):
    p = psp_params(tau_m=tau_m, tau_s=tau_s, threshold=1e9)
    I, v = jnp.zeros(1), jnp.zeros(1)
    vs = []
    for t in range(120):
        s, I, v = psp_lif_step(p, I, v, jnp.array([1.0 if t == 0 else 0.0]))
        vs.append(float(v[0]))
    ref = kernel(np.arange(120), tau_m, tau_s)
    ref = ref / ref[np.argmax(np.abs(ref))]  # tau_s > tau_m: both terms swap signs
    np.testing.assert_allclose(vs, ref, atol=1e-6)
    assert max(vs) == pytest.approx(1.0, abs=1e-6)
    assert vs[0] == 0.0  # an input cannot act in its own step
    grid = np.arange(1, 200)
    assert psp_scale(tau_m, tau_s) == pytest.approx(
        (math.exp(-1 / tau_m) - math.exp(-1 / tau_s)) / kernel(grid, tau_m, tau_s)[
            np.argmax(np.abs(kernel(grid, tau_m, tau_s)))], rel=1e-12)


def test_afterpotential_follows_eta():
    theta, k1, k2 = 5.0, 2.0, 4.0
    p = psp_params(threshold=theta, k1=k1, k2=k2)
    I, v = jnp.zeros(1), jnp.array([theta + 1.0])  # leaks to >= theta on the first step
    s, I, v = psp_lif_step(p, I, v, jnp.zeros(1))
    assert float(s[0]) == 1.0 and float(v[0]) == theta * k1
    vs = []
    for _ in range(60):
        s, I, v = psp_lif_step(p, I, v, jnp.zeros(1))
        assert float(s[0]) == 0.0
        vs.append(float(v[0]))
    k = np.arange(1, 61)
    eta = theta * (k1 * np.exp(-k / TAU_M) - k2 * (np.exp(-k / TAU_M) - np.exp(-k / TAU_S)))
    np.testing.assert_allclose(vs, eta, atol=1e-5)
    assert min(vs) < -0.7 * theta  # the negative spike-afterpotential of the paper


@pytest.mark.parametrize("bad", [dict(threshold=0.0), dict(tau_m=-1.0), dict(tau_m=2.5),
                                 dict(k1=-1.0), dict(k2=float("nan")), dict(dt=0.0)])
def test_psp_params_reject_bad_values(bad):
    with pytest.raises(ValueError, match=next(iter(bad)) if "tau_m" not in bad or bad["tau_m"] < 0
                       else "differ"):
        psp_params(**bad)


def _params(theta, a_plus=0.01, a_minus=0.008, k1=2.0, k2=4.0):
    return PSPLayerParams(psp_params(threshold=theta, k1=k1, k2=k2),
                          TraceParams(math.exp(-1 / 16.8), math.exp(-1 / 33.7), 1.0, 1.0),
                          STDPParams(1.0, a_plus, a_minus, WeightBounds(0.0, 1.0)))


def reference_run(W0, X, theta, a_plus, a_minus, k1=2.0, k2=4.0):
    """Spike-time formulation: kernel sums since the last output spike, restricted pairs."""
    T, n = X.shape
    W = W0.astype(float).copy()
    peak = kernel(np.arange(1, 200)).max()
    arrivals = []          # (step, current) since the last output spike
    last_post = None
    last_pre = np.zeros(n)
    pre_open = np.zeros(n, bool)   # last pre spike not yet paired with a later post spike
    post_open = np.zeros(n, bool)  # last post spike not yet paired with a later pre spike
    out = np.zeros(T)
    for t in range(T):
        v = sum(c * kernel(t - tj) / peak for tj, c in arrivals)
        if last_post is not None:
            d = t - last_post
            v += theta * (k1 * math.exp(-d / TAU_M) - k2 * (math.exp(-d / TAU_M) - math.exp(-d / TAU_S)))
        current = W @ X[t]
        fired = X[t] > 0
        post = v >= theta
        # pairs with spikes of earlier steps only: a pre and a post spike in one step are
        # not paired with each other
        dW = np.zeros(n)
        if post:
            dW += a_plus * np.exp(-(t - last_pre) / 16.8) * pre_open
        if last_post is not None:
            dW -= a_minus * math.exp(-(t - last_post) / 33.7) * (fired & post_open)
        post_open &= ~fired
        if post:
            out[t] = 1
            pre_open[:] = False
            post_open[:] = True
            last_post = t
            arrivals = []
        last_pre[fired] = t
        pre_open |= fired
        arrivals.append((t, current))
        W = np.clip(W + dW, 0.0, 1.0)
    return W, out


def test_train_step_matches_the_spike_time_reference():
    rng = np.random.default_rng(3)
    n, T, theta = 20, 400, 7.0
    X = (rng.random((T, n)) < 0.08).astype(np.float32)
    W0 = rng.uniform(0.3, 0.9, n)
    W_ref, s_ref = reference_run(W0, X, theta, 0.05, 0.04)
    state = PSPState.zeros(n, 1, W=W0[None])
    state, s = run_compiled(psp_train_step, PSPConfig(), _params(theta, 0.05, 0.04), state, (X,),
                            record=True, chunk_size=64)
    assert 5 < s_ref.sum() < 100
    np.testing.assert_array_equal(s[:, 0], s_ref)
    np.testing.assert_allclose(np.asarray(state.W[0]), W_ref, atol=2e-5)
    assert np.abs(W_ref - W0).max() > 0.1


def test_compiled_equals_python_loop():
    rng = np.random.default_rng(4)
    n, T = 30, 150
    X = (rng.random((T, n)) < 0.1).astype(np.float32)
    params = _params(6.0, a_plus=0.2, a_minus=0.17)
    state = PSPState.zeros(n, 1, W=np.full((1, n), 0.6, np.float32))
    a, sa = run_compiled(psp_train_step, PSPConfig(), params, state, (X,), record=True, chunk_size=32)
    b, sb = run_python(psp_train_step, PSPConfig(), params, state, (X,), record=True)
    assert sa.sum() > 5
    np.testing.assert_array_equal(sa, sb)
    for x, y in zip(a, b):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-6, atol=1e-6)


def test_learning_rate_zero_freezes_weights():
    rng = np.random.default_rng(5)
    X = (rng.random((100, 10)) < 0.2).astype(np.float32)
    p = _params(3.0)
    p = p._replace(stdp=p.stdp._replace(lr=0.0))
    state = PSPState.zeros(10, 1, W=np.full((1, 10), 0.5, np.float32))
    out, s = run_compiled(psp_train_step, PSPConfig(), p, state, (X,), record=True, chunk_size=32)
    assert s.sum() > 0
    np.testing.assert_array_equal(np.asarray(out.W), np.asarray(state.W))


def test_input_statistics_and_pattern():
    rng = np.random.default_rng(0)
    n = 400
    pattern = masquelier.make_pattern(rng, n)
    proc = masquelier.RateProcess(rng, n)
    x, is_pat = masquelier.make_input(rng, 2000, pattern, proc, spont_hz=10.0)
    assert 0.22 < is_pat.mean() < 0.28 and not (is_pat[1:] & is_pat[:-1]).any()
    w = x.reshape(len(is_pat), masquelier.PATTERN_MS, n) > 0
    assert w.any(1).all()  # every afferent fires in every 50 ms window
    assert np.all(w[is_pat][:, :, : n // 2] >= pattern[None])  # the snippet is replayed
    assert 0 <= proc.r.min() and proc.r.max() <= 90
    rate = w.mean() * 1000
    assert 55 < rate < 75  # wandering 0-90 Hz (mean 45) + forced spikes + 10 Hz
    inside = w[is_pat][:, :, : n // 2].mean() * 1000
    outside = w[~is_pat][:, :, : n // 2].mean() * 1000
    assert abs(inside - outside) < 8.0  # one frozen snippet: no rate code


def test_reduced_task_learns_the_pattern():
    """The task's success criterion at a reduced size (1000 afferents, 40 s of training, seed 0)."""
    res = masquelier.run(seed=0, n_afferents=1000, seconds_per_epoch=40.0, epochs=1,
                         test_seconds=10.0, progress=False, echo=lambda *a: None)
    assert res["hit_rate"] > 0.8
    assert res["false_alarm_rate"] < 0.1
    W, k = res["W_after"], 500
    assert W[:k].mean() > 3 * W[k:].mean()            # the pattern afferents won
    assert (W[:k] > 0.9).sum() > 10 * max(1, (W[k:] > 0.9).sum())


def test_one_neuron_only():
    with pytest.raises(ValueError, match="--neurons 3"):
        masquelier.run(neurons=3, echo=lambda *a: None)
