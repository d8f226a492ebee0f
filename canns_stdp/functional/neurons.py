"""Leaky integrate-and-fire neuron step (steps 2-4 of docs/step.md).

    v'  = leak * v + current
    s   = 1[v' >= threshold]      (or the imposed post spikes)
    v'' = v_reset where s = 1, else v'

With an absolute refractory period of ``refractory`` steps (:func:`refractory_lif_step`),
a counter ``c`` of the steps left holds a neuron that spiked at its reset potential,
deaf to its input and unable to fire, for the ``refractory`` steps that follow:

    v'  = v where c > 0, else leak * v + current
    s   = 1[v' >= threshold and c = 0]      (or the imposed post spikes)
    v'' = v_reset where s = 1, else v'
    c'  = refractory where s = 1, else max(c - 1, 0)

Example:
    >>> import jax.numpy as jnp
    >>> from canns_stdp.functional.neurons import LIFParams, lif_step
    >>> p = LIFParams(leak=0.9, threshold=1.0, v_reset=0.0)
    >>> s, v = lif_step(p, jnp.array([0.5, 0.95]), jnp.array([0.6, 0.0]))
"""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp

from .refractory import refractory_step

__all__ = ["LIFParams", "lif_step", "refractory_lif_step"]


class LIFParams(NamedTuple):
    """Parameters of the LIF step (scalars or per-neuron arrays); ``refractory`` is in
    steps and counts only where the state carries a refractory counter."""

    leak: float = 0.9
    threshold: float = 1.0
    v_reset: float = 0.0
    refractory: float = 0.0


def lif_step(params: LIFParams, v, current, imposed_spikes=None):
    """Advance the membrane one step.

    Args:
        params: leak, threshold and reset potential.
        v: membrane potential, shape ``(n_out,)``.
        current: synaptic input ``W @ x``, shape ``(n_out,)``.
        imposed_spikes: optional 0/1 array of shape ``(n_out,)``; when given it
            replaces the threshold crossing as the output spikes (teacher forcing).

    Returns:
        ``(spikes, v)``: the float 0/1 spikes and the membrane after reset.
    """
    v = params.leak * v + current
    if imposed_spikes is None:
        spikes = (v >= params.threshold).astype(v.dtype)
    else:
        spikes = imposed_spikes.astype(v.dtype)
    v = jnp.where(spikes > 0, params.v_reset, v)
    return spikes, v


def refractory_lif_step(params: LIFParams, v, left, current, imposed_spikes=None):
    """:func:`lif_step` with an absolute refractory period of ``params.refractory`` steps.

    Args:
        left: the steps each neuron has left in its refractory period, shaped like ``v``
            (float; ``0`` for a neuron free to integrate).
        imposed_spikes: as in :func:`lif_step`; imposed spikes fire even a refractory
            neuron (and start its period again).

    Returns:
        ``(spikes, v, left)`` after the step.
    """
    resting = left > 0
    v = jnp.where(resting, v, params.leak * v + current)
    if imposed_spikes is None:
        spikes = ((v >= params.threshold) & ~resting).astype(v.dtype)
    else:
        spikes = imposed_spikes.astype(v.dtype)
    v = jnp.where(spikes > 0, params.v_reset, v)
    return spikes, v, refractory_step(left, spikes, params.refractory)
