"""STDP with a slow weight update (Izhikevich 2006, "Polychronization").

Pair STDP accumulates in a per-synapse derivative ``sd`` at every step; the weights move
only once every ``period`` steps, by ``offset + sd``, after which ``sd`` keeps the
fraction ``keep`` of itself:

    sd ← sd + A+ · H(s, x_pre) − A− · H(x_post, x)                   (every step)
    W  ← clip(W + η · (offset + sd)),  sd ← keep · sd                 (every ``period`` steps)

``H`` is the connectivity's Hebbian term, ``x_pre`` and ``x_post`` the traces including
this step's spikes. The paper: ``A+ = 0.1``, ``A− = 0.12``, traces of 20 ms, ``offset =
0.01``, ``keep = 0.9``, one update a second (``period = 1000`` at dt = 1 ms).
"""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp

from .. import _validation as v
from .base import Activity, Rule

__all__ = ["SlowSTDP", "SlowState", "slow_stdp"]


class SlowState(NamedTuple):
    sd: object      # the accumulated change, per synapse
    clock: object   # steps since the last update (float32: exact, it restarts every period)


class SlowSTDP(Rule):
    """Pair STDP applied every ``period`` steps; build one with :func:`slow_stdp`."""

    A_plus: float = 0.1
    A_minus: float = 0.12
    offset: float = 0.01
    keep: float = 0.9
    period: int = 1000

    def init_state(self, pre_shape, post_shape, weight_shape, batch_shape=()):
        return SlowState(jnp.zeros(tuple(batch_shape) + tuple(weight_shape), jnp.float32),
                         jnp.zeros((), jnp.float32))

    def update(self, state, pre: Activity, post: Activity, W, hebbian):
        sd = state.sd + hebbian(self.A_plus * post.spikes, pre.trace) - hebbian(self.A_minus * post.trace,
                                                                                 pre.spikes)
        clock = state.clock + 1.0
        due = clock >= self.period
        dW = jnp.where(due, self.offset + sd, 0.0)
        return dW, SlowState(jnp.where(due, self.keep * sd, sd), jnp.where(due, 0.0, clock))

    def validate(self) -> None:
        v.check_nonnegative("A_plus", self.A_plus)
        v.check_nonnegative("A_minus", self.A_minus)
        v.check_number("offset", self.offset)
        v.check_unit_interval("keep", self.keep)
        v.check_positive_int("period", self.period)


def slow_stdp(A_plus: float = 0.1, A_minus: float = 0.12, offset: float = 0.01, keep: float = 0.9,
              period: int = 1000) -> SlowSTDP:
    """The rule with Izhikevich's (2006) numbers by default (``period`` in steps).

    Raises:
        ValueError: naming a bad argument.
    """
    rule = SlowSTDP(A_plus=A_plus, A_minus=A_minus, offset=offset, keep=keep, period=period)
    rule.validate()
    return rule
