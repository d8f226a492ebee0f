"""Event-driven STDP step for binary, sparse activity: the cost follows the spikes.

With sparse input the dense step wastes most of its work: ``W @ x`` needs only
the columns of the active inputs, LTD (``Q ⊗ x``) changes only those columns, and
LTP (``s ⊗ P``) changes only the rows of the neurons that fired. The functions here
work on the *transposed* weights ``WT = W.T`` (shape ``(n_in, n_out)``), so that an
input's synapses are one contiguous row, and visit only:

* the rows of ``WT`` of the active inputs (membrane current, then their LTD), and
* the columns of ``WT`` of the neurons that fired (their full update),

applying *the same* :func:`~canns_stdp.functional.stdp.stdp_delta` and
:func:`~canns_stdp.functional.stdp.apply_bounds` as the dense step, so the result
does not depend on the path (up to the summation order of the membrane current).
The work is a loop over the events, with no dense fallback inside the step (on CPU,
XLA copies the whole weight matrix through a ``cond`` in a loop): when activity is
high the trainer runs the dense step instead, choosing between chunks of steps.

Exactness conditions, checked by the trainer (:func:`event_compatible`): the weight
dependence is elementwise in ``W`` (the built-ins are), and, with clipping on, ``W``
starts within its bounds (entries a step does not touch are then already clipped).
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp

from .dependence import DEPENDENCES
from .stdp import STDPParams, apply_bounds, stdp_delta

__all__ = ["batch_size", "transposed_hebbian", "event_current", "event_update", "event_compatible"]


def batch_size(n: int) -> int:
    """Events gathered together per batch: a sixteenth of the population, at least 8."""
    return max(8, n // 16)


def transposed_hebbian(post, pre):
    """``(post ⊗ pre).T = pre ⊗ post``: the Hebbian term in the ``WT`` layout."""
    return pre[:, None] * post[None, :]


def _events(v):
    """Indices of the nonzero entries of ``v`` first (the rest ``len(v)``: out of range), and their count."""
    n = v.shape[0]
    return jnp.nonzero(v != 0, size=n, fill_value=n)[0], jnp.count_nonzero(v)


def _gather(a, idx):
    return a.at[idx].get(mode="fill", fill_value=0)


def _batches(count, size: int):
    return (count + size - 1) // size


def event_current(WT, x):
    """``W @ x`` summed over the rows of ``WT`` of the active inputs, a batch at a time."""
    n_in, n_out = WT.shape
    size = batch_size(n_in)
    events, count = _events(x)
    padded = jnp.concatenate([events, jnp.full((size,), n_in, events.dtype)])

    def add_batch(b, acc):
        idx = jax.lax.dynamic_slice_in_dim(padded, b * size, size)
        return acc + _gather(x, idx) @ _gather(WT, idx)

    return jax.lax.fori_loop(0, _batches(count, size), add_batch, jnp.zeros((n_out,), WT.dtype))


def event_update(dependence: Callable, params: STDPParams, hardbound: bool, WT, x, s, P, Q):
    """``apply_bounds(WT, stdp_delta(...))`` visiting only fired neurons and active inputs.

    The columns of fired neurons get every term of the update, one neuron at a time;
    then the rows of active inputs, a batch at a time, get the LTD of the neurons that
    did not fire (their LTP is zero; the fired ones get a zero change).
    """
    n_in, n_out = WT.shape
    bounds = params.bounds

    def update(W_sub, pre, post, P_sub, Q_sub):
        d = stdp_delta(dependence, params, W_sub, pre, post, P_sub, Q_sub, transposed_hebbian)
        return apply_bounds(W_sub, d, bounds, hardbound)

    fired, n_fired = _events(s)

    def fired_column(k, WT):
        i = fired[k]
        col = jax.lax.dynamic_slice_in_dim(WT, i, 1, axis=1)
        new = update(col, x, jax.lax.dynamic_slice_in_dim(s, i, 1), P,
                     jax.lax.dynamic_slice_in_dim(Q, i, 1))
        return jax.lax.dynamic_update_slice_in_dim(WT, new, i, axis=1)

    size = batch_size(n_in)
    active, n_active = _events(x)
    padded = jnp.concatenate([active, jnp.full((size,), n_in, active.dtype)])
    silent_Q = Q * (1 - s)
    no_post = s * 0

    def active_rows(b, WT):
        idx = jax.lax.dynamic_slice_in_dim(padded, b * size, size)
        new = update(_gather(WT, idx), _gather(x, idx), no_post, _gather(P, idx), silent_Q)
        return WT.at[idx].set(new, mode="drop")

    WT = jax.lax.fori_loop(0, n_fired, fired_column, WT)
    return jax.lax.fori_loop(0, _batches(n_active, size), active_rows, WT)


def event_compatible(dependence: Callable) -> bool:
    """Whether ``dependence`` is known to be elementwise (the built-in ones)."""
    return dependence in DEPENDENCES.values()
