"""Presynaptic and postsynaptic spike traces (steps 1 and 5 of docs/step.md).

A trace step is split in two so that the pairing conventions of step 6 of docs/step.md can
use the trace *decayed to this step but without this step's spikes*:

    decayed = decay * trace
    trace'  = add(decayed, spikes, amplitude)

with ``add`` one of

* :func:`cumulative_add`: ``decayed + amplitude * spikes`` (all-to-all pairing),
* :func:`nearest_add`: ``amplitude`` where a spike occurs, else ``decayed``
  (nearest-spike pairing, Morrison, Diesmann & Gerstner 2008).

Example:
    >>> import jax.numpy as jnp
    >>> from canns_stdp.functional import traces
    >>> d = traces.decay_from_tau(20.0, dt=1.0)          # exp(-1/20)
    >>> tr = traces.cumulative_trace(jnp.zeros(3), jnp.array([1., 0., 1.]), d, 1.0)
"""

from __future__ import annotations

import math
from typing import Callable

import jax.numpy as jnp
import numpy as np

__all__ = [
    "DECAY_METHODS",
    "TRACE_MODES",
    "cumulative_add",
    "nearest_add",
    "cumulative_trace",
    "nearest_trace",
    "decay_from_tau",
    "trace_affine",
]

DECAY_METHODS = ("exact", "euler")


def decay_from_tau(tau: float, dt: float = 1.0, method: str = "exact") -> float:
    """Per-step decay factor of a trace with time constant ``tau``.

    ``exact``: ``exp(-dt / tau)``; ``euler``: ``1 - dt / tau`` (forward Euler, as
    SpikingJelly and Norse integrate their traces).

    Raises:
        ValueError: when ``tau`` or ``dt`` is not a positive finite number, the
            method is unknown, or the Euler factor falls outside ``(0, 1]``.
    """
    if not (isinstance(tau, (int, float)) and math.isfinite(tau) and tau > 0):
        raise ValueError(f"tau must be a positive finite number, got {tau!r}")
    if not (isinstance(dt, (int, float)) and math.isfinite(dt) and dt > 0):
        raise ValueError(f"dt must be a positive finite number, got {dt!r}")
    if method == "exact":
        decay = math.exp(-dt / tau)
        if float(np.float32(decay)) == 0.0:  # what the compiled code would use
            raise ValueError(f"decay exp(-dt/tau) is 0 in float32 for dt={dt!r}, tau={tau!r}: a trace "
                             "that forgets everything at once; use tau > dt / 100")
        return decay
    if method == "euler":
        decay = 1.0 - dt / tau
        if not 0.0 < decay <= 1.0:
            raise ValueError(
                f"Euler decay 1 - dt/tau = {decay!r} is outside (0, 1] for dt={dt!r}, "
                f"tau={tau!r}; use tau > dt or decay='exact'"
            )
        return decay
    raise ValueError(f"decay must be one of {DECAY_METHODS}, got {method!r}")


def cumulative_add(decayed, spikes, amplitude):
    """All-to-all trace: every spike adds ``amplitude`` to the decayed trace."""
    return decayed + amplitude * spikes


def nearest_add(decayed, spikes, amplitude):
    """Nearest-spike trace: a spike resets the trace to ``amplitude``."""
    return jnp.where(spikes > 0, amplitude, decayed)


def cumulative_trace(trace, spikes, decay, amplitude=1.0):
    """One full step of a cumulative trace: ``decay * trace + amplitude * spikes``."""
    return cumulative_add(decay * trace, spikes, amplitude)


def nearest_trace(trace, spikes, decay, amplitude=1.0):
    """One full step of a nearest-spike trace."""
    return nearest_add(decay * trace, spikes, amplitude)


def trace_affine(add: Callable, decay, spikes, amplitude):
    """``(a, b)`` such that one trace step is ``add(decay * tr, spikes, amplitude) = a * tr + b``.

    Both trace modes are affine in the trace, so a whole sequence of steps composes
    associatively (``jax.lax.associative_scan``) instead of one step after another.
    """
    spikes = jnp.asarray(spikes)
    if add is cumulative_add:
        return jnp.full_like(spikes, decay), amplitude * spikes
    if add is nearest_add:
        on = spikes > 0
        return jnp.where(on, 0.0, decay).astype(spikes.dtype), jnp.where(on, amplitude, 0.0).astype(spikes.dtype)
    raise ValueError(f"trace_affine knows cumulative_add and nearest_add, got {add!r}")


TRACE_MODES: dict[str, Callable] = {"cumulative": cumulative_add, "nearest": nearest_add}
