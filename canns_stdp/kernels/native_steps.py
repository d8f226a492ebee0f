"""The native CPU kernel driven by the Python loop: one step per call from Python.

The Python loop (``compiled=False``) runs its steps one call at a time. Where the native
kernel runs a layer's chunks (:mod:`~canns_stdp.kernels.native_pair`), the Python loop
calls the same kernel for each step, on arrays held on the host for the chunk (the
weights in the kernel's layout, as the compiled loop's chunks hand them on): each step
is a call of the kernel's pieces (the step's pre terms, then the step of every block of
neurons) over one step. A step then costs its own work plus a call from Python
(a few microseconds), where a step dispatched to XLA costs tens of microseconds before
any work. The results are the compiled loop's bit for bit: the same operations in the
same order, the chunk cut into stretches of one step instead of 64 (stretches only
group the steps; each block of neurons runs each step alike).

Inside ``jax.disable_jit()`` the Python loop runs the plain step op by op instead (for
debugging), as it does wherever the native kernel does not apply.
"""

from __future__ import annotations

import jax
import numpy as np

from .native_pair import _LANES, NATIVE_STRETCH, host_chunk, host_outputs, host_result, numba

__all__ = ["native_steps_chunk", "python_loop_native"]

if numba is not None:
    from .native_pair import _closed, _copy, _opened, _period, _pre_arrays, _pre_terms, _run_stretch

    @numba.njit(cache=True, nogil=True)
    def _open(flags, coef, lif, W, v_in, s_in, pre_in, post_in, owed_in, rates_in, bases_in, trace_pre):
        """A chunk opened for steps called one at a time on ``W`` in the kernel's layout: the
        kernel's working arrays (see :func:`~canns_stdp.kernels.native_pair._blocked_chunk`),
        the pre terms' arrays flattened."""
        _copy(pre_in, trace_pre)
        n_in = W.shape[1]
        span = flags[7] if flags[1] else 0
        terms = _pre_arrays(NATIVE_STRETCH, n_in, span, coef[0], 1)
        scratch, resumed = _opened(flags, coef, lif, v_in, s_in, post_in, trace_pre, terms,
                                   (owed_in, rates_in, bases_in), True)
        P, offsets, active, values, ledger, pairs = terms
        return (W.reshape(W.shape[0], n_in * _LANES), scratch, np.arange(n_in).astype(np.int32),
                np.empty(_LANES, np.int64), np.empty(W.shape[0], np.uint64), np.zeros(_LANES, np.float32), P, offsets,
                active, values, pairs, *ledger, not resumed)

    @numba.njit(cache=True, nogil=True)
    def _step(flags, coef, t, xs, posts, trace_pre, spikes, rows, scratch, every, fired, fired_bits, no_posts, P,
              offsets, active, values, pairs, powers, owed_before, owed_after, owed_end, opening, rates, base_before,
              bases_end, bases, check_bounds):
        """Step ``t`` of the chunk: its pre terms, then every block of neurons."""
        at = flags[8] + t
        span = flags[7] if flags[1] else 0
        ledger = (powers, owed_before, owed_after, owed_end, opening, rates, base_before, bases_end, bases)
        terms = (P, offsets, active, values, ledger, pairs)
        _pre_terms(t, t + 1, at, flags[2], flags[4] == 2, coef[0], coef[1], xs, trace_pre, terms, span,
                   _period(span))
        # (its terms' first row as an int64, as the compiled loop's chunk passes it, and no copy of the weights
        # told by a value computed, not a literal: a literal would compile the stretch a second time, several
        # seconds on a machine's first run)
        _run_stretch(flags, coef, t, t + 1, at, terms, np.int64(0), at, xs, posts, rows, rows[:0], scratch, every,
                     fired, fired_bits, no_posts, spikes, check_bounds and t == 0, t < 0, np.int64(0),
                     np.int64(rows.shape[0]))

    @numba.njit(cache=True, nogil=True)
    def _close(flags, scratch, rates, bases, v, s, trace_post, owed_out, rates_out, bases_out):
        _closed(flags, scratch, v, s, trace_post, (rates, bases), (owed_out, rates_out, bases_out), np.int64(0),
                np.int64(scratch.shape[0]))


def native_steps_chunk(config, params, state, chunk, n_steps, plastic: bool = True, span: int = 0, phase: int = 0,
                       closes: bool = True):
    """:func:`~canns_stdp.kernels.native_pair.native_chunk`, its steps called one at a time
    from Python (the same contract and result)."""
    span = span if plastic else 0
    layer, a = host_chunk(config, params, state, chunk, n_steps, plastic, span, phase, closes)
    if a.source.shape[0]:  # (the weights a previous call left open)
        np.copyto(a.W, a.source)
    n_out, n_in = a.v.shape[0], a.trace_pre.shape[0]
    outs = host_outputs(n_out, n_in)
    trace_pre = outs[2]
    *work, check_bounds = _open(a.flags, a.coef, a.lif, a.W, a.v, a.spike, a.trace_pre, a.trace_post, a.owed,
                                a.rates, a.bases, trace_pre)
    spikes = np.zeros((chunk[0].shape[0], n_out), np.float32)
    for t in range(n_steps):
        _step(a.flags, a.coef, t, a.xs, a.posts, trace_pre, spikes, *work, check_bounds)
    v, spike, _, trace_post, owed, rates, bases = outs
    *_, running_rates, base_before, bases_end, running_bases = work  # (the ledger's arrays end the work)
    _close(a.flags, work[1], running_rates, running_bases, v, spike, trace_post, owed, rates, bases)
    return host_result(layer, a.W, outs, span, phase, n_steps, closes), spikes


def python_loop_native() -> bool:
    """Whether the Python loop may call the native kernel: not inside ``jax.disable_jit()``
    (which asks for the plain step op by op)."""
    return numba is not None and not jax.config.jax_disable_jit
