"""Masquelier, Guyonneau & Thorpe (2008): one neuron, STDP, a repeating spike pattern.

Input: ``n_afferents`` Poisson afferents at ``rate_hz`` plus ``spont_hz`` spontaneous
spikes. Time is cut into 50 ms windows; windows drawn with probability 1/4 (never two in a
row) replay one frozen 50 ms Poisson snippet on the first half of the afferents.
About a fifth of the windows hold the pattern. The snippet has the same rate as
the noise, so rates carry no information: only the spike timing repeats.

Neuron: the core LIF/STDP step (:func:`~canns_stdp.functional.layer_step.train_step`)
with nearest-spike traces (tau+ = 16.8 ms, tau- = 33.7 ms), A+ = 2^-5,
A- = 0.85 A+, causal pairing, weights in [0, 1], membrane tau 10 ms (1 step = 1 ms),
composed with an adaptive threshold (:mod:`~canns_stdp.functional.homeostasis`) and,
optionally, per-neuron weight normalisation (:mod:`~canns_stdp.functional.normalization`).

Metrics (learning off, on a fresh noise segment with the same pattern): hit rate =
fraction of pattern windows with at least one output spike; false-alarm rate =
fraction of the other windows with at least one spike; latency = first spike time
within a pattern window, over the training presentations.
"""

from __future__ import annotations

import pathlib
from typing import NamedTuple

import jax.numpy as jnp
import numpy as np

from ..functional.homeostasis import ThetaParams, effective_threshold, theta_step
from ..functional.layer_step import LayerConfig, LayerParams, LayerState, forward_step, train_step
from ..functional.neurons import LIFParams
from ..functional.normalization import normalize_rows
from ..functional.stdp import STDPParams, TraceParams
from ..functional.traces import nearest_add
from ..loops import run_compiled
from ..progress import progress_bar

__all__ = ["PATTERN_MS", "make_input", "window_metrics", "MasquelierParams", "masquelier_step",
           "run"]

PATTERN_MS = 50


def make_input(rng, n_windows: int, pattern, n_afferents: int, rate_hz: float, spont_hz: float,
               pattern_prob: float = 0.25):
    """``(spikes float32 (n_windows*50, n_afferents), is_pattern bool (n_windows,))``.

    ``pattern`` is a bool ``(50, n_afferents // 2)`` snippet replayed on the first half
    of the afferents in the pattern windows.
    """
    T = n_windows * PATTERN_MS
    x = rng.random((T, n_afferents)) < rate_hz / 1000.0
    is_pattern = np.zeros(n_windows, bool)
    draws = rng.random(n_windows)
    for i in range(1, n_windows):
        is_pattern[i] = draws[i] < pattern_prob and not is_pattern[i - 1]
    k = pattern.shape[1]
    for w in np.flatnonzero(is_pattern):
        x[w * PATTERN_MS:(w + 1) * PATTERN_MS, :k] = pattern
    x |= rng.random((T, n_afferents)) < spont_hz / 1000.0
    return x.astype(np.float32), is_pattern


def window_metrics(spikes, is_pattern):
    """``(hit_rate, false_alarm_rate, latencies)`` from output spikes ``(T,)`` per 50 ms window."""
    o = np.asarray(spikes).reshape(len(is_pattern), PATTERN_MS) > 0
    fired = o.any(1)
    hit = float(fired[is_pattern].mean()) if is_pattern.any() else float("nan")
    fa = float(fired[~is_pattern].mean()) if (~is_pattern).any() else float("nan")
    lat = np.where(fired[is_pattern], np.argmax(o[is_pattern], 1), np.nan)
    return hit, fa, lat


class MasquelierParams(NamedTuple):
    layer: LayerParams
    theta: ThetaParams
    total: float  # row sum of W after normalisation (<= 0: no normalisation)


def masquelier_step(config: LayerConfig, params: MasquelierParams, state, x, learn=None):
    """Core train step with threshold ``threshold + theta``, then theta and normalisation."""
    layer_state, theta = state
    lif = params.layer.lif._replace(threshold=effective_threshold(params.layer.lif.threshold, theta))
    layer_state, s = train_step(config, params.layer._replace(lif=lif), layer_state, x)
    W = jnp.where(params.total > 0, normalize_rows(layer_state.W, params.total), layer_state.W)
    return (layer_state._replace(W=W), theta_step(params.theta, theta, s)), s


def _forward(config, params: MasquelierParams, state, x):
    layer_state, theta = state
    lif = params.layer.lif._replace(threshold=effective_threshold(params.layer.lif.threshold, theta))
    layer_state, s = forward_step(config, params.layer._replace(lif=lif), layer_state, x)
    return (layer_state, theta), s


def run(*, epochs=None, seed: int = 0, out=None, progress: bool = True, neurons=None,
        n_afferents: int = 1000, seconds_per_epoch: float = 50.0, rate_hz: float = 54.0,
        spont_hz: float = 10.0, threshold: float = 150.0, theta_plus: float = 5.0,
        tau_theta: float = 200.0, total: float = 300.0, test_seconds: float = 20.0,
        echo=print) -> dict:
    """Train for ``epochs * seconds_per_epoch`` s of input, test with learning off."""
    if neurons not in (None, 1):
        raise ValueError(f"the masquelier task uses one neuron, got --neurons {neurons}")
    epochs = epochs or 1
    rng = np.random.default_rng(seed)
    pattern = rng.random((PATTERN_MS, n_afferents // 2)) < rate_hz / 1000.0
    params = MasquelierParams(
        LayerParams(lif=LIFParams(leak=float(np.exp(-1 / 10.0)), threshold=threshold, v_reset=0.0),
                    traces=TraceParams(float(np.exp(-1 / 16.8)), float(np.exp(-1 / 33.7)), 1.0, 1.0),
                    stdp=STDPParams(1.0, 2.0 ** -5, 0.85 * 2.0 ** -5)),
        ThetaParams(float(np.exp(-1 / tau_theta)), theta_plus), total)
    config = LayerConfig(trace_add=nearest_add, pairing="causal")
    w0 = (total / n_afferents) if total > 0 else 0.475
    state = (LayerState.zeros(n_afferents, 1, W=np.full((1, n_afferents), w0, np.float32)),
             jnp.zeros(1))
    W_before = np.asarray(state[0].W[0]).copy()
    windows = 200  # 10 s per generated segment
    n_segments = max(1, int(round(epochs * seconds_per_epoch * 1000 / (windows * PATTERN_MS))))
    echo(f"masquelier: {n_afferents} afferents at {rate_hz:g} Hz + {spont_hz:g} Hz spontaneous; "
         f"a 50 ms pattern on {n_afferents // 2} of them in ~1/5 of the 50 ms windows; "
         f"training {n_segments * windows * PATTERN_MS / 1000:g} s, testing {test_seconds:g} s")
    latencies = []
    with progress_bar(n_segments, progress, "train", unit="10 s") as bar:
        for _ in range(n_segments):
            x, is_pattern = make_input(rng, windows, pattern, n_afferents, rate_hz, spont_hz)
            state, s = run_compiled(masquelier_step, config, params, state, (x,), record=True,
                                    chunk_size=1000)
            latencies.append(window_metrics(s[:, 0], is_pattern)[2])
            if bar is not None:
                bar.update(1)
    latencies = np.concatenate(latencies)
    n_test = max(1, int(test_seconds * 1000 / PATTERN_MS))
    x, is_pattern = make_input(rng, n_test, pattern, n_afferents, rate_hz, spont_hz)
    _, s = run_compiled(_forward, config, params, state, (x,), record=True, chunk_size=1000)
    hit, fa, test_lat = window_metrics(s[:, 0], is_pattern)
    W_after = np.asarray(state[0].W[0])
    k = n_afferents // 2
    echo(f"presentations during training: {len(latencies)}; first spike in "
         f"{np.isfinite(latencies).mean():.2f} of them")
    echo(f"test: hit rate {hit:.2f}, false-alarm rate {fa:.2f}, median latency "
         f"{np.nanmedian(test_lat) if np.isfinite(test_lat).any() else float('nan'):.1f} ms; "
         f"output rate {s.sum() / (len(s) / 1000):.1f} Hz")
    echo(f"mean weight: pattern afferents {W_after[:k].mean():.3f}, others {W_after[k:].mean():.3f}")
    files = []
    if out is not None:
        files = plot(latencies, W_before, W_after, k, pathlib.Path(out), hit, fa)
        for f in files:
            echo(f"figure: {f}")
    return {"hit_rate": hit, "false_alarm_rate": fa, "latencies": latencies,
            "W_before": W_before, "W_after": W_after, "figures": files}


def plot(latencies, W_before, W_after, k, out: pathlib.Path, hit, fa):
    from ._plot import pyplot
    plt = pyplot()
    out.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    ax = axes[0]
    idx = np.arange(len(latencies))
    ax.plot(idx, latencies, ".", ms=3, label="first spike in the pattern")
    miss = ~np.isfinite(latencies)
    ax.plot(idx[miss], np.full(miss.sum(), PATTERN_MS), "|", color="red", ms=6, label="no spike")
    ax.set_xlabel("pattern presentation")
    ax.set_ylabel("latency from pattern start (ms)")
    ax.set_ylim(-2, PATTERN_MS + 3)
    ax.set_title(f"latency over training (test: hit {hit:.2f}, false alarm {fa:.2f})")
    ax.legend(loc="upper right", fontsize=8)
    ax = axes[1]
    ax.plot(W_before, ".", ms=2, color="grey", label="before")
    ax.plot(W_after, ".", ms=2, color="C1", label="after")
    ax.axvline(k - 0.5, color="k", lw=0.8, ls="--")
    ax.set_xlabel(f"afferent (0-{k - 1}: in the pattern)")
    ax.set_ylabel("weight")
    ax.set_title("weights before and after training")
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    path = out / "masquelier.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return [path]
