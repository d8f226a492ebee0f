"""Fused multi-step training kernel for accelerators (Pallas): W read and written once per step.

A layer driven by external input has no coupling between its output neurons: row
``i`` of ``W``, the membrane ``v[i]``, the spike ``s[i]`` and the post trace
``tr_post[i]`` evolve from the input alone. The kernel therefore splits the rows into
blocks, one program per block, and each program runs *every step of a chunk* on its
rows without ever synchronising with the others: one launch per chunk instead of
several per step.

Two ways to hold a row block:

* **resident** (up to 16384 inputs): the block stays in registers for the whole
  chunk; the weights cross memory once per chunk, not once per step, and each step
  reads only the input and the pre trace terms (shared by all programs, from cache).
* **streaming** (wider layers): each step visits the block's column
  tiles once, updating them (steps 6-7 of docs/step.md) and, from the updated tile, accumulating
  the next step's membrane current ``W' x_{t+1}``. Each synapse is read and written
  once per step (the dense roofline: 8 bytes per fp32 synapse) instead of read twice
  and written once by a matvec followed by an update.

The pre trace depends on the input only, so its pairing term ``P`` is computed for
every step of the chunk beforehand (an associative scan over the input). Inside the kernel every
formula is the library's own: :func:`~canns_stdp.functional.neurons.lif_step`, the
trace ``add``, :func:`~canns_stdp.functional.stdp.pairing_terms`,
:func:`~canns_stdp.functional.stdp.stdp_delta` and
:func:`~canns_stdp.functional.stdp.apply_bounds` applied to a tile. Results equal the
dense step up to the summation order of the membrane current.

On GPU the kernel compiles through Triton; elsewhere it runs in Pallas' interpret
mode (slow; used by the tests to check the kernel on CPU).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Optional

import jax
import jax.numpy as jnp
from jax.experimental import pallas as pl

from .dependence import DEPENDENCES, WeightBounds
from .neurons import LIFParams, lif_step
from .stdp import STDPParams, Traces, advance_trace, apply_bounds, pairing_terms, stdp_delta
from .synapses import Dense
from .traces import TRACE_MODES, trace_affine

__all__ = ["FusedTiling", "fused_available", "fused_compatible", "fused_train", "fused_chunk"]


@dataclass(frozen=True)
class FusedTiling:
    """How the kernel splits W: ``rows`` per program and, when streaming, ``cols`` per tile.

    ``cols=None`` keeps each program's rows resident for the whole chunk.
    ``num_warps``/``num_stages`` are Triton's launch options.
    """

    rows: int
    cols: Optional[int] = None
    num_warps: int = 4
    num_stages: int = 2

    @classmethod
    def default(cls, n_in: int, n_out: int) -> "FusedTiling":
        """Measured on an H100: one resident row per program up to 16384 inputs (a row of
        16384 floats still fits in the registers of 16 warps), streaming tiles beyond."""
        n_in_p = _pow2(n_in)
        if n_in_p > 16384:
            return cls(16, 256, num_warps=4, num_stages=3)
        return cls(1, None, num_warps=max(2, n_in_p // 1024))


def _pow2(n: int) -> int:
    return 1 << max(0, int(n) - 1).bit_length()


def fused_available() -> bool:
    """Whether the default backend compiles the kernel (GPU); elsewhere it is interpreted."""
    return jax.default_backend() == "gpu"


def fused_compatible(config) -> bool:
    """Dense synapses, a built-in (elementwise) weight dependence and trace mode."""
    return (type(config.synapse) is Dense and config.dependence in DEPENDENCES.values()
            and config.trace_add in TRACE_MODES.values())


_COEF = ("d_post", "a_post", "lr", "A_plus", "A_minus", "w_min", "w_max", "mu")


def _pre_terms(config, params, trace_pre, xs, n_steps):
    """Pre trace after the first ``n_steps`` steps, and its pairing term ``P`` at every step.

    The trace steps are affine maps of the trace (:func:`trace_affine`), composed by an
    associative scan: a few wide operations instead of one small step per time step.
    """
    tp = params.traces
    a, b = trace_affine(config.trace_add, tp.d_pre, xs, tp.a_pre)

    def compose(first, then):
        return then[0] * first[0], then[0] * first[1] + then[1]

    A, B = jax.lax.associative_scan(compose, (a, b))
    new = A * trace_pre[None, :] + B                                   # after step t
    before = jnp.concatenate([trace_pre[None, :], new[:-1]])           # after step t - 1
    P, _ = pairing_terms(config.pairing, Traces(new, None), Traces(tp.d_pre * before, None))
    last = jnp.where(n_steps > 0, new[jnp.maximum(n_steps - 1, 0)], trace_pre)
    return last, P


def _kernel(config, tiling, n_in_p, n_pad_t, has_post, *refs):
    if has_post:
        (n_ref, coef_ref, xs_ref, ps_ref, posts_ref, lif_ref, _w_in, v_ref, tr_ref, s_ref,
         w_ref, v_out, tr_out, s_out, spikes_out) = refs
    else:
        (n_ref, coef_ref, xs_ref, ps_ref, lif_ref, _w_in, v_ref, tr_ref, s_ref,
         w_ref, v_out, tr_out, s_out, spikes_out) = refs
        posts_ref = None
    c = {name: coef_ref[k] for k, name in enumerate(_COEF)}
    rule = STDPParams(c["lr"], c["A_plus"], c["A_minus"], WeightBounds(c["w_min"], c["w_max"], c["mu"]))
    lif = LIFParams(lif_ref[0, :], lif_ref[1, :], lif_ref[2, :])
    n_steps = n_ref[0]

    def neurons(t, v, tr, current):
        post = None if posts_ref is None else posts_ref[t, :]
        s, v = lif_step(lif, v, current, post)
        new, decayed = advance_trace(config.trace_add, c["d_post"], c["a_post"], tr, s)
        _, Q = pairing_terms(config.pairing, Traces(None, new), Traces(None, decayed))
        return s, v, new, Q

    def plasticity(w, x, P, s, Q):
        dW = stdp_delta(config.dependence, rule, w, x, s, P, Q)
        return apply_bounds(w, dW, rule.bounds, config.hardbound)

    state0 = (v_ref[...], tr_ref[...], s_ref[...])
    if tiling.cols is None:  # resident: the row block lives in registers for the chunk
        def step(t, carry):
            w, v, tr, _ = carry
            x = xs_ref[t, :]
            s, v, tr, Q = neurons(t, v, tr, jnp.sum(w * x[None, :], axis=1))
            spikes_out[t, :] = s
            # LTP needs P only where a row fired (s * P): a silent block skips reading it
            w = jax.lax.cond(jnp.max(s) > 0,
                             lambda: plasticity(w, x, ps_ref[t, :], s, Q),
                             lambda: plasticity(w, x, jnp.zeros_like(x), s, Q))
            return w, v, tr, s

        w, v, tr, s = jax.lax.fori_loop(0, n_steps, step, (w_ref[...],) + state0)
        w_ref[...] = w
    else:  # streaming: one read and one write of each tile per step
        n_tiles = n_in_p // tiling.cols

        def tile(k):
            return (slice(None), pl.ds(pl.multiple_of(k * tiling.cols, tiling.cols), tiling.cols))

        def current_of(t):
            def add(k, acc):
                cols = tile(k)
                x = xs_ref[t, cols[1]]
                return acc + jnp.sum(w_ref[cols] * x[None, :], axis=1)
            return jax.lax.fori_loop(0, n_tiles, add, jnp.zeros((tiling.rows,), jnp.float32))

        def step(t, carry):
            current, v, tr, _ = carry
            s, v, tr, Q = neurons(t, v, tr, current)
            spikes_out[t, :] = s
            following = jnp.minimum(t + 1, n_pad_t - 1)
            keep = (t + 1 < n_steps).astype(jnp.float32)

            def update(k, acc):
                cols = tile(k)
                x = xs_ref[t, cols[1]]
                w = plasticity(w_ref[cols], x, ps_ref[t, cols[1]], s, Q)
                w_ref[cols] = w
                x_next = keep * xs_ref[following, cols[1]]
                return acc + jnp.sum(w * x_next[None, :], axis=1)

            following_current = jax.lax.fori_loop(0, n_tiles, update, jnp.zeros_like(current))
            return following_current, v, tr, s

        _, v, tr, s = jax.lax.fori_loop(0, n_steps, step, (current_of(0),) + state0)
    v_out[...] = v
    tr_out[...] = tr
    s_out[...] = s


@partial(jax.jit, static_argnames=("config", "tiling", "interpret"))
def _fused_chunk(config, tiling, interpret, params, state, xs, posts, n_steps):
    n_out, n_in = state.W.shape
    T = xs.shape[0]
    rows = tiling.rows
    n_in_p = max(_pow2(n_in), tiling.cols or 1)
    n_out_p = -(-n_out // rows) * rows
    T_p = _pow2(T)

    trace_pre, Ps = _pre_terms(config, params, state.trace_pre, xs, n_steps)

    def pad(a, rows_to, cols_to=None, value=0.0):
        widths = [(0, rows_to - a.shape[0])] + ([] if cols_to is None else [(0, cols_to - a.shape[1])])
        return jnp.pad(a, widths, constant_values=value)

    f32 = jnp.float32
    xs_p = pad(xs.astype(f32), T_p, n_in_p)
    Ps_p = pad(Ps.astype(f32), T_p, n_in_p)
    lif = params.lif
    lif_rows = jnp.stack([
        pad(jnp.broadcast_to(jnp.asarray(lif.leak, f32), (n_out,)), n_out_p),
        pad(jnp.broadcast_to(jnp.asarray(lif.threshold, f32), (n_out,)), n_out_p, value=jnp.inf),
        pad(jnp.broadcast_to(jnp.asarray(lif.v_reset, f32), (n_out,)), n_out_p),
        jnp.zeros((n_out_p,), f32),
    ])
    tp, sp = params.traces, params.stdp
    named = dict(d_post=tp.d_post, a_post=tp.a_post, lr=sp.lr, A_plus=sp.A_plus, A_minus=sp.A_minus,
                 w_min=sp.bounds.w_min, w_max=sp.bounds.w_max, mu=sp.bounds.mu)
    coef = jnp.stack([jnp.asarray(named[name], f32) for name in _COEF])
    W = pad(state.W.astype(f32), n_out_p, n_in_p)
    vecs = [pad(a.astype(f32), n_out_p) for a in (state.v, state.trace_post, state.spike)]

    whole = lambda shape: pl.BlockSpec(shape, lambda i: (0,) * len(shape))  # noqa: E731
    row_block = pl.BlockSpec((rows,), lambda i: (i,))
    inputs = [jnp.reshape(n_steps, (1,)).astype(jnp.int32), coef, xs_p, Ps_p]
    blocks_in = [whole((1,)), whole((8,)), whole((T_p, n_in_p)), whole((T_p, n_in_p))]
    if posts is not None:
        inputs.append(pad(posts.astype(f32), T_p, n_out_p))
        blocks_in.append(pl.BlockSpec((T_p, rows), lambda i: (0, i)))
    inputs += [lif_rows, W] + vecs
    blocks_in += [pl.BlockSpec((4, rows), lambda i: (0, i)), pl.BlockSpec((rows, n_in_p), lambda i: (i, 0))]
    blocks_in += [row_block] * 3
    w_index = len(inputs) - 4
    out_shape = [jax.ShapeDtypeStruct(W.shape, f32)] + [jax.ShapeDtypeStruct((n_out_p,), f32)] * 3
    out_shape.append(jax.ShapeDtypeStruct((T_p, n_out_p), f32))
    blocks_out = [blocks_in[w_index]] + [row_block] * 3 + [pl.BlockSpec((T_p, rows), lambda i: (0, i))]
    compiler_params = None
    if not interpret:
        from jax.experimental.pallas import triton as pltriton
        compiler_params = pltriton.CompilerParams(num_warps=tiling.num_warps, num_stages=tiling.num_stages)
    kernel = partial(_kernel, config, tiling, n_in_p, T_p, posts is not None)
    W, v, tr_post, spike, spikes = pl.pallas_call(
        kernel, grid=(n_out_p // rows,), in_specs=blocks_in, out_specs=blocks_out, out_shape=out_shape,
        input_output_aliases={w_index: 0}, interpret=interpret, compiler_params=compiler_params,
    )(*inputs)
    state = state._replace(W=W[:n_out, :n_in].astype(state.W.dtype), v=v[:n_out], trace_post=tr_post[:n_out],
                           spike=spike[:n_out], trace_pre=trace_pre)
    done = (jnp.arange(T) < n_steps)[:, None]
    return state, jnp.where(done, spikes[:T, :n_out], 0.0)


def fused_train(config, params, state, xs, posts=None, n_steps=None, tiling: Optional[FusedTiling] = None,
                interpret: Optional[bool] = None):
    """Run the first ``n_steps`` rows of ``xs`` (``(T, n_in)``) through the fused kernel.
    Computes exactly :func:`~canns_stdp.functional.layer_step.train_step` applied
    ``n_steps`` times (default ``T``), up to float rounding. Returns ``(state, spikes)``
    with ``spikes`` of shape ``(T, n_out)`` (rows past ``n_steps`` are zero).
    ``interpret`` defaults to ``True`` off GPU.
    """
    n_out, n_in = state.W.shape
    tiling = tiling or FusedTiling.default(n_in, n_out)
    interpret = (not fused_available()) if interpret is None else interpret
    n_steps = xs.shape[0] if n_steps is None else n_steps
    return _fused_chunk(config, tiling, interpret, params, state, xs, posts, jnp.asarray(n_steps, jnp.int32))


def fused_chunk(config, params, state, chunk, n_steps):
    """A chunk of the fused kernel (for :func:`~canns_stdp.loops.drive`): ``chunk = (xs, posts)``."""
    xs, posts = chunk
    return fused_train(config, params, state, xs, posts, n_steps)
