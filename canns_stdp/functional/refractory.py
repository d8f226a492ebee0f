"""Absolute refractory period, counted in steps.

A counter per neuron holds the number of steps during which the neuron ignores
its input. Each step, before the input is applied:

    blocked = counter > 0
    current = 0 where blocked, else current
and after the spikes ``s`` of the step are known:

    counter' = period where s = 1, else max(counter - 1, 0)

So a neuron that fires at step ``t`` ignores its input at steps ``t+1 ... t+period``.
``period = 0`` switches the mechanism off.

Example:
    >>> import jax.numpy as jnp
    >>> from canns_stdp.functional.refractory import gate_current, refractory_step
    >>> count = refractory_step(jnp.zeros(2), jnp.array([1., 0.]), 3)
    >>> count
    Array([3., 0.], dtype=float32)
    >>> gate_current(count, jnp.array([5., 5.]))
    Array([0., 5.], dtype=float32)
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

__all__ = ["gate_current", "period_steps", "refractory_step"]


def period_steps(period: float, dt: float) -> float:
    """A refractory period given in the units of ``dt``, in whole steps: ``round(period / dt)``."""
    return float(np.round(period / dt))


def gate_current(counter, current):
    """Zero the input of neurons whose refractory counter is positive."""
    return jnp.where(counter > 0, jnp.zeros((), current.dtype), current)


def refractory_step(counter, spikes, period):
    """``counter' = period`` where a neuron spiked, else ``max(counter - 1, 0)``."""
    counted = jnp.maximum(counter - 1, 0)
    return jnp.where(spikes > 0, jnp.asarray(period, counter.dtype), counted)
