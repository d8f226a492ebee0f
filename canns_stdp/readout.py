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
    >>> assign, prop, rates = assign_labels(counts, labels, 2)
    >>> assign
    array([0, 1])
    >>> predict_all_activity(np.array([[0, 5]]), assign, 2)
    array([1])
"""

from __future__ import annotations

import numpy as np

from . import _validation as val

__all__ = ["class_rates", "assign_labels", "predict_all_activity", "predict_proportion",
           "accuracy", "confusion_matrix"]


def _counts(counts) -> np.ndarray:
    """Spike counts: finite, >= 0, shape ``(n_samples, n_neurons)``."""
    counts = val._to_float_array("counts", counts).astype(np.float64)
    if counts.ndim != 2:
        raise ValueError(f"counts must have shape (n_samples, n_neurons), got shape {counts.shape}")
    val.check_finite("counts", counts)
    if counts.size and counts.min() < 0:
        raise ValueError(f"counts must be >= 0, got {counts.min()}")
    return counts


def _classes(name: str, values, n_classes: int, length: int, low: int = 0) -> np.ndarray:
    """Class indices: integers in ``[low, n_classes)``, shape ``(length,)``."""
    arr = np.asarray(values)
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.integer) or arr.size == 0):
        raise TypeError(f"{name} must hold integers (class indices), got dtype {arr.dtype}")
    if arr.shape != (length,):
        raise ValueError(f"{name} must have shape ({length},), got shape {arr.shape}")
    if arr.size and (arr.min() < low or arr.max() >= n_classes):
        raise ValueError(f"{name} must be in [{low}, {n_classes}), got values in [{arr.min()}, {arr.max()}]")
    return arr.astype(np.int64)


def _counts_labels(counts, labels, n_classes):
    n_classes = val.check_positive_int("n_classes", n_classes)
    counts = _counts(counts)
    return counts, _classes("labels", labels, n_classes, counts.shape[0])


def _counts_assignments(counts, assignments, n_classes):
    n_classes = val.check_positive_int("n_classes", n_classes)
    counts = _counts(counts)
    return counts, _classes("assignments", assignments, n_classes, counts.shape[1], low=-1), n_classes


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
    onehot = (assignments[:, None] == np.arange(n_classes)[None, :]).astype(np.float64)  # (N, C)
    n_assigned = onehot.sum(0)
    scores = weighted @ onehot / np.maximum(n_assigned, 1)[None, :]
    scores[:, n_assigned == 0] = -np.inf
    return scores.argmax(1)


def predict_all_activity(counts, assignments, n_classes: int) -> np.ndarray:
    """Class with the highest mean count over its assigned neurons."""
    counts, assignments, n_classes = _counts_assignments(counts, assignments, n_classes)
    return _vote(counts, assignments, n_classes)


def predict_proportion(counts, assignments, proportions, n_classes: int) -> np.ndarray:
    """Class with the highest mean proportion-weighted count over its assigned neurons."""
    counts, assignments, n_classes = _counts_assignments(counts, assignments, n_classes)
    proportions = val._to_float_array("proportions", proportions)
    if proportions.shape != (len(assignments), n_classes):
        raise ValueError(f"proportions must have shape ({len(assignments)}, {n_classes}), got shape "
                         f"{proportions.shape}")
    val.check_finite("proportions", proportions)
    prop = proportions.astype(np.float64)[np.arange(len(assignments)), np.maximum(assignments, 0)]
    return _vote(counts * prop[None, :], assignments, n_classes)


def _labels(labels) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.ndim != 1 or labels.size == 0:
        raise ValueError(f"labels must be a non-empty 1-D array, got shape {labels.shape}")
    return labels


def accuracy(predicted, labels) -> float:
    """The fraction of ``predicted`` equal to ``labels`` (same length, at least one)."""
    labels, predicted = _labels(labels), np.asarray(predicted)
    if predicted.shape != labels.shape:
        raise ValueError(f"predicted must have shape {labels.shape}, got shape {predicted.shape}")
    return float(np.mean(predicted == labels))


def confusion_matrix(predicted, labels, n_classes: int) -> np.ndarray:
    """``M[true, predicted]`` counts."""
    n_classes = val.check_positive_int("n_classes", n_classes)
    labels = _classes("labels", _labels(labels), n_classes, np.size(labels))
    predicted = _classes("predicted", predicted, n_classes, labels.size)
    m = np.zeros((n_classes, n_classes), np.int64)
    np.add.at(m, (labels, predicted), 1)
    return m
