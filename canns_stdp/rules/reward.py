"""Reward modulation (Florian 2007; Izhikevich 2007) as a wrapper around any rule.

Let ``ζ`` be the wrapped rule's change (per unit learning rate) and ``r`` the reward
given at the step. The three classic rules are one update with three constants:

    e' = d_e · e + g · ζ            (eligibility, shaped like W)
    D' = d_D · D + r                (dopamine)
    dW = D' · e'

=============  ======================  =============  ==========================
kind           ``d_e``                 ``g``          ``d_D``
=============  ======================  =============  ==========================
``mstdp``      0 (``e' = ζ``)          1              0 (``D' = r``)
``mstdpet``    ``exp(−dt/τ_z)``        ``1/τ_z``      0 (``D' = r``)
``rstdp``      ``exp(−dt/τ_c)``        1              0, or ``exp(−dt/τ_d)``
=============  ======================  =============  ==========================

The constants are numbers, so switching kind or time constant never recompiles. With a
batch, each sample has its own ``ζ_b`` (from its own spikes and traces), eligibility and
dopamine; ``W`` takes the batch reduction (sum or mean) of ``D_b' · e_b'``.

Example:
    >>> from canns_stdp import rules
    >>> rule = rules.reward(rules.pair(), kind="mstdpet", tau_z=25.0)
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple, Optional

import jax
import jax.numpy as jnp

from .. import _validation as v
from .base import Activity, Rule

__all__ = ["KINDS", "Reward", "RewardTraces", "reward"]

KINDS = ("mstdp", "mstdpet", "rstdp")


class RewardTraces(NamedTuple):
    """The wrapped rule's state, the eligibility and the dopamine."""

    inner: Any
    eligibility: Any   # W's shape; (B,) + W's shape with a batch
    dopamine: Any      # (); (B,) with a batch


class Reward(Rule):
    """Reward-modulated ``inner`` rule; build one with :func:`reward`."""

    inner: Rule = None
    d_e: float = 0.0
    gain: float = 1.0
    d_D: float = 0.0

    def init_state(self, pre_shape, post_shape, weight_shape, batch_shape=()):
        batch_shape = tuple(batch_shape)
        inner = self.inner.init_state(pre_shape, post_shape, weight_shape, batch_shape)
        return RewardTraces(inner, jnp.zeros(batch_shape + tuple(weight_shape), jnp.float32),
                            jnp.zeros(batch_shape, jnp.float32))

    def update(self, state, pre: Activity, post: Activity, W, hebbian, reward, bounds=None):
        extra = {} if bounds is None or "bounds" not in self.inner.extras() else {"bounds": bounds}
        batched = state.eligibility.ndim > W.ndim
        if batched:  # one ζ per sample, from that sample alone
            def one(inner, pre_b, post_b):
                return self.inner.update(inner, pre_b, post_b, W, hebbian.per_sample, **extra)
            zeta, inner = jax.vmap(one)(state.inner, pre, post)
        else:
            zeta, inner = self.inner.update(state.inner, pre, post, W, hebbian, **extra)
        e = self.d_e * state.eligibility + self.gain * zeta
        D = self.d_D * state.dopamine + reward
        modulated = D.reshape(D.shape + (1,) * W.ndim) * e if batched else D * e
        dW = hebbian.reduce(modulated) if batched else modulated
        return dW, RewardTraces(inner, e, D)

    def advance(self, state, pre: Activity, post: Activity):
        return state._replace(inner=self.inner.advance(state.inner, pre, post))

    def check_shapes(self, weight_shape, bounds) -> None:
        self.inner.check_shapes(weight_shape, bounds)

    def validate(self) -> None:
        if not isinstance(self.inner, Rule):
            raise TypeError(f"reward() wraps a rule (a canns_stdp.rules.Rule), got {self.inner!r}")
        if isinstance(self.inner, Reward):
            raise TypeError("reward() wraps a plain rule, not another reward-modulated one")
        self.inner.validate()


def reward(rule: Rule, kind: str = "mstdpet", *, tau_z: float = 25.0, tau_c: float = 1000.0,
           tau_d: Optional[float] = None, dt: float = 1.0) -> Reward:
    """``rule`` modulated by a reward given at every step (``train(X, reward=r)``).

    Args:
        rule: the rule whose change ``ζ`` the reward gates (any rule).
        kind: ``"mstdp"`` (``dW = r·ζ``), ``"mstdpet"`` (``z' = exp(−dt/τ_z) z + ζ/τ_z``,
            ``dW = r·z'``) or ``"rstdp"`` (``c' = exp(−dt/τ_c) c + ζ``, ``dW = D'·c'``).
        tau_z: eligibility time constant of MSTDPET (> 0, units of ``dt``).
        tau_c: eligibility time constant of R-STDP (> 0).
        tau_d: dopamine time constant of R-STDP (> 0), or ``None`` for ``D = r``.
        dt: the time step.
    """
    v.check_choice("kind", kind, KINDS)
    dt = v.check_positive("dt", dt)
    tau_z = v.check_positive("tau_z", tau_z)
    tau_c = v.check_positive("tau_c", tau_c)
    tau_d = None if tau_d is None else v.check_positive("tau_d", tau_d)
    if kind == "mstdp":
        d_e, gain, d_D = 0.0, 1.0, 0.0
    elif kind == "mstdpet":
        d_e, gain, d_D = math.exp(-dt / tau_z), 1.0 / tau_z, 0.0
    else:
        d_e, gain, d_D = math.exp(-dt / tau_c), 1.0, 0.0 if tau_d is None else math.exp(-dt / tau_d)
    wrapped = Reward(rule, d_e, gain, d_D)
    wrapped.validate()
    return wrapped
