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

Deferred LTP
------------
Visiting the fired neurons' columns costs one strided column of ``WT`` per spike. With
the additive dependence it can be avoided altogether: while input ``j`` is silent its
pre trace only decays, ``tr_j(c) = tr_j(c_j) d^(c - c_j)`` after its last spike at step
``c_j``, so the LTP its synapses receive at step ``c`` is
``lr A+ tr_j(c_j) d^(c - c_j) s_i(c)``: a product of one number per input and one per
neuron. The increments all have the sign of ``lr A+ tr_j(c_j)``, and clipping a
sequence of same-signed increments one at a time gives the clipped sum (for a weight
within its bounds). So row ``j``
can be brought up to date only when it is next read (input ``j`` spikes) or when a
span of steps ends, from a :class:`Ledger`:

    W[j, i] = clip(U[j, i] + rate[j] * fired[i])
    rate[j] = lr A+ tr_j(c_j) d^(-c_j),     fired[i] = sum over c' <= c of s_i(c') d^c'

where ``U[j] = W[j](c_j) - rate[j] fired(c_j)`` is what the state stores in place of
row ``j`` of ``WT`` (:func:`deferred_rows`, :func:`deferred_update`). A step then
costs in proportion to the active inputs only, however many neurons fire; a span of
steps ends with one dense pass (:func:`settle`). The product ``rate[j] * fired[i]`` that
``U`` subtracts grows like ``d^-c`` over a span while the LTP still owed does not, so
the rounding of ``U`` grows with the span's length:
:func:`deferred_span` picks the longest span whose rounding stays within what the
dense step's own rounding could reach over as many steps.
"""

from __future__ import annotations

import math
from functools import partial
from typing import Any, Callable, NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np

from .dependence import DEPENDENCES, WeightBounds, additive
from .stdp import STDPParams, apply_bounds, stdp_delta

__all__ = ["input_events", "event_width", "pack_events", "transposed_hebbian", "event_current", "event_update",
           "event_compatible", "Ledger", "DeferredState", "deferred_compatible", "deferred_span", "open_ledger",
           "settle", "deferred_rows", "rows_current", "deferred_update"]


def input_events(xs: np.ndarray, max_width: int) -> Optional[np.ndarray]:
    """Indices of the nonzero inputs of each step, ``(T, width)``, padded with ``n_in``.

    ``width`` is the smallest power of two (at least 8) that holds the busiest step, so
    few widths (and compilations) occur. Returns ``None`` when that exceeds ``max_width``.
    Computed on the host with NumPy, once per chunk.
    """
    xs = np.asarray(xs)  # (an input kept on its device: fetched)
    T, n_in = xs.shape
    rows, cols = np.divmod(np.flatnonzero(xs != 0), n_in)  # each step's inputs in index order
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
    return rows_current(_gather(WT, x_events), x, x_events)


def rows_current(rows, x, x_events):
    """``W @ x`` from ``rows``, the rows of ``WT`` of the active inputs ``x_events``."""
    return _gather(x, x_events) @ rows


def _update(dependence: Callable, params: STDPParams, hardbound: bool, W_sub, pre, post, P_sub, Q_sub):
    """steps 6-7 of docs/step.md on a part of ``WT``: its rows' ``pre``/``P``, its columns' ``post``/``Q``."""
    d = stdp_delta(dependence, params, W_sub, pre, post, P_sub, Q_sub, transposed_hebbian)
    return apply_bounds(W_sub, d, params.bounds, hardbound)


def event_update(dependence: Callable, params: STDPParams, hardbound: bool, WT, x, x_events, s, P, Q):
    """``apply_bounds(WT, stdp_delta(...))`` visiting only fired neurons and active inputs.

    The columns of fired neurons get every term of the update, one neuron at a time;
    then the rows of the active inputs get the LTD of the neurons that did not fire
    (their LTP is zero; the fired ones get a zero change).
    """
    n_in, n_out = WT.shape
    update = partial(_update, dependence, params, hardbound)
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


class Ledger(NamedTuple):
    """The LTP owed to rows of ``WT`` since they were last written (see the module doc)."""

    rate: jnp.ndarray   # (n_in,)  lr A+ tr_j(c_j) d^-c_j
    fired: jnp.ndarray  # (n_out,) sum of s_i(c) d^c over the span so far
    clock: jnp.ndarray  # ()       steps since the span began


class DeferredState(NamedTuple):
    """A layer's state during a span of deferred LTP: ``layer.W`` holds ``U``."""

    layer: Any  # a LayerState in the event kernel's layout
    ledger: Ledger
    rows: Optional[jnp.ndarray]  # a step's rows of WT pass through it (functional.in_place.through_buffer)


def deferred_compatible(dependence: Callable) -> bool:
    """Whether LTP can be deferred: ``f+`` must not depend on ``W`` (the additive rule)."""
    return dependence is additive


def deferred_span(ltp_rate: float, d_pre: float, trace_bound: float, weight_scale: float, most: int) -> int:
    """Longest span of ``most`` steps, or ``most`` halved as often as needed (at least
    16 steps, dividing ``most``), over which the ledger rounds no more than the dense
    step could; 0 when none.

    ``U`` stores ``W - rate * fired``, a difference of terms up to
    ``A = |lr A+| * trace_bound * sum_{k=1..L} d^-k`` (a neuron firing at every step),
    so reading a weight back rounds it by up to ``2 eps A``. ``L`` dense steps round a
    weight of size ``weight_scale`` by up to ``L eps / 2 * weight_scale``; the span is
    the longest with ``2 eps A`` within that. ``d^-L`` must also stay far from
    float32's range.
    """
    if not 0.0 < d_pre <= 1.0:
        return 0
    span = int(most)
    while span >= 16 and most % span == 0:
        growth = float(span) if d_pre == 1.0 else math.expm1(-span * math.log(d_pre)) / (1.0 - d_pre)
        in_range = -span * math.log(d_pre) < 60.0  # d^-span < 1e26
        if in_range and 4.0 * abs(ltp_rate) * trace_bound * growth <= span * weight_scale:
            return span
        span //= 2
    return 0


def open_ledger(stdp: STDPParams, trace_pre, n_out: int) -> Ledger:
    """A ledger at the start of a span: every row up to date, owed nothing yet."""
    rate = stdp.lr * stdp.A_plus * trace_pre
    return Ledger(rate, jnp.zeros((n_out,), rate.dtype), jnp.zeros((), rate.dtype))


def settle(U, ledger: Ledger, bounds: WeightBounds, hardbound: bool):
    """``WT`` with every row's owed LTP applied (a dense pass, once per span)."""
    return apply_bounds(U, ledger.rate[:, None] * ledger.fired[None, :], bounds, hardbound)


def deferred_rows(U, ledger: Ledger, x_events, bounds: WeightBounds, hardbound: bool):
    """The up-to-date rows of ``WT`` of the active inputs ``x_events``."""
    owed = _gather(ledger.rate, x_events)[:, None] * ledger.fired[None, :]
    return apply_bounds(_gather(U, x_events), owed, bounds, hardbound)


def deferred_update(dependence: Callable, params: STDPParams, hardbound: bool, d_pre, U, ledger: Ledger,
                    rows, x, x_events, s, P, Q, trace_pre):
    """steps 6-7 of docs/step.md for one step with deferred LTP: ``(U, ledger)`` after it.

    ``rows`` (from :func:`deferred_rows`) get the full update; every other row is owed
    this step's LTP, ``lr A+ P_j s``, which the ledger records in ``fired``. ``trace_pre``
    is the pre trace after this step: the active rows' owed LTP restarts from it.
    """
    rows = _update(dependence, params, hardbound, rows, _gather(x, x_events), s, _gather(P, x_events), Q)
    clock = ledger.clock + 1
    fired = ledger.fired + s * jnp.power(d_pre, clock)
    rate = params.lr * params.A_plus * _gather(trace_pre, x_events) * jnp.power(d_pre, -clock)
    U = U.at[x_events].set(rows - rate[:, None] * fired[None, :], mode="drop")
    return U, Ledger(ledger.rate.at[x_events].set(rate, mode="drop"), fired, clock)
