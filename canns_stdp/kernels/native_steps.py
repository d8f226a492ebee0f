"""The native CPU kernel driven by the Python loop: one step per call from Python.

The Python loop (``compiled=False``) runs its steps one call at a time. Where the native
kernel runs a layer's chunks (:mod:`~canns_stdp.kernels.native_pair`), the Python loop
calls the same kernel for each step, on arrays held on the host for the chunk: the
weights are copied into the kernel's layout as a chunk starts and back as it ends, and
each step is a call of the kernel's pieces (the step's pre terms, then the step of every
block of neurons) over one step. A step then costs its own work plus a call from Python
(a few microseconds), where a step dispatched to XLA costs tens of microseconds before
any work. The results are the compiled loop's bit for bit: the same operations in the
same order, the chunk cut into stretches of one step instead of 64 (stretches only
group the steps; each block of neurons runs each step alike).

Inside ``jax.disable_jit()`` the Python loop runs the plain step op by op instead (for
debugging), as it does wherever the native kernel does not apply.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from .native_pair import _LANES, NATIVE_STRETCH, OpenLedger, layer_numbers, numba, static_flags

__all__ = ["native_steps_chunk", "python_loop_native"]

if numba is not None:
    from .native_pair import _closed, _opened, _pre_arrays, _pre_terms, _run_stretch

    @numba.njit(cache=True, nogil=True)
    def _open(flags, coef, lif, W_in, v_in, s_in, pre_in, post_in, owed_in, rates_in, trace_pre):
        """A chunk opened for steps called one at a time: the kernel's working arrays (see
        :func:`~canns_stdp.kernels.native_pair._layer_chunk`), the pre terms' arrays
        flattened."""
        trace_pre[:] = pre_in
        n_in = W_in.shape[1]
        span = flags[7] if flags[1] else 0
        terms = _pre_arrays(NATIVE_STRETCH, n_in, span, coef[0])
        W, scratch, resumed = _opened(flags, coef, lif, W_in, v_in, s_in, post_in, trace_pre, terms, owed_in,
                                      rates_in)
        P, offsets, active, values, (powers, owed_before, owed_after, owed_end, opening, rates) = terms
        return (W, W.reshape(W.shape[0], n_in * _LANES), scratch, np.arange(n_in).astype(np.int32),
                np.empty(_LANES, np.int64), np.zeros(_LANES, np.float32), P, offsets, active, values, powers,
                owed_before, owed_after, owed_end, opening, rates, not resumed)

    @numba.njit(cache=True, nogil=True)
    def _step(flags, coef, t, xs, posts, trace_pre, spikes, W, rows, scratch, every, fired, no_posts, P, offsets,
              active, values, powers, owed_before, owed_after, owed_end, opening, rates, check_bounds):
        """Step ``t`` of the chunk: its pre terms, then every block of neurons."""
        at = flags[8] + t
        span = flags[7] if flags[1] else 0
        terms = (P, offsets, active, values, (powers, owed_before, owed_after, owed_end, opening, rates))
        _pre_terms(t, t + 1, at, flags[2], flags[4] == 2, coef[0], coef[1], xs, trace_pre, terms, span)
        _run_stretch(flags, coef, t, t + 1, at, terms, 0, at, xs, posts, rows, scratch, every, fired, no_posts,
                     spikes, check_bounds and t == 0)

    @numba.njit(cache=True, nogil=True)
    def _close(flags, W, scratch, rates, W_out, v, s, trace_post, owed_out, rates_out):
        _closed(flags, W, scratch, W_out, v, s, trace_post, rates, owed_out, rates_out)


def _host(a):
    """``a`` on the host as a C-contiguous, writable float32 array (a copy where it is not
    one already, e.g. a view of a JAX array's buffer): the kernel's functions are then
    compiled for one type of each argument."""
    return np.require(np.asarray(a), np.float32, ("C_CONTIGUOUS", "WRITEABLE", "ALIGNED"))


def native_steps_chunk(config, params, state, chunk, n_steps, plastic: bool = True, span: int = 0, phase: int = 0,
                       closes: bool = True):
    """:func:`~canns_stdp.kernels.native_pair.native_chunk`'s contract, its steps called
    one at a time from Python: ``(state, spikes)``, ``spikes`` ``(T, n_out)`` with zero
    rows past ``n_steps``, on the host."""
    xs, posts = chunk
    span = span if plastic else 0
    ledger = state if isinstance(state, OpenLedger) else None
    layer = state.layer if ledger else state
    n_out, n_in = layer.W.shape
    coef, lif = layer_numbers(params, n_out)
    n_blocks = lif.shape[1]
    flags = np.array([n_steps, *static_flags(config, plastic, posts is not None), span, phase, closes,
                      ledger is not None], np.int32)
    T, xs = xs.shape[0], _host(xs[:n_steps])
    if posts is None:
        posts = np.zeros((1, 1, 1), np.float32)
    else:
        posts = np.zeros((n_steps, n_blocks * _LANES), np.float32)
        posts[:, :n_out] = np.asarray(chunk[1][:n_steps], np.float32)
        posts = posts.reshape(n_steps, n_blocks, _LANES)
    owed_in = _host(ledger.owed) if ledger else np.zeros(n_out, np.float32)
    rates_in = _host(ledger.rates) if ledger else np.zeros(n_in, np.float32)
    trace_pre = np.empty(n_in, np.float32)
    work = _open(flags, coef, lif, _host(layer.W), _host(layer.v), _host(layer.spike), _host(layer.trace_pre),
                 _host(layer.trace_post), owed_in, rates_in, trace_pre)
    *work, check_bounds = work
    spikes = np.zeros((T, n_out), np.float32)
    for t in range(n_steps):
        _step(flags, coef, t, xs, posts, trace_pre, spikes, *work, check_bounds)
    W, v, s, trace_post = (np.empty((n_out, n_in), np.float32), np.empty(n_out, np.float32),
                           np.empty(n_out, np.float32), np.empty(n_out, np.float32))
    owed, rates = np.empty(n_out, np.float32), np.empty(n_in, np.float32)
    _close(flags, work[0], work[2], work[-1], W, v, s, trace_post, owed, rates)
    layer = layer._replace(W=jnp.asarray(W), v=jnp.asarray(v), spike=jnp.asarray(s),
                           trace_pre=jnp.asarray(trace_pre), trace_post=jnp.asarray(trace_post))
    if span and not closes and (phase + n_steps) % span:
        return OpenLedger(layer, jnp.asarray(owed), jnp.asarray(rates)), spikes
    return layer, spikes


def python_loop_native() -> bool:
    """Whether the Python loop may call the native kernel: not inside ``jax.disable_jit()``
    (which asks for the plain step op by op)."""
    return numba is not None and not jax.config.jax_disable_jit
