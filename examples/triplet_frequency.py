"""Pfister & Gerstner (2006), central result: the pairing-frequency dependence of STDP.

60 pre/post pairs with Δt = t_post − t_pre = +10 ms or −10 ms, repeated at a pairing
frequency ρ from 0.1 to 50 Hz (Sjöström et al. 2001's protocol, visual cortex).
A pair rule gives depression for post-pre pairs (Δt = −10 ms) at every frequency (and,
all-to-all, its pre-post potentiation even turns into depression at high frequency,
where the long LTD window of each pre spike reaches the previous pairs' post spikes).
The triplet rule (the paper's visual-cortex parameters) turns post-pre pairs into
potentiation at high frequency, and makes pre-post potentiation grow with frequency,
as in the data of Sjöström et al. (2001).

Prints the weight changes and writes ``triplet_frequency.png`` to ``--out``.

Run:  python examples/triplet_frequency.py [--out out] [--version all_to_all|nearest]
"""

from __future__ import annotations

import argparse
import pathlib

import numpy as np

from canns_stdp import SpikingLayer, STDPTrainer, TripletSTDPTrainer
from canns_stdp.functional.triplet import triplet_parameters

FREQUENCIES = (0.1, 1.0, 5.0, 10.0, 20.0, 25.0, 30.0, 40.0, 50.0)
W0 = 0.5
# A pair rule with the same time constants, for comparison (A+ = 6e-3, A- = 7e-3).
PAIR = dict(A_plus=6e-3, A_minus=7e-3)


def pairing_times(rho: float, delta: int, n_pairs: int = 60, start: int = 20):
    """Spike times (ms, integers) of ``n_pairs`` pairs at ``rho`` Hz, post − pre = ``delta``."""
    period = 1000.0 / rho
    pre = start + np.round(np.arange(n_pairs) * period).astype(int)
    return pre, pre + delta


def spike_arrays(pre_times, post_times, dt: float = 1.0):
    """0/1 arrays ``(T, 1)`` with a spike in the steps of the given times."""
    T = int(max(np.max(pre_times), np.max(post_times)) / dt) + 2
    xs, posts = np.zeros((T, 1), np.float32), np.zeros((T, 1), np.float32)
    xs[np.round(np.asarray(pre_times) / dt).astype(int), 0] = 1.0
    posts[np.round(np.asarray(post_times) / dt).astype(int), 0] = 1.0
    return xs, posts


def make_trainer(rule: str = "triplet", data: str = "visual_cortex", version: str = "all_to_all",
                 minimal: bool = False, compiled: bool = True):
    """A one-synapse layer and its trainer (no clipping; post spikes are imposed)."""
    p = triplet_parameters(data, version, minimal)
    layer = SpikingLayer(1, 1, dt=1.0, W_init=[[W0]], **p.layer_kwargs())
    if rule == "triplet":
        trainer = TripletSTDPTrainer(layer, hardbound=False, compiled=compiled, chunk_size=4096,
                                     **p.trainer_kwargs())
    else:
        trainer = STDPTrainer(layer, learning_rate=1.0, hardbound=False,
                              compiled=compiled, chunk_size=4096, **PAIR)
    return layer, trainer


def weight_change(trainer, pre_times, post_times) -> float:
    """Δw after the spike trains, from a fresh state and w = W0."""
    layer = trainer.model
    layer.W.value = np.full((1, 1), W0, np.float32)
    if hasattr(trainer, "r2"):
        trainer.reset_state()
    else:
        layer.reset_state()
    xs, posts = spike_arrays(pre_times, post_times, layer.dt)
    trainer.train(xs, post_spikes=posts)
    return float(np.asarray(layer.W.value)[0, 0]) - W0


def frequency_curves(frequencies=FREQUENCIES, version: str = "all_to_all", n_pairs: int = 60):
    """Δw for Δt = ±10 ms at each frequency, for the triplet and the pair rule."""
    trainers = {"triplet": make_trainer("triplet", version=version)[1],
                "pair": make_trainer("pair", version=version)[1]}
    curves = {}
    for rule, trainer in trainers.items():
        for delta in (10, -10):
            curves[(rule, delta)] = np.array(
                [weight_change(trainer, *pairing_times(rho, delta, n_pairs)) for rho in frequencies]
            )
    return curves


def plot(frequencies, curves, path, version):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    style = {("triplet", 10): ("C3", "-", "o"), ("triplet", -10): ("C0", "-", "s"),
             ("pair", 10): ("C3", ":", "o"), ("pair", -10): ("C0", ":", "s")}
    for (rule, delta), values in curves.items():
        color, ls, marker = style[(rule, delta)]
        ax.plot(frequencies, 100 * values, ls=ls, color=color, marker=marker, mfc="white",
                label=f"{rule} rule, Δt = {delta:+d} ms")
    ax.axhline(0, color="0.5", lw=0.8)
    ax.set_xlabel("pairing frequency ρ (Hz)")
    ax.set_ylabel("weight change after 60 pairs (% of w_max)")
    ax.set_title(f"Frequency dependence: triplet ({version.replace('_', '-')}, visual cortex) vs pair")
    ax.legend(frameon=False, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="out", help="folder for the figure")
    parser.add_argument("--version", default="all_to_all", choices=("all_to_all", "nearest"))
    parser.add_argument("--frequencies", type=float, nargs="+", default=FREQUENCIES)
    args = parser.parse_args(argv)
    freqs = tuple(args.frequencies)

    curves = frequency_curves(freqs, args.version)
    print("rho (Hz)  triplet +10  triplet -10   pair +10   pair -10   (Δw in % of w_max)")
    for i, rho in enumerate(freqs):
        row = [100 * curves[k][i] for k in (("triplet", 10), ("triplet", -10), ("pair", 10), ("pair", -10))]
        print(f"{rho:7.1f}  " + "  ".join(f"{r:+10.2f}" for r in row))
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        print("matplotlib is not installed (pip install 'canns_stdp[plot]'): no figure written")
    else:
        out = pathlib.Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        plot(freqs, curves, out / "triplet_frequency.png", args.version)
        print(f"figure: {out / 'triplet_frequency.png'}")
    return {"frequencies": freqs, "curves": curves}


if __name__ == "__main__":
    main()
