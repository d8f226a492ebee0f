"""Masquelier, Guyonneau & Thorpe (2008): one neuron, STDP, a repeating spike pattern.

Input (:func:`make_input`): ``n_afferents`` afferents, each an inhomogeneous Poisson
process whose rate ``r`` wanders in [0, 90] Hz (its speed ``ds/dt`` changes by a random
amount in ±360 Hz/s each ms and is clipped to ±1800 Hz/s), at least one spike in every
50 ms window (one added at a random time where needed), plus 10 Hz spontaneous spikes
everywhere. A 50 ms snippet of the same process on the first half of the afferents is
pasted into 50 ms windows drawn with probability 1/3, never two in a row (a quarter of
the time holds the pattern); the spontaneous spikes are added on top, so the pattern
afferents have the same rate statistics inside and outside the pattern.

Neuron and rule (:func:`~canns_stdp.functional.psp.psp_train_step`), as in the paper:
the double-exponential PSP (tau_m = 10 ms, tau_s = 2.5 ms, peak 1) as a two-variable
LIF; threshold 500 for 2000 afferents (scaled by ``n_afferents / 2000`` by default);
after a spike the inputs are forgotten and the membrane follows the afterpotential
``eta(s) = threshold (2 exp(-s/tau_m) - 4 (exp(-s/tau_m) - exp(-s/tau_s)))``; weights in
[0, 1] starting at 0.475; restricted nearest-spike additive STDP (each spike paired once),
tau+ = 16.8 ms, tau- = 33.7 ms, A+ = 2^-5, A- = 0.85 A+.

What the paper leaves to the implementation, with 1 ms steps: an input acts on the
membrane from the next step (the kernel sampled at s = 1, 2, ... ms), and a pre and a
post spike in the same step are not paired. Measured at 2000 afferents, 60 s: pairing
them as pre-before-post (full A+) made LTP win (every weight went to 1, the neuron fired
everywhere); as post-before-pre (full A-) the neuron fell silent before it found the
pattern in 4 of 6 seeds; not pairing them, it found the pattern in 5 of 6 seeds.

Default run: the paper's 2000 afferents, 150 s of training (the paper: 450 s), 20 s of
test. Metrics (learning off, on a fresh segment with the same pattern): hit rate =
fraction of pattern windows with at least one output spike; false-alarm rate = fraction
of the other windows with at least one spike; latency = first spike time within a
pattern window, over the training presentations.
"""

from __future__ import annotations

import pathlib

import numpy as np

from ..functional.dependence import WeightBounds
from ..functional.psp import PSPConfig, PSPLayerParams, PSPState, psp_params, psp_train_step
from ..functional.stdp import STDPParams, TraceParams
from ..loops import run_compiled
from ..progress import progress_bar

__all__ = ["PATTERN_MS", "RateProcess", "make_pattern", "make_input", "window_metrics",
           "task_params", "run"]

PATTERN_MS = 50
R_MAX, S_MAX, DS_MAX = 90.0, 1800.0, 360.0  # Hz, Hz/s, Hz/s per ms


class RateProcess:
    """Rates of the afferents (Hz), carried across segments: ``r`` in [0, 90], speed ``s``."""

    def __init__(self, rng, n_afferents: int):
        self.r = rng.uniform(0.0, R_MAX, n_afferents)
        self.s = rng.uniform(-S_MAX, S_MAX, n_afferents)

    def spikes(self, rng, T: int):
        """Bool ``(T, n)`` Poisson spikes, at least one per afferent per 50 ms window."""
        n = self.r.shape[0]
        rates = np.empty((T, n))
        r, s = self.r, self.s
        for t in range(T):
            rates[t] = r
            s = np.clip(s + rng.uniform(-DS_MAX, DS_MAX, n), -S_MAX, S_MAX)
            r = np.clip(r + s / 1000.0, 0.0, R_MAX)
        self.r, self.s = r, s
        x = rng.random((T, n)) < rates / 1000.0
        w = x.reshape(T // PATTERN_MS, PATTERN_MS, n)
        silent = np.argwhere(~w.any(1))
        w[silent[:, 0], rng.integers(0, PATTERN_MS, len(silent)), silent[:, 1]] = True
        return x


def make_pattern(rng, n_afferents: int):
    """Bool ``(50, n_afferents // 2)``: one 50 ms window of the input process (without
    spontaneous spikes) on the first half of the afferents."""
    k = n_afferents // 2
    proc = RateProcess(rng, k)
    proc.spikes(rng, 4 * PATTERN_MS)  # let the speeds forget their initial draw
    return proc.spikes(rng, PATTERN_MS)


def make_input(rng, n_windows: int, pattern, process: RateProcess, spont_hz: float = 10.0,
               pattern_prob: float = 1 / 3):
    """``(spikes float32 (n_windows*50, n), is_pattern bool (n_windows,))``.

    ``process`` generates the afferents' activity (and is advanced); ``pattern`` (bool
    ``(50, k)``) replaces the first ``k`` afferents in the pattern windows; spontaneous
    spikes at ``spont_hz`` are added everywhere afterwards.
    """
    T = n_windows * PATTERN_MS
    x = process.spikes(rng, T)
    is_pattern = np.zeros(n_windows, bool)
    draws = rng.random(n_windows)
    for i in range(1, n_windows):
        is_pattern[i] = draws[i] < pattern_prob and not is_pattern[i - 1]
    k = pattern.shape[1]
    for w in np.flatnonzero(is_pattern):
        x[w * PATTERN_MS:(w + 1) * PATTERN_MS, :k] = pattern
    x |= rng.random(x.shape) < spont_hz / 1000.0
    return x.astype(np.float32), is_pattern


def window_metrics(spikes, is_pattern):
    """``(hit_rate, false_alarm_rate, latencies)`` from output spikes ``(T,)`` per 50 ms window."""
    o = np.asarray(spikes).reshape(len(is_pattern), PATTERN_MS) > 0
    fired = o.any(1)
    hit = float(fired[is_pattern].mean()) if is_pattern.any() else float("nan")
    fa = float(fired[~is_pattern].mean()) if (~is_pattern).any() else float("nan")
    lat = np.where(fired[is_pattern], np.argmax(o[is_pattern], 1), np.nan)
    return hit, fa, lat


def task_params(threshold: float, a_plus: float = 2.0 ** -5, a_minus_ratio: float = 0.85,
                k1: float = 2.0, k2: float = 4.0):
    """``(PSPConfig, PSPLayerParams)`` of the paper's neuron and rule (1 step = 1 ms)."""
    params = PSPLayerParams(
        psp_params(tau_m=10.0, tau_s=2.5, threshold=threshold, k1=k1, k2=k2),
        TraceParams(float(np.exp(-1 / 16.8)), float(np.exp(-1 / 33.7)), 1.0, 1.0),
        STDPParams(1.0, a_plus, a_minus_ratio * a_plus, WeightBounds(0.0, 1.0)))
    return PSPConfig(), params


def run(*, epochs=None, seed: int = 0, out=None, progress: bool = True, neurons=None,
        n_afferents: int = 2000, seconds_per_epoch: float = 50.0, spont_hz: float = 10.0,
        threshold=None, w_init: float = 0.475, test_seconds: float = 20.0,
        echo=print) -> dict:
    """Train for ``epochs * seconds_per_epoch`` s of input (default 3 x 50 s), then test
    ``test_seconds`` with learning off. Prints what it does; returns a dict with
    ``hit_rate``, ``false_alarm_rate``, ``latencies`` (per training presentation, NaN
    when the neuron did not fire), ``W_before``, ``W_after`` and ``figures``.

    ``threshold`` defaults to the paper's 500 scaled by ``n_afferents / 2000``.

    Example:
        >>> from canns_stdp.tasks import masquelier
        >>> res = masquelier.run(n_afferents=1000, seconds_per_epoch=40, epochs=1)  # doctest: +SKIP
    """
    if neurons not in (None, 1):
        raise ValueError(f"the masquelier task uses one neuron, got --neurons {neurons}")
    epochs = epochs or 3
    threshold = 500.0 * n_afferents / 2000 if threshold is None else float(threshold)
    rng = np.random.default_rng(seed)
    pattern = make_pattern(rng, n_afferents)
    process = RateProcess(rng, n_afferents)
    config, params = task_params(threshold)
    state = PSPState.zeros(n_afferents, 1, W=np.full((1, n_afferents), w_init, np.float32))
    W_before = np.asarray(state.W[0]).copy()
    windows = 200  # 10 s per generated segment
    n_segments = max(1, int(round(epochs * seconds_per_epoch * 1000 / (windows * PATTERN_MS))))
    echo(f"masquelier: {n_afferents} afferents, rates wandering in 0-90 Hz + {spont_hz:g} Hz "
         f"spontaneous; a 50 ms pattern on {n_afferents // 2} of them in 1/4 of the time; "
         f"threshold {threshold:g}; training {n_segments * windows * PATTERN_MS / 1000:g} s, "
         f"testing {test_seconds:g} s")
    latencies = []
    with progress_bar(n_segments, progress, "train", unit="10 s") as bar:
        for _ in range(n_segments):
            x, is_pattern = make_input(rng, windows, pattern, process, spont_hz)
            state, s = run_compiled(psp_train_step, config, params, state, (x,), record=True,
                                    chunk_size=1000)
            latencies.append(window_metrics(s[:, 0], is_pattern)[2])
            if bar is not None:
                bar.update(1)
    latencies = np.concatenate(latencies)
    n_test = max(1, int(test_seconds * 1000 / PATTERN_MS))
    x, is_pattern = make_input(rng, n_test, pattern, process, spont_hz)
    frozen = params._replace(stdp=params.stdp._replace(lr=0.0))
    _, s = run_compiled(psp_train_step, config, frozen, state, (x,), record=True, chunk_size=1000)
    hit, fa, test_lat = window_metrics(s[:, 0], is_pattern)
    W_after = np.asarray(state.W[0])
    k = n_afferents // 2
    echo(f"presentations during training: {len(latencies)}; first spike in "
         f"{np.isfinite(latencies).mean():.2f} of them")
    echo(f"test: hit rate {hit:.2f}, false-alarm rate {fa:.2f}, median latency "
         f"{np.nanmedian(test_lat) if np.isfinite(test_lat).any() else float('nan'):.1f} ms; "
         f"output rate {s.sum() / (len(s) / 1000):.1f} Hz")
    echo(f"weights: pattern afferents mean {W_after[:k].mean():.3f} ({(W_after[:k] > 0.5).sum()} "
         f"above 0.5), others mean {W_after[k:].mean():.3f} ({(W_after[k:] > 0.5).sum()} above 0.5)")
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
    ax.plot(idx[miss], np.full(miss.sum(), PATTERN_MS + 1), "|", color="red", ms=5, alpha=0.6,
            label="no spike in the pattern")
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
