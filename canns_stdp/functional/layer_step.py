"""One step of a dense spiking layer, with and without plasticity (all of docs/step.md).

These two functions are *the* dynamics of :class:`~canns_stdp.SpikingLayer`:
the layer's ``forward``, the trainer's compiled scan and its Python loop all call
them, so no two code paths can disagree.

Example:
    >>> import jax.numpy as jnp
    >>> from canns_stdp.functional.layer_step import (
    ...     LayerConfig, LayerParams, LayerState, train_step)
    >>> state = LayerState.zeros(n_in=3, n_out=2, W=jnp.full((2, 3), 0.6))
    >>> state, s = train_step(LayerConfig(), LayerParams(), state, jnp.array([1., 1., 0.]))
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, NamedTuple, Optional

import jax
import jax.numpy as jnp

from .dependence import additive
from .event import (DeferredState, deferred_rows, deferred_update, event_current, event_update, open_ledger,
                    rows_current, settle)
from .fused import fused_train
from .in_place import rows_buffer, through_buffer, writes_in_place, written_in_halves
from .. import step as composed  # read at call time: canns_stdp.step imports this package
from .neurons import LIFParams
from .stdp import STDPParams, TraceParams, apply_bounds, pairing_terms, stdp_delta
from .synapses import Dense, LinearMap
from .traces import cumulative_add

__all__ = ["BATCH_REDUCTIONS", "LayerState", "RefractoryLayerState", "layer_state", "LayerParams", "LayerConfig",
           "NeuronBlocks", "advance_neurons", "advance_and_pair", "forward_step", "plasticity_step", "train_step",
           "begin_span", "end_span", "renew_span"]

BATCH_REDUCTIONS = ("sum", "mean")


class LayerState(NamedTuple):
    """Everything a layer carries from one step to the next.

    Shapes for a dense layer; a conv layer has ``W`` in OIHW and ``(C, H, W)`` maps in
    place of ``(n,)``; with a batch, every array but ``W`` has a leading ``B``.
    """

    W: jnp.ndarray           # (n_out, n_in)
    v: jnp.ndarray           # (n_out,)
    spike: jnp.ndarray       # (n_out,) last output spikes
    trace_pre: jnp.ndarray   # (n_in,)
    trace_post: jnp.ndarray  # (n_out,)

    @classmethod
    def zeros(cls, n_in: int, n_out: int, W=None, dtype=jnp.float32, refractory: bool = False):
        """A state at rest; with ``refractory``, a :class:`RefractoryLayerState`."""
        W = jnp.zeros((n_out, n_in), dtype) if W is None else jnp.asarray(W, dtype)
        z_out = jnp.zeros((n_out,), dtype)
        state = cls(W, z_out, z_out, jnp.zeros((n_in,), dtype), z_out)
        return RefractoryLayerState(*state, z_out) if refractory else state

    def arrays(self) -> dict:
        """The arrays by name."""
        return self._asdict()


class RefractoryLayerState(NamedTuple):
    """A :class:`LayerState` of neurons with a refractory period: one more array, the
    steps each neuron has left in it (shaped like ``v``)."""

    W: jnp.ndarray
    v: jnp.ndarray
    spike: jnp.ndarray
    trace_pre: jnp.ndarray
    trace_post: jnp.ndarray
    refractory_left: jnp.ndarray

    arrays = LayerState.arrays


def layer_state(**arrays):
    """A :class:`LayerState`, or a :class:`RefractoryLayerState` where ``arrays`` hold a
    ``refractory_left``."""
    return (RefractoryLayerState if "refractory_left" in arrays else LayerState)(**arrays)


class LayerParams(NamedTuple):
    """Numeric parameters; traced under ``jit``, so changing them never recompiles."""

    lif: LIFParams = LIFParams()
    traces: TraceParams = TraceParams()
    stdp: STDPParams = STDPParams()


@dataclass(frozen=True)
class LayerConfig:
    """Choices that change the compiled code (static under ``jit``)."""

    trace_add: Callable = cumulative_add
    dependence: Callable = additive
    pairing: str = "symmetric"
    hardbound: bool = True
    synapse: LinearMap = Dense()    # the linear map W, x -> current (dense, masked, conv)
    batch_reduction: str = "sum"    # per-sample dW over a batch axis: "sum" or "mean"
    event_driven: bool = False      # dense, unbatched: state.W holds W.T, steps take x_events
    deferred_ltp: bool = False      # with event_driven: train_step defers LTP (functional.event), state is a DeferredState
    fused: bool = False             # dense, unbatched: steps run in the Pallas kernel (functional.fused)
    native: bool = False            # dense, unbatched: chunks run in the native CPU kernel (kernels.native_pair)


@dataclass(frozen=True)
class NeuronBlocks:
    """Cuts a dense, unbatched layer into ``count`` blocks of ``size`` output neurons.

    The output neurons of a layer driven by its input never interact: neuron ``i``'s
    membrane, spike, post trace and weights (row ``i`` of ``W``, column ``i`` of the
    event kernel's ``W.T``) evolve from the input alone. So a chunk of steps can run one
    block at a time (:func:`~canns_stdp.loops.blocked_chunks`), each block's
    weights staying in cache for the whole chunk. Every block recomputes the pre trace,
    which depends on the input only, from its value at the start of the chunk.
    Per-step inputs are ``(x, post, x_events)``; ``post`` is cut with the neurons. The
    parameters must be scalars (not per neuron).
    """

    size: int
    count: int

    def take(self, config: LayerConfig, state: LayerState, seq: tuple, b):
        start, axis = b * self.size, 1 if config.event_driven else 0
        cut = lambda a, ax=0: jax.lax.dynamic_slice_in_dim(a, start, self.size, ax)  # noqa: E731
        counter = {} if type(state) is LayerState else {"refractory_left": cut(state.refractory_left)}
        part = state._replace(W=cut(state.W, axis), v=cut(state.v), spike=cut(state.spike),
                              trace_post=cut(state.trace_post), **counter)
        x, post, *rest = seq
        return part, (x, None if post is None else cut(post, 1), *rest)

    def put(self, config: LayerConfig, state: LayerState, part: LayerState, b) -> LayerState:
        start, axis = b * self.size, 1 if config.event_driven else 0
        paste = lambda a, p, ax=0: jax.lax.dynamic_update_slice_in_dim(a, p, start, ax)  # noqa: E731
        counter = ({} if type(state) is LayerState
                   else {"refractory_left": paste(state.refractory_left, part.refractory_left)})
        return state._replace(W=paste(state.W, part.W, axis), v=paste(state.v, part.v),
                              spike=paste(state.spike, part.spike),
                              trace_post=paste(state.trace_post, part.trace_post), **counter)

    @staticmethod
    def fits(config: LayerConfig) -> bool:
        """Whether chunks of ``config`` can be cut (a deferred-LTP state cannot)."""
        return not config.deferred_ltp

    @staticmethod
    def shared(state: LayerState):
        """What every block computes alike (the pre trace): taken from one block at the end."""
        return state.trace_pre

    @staticmethod
    def with_shared(state: LayerState, shared) -> LayerState:
        return state._replace(trace_pre=shared)

    @classmethod
    def for_layer(cls, n_in: int, n_out: int, block_bytes: int = 2 << 20) -> Optional["NeuronBlocks"]:
        """Blocks of about ``block_bytes`` of fp32 weights, or ``None`` when ``W`` is
        small enough to stay in cache whole (or ``n_out`` has no divisor that fits)."""
        if 4 * n_in * n_out <= 2 * block_bytes:
            return None
        most = max(1, block_bytes // (4 * n_in))
        size = next((d for d in range(min(most, n_out), 0, -1) if n_out % d == 0), 1)
        if size < min(16, most):
            return None
        return cls(size, n_out // size)


def advance_neurons(config: LayerConfig, params: LayerParams, state: LayerState, x, post, x_events=None,
                    current=None):
    """steps 1-5 of docs/step.md (:func:`canns_stdp.step.advance_neurons`) from this kernel's layout;
    returns the new state and the traces' decayed values.

    ``current`` (``W @ x``) is computed from ``state.W`` unless given."""
    if current is None:
        current = (event_current(state.W, x, x_events) if config.event_driven
                   else config.synapse.current(state.W, x))
    return composed.advance_neurons(config.trace_add, params.lif, params.traces, state, x, post, current)


def forward_step(config: LayerConfig, params: LayerParams, state: LayerState, x,
                 post: Optional[jnp.ndarray] = None, x_events: Optional[jnp.ndarray] = None):
    """Neuron and traces, no plasticity (steps 1-5 of docs/step.md). Returns ``(state, spikes)``."""
    state, _, _ = advance_neurons(config, params, state, x, post, x_events)
    return state, state.spike


def advance_and_pair(config: LayerConfig, params: LayerParams, state: LayerState, x, post,
                      x_events=None, current=None):
    """steps 1-5,  of docs/step.mdthen the trace terms the pairing pairs: ``(state, P, Q)``."""
    state, new, decayed = advance_neurons(config, params, state, x, post, x_events, current)
    P, Q = pairing_terms(config.pairing, new, decayed)
    return state, P, Q


def plasticity_step(config: LayerConfig, params: LayerParams, state: LayerState, x,
                    post: Optional[jnp.ndarray] = None):
    """steps 1-6 of docs/step.md without applying the change: returns ``(state, spikes, dW)``.

    ``state.W`` is left as it was. The Hebbian terms come from the synaptic map
    (``config.synapse.hebbian``), summed over a leading batch axis of ``x`` when
    there is one, or averaged when ``config.batch_reduction == "mean"``.
    """
    W = state.W
    state, P, Q = advance_and_pair(config, params, state, x, post)
    dW = stdp_delta(config.dependence, params.stdp, W, x, state.spike, P, Q, hebbian=_hebbian(config, W, x))
    return state, state.spike, dW


def _hebbian(config: LayerConfig, W, x) -> Callable:
    """The synaptic map's Hebbian term for ``stdp_delta``, averaged over a batch when
    ``config.batch_reduction == "mean"``."""
    synapse = config.synapse
    scale = 1.0 / synapse.batch_size(x) if config.batch_reduction == "mean" else 1.0

    def hebbian(post_, pre_):
        term = synapse.hebbian(W, post_, pre_)
        return term * scale if scale != 1.0 else term
    return hebbian


def _updated_weights(config: LayerConfig, params: LayerParams, W, x, spikes, P, Q):
    """steps 6-7 of docs/step.md: ``W`` after this step's change.

    A ``Dense`` map's rows are its neurons: where it pays (on a CPU,
    :func:`~canns_stdp.functional.in_place.writes_in_place`) the rows are written one half
    of the neurons at a time, in place, a pass XLA:CPU would otherwise split between
    threads; the values are the same.
    """
    hebbian = _hebbian(config, W, x)

    def rows(buffer, lo=None, hi=None):
        part = slice(lo, hi)
        dW = stdp_delta(config.dependence, params.stdp, buffer[part], x, spikes[..., part], P, Q[..., part],
                        hebbian=hebbian)
        return apply_bounds(buffer[part], dW, params.stdp.bounds, config.hardbound)

    if type(config.synapse) is Dense and writes_in_place(W):
        return written_in_halves(W, rows)
    return config.synapse.keep_absent(W, rows(W))


def train_step(config: LayerConfig, params: LayerParams, state: LayerState, x,
               post: Optional[jnp.ndarray] = None, x_events: Optional[jnp.ndarray] = None):
    """One full training step (steps 1-7 of docs/step.md). Returns ``(state, spikes)``.

    Args:
        config: static choices (trace mode, weight dependence, pairing, clipping,
            synaptic map, batch reduction).
        params: numeric parameters.
        state: the layer's state after the previous step.
        x: input of the map's shape (``(n_in,)`` for a dense layer), optionally with
            a leading batch axis: 0/1 spikes or real currents.
        post: optional imposed output spikes, shaped like the output.
        x_events: with ``config.event_driven`` (a dense, unbatched layer whose
            ``state.W`` holds ``W.T``), the indices of the nonzero inputs, padded with
            ``n_in`` (:func:`~canns_stdp.functional.event.input_events`).

    With ``config.fused`` the step runs in the fused Pallas kernel
    (:func:`~canns_stdp.functional.fused.fused_train`, one step), which the compiled
    loop runs a whole chunk of steps at a time. With ``config.deferred_ltp`` the state
    is a :class:`~canns_stdp.functional.event.DeferredState` and the step updates only
    the active inputs' rows, deferring the other rows' LTP.
    """
    if config.fused:
        state, spikes = fused_train(config, params, state, x[None],
                                    None if post is None else post[None])
        return state, spikes[0]
    if config.deferred_ltp:
        return _deferred_train_step(config, params, state, x, post, x_events)
    if config.event_driven:
        W = state.W
        state, P, Q = advance_and_pair(config, params, state, x, post, x_events)
        W = event_update(config.dependence, params.stdp, config.hardbound, W, x, x_events,
                         state.spike, P, Q)
        return state._replace(W=W), state.spike
    W = state.W
    state, P, Q = advance_and_pair(config, params, state, x, post)
    return state._replace(W=_updated_weights(config, params, W, x, state.spike, P, Q)), state.spike


def _deferred_train_step(config: LayerConfig, params: LayerParams, state: DeferredState, x, post, x_events):
    layer, ledger, buffer = state
    bounds = params.stdp.bounds
    buffer, rows = through_buffer(buffer, deferred_rows(layer.W, ledger, x_events, bounds, config.hardbound))
    layer, P, Q = advance_and_pair(config, params, layer, x, post, current=rows_current(rows, x, x_events))
    U, ledger = deferred_update(config.dependence, params.stdp, config.hardbound, params.traces.d_pre, layer.W,
                                ledger, rows, x, x_events, layer.spike, P, Q, layer.trace_pre)
    return DeferredState(layer._replace(W=U), ledger, buffer), layer.spike


def begin_span(config: LayerConfig, params: LayerParams, state, inputs):
    """The state the steps of ``config`` take, from a settled layer state; ``inputs``
    are a step's inputs ``(x, post, x_events)``, for their shapes.

    With ``config.deferred_ltp`` it opens a :class:`~canns_stdp.functional.event.Ledger`
    on the event kernel's ``W.T``, with a buffer for the rows of ``x_events``; otherwise
    the state is used as it is. :func:`end_span` undoes it.
    """
    if not config.deferred_ltp:
        return state
    n_out = state.v.shape[-1]
    rows = rows_buffer(inputs[2].shape[-1], (n_out,), state.W.dtype)
    return DeferredState(state, open_ledger(params.stdp, state.trace_pre, n_out), rows)


def end_span(config: LayerConfig, params: LayerParams, state):
    """The settled layer state: a span's owed LTP written into ``W.T``."""
    if not config.deferred_ltp:
        return state
    layer, ledger, _ = state
    return layer._replace(W=settle(layer.W, ledger, params.stdp.bounds, config.hardbound))


def renew_span(config: LayerConfig, params: LayerParams, state):
    """A span's end and the next one's start (the loops' :class:`~canns_stdp.loops.Frame`):
    the owed LTP settled and a new ledger opened, the rows buffer kept."""
    if not config.deferred_ltp:
        return state
    layer = end_span(config, params, state)
    return DeferredState(layer, open_ledger(params.stdp, layer.trace_pre, layer.v.shape[-1]), state.rows)
