"""Distal reward (Izhikevich 2007): R-STDP finds the one synapse that earns a delayed reward.

``n_in`` inputs and ``n_out`` neurons fire as independent Poisson trains (the neurons'
spikes are imposed, standing in for the activity of a network). One synapse,
input ``j* = 0`` → neuron ``i* = 0``, is singled out: whenever neuron ``i*`` fires
within ``window`` ms after input ``j*``, a dopamine pulse is released after a random
delay (1-3 s by default, as in Izhikevich 2007). Hundreds of other pre/post pairings
happen in between, so the reward alone cannot tell which synapse earned it; the
slowly decaying eligibility ``c`` (τ_c = 1 s) keeps a memory of the pairing long
enough for the delayed dopamine to credit it, and the rewarded synapse climbs to
``w_max`` while the others wander around their initial value.

Rule (docs/step.md, "Reward-modulated rules", R-STDP with a dopamine trace, 1 ms steps):
``c' = exp(−1/τ_c) c + ζ``, ``D' = exp(−1/τ_d) D + r``, ``ΔW = lr · D' · c'``.

Run:  python examples/reward_distal.py [--seconds 3000] [--out out/]
      (about half a minute on a laptop CPU; ``--seconds 400 --delay-min 200
      --delay-max 600 --lr 1.5e-4`` is the scaled-down version the tests run)
"""

from __future__ import annotations

import argparse
import os

import numpy as np

from canns_stdp import RewardSTDPTrainer, SpikingLayer

TARGET = (0, 0)


def make_task(seconds: float, n_in: int, n_out: int, rate_hz: float, rng: np.random.Generator,
              window: int = 10, delay=(1000, 3000), pulse: float = 0.5):
    """Input spikes, imposed output spikes and the dopamine released per 1 ms step.

    Returns ``(xs (T, n_in), posts (T, n_out), release (T,), reward_times)``.
    """
    T = int(seconds * 1000)
    p = rate_hz / 1000.0
    xs = (rng.random((T, n_in)) < p).astype(np.float32)
    posts = (rng.random((T, n_out)) < p).astype(np.float32)
    i, j = TARGET
    release = np.zeros(T, np.float32)
    pre_times = np.flatnonzero(xs[:, j])
    reward_times = []
    for t in np.flatnonzero(posts[:, i]):
        k = np.searchsorted(pre_times, t)  # pre_times[k - 1]: the last pre spike before t
        if k and t - pre_times[k - 1] <= window:
            t_reward = t + int(rng.integers(delay[0], delay[1] + 1))
            if t_reward < T:
                release[t_reward] += pulse
                reward_times.append(t_reward)
    return xs, posts, release, np.array(reward_times, int)


def train(seconds: float = 3000.0, n_in: int = 50, n_out: int = 10, rate_hz: float = 5.0,
          delay=(1000, 3000), learning_rate: float = 1e-4, seed: int = 0, compiled: bool = True,
          shuffle_reward: bool = False, segments: int = 50):
    """Train; returns a dict with the weights before/after and the target's trajectory.

    ``shuffle_reward=True`` is the control: the same dopamine pulses, shifted in time
    by a random offset so that they no longer follow the rewarded pairings.
    """
    rng = np.random.default_rng(seed)
    xs, posts, release, reward_times = make_task(seconds, n_in, n_out, rate_hz, rng, delay=delay)
    if shuffle_reward:
        release = np.roll(release, int(rng.integers(len(release) // 4, 3 * len(release) // 4)))
    layer = SpikingLayer(input_size=n_in, output_size=n_out, tau_pre=20.0, tau_post=20.0,
                         W_init=np.full((n_out, n_in), 0.5, np.float32))
    trainer = RewardSTDPTrainer(layer, rule="rstdp", learning_rate=learning_rate,
                                A_plus=1.0, A_minus=1.05, tau_c=1000.0, tau_d=200.0,
                                w_min=0.0, w_max=1.0, compiled=compiled, pairing="causal")
    W_before = np.asarray(layer.W.value).copy()
    bounds = np.linspace(0, len(xs), segments + 1).astype(int)
    times, target, p99 = [0.0], [W_before[TARGET]], [float(np.percentile(W_before, 99))]
    for a, b in zip(bounds[:-1], bounds[1:]):  # train() continues where it stopped
        trainer.train(xs[a:b], reward=release[a:b], post_spikes=posts[a:b])
        W = np.asarray(layer.W.value)
        times.append(b / 1000.0)
        target.append(float(W[TARGET]))
        p99.append(float(np.percentile(np.delete(W.ravel(), np.ravel_multi_index(TARGET, W.shape)), 99)))
    W = np.asarray(layer.W.value)
    others = np.delete(W.ravel(), np.ravel_multi_index(TARGET, W.shape))
    return {
        "W_before": W_before, "W": W, "others": others, "n_rewards": len(reward_times),
        "target": float(W[TARGET]), "others_mean": float(others.mean()),
        "others_p99": float(np.percentile(others, 99)),
        "times": np.array(times), "target_history": np.array(target), "p99_history": np.array(p99),
    }


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=3000.0)
    parser.add_argument("--inputs", type=int, default=50)
    parser.add_argument("--neurons", type=int, default=10)
    parser.add_argument("--delay-min", type=int, default=1000, help="ms")
    parser.add_argument("--delay-max", type=int, default=3000, help="ms")
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="out")
    args = parser.parse_args(argv)

    delay = (args.delay_min, args.delay_max)
    res = train(args.seconds, args.inputs, args.neurons, delay=delay, learning_rate=args.lr,
                seed=args.seed)
    print(f"{res['n_rewards']} rewards in {args.seconds:.0f} s (delay {delay[0]}-{delay[1]} ms); "
          f"rewarded synapse 0.500 -> {res['target']:.3f}; other {res['others'].size} synapses: "
          f"mean {res['others_mean']:.3f}, 99th percentile {res['others_p99']:.3f}")
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed (pip install 'canns_stdp[plot]'): no figure")
        return res
    os.makedirs(args.out, exist_ok=True)
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4))
    a.plot(res["times"], res["target_history"], color="C3", lw=2, label="rewarded synapse")
    a.plot(res["times"], res["p99_history"], color="0.4", ls="--", label="others: 99th percentile")
    a.set_xlabel("time (s)")
    a.set_ylabel("weight")
    a.set_ylim(-0.02, 1.02)
    a.legend(loc="upper left")
    a.set_title(f"R-STDP, {res['n_rewards']} rewards delayed {delay[0]}-{delay[1]} ms")
    b.hist(res["others"], bins=40, color="0.6", label="other synapses")
    b.axvline(res["target"], color="C3", lw=2, label="rewarded synapse")
    b.set_xlabel("final weight")
    b.set_ylabel("synapses")
    b.set_xlim(-0.02, 1.02)
    b.legend()
    b.set_title("final weights")
    fig.tight_layout()
    path = os.path.join(args.out, "reward_distal.png")
    fig.savefig(path, dpi=120)
    print(f"saved {path}")
    return res


if __name__ == "__main__":
    main()
