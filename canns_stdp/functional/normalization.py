"""Per-neuron weight normalisation (Diehl & Cook 2015).

Scales each row of ``W`` (all the input weights of one postsynaptic neuron) so
that it sums to ``total``:

    W'_ij = total * W_ij / sum_k W_ik

A row that sums to zero is left unchanged. :func:`normalize_columns` does the same
for the transposed layout ``WT = W.T`` (one neuron per column). Diehl & Cook normalise to
``total = 78.4`` (0.1 per input for 784 inputs) before every presentation, so
STDP redistributes a fixed budget of weight instead of growing it.

Example:
    >>> import jax.numpy as jnp
    >>> from canns_stdp.functional.normalization import normalize_rows
    >>> normalize_rows(jnp.array([[1., 3.], [0., 0.]]), 2.0)
    Array([[0.5, 1.5],
           [0. , 0. ]], dtype=float32)
"""

from __future__ import annotations

import jax.numpy as jnp

__all__ = ["normalize_rows", "normalize_columns"]


def _normalize(W, total, axis):
    sums = jnp.sum(W, axis=axis, keepdims=True)
    safe = jnp.where(sums > 0, sums, jnp.ones((), W.dtype))
    return jnp.where(sums > 0, W * (total / safe), W)


def normalize_rows(W, total):
    """Rows of ``W`` rescaled to sum to ``total`` (rows summing to 0 untouched)."""
    return _normalize(W, total, 1)


def normalize_columns(WT, total):
    """Columns of ``WT`` rescaled to sum to ``total`` (columns summing to 0 untouched)."""
    return _normalize(WT, total, 0)
