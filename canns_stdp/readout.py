"""Label neurons by their strongest class response and classify with them.

Diehl & Cook (2015): after (or during) unsupervised training, each neuron's mean
spike count per class on the labelled training samples is

    R[i, c] = mean over samples of class c of counts[:, i]

and the neuron is assigned the class ``argmax_c R[i, c]`` (a neuron that never
fired gets ``-1`` and takes no part in classification). A test sample with
spike counts ``n`` is classified by

* **all activity**: ``argmax_c  mean_{i assigned to c} n_i``
* **proportion weighting**: ``argmax_c  mean_{i assigned to c} n_i * P[i, c]``,
  with ``P[i, c] = R[i, c] / sum_c' R[i, c']``.

Ties go to the lowest class index. These are host-side NumPy functions.

Example:
    >>> import numpy as np
    >>> from canns_stdp.readout import assign_labels, predict_all_activity
    >>> counts = np.array([[3, 0], [0, 2]]); labels = np.array([0, 1])
    >>> assign, prop, rates = assign_labels(counts, labels, 2)          # assign = [0, 1]
    >>> predict_all_activity(np.array([[0, 5]]), assign, 2)             # [1]
"""

from __future__ import annotations

import numpy as np

__all__ = ["class_rates", "assign_labels", "predict_all_activity", "predict_proportion",
           "accuracy", "confusion_matrix"]


def _counts_labels(counts, labels, n_classes):
    counts = np.asarray(counts, np.float64)
    labels = np.asarray(labels)
    if counts.ndim != 2:
        raise ValueError(f"counts must have shape (n_samples, n_neurons), got shape {counts.shape}")
    if labels.shape != (counts.shape[0],):
        raise ValueError(f"labels must have shape ({counts.shape[0]},), got shape {labels.shape}")
    if labels.size and (labels.min() < 0 or labels.max() >= n_classes):
        raise ValueError(f"labels must be in [0, {n_classes}), got values in "
                         f"[{labels.min()}, {labels.max()}]")
    return counts, labels.astype(np.int64)


def class_rates(counts, labels, n_classes: int) -> np.ndarray:
    """``R[i, c]``: mean count of neuron ``i`` over the samples of class ``c`` (0 if none)."""
    counts, labels = _counts_labels(counts, labels, n_classes)
    onehot = np.eye(n_classes)[labels]                     # (S, C)
    per_class = onehot.sum(0)                              # (C,)
    sums = counts.T @ onehot                               # (N, C)
    return sums / np.maximum(per_class, 1)[None, :]


def assign_labels(counts, labels, n_classes: int):
    """Return ``(assignments, proportions, rates)``; silent neurons get label ``-1``."""
    rates = class_rates(counts, labels, n_classes)
    total = rates.sum(1, keepdims=True)
    proportions = np.divide(rates, total, out=np.zeros_like(rates), where=total > 0)
    assignments = np.where(total[:, 0] > 0, rates.argmax(1), -1)
    return assignments, proportions, rates


def _vote(weighted, assignments, n_classes):
    assignments = np.asarray(assignments)
    onehot = (assignments[:, None] == np.arange(n_classes)[None, :]).astype(np.float64)  # (N, C)
    n_assigned = onehot.sum(0)
    scores = weighted @ onehot / np.maximum(n_assigned, 1)[None, :]
    scores[:, n_assigned == 0] = -np.inf
    return scores.argmax(1)


def predict_all_activity(counts, assignments, n_classes: int) -> np.ndarray:
    """Class with the highest mean count over its assigned neurons."""
    return _vote(np.asarray(counts, np.float64), assignments, n_classes)


def predict_proportion(counts, assignments, proportions, n_classes: int) -> np.ndarray:
    """Class with the highest mean proportion-weighted count over its assigned neurons."""
    counts = np.asarray(counts, np.float64)
    assignments = np.asarray(assignments)
    prop = np.asarray(proportions)[np.arange(len(assignments)), np.maximum(assignments, 0)]
    return _vote(counts * prop[None, :], assignments, n_classes)


def accuracy(predicted, labels) -> float:
    return float(np.mean(np.asarray(predicted) == np.asarray(labels)))


def confusion_matrix(predicted, labels, n_classes: int) -> np.ndarray:
    """``M[true, predicted]`` counts."""
    m = np.zeros((n_classes, n_classes), np.int64)
    np.add.at(m, (np.asarray(labels), np.asarray(predicted)), 1)
    return m
