"""Event-driven STDP step for sparse activity: the cost follows the spikes.

With sparse input the dense step wastes most of its work: ``W @ x`` needs only
the columns of the active inputs, LTD (``Q ⊗ x``) changes only those columns, and
LTP (``s ⊗ P``) changes only the rows of the neurons that fired. The functions here
work on the *transposed* weights ``WT = W.T`` (shape ``(n_in, n_out)``), so that an
input's synapses are one contiguous row, and visit only

* the rows of ``WT`` of the active inputs (membrane current, then their LTD), given
  as indices computed ahead of time from the input (:func:`input_events`), and
* the columns of ``WT`` of the neurons that fired (their full update),

applying *the same* :func:`~canns_stdp.functional.stdp.stdp_delta` and
:func:`~canns_stdp.functional.stdp.apply_bounds` as the dense step, so the result
does not depend on the path (up to the summation order of the membrane current).
There is no dense fallback inside the step (on CPU, XLA copies the whole weight
matrix through a ``cond`` in a loop): when activity is high the trainer runs the
dense step instead, choosing between chunks of steps.

Exactness conditions, checked by the trainer (:func:`event_compatible`): the weight
dependence is elementwise in ``W`` (the built-ins are), and, with clipping on, ``W``
starts within its bounds (entries a step does not touch are then already clipped).
"""

from __future__ import annotations

from typing import Callable, Optional

import jax
import jax.numpy as jnp
import numpy as np

from .dependence import DEPENDENCES
from .stdp import STDPParams, apply_bounds, stdp_delta

__all__ = ["input_events", "event_width", "pack_events", "transposed_hebbian", "event_current", "event_update", "event_compatible"]


def input_events(xs: np.ndarray, max_width: int) -> Optional[np.ndarray]:
    """Indices of the nonzero inputs of each step, ``(T, width)``, padded with ``n_in``.

    ``width`` is the smallest power of two (at least 8) that holds the busiest step, so
    few widths (and compilations) occur. Returns ``None`` when that exceeds ``max_width``.
    Computed on the host with NumPy, once per chunk.
    """
    T, n_in = xs.shape
    rows, cols = np.nonzero(xs)  # row-major: each step's inputs in index order
    counts = np.bincount(rows, minlength=T)
    if int(counts.max(initial=0)) > max_width:
        return None
    return pack_events(rows, cols, T, n_in)


def event_width(busiest: int) -> int:
    """Smallest power of two, at least 8, holding ``busiest`` events."""
    return max(8, 1 << max(0, int(busiest) - 1).bit_length())


def pack_events(steps: np.ndarray, inputs: np.ndarray, T: int, n_in: int,
                width: Optional[int] = None) -> np.ndarray:
    """``(T, width)`` table of the ``inputs`` active at each of ``T`` steps, padded with ``n_in``.

    ``steps`` must be sorted (each step's events together); ``width`` defaults to
    :func:`event_width` of the busiest step.
    """
    counts = np.bincount(steps, minlength=T)
    width = event_width(counts.max(initial=0)) if width is None else width
    events = np.full((T, width), n_in, np.int32)
    first = np.concatenate([[0], np.cumsum(counts)[:-1]])
    events[steps, np.arange(steps.size) - first[steps]] = inputs
    return events


def transposed_hebbian(post, pre):
    """``(post ⊗ pre).T = pre ⊗ post``: the Hebbian term in the ``WT`` layout."""
    return pre[:, None] * post[None, :]


def _gather(a, idx):
    return a.at[idx].get(mode="fill", fill_value=0)


def event_current(WT, x, x_events):
    """``W @ x`` from the rows of ``WT`` of the active inputs ``x_events`` (padded with ``n_in``)."""
    return _gather(x, x_events) @ _gather(WT, x_events)


def event_update(dependence: Callable, params: STDPParams, hardbound: bool, WT, x, x_events, s, P, Q):
    """``apply_bounds(WT, stdp_delta(...))`` visiting only fired neurons and active inputs.

    The columns of fired neurons get every term of the update, one neuron at a time;
    then the rows of the active inputs get the LTD of the neurons that did not fire
    (their LTP is zero; the fired ones get a zero change).
    """
    n_in, n_out = WT.shape
    bounds = params.bounds

    def update(W_sub, pre, post, P_sub, Q_sub):
        d = stdp_delta(dependence, params, W_sub, pre, post, P_sub, Q_sub, transposed_hebbian)
        return apply_bounds(W_sub, d, bounds, hardbound)

    index = jnp.arange(n_out)

    def fired_column(k, carry):
        WT, last = carry
        i = jnp.argmax((s != 0) & (index > last))        # the next neuron that fired
        col = jax.lax.dynamic_slice_in_dim(WT, i, 1, axis=1)
        new = update(col, x, jax.lax.dynamic_slice_in_dim(s, i, 1), P,
                     jax.lax.dynamic_slice_in_dim(Q, i, 1))
        return jax.lax.dynamic_update_slice_in_dim(WT, new, i, axis=1), i

    WT, _ = jax.lax.fori_loop(0, jnp.count_nonzero(s), fired_column, (WT, jnp.int32(-1)))
    rows = _gather(WT, x_events)
    new = update(rows, _gather(x, x_events), s * 0, _gather(P, x_events), Q * (1 - s))
    return WT.at[x_events].set(new, mode="drop")


def event_compatible(dependence: Callable) -> bool:
    """Whether ``dependence`` is known to be elementwise (the built-in ones)."""
    return dependence in DEPENDENCES.values()
