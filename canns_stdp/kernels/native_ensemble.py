"""The native CPU kernel for an ensemble: a chunk of steps of K dense pair-STDP layers in
one call, the members spread over the CPU's cores.

Each member runs the single layer's chunk of :mod:`~canns_stdp.kernels.native_pair` (its
functions, the same operations in the same order: a member ends bitwise where the single
layer's kernel leaves it). What the members share is
computed once: when every member takes the same input, has the same pre trace and the
same pre-trace numbers, the pre trace, each step's pairing term ``P`` and its list of
active inputs are computed once for the whole chunk, before the members run (they
depend on nothing else). The members run in a ``numba.prange`` loop, one member at a
time on each core: a member's weights stay in that core's cache for its whole chunk.

Inputs ``(T, G, n_in)`` with ``G = 1`` (one for all) or ``G = K``; the state and numbers
of the members stacked along a leading axis ``K``; spikes come back ``(T, K, n_out)``.
The kernel is called on the host, as the single layer's is: a chunk writes a new stacked
state (NumPy arrays) and leaves the arrays it is given alone.
"""

from __future__ import annotations

from typing import NamedTuple, Optional

import numpy as np

from ..host_memory import host_empty
from .native_pair import (_room, blocked_lanes, host_view, kernel_flags, layer_numbers, native_compatible, numba,
                          on_host, stretch_for)

__all__ = ["Members", "chunks", "deferral_span", "ensemble_chunk", "members_plan"]

if numba is not None:
    from .native_pair import LEDGER_BASES, _layer_chunk, _period, _pre_room, _pre_terms

    # one member's chunk, as the single layer's kernel runs it (its own pre terms, or the
    # chunk's shared by every member: ``trace_pre`` is then the trace after the chunk)
    _member = numba.njit(cache=True, nogil=True)(_layer_chunk.py_func)

    @numba.njit(cache=True, nogil=True)
    def _shared_pre(xs, coef, pre_in) -> bool:
        """Whether every member takes one input and has member 0's pre trace and numbers."""
        if xs.shape[1] != 1:
            return False
        for k in range(1, coef.shape[0]):
            if coef[k, 0] != coef[0, 0] or coef[k, 1] != coef[0, 1]:
                return False
            for j in range(pre_in.shape[1]):
                if pre_in[k, j] != pre_in[0, j]:
                    return False
        return True

    @numba.njit(cache=True, nogil=True, parallel=True)
    def _ensemble_chunk(flags, coef, lif, xs, posts, W_in, v_in, s_in, pre_in, post_in,
                        W_out, v, s, trace_pre, trace_post, spikes, blocked, pre, shared):
        """``blocked``: room for each member's weights in the kernel's layout; ``pre``: room
        for the chunk's pre terms where they are ``shared`` (:func:`_shared_pre`), else
        room for none."""
        n, nearest, strict, imposed = flags[0], flags[2], flags[4] == 2, flags[6]
        K, n_in = W_out.shape[0], W_out.shape[2]
        span = flags[7] if flags[1] else 0
        trace = pre_in[0].copy()
        if shared:
            start = np.int64(0)  # (literal zeros would compile the pre terms once more)
            _pre_terms(start, n, start, nearest, strict, coef[0, 0], coef[0, 1], xs[:, 0], trace, pre, span,
                       _period(span))
        one_input = xs.shape[1] == 1
        # (a parallel loop takes arrays, not tuples of them: the terms are put together in it)
        P, offsets, active, values, ledger, pairs = pre
        powers, owed_before, owed_after, owed_end, opening, rates_run, base_before, bases_end, bases_run = ledger
        for member in numba.prange(K):
            k = np.int64(member)  # typed as a signed index, like the constant 0 it meets below
            if shared:
                trace_pre[k] = trace
            else:
                trace_pre[k] = pre_in[k]
            member_posts = posts[:, k] if imposed else posts[:, np.int64(0)]
            member_xs = xs[:, np.int64(0)] if one_input else xs[:, k]
            none_open = (np.zeros((LEDGER_BASES, W_out.shape[1]), np.float32), np.zeros(n_in, np.float32),
                         np.zeros(n_in, np.int32))  # (each call closes its chunk: no ledger is left open)
            _member(flags, coef[k], lif[k], member_xs, member_posts, W_in[k], blocked[k], v_in[k], s_in[k], post_in[k],
                    W_out[k], v[k], s[k], trace_pre[k], trace_post[k], spikes[:, k],
                    (P, offsets, active, values, (powers, owed_before, owed_after, owed_end, opening, rates_run,
                                                  base_before, bases_end, bases_run), pairs), (none_open, none_open))


def ensemble_chunk(config, coef, lif_rows, state, xs, posts, n_steps, plastic: bool = True, span: int = 0):
    """The first ``n_steps`` steps of a chunk for K members: ``(state, spikes)``.

    ``config`` is the members' :class:`~canns_stdp.functional.layer_step.LayerConfig`;
    ``coef`` ``(K, 10)`` and ``lif_rows`` ``(K, 3, n_blocks, 64)`` their numbers
    (:func:`~canns_stdp.kernels.native_pair.layer_numbers`, stacked); ``state`` a
    :class:`~canns_stdp.functional.layer_step.LayerState` with a leading member axis; ``xs``
    ``(T, G, n_in)`` (``G`` 1 for one input for all, or K); ``posts`` ``(T, K, n_out)``
    imposed spikes or ``None``. ``spikes`` is ``(T, K, n_out)``, zero rows past
    ``n_steps``; ``plastic=False`` runs the neurons and traces only; ``span``: LTP deferred
    over spans of that many steps, as by the single layer's kernel
    (:func:`~canns_stdp.kernels.native_pair.native_chunk`). Called on the host, as the
    single layer's kernel is: the state's arrays and the spikes come back as NumPy arrays
    of the kernel's own (the arrays given are left alone)."""
    K, n_out, n_in = state.W.shape
    flags = kernel_flags(config, plastic, posts is not None, n_steps, [span, 0, 1, 0],  # (each call closes its chunk)
                         stretch_for(n_out, n_in))
    posts = np.zeros((1, 1, 1, 1), np.float32) if posts is None else blocked_lanes(posts, lif_rows.shape[2])
    outs = (host_empty((K, n_out, n_in)), np.empty((K, n_out), np.float32),
            np.empty((K, n_out), np.float32), np.empty((K, n_in), np.float32), np.empty((K, n_out), np.float32))
    spikes = host_empty((xs.shape[0], K, n_out))
    coef, xs, pre_in = on_host(coef), on_host(xs), on_host(state.trace_pre)
    shared = bool(_shared_pre(xs, coef, pre_in))
    d_pre, room_span = coef[0, 0], span if plastic else 0
    pre = (_room(xs.shape[0], n_in, room_span, d_pre) if shared  # (the thread's room, kept from call to call)
           else _pre_room(np.int64(0), np.int64(n_in), np.int64(0), d_pre, np.int64(1)))
    blocked = host_empty((K, lif_rows.shape[2], n_in, lif_rows.shape[3]))  # (each member in the kernel's layout)
    W_in = host_view(state.W).view()  # (read where it is, a JAX array's buffer too: a copy cost a sixth of a call)
    W_in.flags.writeable = False  # (one type, whatever it is given: one compilation)
    _ensemble_chunk(flags, coef, on_host(lif_rows), xs, posts, W_in, on_host(state.v),
                    on_host(state.spike), pre_in, on_host(state.trace_post), *outs, spikes, blocked, pre, shared)
    W, v, spike, trace_pre, trace_post = outs
    return state._replace(W=W, v=v, spike=spike, trace_pre=trace_pre, trace_post=trace_post), spikes



class Members(NamedTuple):
    """An ensemble's static choices and numbers as the kernel takes them: the members'
    :class:`~canns_stdp.functional.layer_step.LayerConfig`, ``coef`` ``(K, 10)`` and LIF
    rows ``(K, 3, n_blocks, 64)`` (:func:`~canns_stdp.kernels.native_pair.layer_numbers`), on the host."""

    config: object
    coef: np.ndarray
    lif_rows: np.ndarray
    numbers: tuple  # each member's LayerParams, on the host


def members_plan(trainers, plastic: bool, plans, batch_shape: tuple) -> Optional[Members]:
    """The members as this kernel takes them, or ``None`` where some member trained alone
    would not run the native kernel (:mod:`~canns_stdp.kernels.pair_layer`: no numba or
    not a CPU, the Python loop inside ``jax.disable_jit()``, kernels chosen by hand, a
    batch, a refractory period, a map other than dense, a rule other than the pair rule
    or with a state, fewer than ``NATIVE_MIN_SYNAPSES`` synapses, numbers that are not
    scalars); members of the Python loop run it too, a chunk at a time. ``plans``: each
    member's ``(rule, StepConfig, StepParams)``, of one static configuration."""
    from ..functional.synapses import Dense
    from ..rules.pair import Pair
    from .pair_layer import layer_step, native_applies

    first = trainers[0]
    _, config, params = plans[0]
    resting = bool(getattr(first.model, "has_refractory", False))
    if (batch_shape or type(config.synapse) is not Dense or config.extras
            or (plastic and type(params.rule) is not Pair) or first._rule_state.names()):
        return None  # (what pair_layer.supports asks of a call)
    n_out, n_in = first.weight_shape()
    layer_config = layer_step(config, params, plastic)[0]
    members = [layer_step(c, p, plastic)[1] for _, c, p in plans]
    if not (native_applies(first, plastic, layer_config, members[0], n_out * n_in, np.float32, resting)
            and all(native_compatible(layer_config, p, np.float32) for p in members[1:])):
        return None
    numbers = [layer_numbers(p, n_out) for p in members]
    return Members(layer_config, np.stack([c for c, _ in numbers]), np.stack([rows for _, rows in numbers]),
                   tuple(members))


def deferral_span(members: Members, plastic: bool, seq, layer) -> int:
    """Steps per span over which the kernel defers the members' LTP in a call of inputs
    ``seq`` from the stacked state ``layer``: the shortest any member may take
    (:func:`~canns_stdp.kernels.pair_layer.native_deferral_span`), 0 where one cannot defer."""
    from ..functional.layer_step import train_step
    from .pair_layer import input_bound, native_deferral_span

    if not plastic:
        return 0
    x_max = input_bound(seq)  # (once for every member)
    return min(native_deferral_span(train_step, members.config, p, x_max, layer) for p in members.numbers)


def chunks(members: Members, plastic: bool, input_axes: tuple, span: int = 0):
    """The chunk function of :func:`~canns_stdp.loops.drive` for the members' stacked
    :class:`~canns_stdp.step.StepState` and per-step inputs ``(xs, posts)``, each with its
    member axis in ``input_axes`` (``None``: one for all; 0: axis 1 of the sequence).
    The spikes of a chunk come back ``(n_steps, K, n_out)``, the state as NumPy arrays
    (:func:`ensemble_chunk`); ``span``: :func:`deferral_span`."""
    x_axis, post_axis = input_axes[:2]
    config, coef, lif_rows = members[:3]
    K = coef.shape[0]

    def run_chunk(state, inputs, n_steps, record, offset=0):
        xs, posts = inputs[:2]
        xs = xs if x_axis == 0 else xs[:, None]
        if posts is not None and post_axis != 0:
            posts = np.broadcast_to(posts[:, None], posts.shape[:1] + (K,) + posts.shape[1:])
        layer, spikes = ensemble_chunk(config, coef, lif_rows, state.layer, xs, posts, n_steps, plastic, span)
        return state._replace(layer=layer), spikes
    return run_chunk
