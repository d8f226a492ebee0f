"""Restricted nearest-spike STDP (Burkitt, Meffin & Grayden 2004; Masquelier, Guyonneau &
Thorpe 2008) as a rule: one pairing per spike.

Each pre spike is potentiated only by the first post spike after it, and each post spike
depresses only the first pre spike after it. The rule keeps one pre and one post trace per
synapse (its state, shaped like ``W``). A pre and a post spike in the same step are not
paired (their order within the step is unknown), but each still uses up the older partner:

    P = d_pre · pre,   Q = d_post · post                 (spikes of earlier steps)
    dW = A+ · f+(W) ⊙ (s ⊗ 1) ⊙ P  −  A− · f−(W) ⊙ Q ⊙ (1 ⊗ x)
    pre'  = a_pre  where x, else (0 where s, else P)     (a post spike uses up P)
    post' = a_post where s, else (0 where x, else Q)     (a pre spike uses up Q)

Per-synapse pairing needs one weight per synapse: dense and masked layers, unbatched or
batched (one pair of traces per sample, the changes reduced over the batch).

Example:
    >>> from canns_stdp import rules
    >>> rule = rules.restricted(A_plus=0.03125, A_minus=0.85 * 0.03125, tau_pre=16.8, tau_post=33.7)
"""

from __future__ import annotations

import math
from typing import Any, Callable, NamedTuple

import jax.numpy as jnp

from .. import _validation as v
from ..functional.dependence import WeightBounds, check_dependence, resolve_dependence
from ..functional.traces import nearest_add
from .base import Activity, Rule

__all__ = ["Restricted", "RestrictedTraces", "restricted"]


class RestrictedTraces(NamedTuple):
    """Per-synapse traces, shaped like ``W`` (with a leading batch axis for a batch)."""

    pre: Any
    post: Any


class Restricted(Rule):
    """Restricted nearest-spike STDP; build one with :func:`restricted`."""

    A_plus: float = 0.03125
    A_minus: float = 0.0265625
    d_pre: float = 0.942
    d_post: float = 0.971
    a_pre: float = 1.0
    a_post: float = 1.0
    mu: float = 1.0
    dependence: Callable = resolve_dependence("additive")

    def init_state(self, pre_shape, post_shape, weight_shape, batch_shape=()):
        if tuple(weight_shape) != tuple(post_shape) + tuple(pre_shape) or len(weight_shape) != 2:
            raise ValueError("rules.restricted pairs spikes per synapse: it needs a dense or masked layer "
                             f"(W of shape (n_out, n_in)), got W of shape {tuple(weight_shape)}")
        zeros = jnp.zeros(tuple(batch_shape) + tuple(weight_shape), jnp.float32)
        return RestrictedTraces(zeros, zeros)

    def update(self, state, pre: Activity, post: Activity, W, hebbian, bounds: WeightBounds = WeightBounds()):
        x, s = pre.spikes[..., None, :], post.spikes[..., :, None]
        P, Q = self.d_pre * state.pre, self.d_post * state.post
        f_plus, f_minus = self.dependence(W, bounds._replace(mu=self.mu))
        dW = f_plus * (self.A_plus * s * P) - f_minus * (self.A_minus * Q * x)
        if dW.ndim > W.ndim:  # one change per sample: reduced as the map reduces a batch
            dW = hebbian.reduce(dW)
        return dW, self.advance(state, pre, post)

    def advance(self, state, pre: Activity, post: Activity):
        x, s = pre.spikes[..., None, :], post.spikes[..., :, None]
        P, Q = self.d_pre * state.pre, self.d_post * state.post
        return RestrictedTraces(nearest_add(jnp.where(s > 0, 0.0, P), x, self.a_pre).astype(P.dtype),
                                nearest_add(jnp.where(x > 0, 0.0, Q), s, self.a_post).astype(Q.dtype))

    def check_shapes(self, weight_shape, bounds: WeightBounds) -> None:
        check_dependence(self.dependence, weight_shape, bounds._replace(mu=self.mu))

    def validate(self) -> None:
        for name in ("A_plus", "A_minus", "a_pre", "a_post", "mu"):
            v.check_nonnegative(name, getattr(self, name))
        v.check_decay("d_pre", self.d_pre)
        v.check_decay("d_post", self.d_post)


def restricted(A_plus: float = 0.03125, A_minus: float = 0.0265625, *, tau_pre: float = 16.8,
               tau_post: float = 33.7, dt: float = 1.0, a_pre: float = 1.0, a_post: float = 1.0,
               dependence: Any = "additive", mu: float = 1.0) -> Restricted:
    """Restricted nearest-spike STDP with trace time constants ``tau_pre``, ``tau_post``
    (units of ``dt``; exact decays ``exp(−dt/τ)``). Defaults: Masquelier et al. (2008)."""
    dt = v.check_positive("dt", dt)
    d_pre = math.exp(-dt / v.check_positive("tau_pre", tau_pre))
    d_post = math.exp(-dt / v.check_positive("tau_post", tau_post))
    rule = Restricted(A_plus, A_minus, d_pre, d_post, a_pre, a_post, mu, resolve_dependence(dependence))
    rule.validate()
    return rule
