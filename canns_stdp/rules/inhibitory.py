"""Inhibitory STDP of Vogels, Sprekeler, Zenke, Clopath & Gerstner (2011).

A symmetric rule that holds the postsynaptic rate near a target ``ρ0``: every pre spike
changes the synapse by ``x_post − α`` and every post spike by ``x_pre`` (traces with
increment 1), with ``α = 2 ρ0 τ``; a neuron that fires above the target strengthens its
inhibition, one below weakens it:

    dW = s_post ⊗ x_pre + (x_post − α) ⊗ s_pre      (per unit learning rate ``η``)

A pre spike pairs with the post trace before this step's post spike, a post spike with
the pre trace including this step's pre spike (a coincident pair counts once, as
pre-before-post).
"""

from __future__ import annotations

from .. import _validation as v
from .base import Activity, Rule

__all__ = ["Vogels", "vogels"]


class Vogels(Rule):
    """Vogels et al.'s (2011) inhibitory STDP; build one with :func:`vogels`.

    Attributes:
        alpha: the depression per pre spike, ``2 ρ0 τ`` (``ρ0`` in spikes per ms).
    """

    alpha: float = 0.12
    local = True  # its change needs a pre or a post spike at the synapse

    def update(self, state, pre: Activity, post: Activity, W, hebbian):
        return hebbian(post.spikes, pre.trace) + hebbian(post.decayed - self.alpha, pre.spikes), state

    def validate(self) -> None:
        v.check_nonnegative("alpha", self.alpha)


def vogels(target_hz: float = 3.0, tau_ms: float = 20.0) -> Vogels:
    """The rule for a target postsynaptic rate ``target_hz`` and trace time constant
    ``tau_ms`` (the traces' own time constant must be ``tau_ms`` too: set the
    projection's ``tau_pre`` and ``tau_post``).

    Raises:
        ValueError: naming a bad argument.
    """
    rate = v.check_nonnegative("target_hz", target_hz)
    tau = v.check_positive("tau_ms", tau_ms)
    return Vogels(alpha=2.0 * rate * tau / 1000.0)
