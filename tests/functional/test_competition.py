"""Competitive-layer mechanisms and step against independent NumPy references."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from canns_stdp.functional.competitive_step import (CompetitiveConfig, CompetitiveParams,
                                                    CompetitiveState, competitive_step)
from canns_stdp.functional.dependence import WeightBounds
from canns_stdp.functional.homeostasis import ThetaParams, theta_step
from canns_stdp.functional.event import input_events
from canns_stdp.functional.inhibition import kwta, lateral_current, random_winner
from canns_stdp.functional.neurons import LIFParams
from canns_stdp.functional.normalization import normalize_columns, normalize_rows
from canns_stdp.functional.refractory import gate_current, refractory_step
from canns_stdp.functional.stdp import STDPParams, TraceParams
from canns_stdp.loops import run_compiled, run_python


def test_theta_decays_and_jumps_like_the_closed_form(rng):
    # theta(t) = sum over spikes at t' <= t of theta_plus * d^(t - t')
    T, n, d, tp = 60, 4, 0.9, 0.3
    s = (rng.random((T, n)) < 0.2).astype(np.float32)
    theta = jnp.zeros(n)
    for t in range(T):
        theta = theta_step(ThetaParams(d, tp), theta, jnp.asarray(s[t]))
        expected = sum(tp * d ** (t - u) * s[u] for u in range(t + 1))
        np.testing.assert_allclose(np.asarray(theta), expected, rtol=1e-5, atol=1e-6)


def test_refractory_blocks_exactly_the_period_after_each_spike():
    period, T = 3, 20
    spike_times = [2, 4, 11]  # the spike at 4 restarts the count (as if forced)
    s = np.zeros(T, np.float32)
    s[spike_times] = 1
    count = jnp.zeros(1)
    for t in range(T):
        blocked = float(gate_current(count, jnp.ones(1))[0]) == 0.0
        last = max([u for u in spike_times if u < t], default=None)
        assert blocked == (last is not None and t - last <= period), t
        count = refractory_step(count, jnp.asarray(s[t:t + 1]), period)


def test_lateral_current_is_all_to_all_without_self(rng):
    s = (rng.random(7) < 0.5).astype(np.float32)
    M = -2.5 * (np.ones((7, 7)) - np.eye(7))
    np.testing.assert_allclose(np.asarray(lateral_current(jnp.asarray(s), 2.5)), M @ s, atol=1e-6)


@pytest.mark.parametrize("k", [1, 2, 3, 10])
def test_kwta_keeps_the_k_highest_scoring_spikes(rng, k):
    for _ in range(20):
        s = (rng.random(8) < 0.6).astype(np.float32)
        score = rng.standard_normal(8).astype(np.float32)
        out = np.asarray(kwta(jnp.asarray(s), jnp.asarray(score), k))
        spiking = [i for i in range(8) if s[i]]
        winners = sorted(spiking, key=lambda i: -score[i])[:k]
        expected = np.zeros(8, np.float32)
        expected[winners] = 1
        np.testing.assert_array_equal(out, expected)


def test_random_winner_picks_each_crossing_neuron_equally_often(rng):
    pick = jax.jit(random_winner)  # one compiled call per draw, not one dispatch per operation
    for _ in range(10):
        s = (rng.random(9) < 0.5).astype(np.float32)
        spiking = np.flatnonzero(s)
        if spiking.size == 0:
            continue
        chosen = []
        for u in (np.arange(300 * spiking.size) + 0.5) / (300 * spiking.size):  # a uniform grid
            out = np.asarray(pick(jnp.asarray(s), jnp.float32(u)))
            assert out.sum() == 1 and s[out.argmax()] == 1
            chosen.append(out.argmax())
        np.testing.assert_array_equal(np.bincount(chosen, minlength=9)[spiking], 300)
    assert np.asarray(random_winner(jnp.zeros(5), jnp.float32(0.3))).sum() == 0


def test_normalize_rows(rng):
    W = rng.random((5, 9)).astype(np.float32)
    W[2] = 0
    out = np.asarray(normalize_rows(jnp.asarray(W), 3.0))
    for i in range(5):
        expected = W[i] if W[i].sum() == 0 else W[i] * 3.0 / W[i].sum()
        np.testing.assert_allclose(out[i], expected, rtol=1e-6)
    np.testing.assert_allclose(np.asarray(normalize_columns(jnp.asarray(W.T), 3.0)), out.T, rtol=1e-6)


# ---------------------------------------------------------------- full step
def reference_run(W, xs, starts, us, p, cfg):
    """NumPy transcription of the competitive step's documented equations (dense ``W``)."""
    W = W.astype(np.float64).copy()
    n, n_in = W.shape
    theta = np.zeros(n)
    out = []
    for x, start, u in zip(xs.astype(np.float64), starts, us):
        if start:
            v, s1, s2, pending, tpost, refr = (np.zeros(n) for _ in range(6))
            tpre = np.zeros(n_in)
            if cfg.normalize and cfg.learn:
                rs = W.sum(1, keepdims=True)
                W = np.clip(np.where(rs > 0, W * p["norm"] / np.where(rs > 0, rs, 1), W), 0, 1)
        drive = pending if cfg.input_delay else W @ x
        inhibitors = s2 if cfg.inhibition_delay == 2 else s1
        I = drive - p["w_inh"] * (inhibitors.sum() - inhibitors)
        I[refr > 0] = 0
        thr = p["threshold"] + theta
        v_int = p["leak"] * v + I
        crossed = v_int >= thr
        spiking = np.flatnonzero(crossed)
        s = np.zeros(n)
        if cfg.k == 0:
            s[spiking] = 1
        elif cfg.winner == "random":
            if spiking.size:
                s[spiking[int(np.floor(u * spiking.size))]] = 1
        else:
            s[[i for i in np.argsort(-(v_int - thr), kind="stable") if crossed[i]][:cfg.k]] = 1
        v = np.where(crossed, p["v_reset"], v_int)
        refr = np.where(crossed, p["refractory"], np.maximum(refr - 1, 0))
        if cfg.learn:
            theta = p["d_theta"] * theta + p["theta_plus"] * (s if cfg.threshold_rise == "winners" else crossed)
            tpre = np.where(x > 0, 1.0, p["d"] * tpre)       # nearest-spike traces
            tpost = np.where(s > 0, 1.0, p["d"] * tpost)
            W = np.clip(W + p["nu_post"] * np.outer(s, tpre) - p["nu_pre"] * np.outer(tpost, x), 0, 1)
        s1, s2 = s, s1
        pending = W @ x
        out.append(s)
    return W, theta, np.array(out)


def _setup(rng, n_in=12, n=5, T=400):
    p = dict(leak=0.95, threshold=1.5, v_reset=0.2, w_inh=0.8, refractory=2, d_theta=0.99,
             theta_plus=0.2, d=0.8, nu_post=0.08, nu_pre=0.05, norm=4.0)
    params = CompetitiveParams(
        lif=LIFParams(p["leak"], p["threshold"], p["v_reset"]), w_inh=p["w_inh"],
        refractory=float(p["refractory"]), theta=ThetaParams(p["d_theta"], p["theta_plus"]),
        traces=TraceParams(p["d"], p["d"], 1.0, 1.0),
        stdp=STDPParams(1.0, p["nu_post"], p["nu_pre"], WeightBounds(0.0, 1.0, 1.0)), norm=p["norm"])
    W = (0.6 * rng.random((n, n_in))).astype(np.float32)
    xs = (rng.random((T, n_in)) < 0.3).astype(np.float32)
    starts = np.zeros(T, np.float32)
    starts[::50] = 1
    us = rng.random(T).astype(np.float32)
    return p, params, W, xs, starts, us


CONFIGS = [
    dict(k=1, winner="random"),
    dict(k=1, winner="random", threshold_rise="crossings"),         # BindsNET's Diehl & Cook
    dict(k=1, winner="largest", inhibition_delay=1, input_delay=0),
    dict(k=2, winner="largest", normalize=False),
    dict(k=0, winner="largest", inhibition_delay=1),
    dict(k=1, winner="random", learn=False),
]


@pytest.mark.parametrize("options", CONFIGS)
def test_step_matches_numpy_reference_compiled_and_python(rng, options):
    p, params, W, xs, starts, us = _setup(rng)
    cfg = CompetitiveConfig(**options)
    W_ref, theta_ref, s_ref = reference_run(W, xs, starts, us, p, cfg)
    assert s_ref.sum() > 20 and (cfg.k == 0 or s_ref.sum(1).max() <= cfg.k)
    state = CompetitiveState.zeros(W.shape[1], W.shape[0], W=W)
    seq = (input_events(xs, xs.shape[1]), starts, us)
    sc, oc = run_compiled(competitive_step, cfg, params, state, seq, record=True, chunk_size=64)
    sp, op = run_python(competitive_step, cfg, params, state, seq, record=True)
    np.testing.assert_array_equal(oc, s_ref)
    np.testing.assert_array_equal(op, s_ref)
    np.testing.assert_allclose(np.asarray(sc.WT).T, W_ref, atol=1e-5)
    np.testing.assert_allclose(np.asarray(sp.WT), np.asarray(sc.WT), atol=1e-6)
    np.testing.assert_allclose(np.asarray(sc.theta), theta_ref, atol=1e-5)
    if cfg.learn:
        assert np.abs(W_ref - W).max() > 0.1  # large learning rates: the weights really moved


def test_config_errors_name_the_option():
    with pytest.raises(ValueError, match="winner"):
        CompetitiveConfig(winner="first")
    with pytest.raises(ValueError, match="k=2"):
        CompetitiveConfig(k=2, winner="random")
    with pytest.raises(ValueError, match="inhibition_delay"):
        CompetitiveConfig(inhibition_delay=3)
    with pytest.raises(ValueError, match="input_delay"):
        CompetitiveConfig(input_delay=2)
    with pytest.raises(ValueError, match="threshold_rise"):
        CompetitiveConfig(threshold_rise="all")
