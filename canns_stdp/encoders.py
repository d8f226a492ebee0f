"""Input encoders: turn intensities into spike trains of shape ``(n_steps, *shape)``.

* :func:`poisson_encode`: independent Bernoulli spikes per step with probability
  ``p`` (a Poisson process of rate ``p / dt`` sampled on the time grid), drawn from
  an explicit JAX key, so a seed gives the same spikes on every run and device.
* :func:`rate_to_probability`: ``p = clip(value / value_max * max_rate_hz * dt_ms / 1000, 0, 1)``
  (Diehl & Cook: pixel / 255 * 128 Hz with dt = 1 ms).
* :func:`poisson_events`: the same Bernoulli spikes drawn on the host with NumPy and
  returned as the indices of the active inputs of each step (what the event-driven
  kernels take), drawing random numbers only for inputs whose probability is nonzero.
* :func:`latency_encode`: one spike per input, earlier for larger values (time to
  first spike coding): ``t = round((1 - value / value_max) * (n_steps - 1))``; an
  input of value 0 never fires.

Example:
    >>> import jax, jax.numpy as jnp
    >>> from canns_stdp.encoders import poisson_encode, rate_to_probability, latency_encode
    >>> p = rate_to_probability(jnp.array([0., 255.]), 255.0, max_rate_hz=128.0)
    >>> spikes = poisson_encode(jax.random.PRNGKey(0), p, 250)   # (250, 2)
    >>> first = latency_encode(jnp.array([1.0, 0.5, 0.0]), 11)     # spikes at t = 0, 5, never
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from .functional.event import event_width, pack_events

__all__ = ["poisson_encode", "poisson_events", "rate_to_probability", "latency_encode"]


def rate_to_probability(values, value_max: float, max_rate_hz: float = 128.0, dt_ms: float = 1.0):
    """Spike probability per step for intensities in ``[0, value_max]``."""
    p = jnp.asarray(values, jnp.float32) / value_max * (max_rate_hz * dt_ms / 1000.0)
    return jnp.clip(p, 0.0, 1.0)


@partial(jax.jit, static_argnames=("n_steps",))
def poisson_encode(key, probability, n_steps: int):
    """Bernoulli spikes ``(n_steps, *probability.shape)``, float32 0/1.

    Args:
        key: a ``jax.random`` key; the same key gives the same spikes.
        probability: spike probability per step, any shape, values in ``[0, 1]``.
        n_steps: number of time steps (static).
    """
    probability = jnp.asarray(probability, jnp.float32)
    u = jax.random.uniform(key, (n_steps,) + probability.shape, jnp.float32)
    return (u < probability[None]).astype(jnp.float32)


def poisson_events(probabilities, n_steps: int, rng) -> np.ndarray:
    """Bernoulli spikes as event tables ``(N, n_steps, width)``, padded with ``n_in``.

    Input ``i`` of sample ``b`` is active at step ``t`` with probability
    ``probabilities[b, i]``, independently; row ``[b, t]`` lists the active inputs in
    increasing order, then ``n_in``. ``width`` (a power of two, at least 8) holds the
    busiest step of all samples.

    Args:
        probabilities: ``(N, n_in)`` spike probability per step, in ``[0, 1]``.
        n_steps: number of steps per sample.
        rng: a ``numpy.random.Generator`` drawing every sample in turn, or a sequence of
            generators, one per sample (then a sample's spikes do not depend on the others).
    """
    probabilities = np.asarray(probabilities, np.float32)
    n_samples, n_in = probabilities.shape
    rngs = [rng] * n_samples if isinstance(rng, np.random.Generator) else list(rng)
    if len(rngs) != n_samples:
        raise ValueError(f"rng must be a Generator or {n_samples} generators, got {len(rngs)}")
    drawn = []
    for p, rng in zip(probabilities, rngs):
        active = np.flatnonzero(p)
        steps, which = np.nonzero(rng.random((n_steps, active.size), dtype=np.float32) < p[active])
        drawn.append((steps, active[which]))
    busiest = max((np.bincount(t, minlength=1).max() for t, _ in drawn if t.size), default=0)
    width = event_width(busiest)
    out = np.empty((n_samples, n_steps, width), np.int32)
    for b, (steps, inputs) in enumerate(drawn):
        out[b] = pack_events(steps, inputs, n_steps, n_in, width)
    return out


def latency_encode(values, n_steps: int, value_max: float = 1.0):
    """One spike per nonzero input at ``round((1 - value / value_max) * (n_steps - 1))``."""
    values = jnp.clip(jnp.asarray(values, jnp.float32) / value_max, 0.0, 1.0)
    t_spike = jnp.round((1.0 - values) * (n_steps - 1)).astype(jnp.int32)
    steps = jnp.arange(n_steps).reshape((n_steps,) + (1,) * values.ndim)
    return ((steps == t_spike[None]) & (values[None] > 0)).astype(jnp.float32)
