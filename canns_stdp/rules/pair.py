"""Pair-based STDP (Bi & Poo 1998; Song, Miller & Abbott 2000) as a rule.

    dW = A+ · f+(W) ⊙ H(s, P)  −  A− · f−(W) ⊙ H(Q, x)

``H`` is the synaptic map's Hebbian term (``s ⊗ P`` for a dense layer) and ``(P, Q)``
the traces chosen by the pairing convention:

* ``symmetric``: ``(tr_pre', tr_post')``: a coincident pair gives LTP and LTD,
* ``causal``: ``(tr_pre', d_post·tr_post)``: a coincident pair counts as pre-before-post,
* ``strict``: ``(d_pre·tr_pre, d_post·tr_post)``: coincident pairs are ignored.

``f±`` is the weight dependence (:mod:`canns_stdp.functional.dependence`: additive,
hard, soft, power with exponent ``mu``, or a user pair of functions of ``W``).

Example:
    >>> from canns_stdp import rules
    >>> rule = rules.pair(A_plus=0.005, A_minus=0.00525, pairing="causal", dependence="soft")
"""

from __future__ import annotations

from typing import Any, Callable

from .. import _validation as v
from ..functional.dependence import DEPENDENCES, WeightBounds, check_dependence, resolve_dependence
from ..functional.stdp import PAIRINGS, pairing_terms, Traces
from .base import Activity, Rule

__all__ = ["Pair", "pair", "pairing_of"]


def pairing_of(pairing: str, pre: Activity, post: Activity):
    """``(P, Q)``: the pre trace paired with post spikes, the post trace with pre spikes."""
    return pairing_terms(pairing, Traces(pre.trace, post.trace), Traces(pre.decayed, post.decayed))


class Pair(Rule):
    """Pair STDP; build one with :func:`pair`.

    Attributes:
        A_plus, A_minus: LTP and LTD amplitudes (traced: changing them never recompiles).
        mu: exponent of the ``"power"`` dependence.
        pairing: ``"symmetric"``, ``"causal"`` or ``"strict"``.
        dependence: a dependence function ``dep(W, bounds) -> (f_plus, f_minus)``.
        signed: allow negative amplitudes (anti-Hebbian and one-sided variants).
    """

    @property
    def local(self) -> bool:
        """Its change needs a pre or a post spike at the synapse (with a built-in,
        elementwise weight dependence)."""
        return self.dependence in DEPENDENCES.values()

    A_plus: float = 0.005
    A_minus: float = 0.00525
    mu: float = 1.0
    pairing: str = "symmetric"
    dependence: Callable = resolve_dependence("additive")
    signed: bool = False

    def update(self, state, pre: Activity, post: Activity, W, hebbian, bounds: WeightBounds = WeightBounds()):
        P, Q = pairing_of(self.pairing, pre, post)
        f_plus, f_minus = self.dependence(W, bounds._replace(mu=self.mu))
        ltp = f_plus * hebbian(self.A_plus * post.spikes, P)
        ltd = f_minus * hebbian(self.A_minus * Q, pre.spikes)
        return ltp - ltd, state

    def check_shapes(self, weight_shape, bounds: WeightBounds) -> None:
        check_dependence(self.dependence, weight_shape, bounds._replace(mu=self.mu))

    def validate(self) -> None:
        check = v.check_number if self.signed else v.check_nonnegative
        check("A_plus", self.A_plus)
        check("A_minus", self.A_minus)
        v.check_nonnegative("mu", self.mu)
        v.check_choice("pairing", self.pairing, PAIRINGS)


def pair(A_plus: float = 0.005, A_minus: float = 0.00525, *, pairing: str = "symmetric",
         dependence: Any = "additive", mu: float = 1.0, signed: bool = False) -> Pair:
    """Pair STDP with the given amplitudes, pairing convention and weight dependence.

    Args:
        A_plus, A_minus: LTP and LTD amplitudes (>= 0 unless ``signed``).
        pairing: ``"symmetric"`` (default), ``"causal"`` or ``"strict"``.
        dependence: ``"additive"``, ``"hard"``, ``"soft"``, ``"power"``, a pair
            ``(f_plus, f_minus)`` of functions of ``W``, or a function
            ``(W, bounds) -> (f_plus, f_minus)``.
        mu: exponent of the ``"power"`` dependence (>= 0).
        signed: allow negative amplitudes.

    Raises:
        ValueError, TypeError: naming a bad argument.
    """
    if not isinstance(signed, bool):
        raise TypeError(f"signed must be True or False, got {signed!r}")
    rule = Pair(A_plus, A_minus, mu, pairing, resolve_dependence(dependence), signed)
    rule.validate()
    return rule
