"""Florian (2007), Fig. 1: one synapse under STDP, MSTDP and MSTDPET.

Presynaptic spikes at 10, 85, 115 and 135 ms; postsynaptic spikes imposed at 15, 75,
110 and 140 ms; reward +1 up to 100 ms and −1 after; τ = 20 ms for both traces,
τ_z = 25 ms, initial weight 0.2, 200 steps of 1 ms.

* STDP changes the weight at every pairing: ``ΔW = lr · ζ``.
* MSTDP changes it at the same moments, with the sign of the reward: ``ΔW = lr · r · ζ``
  (the pre-before-post pair at 110 ms now depresses the synapse).
* MSTDPET lets ``ζ`` charge an eligibility trace ``z`` (``z' = e^{-1/τ_z} z + ζ/τ_z``)
  and changes the weight continuously, ``ΔW = lr · r · z'``. Once the reward turns
  negative at 100 ms, the negative eligibility left by the post-before-pre pair at
  85 ms potentiates, and the positive one of the pair at 135/140 ms depresses.

STDP and MSTDP coincide while the reward is +1 (STDP is drawn dashed).

Run:  python examples/reward_florian.py [--out out/]
"""

from __future__ import annotations

import argparse
import os

import numpy as np

from canns_stdp import RewardSTDPTrainer, SpikingLayer, STDPTrainer

T = 200
PRE_TIMES = (10, 85, 115, 135)
POST_TIMES = (15, 75, 110, 140)
TAU, TAU_Z, W0 = 20.0, 25.0, 0.2
LR, A_PLUS, A_MINUS = 0.1, 1.0, 1.0


def protocol():
    """``(xs (T, 1), posts (T, 1), reward (T,))`` of the demonstration."""
    xs = np.zeros((T, 1), np.float32)
    xs[list(PRE_TIMES), 0] = 1.0
    posts = np.zeros((T, 1), np.float32)
    posts[list(POST_TIMES), 0] = 1.0
    reward = np.where(np.arange(T) < 100, 1.0, -1.0).astype(np.float32)
    return xs, posts, reward


def run(compiled: bool = True) -> dict:
    """Weight trajectories ``(T + 1,)`` of the three rules, plus the traces of MSTDPET."""
    xs, posts, reward = protocol()
    out = {"pre": xs[:, 0], "post": posts[:, 0], "reward": reward}
    for rule in ("stdp", "mstdp", "mstdpet"):
        layer = SpikingLayer(input_size=1, output_size=1, tau_pre=TAU, tau_post=TAU,
                             W_init=np.full((1, 1), W0, np.float32))
        common = dict(learning_rate=LR, A_plus=A_PLUS, A_minus=A_MINUS, w_min=0.0, w_max=1.0,
                      compiled=compiled, chunk_size=16)
        if rule == "stdp":
            trainer = STDPTrainer(layer, **common)
        else:
            trainer = RewardSTDPTrainer(layer, rule=rule, tau_z=TAU_Z, **common)
        W, pre_tr, post_tr, elig = [W0], [], [], []
        for t in range(T):  # one step per call: the state carries over between calls
            if rule == "stdp":
                trainer.train(xs[t:t + 1], post_spikes=posts[t:t + 1])
            else:
                trainer.train(xs[t:t + 1], reward=reward[t], post_spikes=posts[t:t + 1])
                elig.append(float(trainer.eligibility.value[0, 0]))
            W.append(float(layer.W.value[0, 0]))
            pre_tr.append(float(layer.trace_pre.value[0]))
            post_tr.append(float(layer.trace_post.value[0]))
        out[rule] = np.array(W)
        out["trace_pre"], out["trace_post"] = np.array(pre_tr), np.array(post_tr)
        if rule != "stdp":
            out[f"eligibility_{rule}"] = np.array(elig)
    return out


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="out")
    args = parser.parse_args(argv)
    res = run()
    for rule in ("stdp", "mstdp", "mstdpet"):
        print(f"{rule:8s} final weight {res[rule][-1]:.4f}")
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed (pip install 'canns_stdp[plot]'): no figure")
        return res
    os.makedirs(args.out, exist_ok=True)
    t = np.arange(T)
    fig, axes = plt.subplots(5, 1, figsize=(8, 9.5), sharex=True,
                             gridspec_kw={"height_ratios": [0.8, 1.2, 0.8, 1.2, 2]})
    ax = axes[0]
    ax.eventplot([list(PRE_TIMES), list(POST_TIMES)], lineoffsets=[1, 0], colors=["C0", "C1"])
    ax.set_yticks([1, 0], ["pre", "post"])
    ax.set_title("Florian (2007) single-synapse demonstration")
    ax = axes[1]
    ax.plot(t, res["trace_pre"], color="C0", label="pre trace $P$")
    ax.plot(t, res["trace_post"], color="C1", label="post trace $Q$")
    ax.set_ylabel("trace")
    ax.legend(loc="upper right", fontsize=8)
    ax = axes[2]
    ax.step(t, res["reward"], where="post", color="k")
    ax.set_ylabel("reward $r$")
    ax.set_ylim(-1.4, 1.4)
    ax = axes[3]
    ax.plot(t, res["eligibility_mstdp"], color="C2", lw=1, label=r"MSTDP: $\zeta$")
    ax.plot(t, 25 * res["eligibility_mstdpet"], color="C3", label=r"MSTDPET: $\tau_z \cdot z$")
    ax.axhline(0, color="0.7", lw=0.5)
    ax.set_ylabel("eligibility")
    ax.legend(loc="upper right", fontsize=8)
    ax = axes[4]
    tw = np.arange(T + 1) - 0.5  # W[k] is the weight after step k - 1
    for rule, color, style in (("stdp", "k", "--"), ("mstdp", "C2", "-"), ("mstdpet", "C3", "-")):
        ax.step(tw, res[rule], where="post", color=color, ls=style, lw=1.5, label=rule.upper(),
                zorder=3 if rule == "stdp" else 2)
    ax.set_ylabel("weight $W$")
    ax.set_xlabel("time (ms)")
    ax.legend(loc="upper left", fontsize=8)
    for ax in axes:
        for s in PRE_TIMES:
            ax.axvline(s, color="C0", lw=0.4, alpha=0.4)
        for s in POST_TIMES:
            ax.axvline(s, color="C1", lw=0.4, alpha=0.4)
    fig.tight_layout()
    path = os.path.join(args.out, "reward_florian.png")
    fig.savefig(path, dpi=120)
    print(f"saved {path}")
    return res


if __name__ == "__main__":
    main()
