"""Izhikevich (2006): polychronization in a network with axonal conduction delays.

800 excitatory (regular spiking: a = 0.02, d = 8) and 200 inhibitory (fast spiking:
a = 0.1, d = 2) Izhikevich neurons; every neuron has 100 outgoing synapses to random
targets (inhibitory ones onto excitatory neurons only). Excitatory synapses start at 6 mV
with axonal delays of 1 to 20 ms (5 synapses per delay), inhibitory ones at 5 mV with 1 ms.
Excitatory synapses learn by STDP (A+ = 0.1, A- = 0.12, τ = 20 ms) accumulated in a
derivative ``sd`` and applied once a second, ``w += 0.01 + sd`` clipped to [0, 10], then
``sd *= 0.9`` (:func:`canns_stdp.rules.slow_stdp`). A random neuron receives a 20 mV
thalamic input every ms (Poisson, 1 Hz per neuron); dt = 1 ms, ``v`` in two
half-millisecond steps. The weights go bimodal and a gamma rhythm (30-100 Hz) appears in
the population rate.
"""

from __future__ import annotations

import time
import numpy as np

from ..network import Izhikevich, Network, PoissonInput, PopulationRateMonitor, Projection, SpikeMonitor, Sparse
from ..rules.slow import SlowSTDP, slow_stdp
from ._plot import figure_folder, save, write_figures

__all__ = ["SlowSTDP", "build", "run"]


def _outgoing(rng, n_sources, targets, k, exclude_self_offset=None):
    """``k`` distinct random targets per source: (pre, post) index arrays."""
    pre, post = [], []
    for j in range(n_sources):
        choices = targets if exclude_self_offset is None else targets[targets != j + exclude_self_offset]
        chosen = rng.choice(choices, size=k, replace=False)
        pre.append(np.full(k, j))
        post.append(chosen)
    return np.concatenate(pre), np.concatenate(post)


def build(seed: int = 0, n_exc: int = 800, n_inh: int = 200, synapses: int = 100, max_delay: int = 20) -> Network:
    rng = np.random.default_rng(seed)
    n = n_exc + n_inh
    pre, post = _outgoing(rng, n_exc, np.arange(n), synapses, exclude_self_offset=0)
    delays = np.tile(np.repeat(np.arange(1, max_delay + 1), synapses // max_delay), n_exc)[:pre.size]
    to_exc = post < n_exc
    i_pre, i_post = _outgoing(rng, n_inh, np.arange(n_exc), synapses)
    rule = slow_stdp()
    trace = dict(tau_pre=20.0, tau_post=20.0, a_pre=1.0, a_post=1.0)

    def excitatory(target, mask, shift):
        order = np.lexsort((pre[mask], post[mask] - shift))
        return Projection("exc", target, connectivity=Sparse(pre[mask][order], post[mask][order] - shift),
                          weights=6.0, delay=delays[mask][order].astype(np.int32), rule=rule, w_max=10.0,
                          learning_rate=1.0, **trace)

    thalamus = np.arange(n)
    return Network(
        {"thalamus": PoissonInput(n, rates_hz=1.0),
         "exc": Izhikevich(n_exc, a=0.02, b=0.2, c=-65.0, d=8.0),
         "inh": Izhikevich(n_inh, a=0.1, b=0.2, c=-65.0, d=2.0)},
        [excitatory("exc", to_exc, 0), excitatory("inh", ~to_exc, n_exc),
         Projection("inh", "exc", connectivity=Sparse(i_pre, i_post), weights=5.0, receptor="inh", delay=1),
         Projection("thalamus", "exc", connectivity=Sparse(thalamus[:n_exc], thalamus[:n_exc]), weights=20.0),
         Projection("thalamus", "inh", connectivity=Sparse(thalamus[n_exc:], thalamus[:n_inh]), weights=20.0)],
        dt=1.0, seed=seed)


def run(duration_s: float = 60.0, *, seed: int = 0, out=None, progress: bool = True, echo=print) -> dict:
    """Simulate ``duration_s`` seconds; returns ``gamma_peak_hz`` (the peak of the excitatory
    population rate's spectrum in 30-100 Hz over the last 10 s, or the run if shorter),
    ``high_fraction`` (excitatory weights above 9 mV of 10 at the end), the weights and the
    figures written."""
    net = build(seed)
    steps = int(round(duration_s * 1000))
    spikes, rate = SpikeMonitor("exc"), PopulationRateMonitor("exc")
    inh_spikes = SpikeMonitor("inh")
    echo(f"izhikevich: 800 excitatory and 200 inhibitory neurons, 100 synapses each, delays 1-20 ms, "
         f"slow STDP; {duration_s:g} s at dt = 1 ms")
    start = time.perf_counter()
    net.run(steps, monitors=[spikes, inh_spikes, rate], progress=progress)
    elapsed = time.perf_counter() - start
    W = np.concatenate([net.weights("exc->exc"), net.weights("exc->inh")])
    tail = rate.rate[-min(steps, 10_000):]
    freqs = np.fft.rfftfreq(tail.size, d=1e-3)
    power = np.abs(np.fft.rfft(tail - tail.mean())) ** 2
    band = (freqs >= 30) & (freqs <= 100)
    res = dict(gamma_peak_hz=float(freqs[band][np.argmax(power[band])]), high_fraction=float(np.mean(W > 9.0)),
               weights=W, spectrum=(freqs, power), spikes=(spikes.t, spikes.i, inh_spikes.t, inh_spikes.i),
               seconds=elapsed, figures=[])
    echo(f"simulated {duration_s:g} s in {elapsed:.1f} s")
    return write_figures(res, lambda r, folder: _figures(r, duration_s, folder), out, echo)


def _figures(res: dict, duration_s: float, out) -> list:
    plt, out = figure_folder(out)
    fig, axes = plt.subplots(1, 3, figsize=(14, 3.8))
    t, i, ti, ii = res["spikes"]
    lo = duration_s * 1000 - 1000
    shown, shown_i = t >= lo, ti >= lo
    axes[0].plot(t[shown] - lo, i[shown], ".", ms=1, color="k", label="excitatory")
    axes[0].plot(ti[shown_i] - lo, ii[shown_i] + 800, ".", ms=1, color="tab:red", label="inhibitory")
    axes[0].set(xlabel="time in the last second (ms)", ylabel="neuron", title="raster", ylim=(0, 1000))
    axes[1].hist(res["weights"], bins=50, range=(0, 10), color="tab:blue")
    axes[1].set(xlabel="excitatory weight (mV)", ylabel="synapses", title="weights at the end")
    freqs, power = res["spectrum"]
    keep = (freqs > 1) & (freqs <= 150)
    axes[2].plot(freqs[keep], power[keep], color="tab:green")
    axes[2].axvspan(30, 100, color="tab:green", alpha=0.1, label="gamma band")
    axes[2].set(xlabel="frequency (Hz)", ylabel="power (a.u.)", title="excitatory rate spectrum", yscale="log")
    axes[2].legend()
    return [save(plt, fig, out / "izhikevich_polychronization.png")]
