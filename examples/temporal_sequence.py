"""Temporal sequence learning with STDP.

Thirty inputs fire in a fixed order on every trial: an early group (inputs 0-9),
then a middle group (10-19), then a late group (20-29), with timing jitter and
background noise. A single LIF neuron receives all of them. Its spikes fall
after the early inputs and before the late ones, so STDP potentiates the early
synapses and depresses the late ones; as the early weights grow, the neuron fires
earlier and earlier in the sequence.

Run:  python examples/temporal_sequence.py [--trials 300] [--out out/]
"""

from __future__ import annotations

import argparse
import os

import numpy as np

from canns_stdp import SpikingLayer, STDPTrainer

N_GROUP, TRIAL_STEPS, GAP_STEPS = 10, 30, 20
GROUPS = {"early": slice(0, 10), "middle": slice(10, 20), "late": slice(20, 30)}


def make_trials(n_trials: int, rng: np.random.Generator, noise_rate: float = 0.005) -> np.ndarray:
    """Input spikes ``(n_trials * (TRIAL_STEPS + GAP_STEPS), 30)``."""
    n_in = 3 * N_GROUP
    steps = TRIAL_STEPS + GAP_STEPS
    xs = (rng.random((n_trials * steps, n_in)) < noise_rate).astype(np.float32)
    onset = np.repeat([2, 10, 18], N_GROUP)  # group onsets within a trial
    for k in range(n_trials):
        t = k * steps + onset + rng.integers(0, 4, n_in)  # jitter of up to 3 steps
        xs[t, np.arange(n_in)] = 1.0
    return xs


def first_spike_latency(spikes: np.ndarray) -> np.ndarray:
    """First output spike time within each trial (NaN when the neuron stays silent)."""
    per_trial = spikes[:, 0].reshape(-1, TRIAL_STEPS + GAP_STEPS)[:, :TRIAL_STEPS]
    fired = per_trial.any(axis=1)
    return np.where(fired, per_trial.argmax(axis=1), np.nan)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="out")
    args = parser.parse_args(argv)

    rng = np.random.default_rng(args.seed)
    layer = SpikingLayer(input_size=3 * N_GROUP, output_size=1, threshold=1.0, leak=0.9,
                         tau_pre=5.0, tau_post=5.0, W_init=np.full((1, 3 * N_GROUP), 0.06, np.float32))
    trainer = STDPTrainer(layer, learning_rate=1.0, A_plus=0.02, A_minus=0.021, w_min=0.0, w_max=0.3)

    W_before = np.asarray(layer.W.value)[0].copy()
    xs = make_trials(args.trials, rng)
    spikes = np.asarray(trainer.train(xs, return_spikes=True, progress=True))
    W_after = np.asarray(layer.W.value)[0]
    latency = first_spike_latency(spikes)

    result = {name: float(W_after[s].mean()) for name, s in GROUPS.items()}
    q = max(1, args.trials // 10)
    result["latency_first"] = float(np.nanmean(latency[:q]))
    result["latency_last"] = float(np.nanmean(latency[-q:]))
    print("mean weight by group:  " + "  ".join(f"{k} {result[k]:.3f}" for k in GROUPS))
    print(f"first-spike latency: {result['latency_first']:.1f} steps (first 10% of trials) "
          f"-> {result['latency_last']:.1f} steps (last 10%)")

    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no figure (pip install 'canns_stdp[plot]')")
        return result
    os.makedirs(args.out, exist_ok=True)
    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    steps = TRIAL_STEPS + GAP_STEPS
    last = slice(len(xs) - steps, len(xs) - GAP_STEPS)
    t_in, i_in = np.nonzero(xs[last])
    axes[0].scatter(t_in, i_in, s=8, c="k", label="input spikes")
    for t in np.nonzero(spikes[last, 0])[0]:
        axes[0].axvline(t, color="tab:red", lw=1.5, label="output spike")
    handles, labels = axes[0].get_legend_handles_labels()
    axes[0].legend(dict(zip(labels, handles)).values(), dict(zip(labels, handles)).keys(), loc="upper left")
    axes[0].set(xlabel="time in trial (steps)", ylabel="input", title="last trial")
    axes[1].bar(np.arange(3 * N_GROUP) - 0.2, W_before, width=0.4, label="before", color="0.6")
    axes[1].bar(np.arange(3 * N_GROUP) + 0.2, W_after, width=0.4, label="after", color="tab:blue")
    axes[1].set(xlabel="input (early | middle | late)", ylabel="weight", title="weights")
    axes[1].legend()
    axes[2].plot(latency, ".", ms=3)
    axes[2].set(xlabel="trial", ylabel="first output spike (steps)", title="response latency",
                ylim=(0, TRIAL_STEPS))
    fig.tight_layout()
    path = os.path.join(args.out, "temporal_sequence.png")
    fig.savefig(path, dpi=120)
    print(f"figure: {path}")
    return result


if __name__ == "__main__":
    main()
