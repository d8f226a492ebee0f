"""Several :class:`~canns_stdp.competitive.CompetitiveNetwork` s trained in one compiled loop.

Seeds and hyperparameter sweeps of a Diehl & Cook network train one sample at a time,
so one network leaves most of a processor idle. :func:`present_together` runs the
networks' steps side by side (the same step, vectorised over the networks with
``jax.vmap``): network ``k`` sees ``probabilities[k]`` with the spikes and winner draws of
``seeds[k]``, exactly those its own :meth:`~canns_stdp.competitive.CompetitiveNetwork.present`
would draw, and ends where that call would leave it.

Example:
    >>> import numpy as np
    >>> from canns_stdp.competitive import CompetitiveNetwork
    >>> from canns_stdp.competitive_together import present_together
    >>> nets = [CompetitiveNetwork(n_in=64, n_neurons=10, seed=s, norm=6.4, steps_per_sample=50) for s in (0, 1)]
    >>> images = np.random.default_rng(0).random((4, 64)) * 0.1
    >>> counts = present_together(nets, [images, images], learn=True, seeds=[10, 11])   # two (4, 10) arrays
"""

from __future__ import annotations

import dataclasses
from functools import lru_cache
from typing import Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from . import _validation as val
from .competitive import CompetitiveNetwork, checked_probabilities, drawn_blocks
from .encoders import poisson_events
from .functional.competitive_step import begin_sample, competitive_step
from .loops import run_compiled

__all__ = ["present_together"]

_STATIC = ("n_in", "n_neurons", "steps_per_sample", "block", "batch", "compiled")


def _difference(first: CompetitiveNetwork, other: CompetitiveNetwork) -> str:
    """What of ``other``'s static configuration differs from ``first``'s ('' for nothing)."""
    for name in _STATIC:
        if getattr(first, name) != getattr(other, name):
            return f"{name} ({getattr(other, name)!r} against {getattr(first, name)!r})"
    for field in dataclasses.fields(first._config):
        a, b = getattr(first._config, field.name), getattr(other._config, field.name)
        if a != b:
            return f"{field.name} ({b!r} against {a!r})"
    return ""


@lru_cache(maxsize=None)
def _members_step():
    """:func:`competitive_step` over the networks (axis 0 of params, state, events and
    draws; the sample starts are shared)."""
    def step(config, params, state, events, new_sample, u):
        return jax.vmap(lambda p, s, e, r: competitive_step(config, p, s, e, new_sample, r))(params, state, events, u)
    return step


@jax.jit
def _stack(trees):
    return jax.tree_util.tree_map(lambda *leaves: jnp.stack(leaves), *trees)


def present_together(networks: Sequence[CompetitiveNetwork], probabilities, *, learn: bool, seeds,
                     progress: bool = False, desc: Optional[str] = None) -> list:
    """``[net.present(p, learn=learn, seed=s) for net, p, s in zip(networks, probabilities, seeds)]``,
    with the learning steps of every network in one compiled loop.

    Args:
        networks: K networks of one static configuration (sizes, steps per sample, block,
            winner rule, delays); their numbers and weights may differ.
        probabilities: one ``(N, n_in)`` array for all networks, or a list of K arrays of
            one shape.
        learn: as in :meth:`~canns_stdp.competitive.CompetitiveNetwork.present`; with
            learning off (or the Python loop, or one network) the networks run one after
            the other (with learning off each runs its samples side by side).
        seeds: K seeds, one per network.

    Returns:
        Each network's spike counts ``(N, n_neurons)``.

    Raises:
        ValueError, TypeError: naming the bad argument, before any network changes;
        FloatingPointError: when a network's weights or thresholds became non-finite
        (no network is changed then).
    """
    networks = list(networks)
    if not networks or not all(isinstance(n, CompetitiveNetwork) for n in networks):
        raise TypeError(f"networks must be a non-empty list of CompetitiveNetwork, got {networks!r:.80}")
    if len({id(n) for n in networks}) != len(networks):
        raise ValueError("networks must be distinct: one network appears twice")
    K = len(networks)
    learn = val.check_bool("learn", learn)
    seeds = [val.check_seed(f"seeds[{k}]", s) for k, s in enumerate(seeds)]
    if len(seeds) != K:
        raise ValueError(f"seeds must hold one seed per network ({K}), got {len(seeds)}")
    for k, net in enumerate(networks[1:], 1):
        difference = _difference(networks[0], net)
        if difference:
            raise ValueError(f"network {k} differs from network 0 in {difference}")
    if isinstance(probabilities, (list, tuple)) and len(probabilities) == K and all(
            np.ndim(p) == 2 for p in probabilities):
        probs = list(probabilities)
    else:
        probs = [probabilities] * K
    probs = [checked_probabilities(p, networks[0].n_in) for p in probs]
    if len({p.shape for p in probs}) != 1:
        raise ValueError(f"every network's probabilities must have one shape, got {sorted({p.shape for p in probs})}")
    first = networks[0]
    if not learn or not first.compiled or K == 1:
        return [net.present(p, learn=learn, seed=s, progress=progress, desc=desc)
                for net, p, s in zip(networks, probs, seeds)]
    config = first.config(True)
    T, n, B = first.steps_per_sample, probs[0].shape[0], first.block
    rngs = [[np.random.default_rng((s, i)) for i in range(n)] for s in seeds]  # as each network's present

    def draw(b):
        m = min(B, n - b)
        tables = [poisson_events(p[b:b + m], T, r[b:b + m]) for p, r in zip(probs, rngs)]
        width = max(t.shape[-1] for t in tables)  # one width for all: padded with n_in (no input)
        events = np.stack([np.pad(t, ((0, 0), (0, 0), (0, width - t.shape[-1])), constant_values=first.n_in)
                           for t in tables], axis=2)                          # (m, T, K, width)
        u = np.stack([np.stack([g.random(T, dtype=np.float32) for g in r[b:b + m]]) for r in rngs], axis=2)
        return events, u                                                      # (m, T, K)

    params = _stack([net.params for net in networks])
    state = _stack([net.state for net in networks])
    counts = np.zeros((K, n, first.n_neurons), np.float32)
    step = _members_step()
    for b, (events, u) in drawn_blocks(draw, n, B, progress, desc or f"train {K} networks"):
        m = events.shape[0]
        starts = np.zeros((m, T), np.float32)
        starts[:, 0] = 1.0
        seq = (events.reshape((m * T,) + events.shape[2:]), starts.reshape(-1), u.reshape(m * T, K))
        state, out = run_compiled(step, config, params, state, seq, record=True, chunk_size=B * T)
        counts[:, b:b + m] = np.moveaxis(np.asarray(out).reshape(m, T, K, -1).sum(1), 1, 0)
    state = jax.jit(jax.vmap(begin_sample, in_axes=(None, 0, 0)), static_argnums=0)(config, params, state)
    finite = [bool(np.isfinite(np.asarray(a)).all()) for a in (state.WT, state.theta)]
    if not all(finite):
        raise FloatingPointError("training produced non-finite weights or thresholds; no network was changed")
    for k, net in enumerate(networks):
        net.state = jax.tree_util.tree_map(lambda a: a[k], state)
    return list(counts)

