"""Input encoders: turn intensities into spike trains of shape ``(n_steps, *shape)``.

* :func:`poisson_encode`: independent Bernoulli spikes per step with probability
  ``p`` (a Poisson process of rate ``p / dt`` sampled on the time grid), drawn from
  an explicit JAX key, so a seed gives the same spikes on every run and device.
* :func:`poisson_spikes`: spike trains from rates in Hz (``p = rate · dt``), on the host.
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

from . import _validation as val
from .functional.event import event_width, pack_events

__all__ = ["poisson_encode", "poisson_events", "poisson_spikes", "rate_to_probability", "latency_encode"]


def _concrete(value) -> bool:
    """Whether ``value`` holds numbers now (not a tracer inside a user's ``jax.jit``)."""
    return not isinstance(value, jax.core.Tracer)


def _finite_values(name: str, values):
    """``values`` as float32; checked finite when concrete (traced values pass through)."""
    if not _concrete(values):
        return jnp.asarray(values, jnp.float32)
    arr = val._to_float_array(name, values)
    val.check_finite(name, arr)
    return jnp.asarray(arr)


def _check_probabilities(name: str, arr: np.ndarray) -> None:
    val.check_finite(name, arr)
    if arr.size and (arr.min() < 0 or arr.max() > 1):
        raise ValueError(f"{name} must be in [0, 1], got values in [{arr.min()}, {arr.max()}]")


def poisson_spikes(rates_hz, n_steps: int, dt_ms: float = 1.0, seed: int = 0) -> np.ndarray:
    """Poisson spike trains ``(n_steps, *rates.shape)`` (float32 0/1) at ``rates_hz``: a
    spike in a step of ``dt_ms`` with probability ``rate · dt_ms / 1000``, independently.

    Example:
        >>> from canns_stdp.encoders import poisson_spikes
        >>> spikes = poisson_spikes([5.0, 40.0], n_steps=1000, dt_ms=1.0, seed=0)   # (1000, 2)

    Raises:
        ValueError: a rate below 0, or above ``1000 / dt_ms`` Hz (more than one spike a step).
    """
    rates = val._to_float_array("rates_hz", rates_hz)
    n_steps = val.check_positive_int("n_steps", n_steps)
    dt_ms = val.check_positive("dt_ms", dt_ms)
    seed = val.check_seed("seed", seed)
    if rates.size and (rates.min() < 0 or rates.max() * dt_ms > 1000.0):
        raise ValueError(f"rates_hz must be in [0, {1000.0 / dt_ms:g}] Hz for dt_ms={dt_ms:g} (at most one spike "
                         f"a step), got values in [{rates.min():g}, {rates.max():g}]")
    p = rates * (dt_ms / 1000.0)
    u = np.random.default_rng(seed).random((n_steps,) + rates.shape, dtype=np.float32)
    return (u < p).astype(np.float32)


def rate_to_probability(values, value_max: float, max_rate_hz: float = 128.0, dt_ms: float = 1.0):
    """Spike probability per step for intensities in ``[0, value_max]``."""
    value_max = val.check_positive("value_max", value_max)
    max_rate_hz = val.check_nonnegative("max_rate_hz", max_rate_hz)
    dt_ms = val.check_positive("dt_ms", dt_ms)
    p = _finite_values("values", values) / value_max * (max_rate_hz * dt_ms / 1000.0)
    return jnp.clip(p, 0.0, 1.0)


def poisson_encode(key, probability, n_steps: int):
    """Bernoulli spikes ``(n_steps, *probability.shape)``, float32 0/1.

    Args:
        key: a ``jax.random`` key; the same key gives the same spikes.
        probability: spike probability per step, any shape, values in ``[0, 1]``
            (checked unless traced).
        n_steps: number of time steps (static).
    """
    n_steps = val.check_positive_int("n_steps", n_steps)
    if _concrete(probability):
        arr = val._to_float_array("probability", probability)
        _check_probabilities("probability", arr)
        probability = arr
    is_key = jax.dtypes.issubdtype(getattr(key, "dtype", None), jax.dtypes.prng_key) or (
        np.shape(key) == (2,) and getattr(key, "dtype", None) == jnp.uint32)
    if not is_key:
        raise TypeError(f"key must be a jax.random key (jax.random.key(seed) or PRNGKey(seed)), got {key!r}")
    return _poisson_encode(key, probability, n_steps)


@partial(jax.jit, static_argnames=("n_steps",))
def _poisson_encode(key, probability, n_steps: int):
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
    probabilities = val._to_float_array("probabilities", probabilities)
    if probabilities.ndim != 2 or 0 in probabilities.shape:
        raise ValueError(f"probabilities must have shape (N, n_in) with N, n_in >= 1, got shape "
                         f"{probabilities.shape}")
    _check_probabilities("probabilities", probabilities)
    n_steps = val.check_positive_int("n_steps", n_steps)
    n_samples, n_in = probabilities.shape
    if isinstance(rng, np.random.Generator):
        rngs = [rng] * n_samples
    elif isinstance(rng, (list, tuple)) and all(isinstance(r, np.random.Generator) for r in rng):
        rngs = list(rng)
    else:
        raise TypeError(f"rng must be a numpy.random.Generator or a list of them, got {rng!r}")
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
    n_steps = val.check_positive_int("n_steps", n_steps)
    value_max = val.check_positive("value_max", value_max)
    values = jnp.clip(_finite_values("values", values) / value_max, 0.0, 1.0)
    t_spike = jnp.round((1.0 - values) * (n_steps - 1)).astype(jnp.int32)
    steps = jnp.arange(n_steps).reshape((n_steps,) + (1,) * values.ndim)
    return ((steps == t_spike[None]) & (values[None] > 0)).astype(jnp.float32)
