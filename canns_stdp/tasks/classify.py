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
from ..encoders import rate_to_probability

__all__ = ["ClassifyResult", "train_and_test"]


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
    val.check_positive_int("epochs", epochs)
    if label_with not in ("pass", "training"):
        raise ValueError(f"label_with must be 'pass' or 'training', got {label_with!r}")
    x_train = np.asarray(x_train, np.float32)
    x_test = np.asarray(x_test, np.float32)
    rng = np.random.default_rng(seed)
    net = CompetitiveNetwork(x_train.shape[1], n_neurons, seed=seed, **network_kwargs)
    p_train = np.asarray(rate_to_probability(x_train, 1.0, max_rate_hz))
    p_test = np.asarray(rate_to_probability(x_test, 1.0, max_rate_hz))
    t0 = time.perf_counter()
    for epoch in range(epochs):
        order = rng.permutation(len(x_train))
        counts = net.present(p_train[order], learn=True, seed=seed * 1000 + epoch,
                             progress=progress, desc=f"train {epoch + 1}/{epochs}")
        labels = np.asarray(y_train)[order]
    t1 = time.perf_counter()
    if label_with == "pass":
        counts = net.present(p_train, learn=False, seed=seed * 1000 + 998, progress=progress,
                             desc="label")
        labels = np.asarray(y_train)
    assignments, proportions, _ = readout.assign_labels(counts, labels, n_classes)
    t2 = time.perf_counter()
    test_counts = net.present(p_test, learn=False, seed=seed * 1000 + 999,
                              progress=progress, desc="test")
    t3 = time.perf_counter()
    pred = readout.predict_all_activity(test_counts, assignments, n_classes)
    pred_p = readout.predict_proportion(test_counts, assignments, proportions, n_classes)
    return ClassifyResult(
        accuracy=readout.accuracy(pred, y_test),
        accuracy_proportion=readout.accuracy(pred_p, y_test),
        confusion=readout.confusion_matrix(pred, y_test, n_classes),
        W=net.W, assignments=assignments, train_seconds=t1 - t0, label_seconds=t2 - t1,
        test_seconds=t3 - t2,
        train_samples=len(x_train) * epochs, test_samples=len(x_test),
        extra={"mean_test_spikes": float(test_counts.sum(1).mean()),
               "silent_test_fraction": float((test_counts.sum(1) == 0).mean())})
