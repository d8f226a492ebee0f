"""Song, Miller & Abbott (2000): competitive Hebbian learning through STDP.

1,000 excitatory Poisson inputs at 15 Hz drive one leaky integrate-and-fire neuron
through conductance-based synapses (τ_e = 5 ms, E_e = 0 mV; τ_m = 10 ms, rest -74 mV,
threshold -54 mV, reset -60 mV). Additive pair STDP with τ+ = τ- = 20 ms, A+ = 0.01 gmax
and depression 5% stronger, weights clipped to [0, gmax], gmax = 0.01; dt = 0.1 ms.
The weights start uniform in [0, gmax]: the synapses compete, their distribution becomes
bimodal (most near 0 or near gmax) and the output rate settles.
"""

from __future__ import annotations

import time

import numpy as np

from .. import rules
from ..network import LIF, Network, PoissonInput, Projection, SpikeMonitor, WeightMonitor
from ._plot import figure_folder, save, write_figures

__all__ = ["build", "run"]

GMAX = 0.01


def build(n_inputs: int = 1000, rate_hz: float = 15.0, seed: int = 0, dt: float = 0.1) -> Network:
    """The network of the paper's Figure 1 (as in Brian2's ``examples/synapses/STDP.py``)."""
    a_plus = 0.01 * GMAX
    rule = rules.pair(A_plus=a_plus, A_minus=1.05 * a_plus)
    weights = lambda rng, shape: rng.uniform(0.0, GMAX, shape)  # noqa: E731
    return Network({"inputs": PoissonInput(n_inputs, rates_hz=rate_hz), "neuron": LIF(1)},
                   [Projection("inputs", "neuron", weights=weights, rule=rule, w_max=GMAX, tau_pre=20.0,
                               tau_post=20.0, seed=seed)],
                   dt=dt, seed=seed)


def run(duration_s: float = 100.0, *, seed: int = 0, out=None, progress: bool = True, n_inputs: int = 1000,
        echo=print) -> dict:
    """Simulate ``duration_s`` seconds; returns ``low_fraction`` and ``high_fraction`` (weights
    below 10% and above 90% of gmax at the end), ``rate_hz`` (the output rate over the last
    10% of the run), the final weights, the weight snapshots and the figures written."""
    net = build(n_inputs, seed=seed)
    steps = int(round(duration_s * 1000 / net.dt))
    every = max(1, steps // 100)
    spikes, weights = SpikeMonitor("neuron"), WeightMonitor("inputs->neuron", every=every)
    echo(f"song: {n_inputs} Poisson inputs at 15 Hz onto one LIF neuron, additive STDP, "
         f"{duration_s:g} s at dt = {net.dt} ms ({steps:,} steps)")
    start = time.perf_counter()
    net.run(steps, monitors=[spikes, weights], progress=progress)
    elapsed = time.perf_counter() - start
    W = net.weights("inputs->neuron")[0] / GMAX
    tail = spikes.t >= 0.9 * duration_s * 1000
    rate = tail.sum() / (0.1 * duration_s)
    result = dict(low_fraction=float(np.mean(W < 0.1)), high_fraction=float(np.mean(W > 0.9)), rate_hz=float(rate),
                  weights=W, snapshots=(weights.t, weights.values / GMAX), spike_times=spikes.t, seconds=elapsed,
                  figures=[])
    echo(f"simulated {duration_s:g} s in {elapsed:.1f} s; output rate {rate:.1f} Hz over the last 10%")
    return write_figures(result, lambda r, folder: _figures(r, duration_s, folder), out, echo)


def _figures(res: dict, duration_s: float, out) -> list:
    plt, out = figure_folder(out)
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    axes[0].hist(res["weights"], bins=40, range=(0, 1), color="tab:blue")
    axes[0].set(xlabel="weight / gmax", ylabel="synapses", title="final weights")
    t, snaps = res["snapshots"]
    axes[1].plot(t / 1000, np.mean(snaps < 0.1, axis=1), label="below 0.1 gmax")
    axes[1].plot(t / 1000, np.mean(snaps > 0.9, axis=1), label="above 0.9 gmax")
    axes[1].set(xlabel="time (s)", ylabel="fraction of synapses", title="weights over time", ylim=(0, 1))
    axes[1].legend(loc="upper left")
    bins = np.linspace(0, duration_s, min(100, max(10, int(duration_s))) + 1)
    counts, _ = np.histogram(res["spike_times"] / 1000, bins)
    axes[2].plot(bins[:-1], counts / np.diff(bins), drawstyle="steps-post", color="tab:red")
    axes[2].set(xlabel="time (s)", ylabel="rate (Hz)", title="output rate")
    return [save(plt, fig, out / "song_weights_and_rate.png")]
