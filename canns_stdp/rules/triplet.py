"""Triplet STDP (Pfister & Gerstner 2006) as a rule.

The fast traces ``r1``, ``o1`` are the layer's ``trace_pre`` and ``trace_post``; the rule
keeps the slow ones, ``r2`` per input and ``o2`` per neuron, as its state. Each step:

    r2_dec = d_x · r2,   o2_dec = d_y · o2          (decayed to this step: t − ε)
    dW = f+(W) ⊙ H(s ⊙ (A2+ + A3+ · o2_dec), P)  −  f−(W) ⊙ H(Q, x ⊙ (A2− + A3− · r2_dec))
    r2' = add(r2_dec, x, a_pre),   o2' = add(o2_dec, s, a_post)

with ``(P, Q)`` the fast traces chosen by the pairing convention, ``H`` the synaptic
map's Hebbian term and ``add`` the trace mode (``"cumulative"``: ``+ a`` per spike, all
to all; ``"nearest"``: reset to ``a``). With ``A3± = 0`` it is the pair rule with
``A± = A2±``. :func:`~canns_stdp.functional.triplet.triplet_parameters` has the paper's
fitted sets.

Example:
    >>> from canns_stdp import rules
    >>> rule = rules.triplet(tau_x=101.0, tau_y=125.0)   # the visual-cortex all-to-all set
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax.numpy as jnp

from .. import _validation as v
from ..functional.dependence import DEPENDENCES, WeightBounds, check_dependence, resolve_dependence
from ..functional.stdp import PAIRINGS
from ..functional.traces import DECAY_METHODS, TRACE_MODES, decay_from_tau
from .base import Activity, Rule
from .pair import pairing_of

__all__ = ["Triplet", "TripletTraces", "triplet"]


class TripletTraces(NamedTuple):
    """The slow traces: ``r2`` shaped like the input, ``o2`` like the output."""

    r2: Any
    o2: Any


class Triplet(Rule):
    """Triplet STDP; build one with :func:`triplet`."""

    @property
    def local(self) -> bool:
        """Its change needs a pre or a post spike at the synapse (with a built-in,
        elementwise weight dependence)."""
        return self.dependence in DEPENDENCES.values()

    A2_plus: float = 5e-10
    A3_plus: float = 6.2e-3
    A2_minus: float = 7e-3
    A3_minus: float = 2.3e-4
    d_x: float = 0.99014     # per-step decay of r2: exp(-dt / tau_x)
    d_y: float = 0.99203     # per-step decay of o2: exp(-dt / tau_y)
    a_pre: float = 1.0
    a_post: float = 1.0
    mu: float = 1.0
    pairing: str = "symmetric"
    trace_mode: str = "cumulative"
    dependence: Callable = resolve_dependence("additive")

    def init(self, pre_shape, post_shape):
        return TripletTraces(jnp.zeros(pre_shape, jnp.float32), jnp.zeros(post_shape, jnp.float32))

    def update(self, state, pre: Activity, post: Activity, W, hebbian, bounds: WeightBounds = WeightBounds()):
        r2_dec, o2_dec = self.d_x * state.r2, self.d_y * state.o2
        P, Q = pairing_of(self.pairing, pre, post)
        f_plus, f_minus = self.dependence(W, bounds._replace(mu=self.mu))
        ltp = f_plus * hebbian(post.spikes * (self.A2_plus + self.A3_plus * o2_dec), P)
        ltd = f_minus * hebbian(Q, pre.spikes * (self.A2_minus + self.A3_minus * r2_dec))
        return ltp - ltd, self.advance(state, pre, post)

    def advance(self, state, pre: Activity, post: Activity):
        add = TRACE_MODES[self.trace_mode]
        return TripletTraces(add(self.d_x * state.r2, pre.spikes, self.a_pre),
                             add(self.d_y * state.o2, post.spikes, self.a_post))

    def check_shapes(self, weight_shape, bounds: WeightBounds) -> None:
        check_dependence(self.dependence, weight_shape, bounds._replace(mu=self.mu))

    def validate(self) -> None:
        for name in ("A2_plus", "A3_plus", "A2_minus", "A3_minus", "a_pre", "a_post", "mu"):
            v.check_nonnegative(name, getattr(self, name))
        v.check_decay("d_x", self.d_x)
        v.check_decay("d_y", self.d_y)
        v.check_choice("pairing", self.pairing, PAIRINGS)
        v.check_choice("trace_mode", self.trace_mode, tuple(TRACE_MODES))


def triplet(A2_plus: float = 5e-10, A3_plus: float = 6.2e-3, A2_minus: float = 7e-3,
            A3_minus: float = 2.3e-4, *, tau_x: float = 101.0, tau_y: float = 125.0, dt: float = 1.0,
            decay: str = "exact", trace_mode: str = "cumulative", a_pre: float = 1.0,
            a_post: float = 1.0, pairing: str = "symmetric", dependence: Any = "additive",
            mu: float = 1.0) -> Triplet:
    """Triplet STDP with the given amplitudes and slow time constants.

    Args:
        A2_plus, A3_plus, A2_minus, A3_minus: pair and triplet amplitudes (>= 0).
        tau_x, tau_y: time constants of ``r2`` and ``o2``, in units of ``dt``.
        dt, decay: the step and the decay method (``"exact"``: ``exp(-dt/τ)``,
            ``"euler"``: ``1 - dt/τ``), as the layer's.
        trace_mode: ``"cumulative"`` (all to all) or ``"nearest"``, as the layer's.
        a_pre, a_post: increments of ``r2`` and ``o2`` per spike, as the layer's.
        pairing, dependence, mu: as for :func:`~canns_stdp.rules.pair`.
    """
    v.check_choice("decay", decay, DECAY_METHODS)
    dt = v.check_positive("dt", dt)
    d_x = decay_from_tau(v.check_positive("tau_x", tau_x), dt, decay)
    d_y = decay_from_tau(v.check_positive("tau_y", tau_y), dt, decay)
    rule = Triplet(A2_plus, A3_plus, A2_minus, A3_minus, d_x, d_y, a_pre, a_post, mu, pairing, trace_mode,
                   resolve_dependence(dependence))
    rule.validate()
    return rule
