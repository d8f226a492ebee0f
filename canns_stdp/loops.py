"""Drivers that run a pure step function over time.

Both drivers take the same ``step(config, params, state, x, post) -> (state, spikes)``
(e.g. :func:`~canns_stdp.functional.layer_step.train_step`) and differ only in who
loops:

* :func:`run_compiled`: a compiled ``lax.scan`` over fixed-size chunks of the
  sequence. The chunk length does not depend on ``T``; the last chunk is padded and
  its padding steps are skipped by a ``lax.cond`` on the traced step count, so one
  compilation serves every sequence length.
* :func:`run_python`: a Python ``for`` over the steps, one dispatch per step (each
  step is jitted; inside ``jax.disable_jit()`` it runs op by op for debugging).

Both keep no per-step history unless ``record=True`` (then they return the output
spikes as a NumPy array of shape ``(T, n_out)``).
"""

from __future__ import annotations

from functools import partial
from typing import Callable, Optional

import jax
import jax.numpy as jnp
import numpy as np

from .progress import progress_bar

__all__ = ["default_chunk_size", "run_compiled", "run_python"]

_CHUNK_BYTES = 4 << 20  # host-to-device transfer per chunk


def default_chunk_size(n_in: int) -> int:
    """Steps per compiled chunk: about 4 MiB of input, between 16 and 1024 steps."""
    steps = max(1, _CHUNK_BYTES // (4 * max(1, n_in)))
    return int(min(1024, max(16, 1 << (steps.bit_length() - 1))))


@partial(jax.jit, static_argnames=("step", "config", "record"))
def _run_chunk(step, config, params, state, xs, posts, n_steps, record):
    """Scan ``step`` over one chunk; steps at index ``>= n_steps`` (padding) are skipped."""

    def body(state, inputs):
        t, x, post = inputs

        def advance(state):
            return step(config, params, state, x, post)

        def skip(state):
            return state, jnp.zeros_like(state.spike)

        state, spikes = jax.lax.cond(t < n_steps, advance, skip, state)
        return state, (spikes if record else None)

    steps = jnp.arange(xs.shape[0])
    return jax.lax.scan(body, state, (steps, xs, posts))


@partial(jax.jit, static_argnames=("step", "config"))
def _one_step(step, config, params, state, x, post):
    return step(config, params, state, x, post)


def _padded(chunk: np.ndarray, length: int) -> np.ndarray:
    if chunk.shape[0] == length:
        return chunk
    pad = np.zeros((length - chunk.shape[0],) + chunk.shape[1:], chunk.dtype)
    return np.concatenate([chunk, pad])


def run_compiled(step: Callable, config, params, state, xs: np.ndarray,
                 posts: Optional[np.ndarray] = None, *, record: bool = False,
                 chunk_size: int = 256, progress: bool = False, desc: str = "steps"):
    """Run ``step`` over ``xs`` (shape ``(T, n_in)``) in compiled chunks.

    Returns ``(state, spikes)`` where ``spikes`` is ``(T, n_out)`` when ``record``
    else ``None``.
    """
    T = xs.shape[0]
    recorded = []
    with progress_bar(T, progress, desc) as bar:
        for start in range(0, T, chunk_size):
            stop = min(T, start + chunk_size)
            x_chunk = _padded(xs[start:stop], chunk_size)
            p_chunk = None if posts is None else _padded(posts[start:stop], chunk_size)
            state, out = _run_chunk(step, config, params, state, x_chunk, p_chunk,
                                    stop - start, record)
            if record:  # sliced on the host: no compilation per sequence length
                recorded.append(np.asarray(out)[: stop - start])
            if bar is not None:
                jax.block_until_ready(state)
                bar.update(stop - start)
    spikes = np.concatenate(recorded) if record else None
    return state, spikes


def run_python(step: Callable, config, params, state, xs: np.ndarray,
               posts: Optional[np.ndarray] = None, *, record: bool = False,
               progress: bool = False, desc: str = "steps"):
    """Run ``step`` over ``xs`` with a Python loop, one step per dispatch."""
    T = xs.shape[0]
    recorded = []
    with progress_bar(T, progress, desc) as bar:
        for t in range(T):
            post = None if posts is None else posts[t]
            state, spikes = _one_step(step, config, params, state, xs[t], post)
            if record:
                recorded.append(spikes)
            if bar is not None:
                bar.update(1)
    spikes = np.stack([np.asarray(s) for s in recorded]) if record else None
    return state, spikes
