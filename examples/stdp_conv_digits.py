"""Convolutional layers by STDP, the readout by Adam, in one compiled step (scikit-learn digits).

Mirrors SpikingJelly's tutorial on mixing STDP with gradient descent: a spiking
network ``conv(1→8, 3×3) → max-pool 2 → conv(8→16, 3×3, groups=8) → linear readout``
sees Poisson-coded 8×8 digits for ``T`` steps. The two convolutional layers learn by
STDP: their change ``Σ_t ΔW`` over the pass is handed to optax as the "gradient"
``−Σ_t ΔW`` (plain SGD, as SpikingJelly does with ``on_grad=True``), the readout (on the
time-summed spikes of the last stage) by Adam on the cross-entropy. One
``optax.multi_transform`` and one ``jax.jit`` do both. The same run with the STDP
learning rate set to 0 (fixed random filters) is the baseline.

Needs the extras: ``pip install -e ".[examples]"`` (optax, scikit-learn, matplotlib).

Run:  python examples/stdp_conv_digits.py [--epochs 5] [--T 12] [--out out/]
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np


def _require():
    try:
        import optax  # noqa: F401
        import sklearn  # noqa: F401
    except ImportError as err:  # pragma: no cover
        raise SystemExit(f"this example needs optax and scikit-learn: pip install -e '.[examples]' ({err})")


def load_digits(seed: int):
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    X = (d.images / 16.0).astype(np.float32)[:, None]           # (N, 1, 8, 8) in [0, 1]
    return train_test_split(X, d.target, test_size=0.25, random_state=seed, stratify=d.target)


def run(stdp_lr: float, args, data):
    import jax
    import jax.numpy as jnp
    import optax

    from canns_stdp import ConvSpikingLayer
    from canns_stdp.functional.network import init_states
    from canns_stdp.functional.pooling import Pool
    from canns_stdp.mixed import stdp_grads, stdp_stage

    X_tr, X_te, y_tr, y_te = data
    rng = np.random.default_rng(args.seed)
    neuron = dict(leak=0.9, tau_pre=4.0, tau_post=4.0)
    conv1 = ConvSpikingLayer(1, 8, 3, input_shape=(8, 8), padding=1, threshold=3.0, **neuron,
                             W_init=lambda s: rng.uniform(0.1, 0.6, s))
    conv2 = ConvSpikingLayer(8, 16, 3, input_shape=(4, 4), padding=1, groups=8, threshold=1.0, **neuron,
                             W_init=lambda s: rng.uniform(0.0, 0.3, s))
    rule = dict(learning_rate=stdp_lr, A_plus=0.005, A_minus=0.0055, batch_reduction="mean")
    (c1, p1), (c2, p2) = stdp_stage(conv1, **rule), stdp_stage(conv2, **rule)
    stages, sparams = (c1, Pool((2, 2)), c2), (p1, None, p2)
    n_feat = 16 * 4 * 4

    params = {"stdp": (conv1.W.value, None, conv2.W.value),
              "readout": {"w": jnp.zeros((n_feat, 10)), "b": jnp.zeros(10)}}
    labels = {"stdp": ("stdp", None, "stdp"), "readout": {"w": "gd", "b": "gd"}}
    opt = optax.multi_transform({"stdp": optax.sgd(1.0), "gd": optax.adam(args.lr)}, labels)
    opt_state = opt.init(params)

    def features(weights, xs):
        states = init_states(stages, weights, xs.shape[1:])   # every sample starts at rest
        grads, _, counts = stdp_grads(stages, sparams, weights, states, xs)
        return grads, counts.reshape(counts.shape[0], -1) / xs.shape[0]

    def logits(readout, f):
        return f @ readout["w"] + readout["b"][None]

    @jax.jit
    def train_step(params, opt_state, xs, y):
        stdp_g, f = features(params["stdp"], xs)
        loss, g_read = jax.value_and_grad(
            lambda r: optax.softmax_cross_entropy_with_integer_labels(logits(r, f), y).mean())(params["readout"])
        updates, opt_state = opt.update({"stdp": stdp_g, "readout": g_read}, opt_state, params)
        params = optax.apply_updates(params, updates)
        params["stdp"] = tuple(None if W is None else jnp.clip(W, 0.0, 1.0) for W in params["stdp"])
        return params, opt_state, loss

    @jax.jit
    def predict(params, xs):
        return jnp.argmax(logits(params["readout"], features(params["stdp"], xs)[1]), -1)

    def encode(X):  # Poisson (Bernoulli) rate code: (T, B, 1, 8, 8)
        return (rng.random((args.T,) + X.shape) < X).astype(np.float32)

    def accuracy(X, y, size=256):  # fixed-size batches (the last one padded): one compilation
        preds = []
        for i in range(0, len(X), size):
            chunk = X[i:i + size]
            padded = np.concatenate([chunk, np.zeros((size - len(chunk),) + chunk.shape[1:], chunk.dtype)])
            preds.append(np.asarray(predict(params, jnp.asarray(encode(padded))))[:len(chunk)])
        return float((np.concatenate(preds) == y).mean())

    losses = []
    for epoch in range(args.epochs):
        order = rng.permutation(len(X_tr))
        for i in range(0, len(order) - args.batch + 1, args.batch):
            idx = order[i:i + args.batch]
            params, opt_state, loss = train_step(params, opt_state, jnp.asarray(encode(X_tr[idx])),
                                                 jnp.asarray(y_tr[idx]))
            losses.append(float(loss))
    W1 = np.asarray(params["stdp"][0])
    return {"test_accuracy": accuracy(X_te, y_te), "train_accuracy": accuracy(X_tr, y_tr),
            "losses": losses, "W1": W1, "W1_init": np.asarray(conv1.W.value),
            "weights": params["stdp"], "W2_change": float(np.abs(np.asarray(params["stdp"][2]) - np.asarray(conv2.W.value)).mean())}


def plot(results, out):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib not installed: no figure")
        return None
    stdp = results["stdp"]
    fig = plt.figure(figsize=(11, 4.8))
    for row, (W, title) in enumerate(((stdp["W1_init"], "initial"), (stdp["W1"], "after STDP"))):
        for k in range(8):
            ax = fig.add_axes([0.03 + 0.055 * k, 0.5 - 0.3 * row, 0.05, 0.25])
            ax.imshow(W[k, 0], cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([]), ax.set_yticks([])
            if k == 0:
                ax.set_ylabel(title)
    fig.text(0.03, 0.82, "conv1 filters (3×3, weight 0 = black, 1 = white)")
    ax = fig.add_axes([0.55, 0.14, 0.42, 0.74])
    for name, key in (("conv by STDP", "stdp"), ("conv fixed (STDP lr = 0)", "fixed")):
        if key not in results:
            continue
        r = results[key]
        ax.plot(np.convolve(r["losses"], np.ones(10) / 10, "valid"),
                label=f"{name}: test acc {r['test_accuracy']:.1%}")
    ax.set_xlabel("training step (batch)")
    ax.set_ylabel("readout cross-entropy (moving mean of 10)")
    ax.set_title("readout trained by Adam, one jitted step with STDP")
    ax.legend()
    path = os.path.join(out, "stdp_conv_digits.png")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--T", type=int, default=12, help="time steps per image")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--lr", type=float, default=0.05, help="Adam learning rate of the readout")
    parser.add_argument("--stdp-lr", type=float, default=0.02, help="STDP learning rate (lr in docs/step.md)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-baseline", action="store_true", help="skip the run with STDP off")
    parser.add_argument("--out", default="out")
    args = parser.parse_args(argv)
    _require()
    data = load_digits(args.seed)
    results = {}
    runs = (("stdp", args.stdp_lr),) + (() if args.no_baseline else (("fixed", 0.0),))
    for name, lr in runs:
        start = time.perf_counter()
        results[name] = run(lr, args, data)
        r = results[name]
        print(f"{name:5s}: test accuracy {r['test_accuracy']:.3f}, train {r['train_accuracy']:.3f}, "
              f"mean |ΔW2| {r['W2_change']:.4f} ({time.perf_counter() - start:.1f} s)")
    os.makedirs(args.out, exist_ok=True)
    path = plot(results, args.out)
    if path:
        print("figure:", path)
    return {k: {m: r[m] for m in ("test_accuracy", "train_accuracy", "W2_change")} for k, r in results.items()}


if __name__ == "__main__":
    main()
