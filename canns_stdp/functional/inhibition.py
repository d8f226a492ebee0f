"""Lateral inhibition: inhibitory weights and k-winner-take-all.

Two complementary mechanisms of a competitive layer (Diehl & Cook 2015):

* :func:`lateral_current`: every spike of the previous step inhibits all *other*
  neurons by ``w_inh`` (all-to-all inhibitory weights without self-inhibition,
  the net effect of Diehl & Cook's one-to-one excitatory -> inhibitory ->
  all-other-excitatory loop):

      I_inh = -w_inh * (sum_j s_j - s_i)

* :func:`kwta`: of the neurons that cross threshold in one step, only the ``k``
  with the largest score (e.g. the membrane overshoot) keep their spike; ties go
  to the lower index.
* :func:`random_winner`: of the neurons that cross threshold in one step, one keeps
  its spike, chosen uniformly with a given random number (BindsNET's ``one_spike``).

Example:
    >>> import jax.numpy as jnp
    >>> from canns_stdp.functional.inhibition import kwta, lateral_current, random_winner
    >>> s = kwta(jnp.array([1., 1., 0.]), jnp.array([0.2, 0.7, 0.9]), 1)
    >>> s
    Array([0., 1., 0.], dtype=float32)
    >>> lateral_current(s, 17.0)
    Array([-17.,  -0., -17.], dtype=float32)
    >>> random_winner(jnp.array([1., 0., 1.]), 0.7)
    Array([0., 0., 1.], dtype=float32)
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

__all__ = ["lateral_current", "kwta", "random_winner", "WINNER_RULES"]

WINNER_RULES = ("random", "largest")


def lateral_current(spikes, w_inh):
    """``-w_inh * (sum(spikes) - spikes)``: inhibition from every other neuron."""
    return -w_inh * (jnp.sum(spikes) - spikes)


def kwta(spikes, score, k: int):
    """Keep the spikes of at most ``k`` neurons, those with the largest ``score``.

    Args:
        spikes: 0/1 array ``(n,)``: the neurons that crossed threshold.
        score: array ``(n,)``; only the spiking neurons compete.
        k: static number of winners (``k >= n`` keeps every spike).

    Returns:
        0/1 array ``(n,)`` with at most ``k`` ones, a subset of ``spikes``.
    """
    n = spikes.shape[0]
    if k >= n:
        return spikes
    masked = jnp.where(spikes > 0, score, -jnp.inf)
    if k == 1:
        winners = jax.nn.one_hot(jnp.argmax(masked), n, dtype=spikes.dtype)
    else:
        _, idx = jax.lax.top_k(masked, k)
        winners = jnp.zeros_like(spikes).at[idx].set(1)
    return spikes * winners


def random_winner(spikes, u):
    """Keep one spike, the ``floor(u * sum(spikes))``-th spiking neuron in index order.

    With ``u`` uniform in ``[0, 1)`` every spiking neuron is kept with the same
    probability. Returns 0/1 ``(n,)`` with at most one 1, a subset of ``spikes``.
    """
    rank = jnp.floor(u * jnp.sum(spikes))     # 0-based rank of the kept spike
    return spikes * (jnp.cumsum(spikes) == rank + 1)
