"""Pair-based STDP with traces (steps 1, 5, 6 and 7 of docs/step.md).

    tr_pre'  = add(d_pre  * tr_pre,  x, a_pre)
    tr_post' = add(d_post * tr_post, s, a_post)
    dW = lr * (A+ * f+(W) ⊙ (s ⊗ P) - A- * f-(W) ⊙ (Q ⊗ x))
    W' = clip(W + dW, w_min, w_max)          (when hardbound)

``(P, Q)`` is chosen by the pairing convention:

* ``symmetric``: ``(tr_pre', tr_post')``: a coincident pair gives LTP and LTD,
* ``causal``: ``(tr_pre', d_post * tr_post)``: a coincident pair counts as
  pre-before-post,
* ``strict``: ``(d_pre * tr_pre, d_post * tr_post)``: coincident pairs are ignored.

Example:
    >>> import jax.numpy as jnp
    >>> from canns_stdp.functional import stdp, traces, dependence
    >>> p = stdp.TraceParams(d_pre=0.95, d_post=0.95, a_pre=1.0, a_post=1.0)
    >>> tr = stdp.Traces(pre=jnp.zeros(3), post=jnp.zeros(2))
    >>> x, s = jnp.array([1., 0., 0.]), jnp.array([1., 0.])
    >>> new, decayed = stdp.update_traces(traces.cumulative_add, p, tr, x, s)
    >>> P, Q = stdp.pairing_terms("causal", new, decayed)
    >>> rule = stdp.STDPParams(0.01, 0.005, 0.00525, dependence.WeightBounds())
    >>> dW = stdp.stdp_delta(dependence.additive, rule, jnp.full((2, 3), 0.5), x, s, P, Q)
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import jax.numpy as jnp

from .dependence import WeightBounds
from .synapses import dense_hebbian

__all__ = [
    "PAIRINGS",
    "TraceParams",
    "Traces",
    "STDPParams",
    "update_traces",
    "advance_trace",
    "pairing_terms",
    "stdp_delta",
    "apply_bounds",
]

PAIRINGS = ("symmetric", "causal", "strict")


class TraceParams(NamedTuple):
    """Decays and amplitudes of the pre and post traces."""

    d_pre: float = 0.95
    d_post: float = 0.95
    a_pre: float = 1.0
    a_post: float = 1.0


class Traces(NamedTuple):
    pre: jnp.ndarray
    post: jnp.ndarray


class STDPParams(NamedTuple):
    """Learning rate, LTP/LTD amplitudes and weight bounds."""

    lr: float = 0.01
    A_plus: float = 0.005
    A_minus: float = 0.00525
    bounds: WeightBounds = WeightBounds()


def update_traces(add: Callable, params: TraceParams, traces: Traces, pre, post):
    """Advance both traces one step.

    Args:
        add: :func:`~canns_stdp.functional.traces.cumulative_add` or
            :func:`~canns_stdp.functional.traces.nearest_add`.
        params: decays and amplitudes.
        traces: the traces after the previous step.
        pre: this step's input ``x``; post: this step's output spikes ``s``.

    Returns:
        ``(new, decayed)``: the traces including this step's spikes, and the traces
        decayed to this step without them (used by the ``causal``/``strict`` pairings).
    """
    new_pre, decayed_pre = advance_trace(add, params.d_pre, params.a_pre, traces.pre, pre)
    new_post, decayed_post = advance_trace(add, params.d_post, params.a_post, traces.post, post)
    return Traces(new_pre, new_post), Traces(decayed_pre, decayed_post)


def advance_trace(add: Callable, decay, amplitude, trace, spikes):
    """One trace one step: ``(new, decayed)``, as :func:`update_traces` does for each side."""
    decayed = decay * trace
    return add(decayed, spikes, amplitude), decayed


def pairing_terms(pairing: str, new: Traces, decayed: Traces):
    """``(P, Q)``: the pre trace paired with post spikes, the post trace with pre."""
    if pairing == "symmetric":
        return new.pre, new.post
    if pairing == "causal":
        return new.pre, decayed.post
    if pairing == "strict":
        return decayed.pre, decayed.post
    raise ValueError(f"pairing must be one of {PAIRINGS}, got {pairing!r}")


def stdp_delta(dependence: Callable, params: STDPParams, W, pre, post, P, Q,
               hebbian: Callable = dense_hebbian):
    """``dW = lr * (A+ f+(W) ⊙ hebbian(post, P) - A- f-(W) ⊙ hebbian(Q, pre))``.

    The amplitudes are folded into the vectors (``(A+ post) ⊗ P``) and ``lr`` multiplies
    the difference, in the order :class:`canns_stdp.rules.Pair` and the step use, so that
    every kernel's dense update rounds as the plain step does.
    """
    f_plus, f_minus = dependence(W, params.bounds)
    ltp = f_plus * hebbian(params.A_plus * post, P)
    ltd = f_minus * hebbian(params.A_minus * Q, pre)
    return params.lr * (ltp - ltd)


def apply_bounds(W, dW, bounds: WeightBounds, hardbound: bool = True):
    """``W + dW``, clipped to ``[w_min, w_max]`` when ``hardbound``."""
    W = W + dW
    if hardbound:
        W = jnp.clip(W, bounds.w_min, bounds.w_max)
    return W
