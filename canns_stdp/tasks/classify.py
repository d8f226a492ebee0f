"""Unsupervised digit classification with a Diehl & Cook (2015) style network.

Train a :class:`~canns_stdp.competitive.CompetitiveNetwork` on Poisson-encoded
images without labels, label each neuron by the class it responds to most (as
Diehl & Cook: spike counts of a pass over the training images with learning off,
or, cheaper, the counts recorded while training), then classify held-out images
with learning off (:mod:`canns_stdp.readout`: all-activity and proportion weighting).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from .. import _validation as val
from .. import readout
from ..competitive import CompetitiveNetwork
from ..competitive_together import present_together
from ..encoders import rate_to_probability

__all__ = ["ClassifyResult", "train_and_test", "train_and_test_seeds"]


@dataclass
class ClassifyResult:
    accuracy: float                 # all-activity
    accuracy_proportion: float
    confusion: np.ndarray           # (C, C) rows: true class, columns: predicted (all-activity)
    W: np.ndarray                   # (n_neurons, n_in) learned weights
    assignments: np.ndarray         # (n_neurons,) label of each neuron, -1 if silent
    train_seconds: float
    label_seconds: float
    test_seconds: float
    train_samples: int
    test_samples: int
    extra: dict = field(default_factory=dict)


def train_and_test(x_train, y_train, x_test, y_test, *, n_neurons: int, epochs: int = 1,
                   seed: int = 0, n_classes: int = 10, max_rate_hz: float = 128.0,
                   progress: bool = False, label_with: str = "pass",
                   **network_kwargs) -> ClassifyResult:
    """Train on ``x_train`` (``(N, n_in)`` intensities in ``[0, 1]``), test on ``x_test``.

    Each epoch presents the training images in a new seeded random order. Neurons are
    labelled with the spike counts of a pass over the training images with learning
    off (``label_with="pass"``) or of the last training epoch (``"training"``); test
    images are presented with learning off. ``network_kwargs`` go to
    :class:`CompetitiveNetwork`.
    """
    return train_and_test_seeds([(x_train, y_train, x_test, y_test)], [seed], n_neurons=n_neurons, epochs=epochs,
                                n_classes=n_classes, max_rate_hz=max_rate_hz, progress=progress,
                                label_with=label_with, **network_kwargs)[0]


def train_and_test_seeds(splits, seeds, *, n_neurons: int, epochs: int = 1, n_classes: int = 10,
                         max_rate_hz: float = 128.0, progress: bool = False, label_with: str = "pass",
                         **network_kwargs) -> list:
    """:func:`train_and_test` for each seed, the networks trained together
    (:func:`~canns_stdp.competitive_together.present_together`): seed ``k`` trains on
    ``splits[k] = (x_train, y_train, x_test, y_test)`` (the splits of one shape) and its
    result is what :func:`train_and_test` gives it alone. Each result's ``train_seconds``
    is the time all of them took to train together."""
    val.check_positive_int("epochs", epochs)
    if label_with not in ("pass", "training"):
        raise ValueError(f"label_with must be 'pass' or 'training', got {label_with!r}")
    seeds = [val.check_seed("seed", s) for s in seeds]
    if not seeds or len(splits) != len(seeds):
        raise ValueError(f"splits and seeds must be non-empty and of one length, got {len(splits)} and {len(seeds)}")
    data = [tuple(np.asarray(a, np.float32) if i in (0, 2) else np.asarray(a) for i, a in enumerate(split))
            for split in splits]
    rngs = [np.random.default_rng(s) for s in seeds]
    nets = [CompetitiveNetwork(x_tr.shape[1], n_neurons, seed=s, **network_kwargs)
            for (x_tr, *_), s in zip(data, seeds)]
    p_train = [np.asarray(rate_to_probability(x_tr, 1.0, max_rate_hz)) for x_tr, *_ in data]
    p_test = [np.asarray(rate_to_probability(x_te, 1.0, max_rate_hz)) for _, _, x_te, _ in data]
    t0 = time.perf_counter()
    for epoch in range(epochs):
        orders = [rng.permutation(len(p)) for rng, p in zip(rngs, p_train)]
        counts = present_together(nets, [p[order] for p, order in zip(p_train, orders)], learn=True,
                                  seeds=[s * 1000 + epoch for s in seeds], progress=progress,
                                  desc=f"train {epoch + 1}/{epochs}")
        labels = [y_tr[order] for (_, y_tr, *_), order in zip(data, orders)]
    t1 = time.perf_counter()
    results = []
    for k, (net, seed, (x_tr, y_tr, x_te, y_te)) in enumerate(zip(nets, seeds, data)):
        t1k = time.perf_counter()
        if label_with == "pass":
            counts_k = net.present(p_train[k], learn=False, seed=seed * 1000 + 998, progress=progress, desc="label")
            labels_k = y_tr
        else:
            counts_k, labels_k = counts[k], labels[k]
        assignments, proportions, _ = readout.assign_labels(counts_k, labels_k, n_classes)
        t2 = time.perf_counter()
        test_counts = net.present(p_test[k], learn=False, seed=seed * 1000 + 999, progress=progress, desc="test")
        t3 = time.perf_counter()
        pred = readout.predict_all_activity(test_counts, assignments, n_classes)
        pred_p = readout.predict_proportion(test_counts, assignments, proportions, n_classes)
        results.append(ClassifyResult(
            accuracy=readout.accuracy(pred, y_te),
            accuracy_proportion=readout.accuracy(pred_p, y_te),
            confusion=readout.confusion_matrix(pred, y_te, n_classes),
            W=net.W, assignments=assignments, train_seconds=t1 - t0, label_seconds=t2 - t1k,
            test_seconds=t3 - t2,
            train_samples=len(x_tr) * epochs, test_samples=len(x_te),
            extra={"mean_test_spikes": float(test_counts.sum(1).mean()),
                   "silent_test_fraction": float((test_counts.sum(1) == 0).mean())}))
    return results
