"""A plasticity rule of your own in a few lines: BCM (Bienenstock, Cooper & Munro 1982).

    dW = y ⊙ (y − θ) ⊗ x,      θ' = θ + (y² / y₀ − θ) / τ_θ

with ``y`` the neurons' and ``x`` the inputs' activity (their spike traces, scaled to
spikes per step) and ``θ`` a sliding threshold per neuron, the rule's state. A neuron
selective to one of two alternating patterns settles where ``y = 2 y₀`` during its pattern. Written once with the synaptic map's
Hebbian term, it trains a dense, a masked or a convolutional layer alike.

Two groups of inputs fire in turn; each neuron starts driven by both and ends selective to
one. Prints the selectivity of each neuron and writes ``out/user_rule_bcm.png``.

    python examples/user_rule_bcm.py
"""

from __future__ import annotations

import pathlib

import jax.numpy as jnp
import numpy as np

from canns_stdp import SpikingLayer, Trainer, rules


class BCM(rules.Rule):
    """BCM with a sliding threshold (numbers are fields: changing them never recompiles)."""

    tau_theta: float = 100.0
    y0: float = 0.25

    def init(self, pre_shape, post_shape):
        return jnp.zeros(post_shape, jnp.float32)

    def update(self, theta, pre, post, W, hebbian):
        y = post.trace
        dW = hebbian(y * (y - theta), pre.trace)
        return dW, theta + (y * y / self.y0 - theta) / self.tau_theta


def patterns(steps: int, n_in: int = 20, block: int = 50, rate: float = 0.3, seed: int = 0):
    """Poisson spikes: the first half of the inputs fire in even blocks, the second half in odd."""
    rng = np.random.default_rng(seed)
    group = (np.arange(steps) // block) % 2
    half = np.arange(n_in) >= n_in // 2
    active = half[None, :] == group[:, None].astype(bool)
    return ((rng.random((steps, n_in)) < rate) & active).astype(np.float32), group


def selectivity(W: np.ndarray) -> np.ndarray:
    """Per neuron, (A − B) / (A + B) of its summed weights from the two input groups."""
    half = W.shape[1] // 2
    a, b = W[:, :half].sum(1), W[:, half:].sum(1)
    return (a - b) / np.maximum(a + b, 1e-9)


def train(steps: int = 6000, n_out: int = 6, seed: int = 0):
    xs, _ = patterns(steps, seed=seed)
    rng = np.random.default_rng(seed + 1)
    W0 = rng.uniform(0.1, 0.3, (n_out, xs.shape[1])).astype(np.float32)
    # traces with increment 0.1 ≈ 1 - exp(-1/10): about the rate in spikes per step
    layer = SpikingLayer(xs.shape[1], n_out, threshold=1.0, leak=0.8, tau_pre=10.0, tau_post=10.0,
                         a_pre=0.1, a_post=0.1, W_init=W0)
    trainer = Trainer(layer, BCM(tau_theta=100.0, y0=0.25), learning_rate=0.02, w_min=0.0, w_max=1.0)
    history = [np.asarray(layer.W.value)]
    for chunk in np.array_split(xs, 30):  # the rule's state (θ) carries over between calls
        trainer.train(chunk)
        history.append(np.asarray(layer.W.value))
    return W0, np.asarray(layer.W.value), np.asarray(trainer.rule_state.value), history


def plot(history, path: pathlib.Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sel = np.array([selectivity(W) for W in history])
    fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(10, 3.8))
    ax0.plot(sel)
    ax0.set(xlabel="training call (200 steps each)", ylabel="selectivity (A − B) / (A + B)",
            title="each neuron picks one input group", ylim=(-1.05, 1.05))
    ax0.axhline(0, color="grey", lw=0.5)
    im = ax1.imshow(history[-1], aspect="auto", cmap="viridis")
    ax1.set(xlabel="input (group A | group B)", ylabel="neuron", title="weights after training")
    ax1.axvline(history[-1].shape[1] / 2 - 0.5, color="white", lw=1)
    ax1.set_xticks(range(0, history[-1].shape[1], 2))
    ax1.set_yticks(range(history[-1].shape[0]))
    fig.colorbar(im, ax=ax1).set_label("weight")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    W0, W, theta, history = train()
    print("selectivity before:", np.round(selectivity(W0), 2))
    print("selectivity after: ", np.round(selectivity(W), 2))
    print("thresholds θ:      ", np.round(theta, 3))
    plot(history, pathlib.Path("out/user_rule_bcm.png"))
    print("figure: out/user_rule_bcm.png")
