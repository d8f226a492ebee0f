"""Adaptive threshold (homeostasis) of Diehl & Cook (2015).

Each neuron's threshold is ``threshold + theta``; ``theta`` decays towards zero
with time constant ``tau_theta`` and rises by ``theta_plus`` on every spike:

    theta' = d_theta * theta + theta_plus * s,     d_theta = exp(-dt / tau_theta)

A neuron that fires a lot becomes harder to excite, so every neuron of a
competitive layer gets a share of the inputs.

Example:
    >>> import jax.numpy as jnp
    >>> from canns_stdp.functional.homeostasis import ThetaParams, theta_step
    >>> theta = theta_step(ThetaParams(decay=0.999, theta_plus=0.05),
    ...                    jnp.zeros(3), jnp.array([1., 0., 1.]))
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["ThetaParams", "theta_step", "effective_threshold"]


class ThetaParams(NamedTuple):
    """Per-step decay of ``theta`` and its increment per spike."""

    decay: float = 1.0
    theta_plus: float = 0.05


def theta_step(params: ThetaParams, theta, spikes):
    """``theta' = decay * theta + theta_plus * spikes``."""
    return params.decay * theta + params.theta_plus * spikes


def effective_threshold(threshold, theta):
    """The threshold a neuron's membrane is compared with: ``threshold + theta``."""
    return threshold + theta
