"""Vogels, Sprekeler, Zenke, Clopath & Gerstner (2011): inhibitory plasticity balances
excitation and inhibition.

8,000 excitatory and 2,000 inhibitory conductance-based LIF neurons (τ_m = 20 ms, rest and
reset -60 mV, threshold -50 mV, refractory 5 ms, a constant input of 20 mV), 2% random
connectivity; excitatory synapses add 0.03 and inhibitory ones 0.3 leak conductances
(τ 5 ms, reversal 0 mV; τ 10 ms, reversal -80 mV). The inhibitory synapses onto
excitatory neurons start at 0 and learn with the rule of :func:`canns_stdp.rules.vogels`
(target 3 Hz, τ 20 ms, η = 1e-3 leak conductances, at most 10) once the first second has
run without plasticity; dt = 0.1 ms. The excitatory rate falls toward the target.
Recurrent projections have a delay of one step (0.1 ms).
"""

from __future__ import annotations

import time

import numpy as np

from .. import rules
from ..network import LIF, Network, Projection, SpikeMonitor, fixed_probability
from ._plot import figure_folder, save, write_figures

__all__ = ["build", "run"]


def build(n_exc: int = 8000, n_inh: int = 2000, seed: int = 0, dt: float = 0.1, p: float = 0.02) -> Network:
    """The network (weights in units of the leak conductance)."""
    neuron = dict(tau_m=20.0, v_rest=-60.0, v_reset=-60.0, v_threshold=-50.0, refractory=5.0, tau_exc=5.0,
                  tau_inh=10.0, E_exc=0.0, E_inh=-80.0, bias=20.0)
    rng = np.random.default_rng(seed)
    pops = {"exc": LIF(n_exc, v_init=rng.uniform(-60.0, -50.0, n_exc), **neuron),
            "inh": LIF(n_inh, v_init=rng.uniform(-60.0, -50.0, n_inh), **neuron)}

    def link(pre, post, weight, receptor, k, **kw):
        return Projection(pre, post, weights=weight, receptor=receptor, delay=1,
                          connectivity=fixed_probability(p, seed=seed * 10 + k), w_max=max(weight, 10.0), **kw)

    projections = [link("exc", "exc", 0.03, "exc", 1), link("exc", "inh", 0.03, "exc", 2),
                   link("inh", "inh", 0.3, "inh", 3),
                   link("inh", "exc", 0.0, "inh", 4, rule=rules.vogels(3.0, 20.0), learning_rate=1e-3,
                        tau_pre=20.0, tau_post=20.0)]
    return Network(pops, projections, dt=dt, seed=seed)


def run(duration_s: float = 10.0, *, seed: int = 0, out=None, progress: bool = True, n_exc: int = 8000,
        n_inh: int = 2000, p: float = 0.02, echo=print) -> dict:
    """One second without plasticity, then ``duration_s - 1`` seconds with it; returns the
    excitatory and inhibitory rates (Hz) of the last second, the rates per 100 ms, the
    final inhibitory weights, and the figures written."""
    net = build(n_exc, n_inh, seed=seed, p=p)
    per_second = int(round(1000 / net.dt))
    exc, inh = SpikeMonitor("exc"), SpikeMonitor("inh")
    echo(f"vogels: {n_exc} excitatory and {n_inh} inhibitory LIF neurons, 2% connectivity, inhibitory "
         f"STDP toward 3 Hz on I->E from 1 s; {duration_s:g} s at dt = {net.dt} ms")
    start = time.perf_counter()
    net.run(per_second, learn=False, monitors=[exc, inh], progress=progress)
    before = net.weights("inh->exc").copy()
    if duration_s > 1:
        net.run(int(round((duration_s - 1) * per_second)), monitors=[exc, inh], progress=progress)
    elapsed = time.perf_counter() - start
    end = duration_s * 1000

    def rate(monitor, n):
        return float(np.sum(monitor.t >= end - 1000) / n)

    bins = np.arange(0, end + 1e-9, 100.0)
    res = dict(exc_rate_hz=rate(exc, n_exc), inh_rate_hz=rate(inh, n_inh), seconds=elapsed,
               rates=(bins[:-1], np.histogram(exc.t, bins)[0] / n_exc * 10, np.histogram(inh.t, bins)[0] / n_inh * 10),
               weights=net.weights("inh->exc"), weights_before=before, spikes=(exc.t, exc.i), figures=[])
    echo(f"simulated {duration_s:g} s in {elapsed:.1f} s")
    return write_figures(res, lambda r, folder: _figures(r, end, folder), out, echo)


def _figures(res: dict, end: float, out) -> list:
    plt, out = figure_folder(out)
    t, i = res["spikes"]
    fig, axes = plt.subplots(2, 2, figsize=(12, 7))
    for ax, (lo, title) in zip(axes[0], ((0.0, "first 200 ms (no plasticity)"), (end - 200.0, "last 200 ms"))):
        shown = (t >= lo) & (t < lo + 200.0) & (i < 500)
        ax.plot(t[shown], i[shown], ".", markersize=1.5, color="k")
        ax.set(xlabel="time (ms)", ylabel="excitatory neuron", title=title, ylim=(0, 500))
    bins, exc_rate, inh_rate = res["rates"]
    axes[1, 0].plot(bins / 1000, exc_rate, label="excitatory")
    axes[1, 0].plot(bins / 1000, inh_rate, label="inhibitory")
    axes[1, 0].axhline(3.0, color="gray", linestyle="--", label="target 3 Hz")
    axes[1, 0].axvline(1.0, color="gray", linestyle=":")
    axes[1, 0].set(xlabel="time (s)", ylabel="rate (Hz)", title="population rates (100 ms bins)", yscale="log")
    axes[1, 0].legend()
    axes[1, 1].hist(res["weights"], bins=50, color="tab:purple")
    axes[1, 1].set(xlabel="inhibitory weight (leak conductances)", ylabel="synapses", title="I→E weights at the end")
    return [save(plt, fig, out / "vogels_balance.png")]
