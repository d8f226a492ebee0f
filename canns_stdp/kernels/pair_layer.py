"""Kernels for the pair rule on a dense, unbatched layer.

They compute :func:`canns_stdp.step.plastic_step` for :class:`~canns_stdp.rules.Pair`
with other memory layouts and less work (:mod:`canns_stdp.functional.layer_step`):

* dense XLA, writing ``W`` in place (on a CPU, in two halves),
* neuron blocks that keep a block's weights in cache for a whole chunk,
* event-driven, visiting the active inputs' rows and the fired neurons' columns of ``W.T``,
* deferred LTP, a ledger settled every span of steps (the additive dependence),
* the fused Pallas kernel (GPU), many steps per launch,
* the native CPU kernel (numba, :mod:`~canns_stdp.kernels.native_pair`), a whole chunk per call.

The choice is made at the start of each chunk of the global step count, from what any
call that reaches that step knows alike: the input of the chunk's first step, the pre
and post traces' estimates of the input activity and the firing rate, with the
thresholds of :mod:`canns_stdp.kernels.policy`. A call that ends inside a chunk hands
the next call the chunk's kernel and running state (:class:`~canns_stdp.kernels.base.OpenChunk`),
so a sequence split across calls runs bitwise as in one call.
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np

from .._validation import checked_range
from ..functional.event import (DeferredState, Ledger, deferred_compatible, deferred_span, event_compatible,
                                input_events, open_ledger)
from ..functional.fused import fused_available, fused_chunk, fused_compatible
from ..functional.in_place import rows_buffer
from ..functional.layer_step import (LayerConfig, LayerParams, NeuronBlocks, begin_span, end_span, forward_step,
                                     renew_span, train_step)
from ..functional.stdp import STDPParams
from ..functional.synapses import Dense
from ..host_memory import host_empty
from ..layer import on_device, on_device_tree
from ..loops import Frame, blocked_chunks, compiled_chunks, convert, default_chunk_size, drive, padded, python_steps
from ..rules.pair import Pair
from ..step import StepState
from . import native_pair
from .base import Execution, OpenChunk
from .native_pair import (BlockedWeights, OpenLedger, in_kernel_layout, native_available, native_chunk,
                          native_compatible, settled)
from .native_steps import native_steps_chunk, python_loop_native
from .policy import (COLUMN_MAX_FIRED, EVENT_MAX_ACTIVITY, EVENT_MIN_SYNAPSES, NATIVE_DEFERRED_MAX_INPUTS,
                     NATIVE_MAX_FIRED, NATIVE_MAX_FIRING, NATIVE_MIN_SYNAPSES, PYTHON_LOOP_EVENT_MIN_SYNAPSES,
                     event_max_firing)

__all__ = ["fused_chosen", "layer_step", "native_applies", "pair_terms", "plan", "supports"]


def supports(plastic: bool, config, params, state, seq) -> bool:
    """A dense, unbatched layer, and the pair rule (or no plasticity and no rule state)."""
    if type(config.synapse) is not Dense or seq[0].ndim != 2 or config.extras:
        return False
    if jax.tree_util.tree_leaves(state.rule):
        return False
    return not plastic or type(params.rule) is Pair


def pair_terms(rule: Pair, lr, bounds):
    """The pair rule as the event and dense kernels take it: ``(STDPParams, {dependence,
    pairing})``, the numbers and the static choices."""
    return (STDPParams(lr, rule.A_plus, rule.A_minus, bounds._replace(mu=rule.mu)),
            dict(dependence=rule.dependence, pairing=rule.pairing))


def layer_step(config, params, plastic: bool = True):
    """The step's configuration and numbers in the layout of :mod:`~canns_stdp.functional.layer_step`."""
    if plastic:
        stdp, extra = pair_terms(params.rule, params.lr, params.bounds)
    else:
        stdp, extra = STDPParams(params.lr, bounds=params.bounds), {}
    layer_config = LayerConfig(trace_add=config.trace_add, synapse=config.synapse, hardbound=config.hardbound,
                               batch_reduction=config.batch_reduction, **extra)
    return layer_config, LayerParams(params.lif, params.traces, stdp)


def refractory_state(layer) -> bool:
    """Whether a layer state carries a refractory counter (the fused and native kernels have
    no refractory period)."""
    return getattr(layer, "refractory_left", None) is not None


def fused_chosen(trainer, plastic: bool, layer_config, resting: bool) -> bool:
    """Whether a call trains with the fused kernel (on a GPU, or when asked for)."""
    return plastic and trainer.fused is not False and not resting and fused_compatible(layer_config) and (
        trainer.fused is True or fused_available())


def native_applies(trainer, plastic: bool, layer_config, layer_params, n_synapses: int, dtype, resting: bool) -> bool:
    """Whether a call's chunks may run the native CPU kernel: kernels chosen
    automatically, no fused kernel and no refractory period, a layer of at least
    ``NATIVE_MIN_SYNAPSES`` synapses, numbers it takes, and numba; the Python loop calls
    it step by step, but not inside ``jax.disable_jit()``."""
    return ((trainer.compiled or python_loop_native()) and trainer.fused is not False
            and trainer.event_driven == "auto" and not resting
            and not fused_chosen(trainer, plastic, layer_config, resting) and n_synapses >= NATIVE_MIN_SYNAPSES
            and fused_compatible(layer_config) and native_compatible(layer_config, layer_params, dtype)
            and native_available())


def plan(trainer, plastic: bool, config, params, state, seq):
    """The execution for this call, or ``None`` when these kernels do not apply."""
    supported = supports(plastic, config, params, state, seq)
    resting = refractory_state(state.layer)  # (the fused and native kernels have no refractory period)
    if trainer.fused is True and plastic:
        fits = supported and fused_compatible(layer_step(config, params, True)[0]) and not resting
        if not fits:
            raise ValueError(
                "fused=True needs a dense, unbatched layer without a refractory period, the pair rule and a "
                f"built-in weight dependence; got synapse {type(config.synapse).__name__}, input of shape "
                f"{tuple(seq[0].shape[1:])} per step, rule {type(params.rule).__name__}"
                + (", a refractory period" if resting else ""))
    if not supported:
        return None
    layer_config, layer_params = layer_step(config, params, plastic)
    step = train_step if plastic else forward_step
    layer = state.layer
    fused = fused_chosen(trainer, plastic, layer_config, resting)
    native = native_applies(trainer, plastic, layer_config, layer_params, layer.W.size, layer.W.dtype, resting)
    chunk = trainer.chunk_size or default_chunk_size(int(seq[0].shape[1]))
    if native and trainer.chunk_size is None:  # (its input stays on the host: a chunk as long as a stretch)
        chunk = max(chunk, native_pair.stretch_for(layer.v.shape[-1], layer.trace_pre.shape[-1]))
    if fused:
        layer_config = dataclasses.replace(layer_config, fused=True)
    blocks = None if fused or not trainer.compiled else _neuron_blocks(layer_params, seq, layer)
    event_driven = trainer.event_driven
    smallest = EVENT_MIN_SYNAPSES if trainer.compiled else PYTHON_LOOP_EVENT_MIN_SYNAPSES
    if event_driven == "auto" and layer.W.size < smallest:
        event_driven = False  # a small layer's dense steps cost less than the event kernels' host work
    chooser = None if fused else _KernelChooser(event_driven, step, layer_config, layer_params, seq,
                                                layer, chunk, blocked=blocks is not None, native=native)
    if fused:
        layer_params = jax.device_put(layer_params)  # once per call, not once per chunk

    def runner(config):
        """The chunk function for chunks of ``config``."""
        if fused and trainer.compiled:
            return lambda state, inputs, n, record, offset: fused_chunk(
                config, layer_params, state, tuple(padded(a, chunk) for a in inputs), n)
        if config.native and not trainer.compiled:
            return lambda state, inputs, n, record, offset: native_steps_chunk(
                config, layer_params, state, inputs, n, plastic, chooser.native_span, offset, offset + n == chunk)
        if config.native:  # (its inputs as they are: no padding to copy; its spikes where the call wants them)
            return lambda state, inputs, n, record, offset: native_chunk(
                config, layer_params, state, inputs, n, plastic, chooser.native_span, offset, offset + n == chunk,
                spike_rows.next(n))
        frame = chooser.frame if config.deferred_ltp else None
        if not trainer.compiled:
            return python_steps(step, config, layer_params, frame)
        if blocks is not None and blocks.fits(config):
            return blocked_chunks(step, config, layer_params, chunk, blocks)
        return compiled_chunks(step, config, layer_params, chunk, frame)

    runners = {}
    spike_rows = None  # the call's SpikeRows, where its chunks run natively

    def run_chunk(state, chunk_inputs, n_steps, record, offset):
        config = layer_config
        if chooser is not None:  # dense or event-driven, for this chunk
            config, state, chunk_inputs = chooser.configure(state, chunk_inputs, offset)
        if config not in runners:
            runners[config] = runner(config)
        return runners[config](state, chunk_inputs, n_steps, record, offset)

    def canonical(state):  # W, not the event kernels' W.T or a ledger; JAX arrays, not the native kernel's
        if chooser is None:
            return state
        return StepState(on_device_tree(chooser.canonical(state.layer)), state.rule)

    def left_open(state, end: int):
        return None if chooser is None else chooser.left_open(state.layer, end)

    def run(state, seq, *, start=0, open_chunk=None, callback=None, **options):
        nonlocal spike_rows
        rule_state, layer = state.rule, state.layer
        if native:
            spike_rows = SpikeRows(seq[0].shape[0], layer.v.shape[-1], chunk, options.get("record", False))
        if chooser is not None:
            layer = chooser.resume(layer, open_chunk if start % chunk else None)
        wrapped = None if callback is None else (lambda done, s: callback(done, StepState(s, rule_state)))
        layer, outs = drive(run_chunk, layer, seq, chunk_size=chunk, start=start, callback=wrapped, **options)
        return StepState(layer, rule_state), outs

    return Execution(run, canonical, left_open)


class SpikeRows:
    """Where the native kernel writes a call's spikes, chunk after chunk: the rows of one
    ``(T, n_out)`` array where the call records them (the loops then hand that array on as
    it is, with no concatenation), else one chunk's room, used again by every chunk."""

    def __init__(self, T: int, n_out: int, chunk: int, record: bool):
        self.rows = host_empty((T if record else min(T, chunk), n_out))
        self.record, self.at = record, 0

    def next(self, n: int):
        """The room for the next ``n`` steps' spikes."""
        start = self.at if self.record else 0
        self.at += n
        return self.rows[start:start + n]


@functools.lru_cache(maxsize=256)
def _variant(config, **choices):
    """``dataclasses.replace(config, **choices)``, made once (configs are frozen)."""
    return dataclasses.replace(config, **choices)


def _transposed(W):
    """``W.T`` (the dense and event kernels' layouts): on the host for a small ``W`` on the
    CPU, where XLA would compile a transposition per shape on a first call."""
    if W.size <= (1 << 20) and all(d.platform == "cpu" for d in W.devices()):
        return on_device(np.ascontiguousarray(np.asarray(W).T))
    return W.T


def _per_step_estimate(trace, amplitude, decay) -> float:
    """The fraction of a population active per step, from its trace, which averages the
    recent activity (``E[tr] = a * rate / (1 - d)`` for cumulative traces; more for
    nearest ones, so the estimate errs toward the dense kernel)."""
    a, d = float(amplitude), float(decay)
    if a <= 0 or not 0 <= d < 1:
        return 0.0
    return float(np.mean(np.abs(np.asarray(trace)))) * (1.0 - d) / a


def _fresh(layer) -> bool:
    """Whether a layer has not run yet (its traces are zero): its activity is unknown."""
    return not (np.any(np.asarray(layer.trace_pre)) or np.any(np.asarray(layer.trace_post)))


def _firing_estimate(layer, params) -> float:
    """Fraction of neurons firing per step, from the post trace; 1 for a layer that has
    not run yet."""
    if _fresh(layer):
        return 1.0
    if float(params.traces.a_post) <= 0:
        return float(np.mean(np.asarray(layer.spike)))
    return _per_step_estimate(layer.trace_post, params.traces.a_post, params.traces.d_post)


def _input_activity(layer, params, x0) -> float:
    """Fraction of inputs active per step: the larger of the chunk's first step and the
    pre trace's estimate (only what every call reaching this step sees alike)."""
    first = float(np.count_nonzero(np.asarray(x0))) / max(1, x0.size)
    if _fresh(layer):
        return first
    return max(first, _per_step_estimate(layer.trace_pre, params.traces.a_pre, params.traces.d_pre))


def _neuron_blocks(params, seq, state):
    """Blocks of output neurons for the compiled loop when ``W`` outgrows the cache
    (:class:`~canns_stdp.functional.layer_step.NeuronBlocks`), else ``None``."""
    blocks = NeuronBlocks.for_layer(seq[0].shape[1], state.v.shape[-1])
    if blocks is None or not all(np.ndim(leaf) == 0 for leaf in jax.tree_util.tree_leaves(params)):
        return None
    return blocks


def input_bound(seq) -> float:
    """The largest input magnitude of a call (at least 1), from the range its validation
    found (no second pass over the input)."""
    lo, hi = checked_range(seq[0])
    return max(1.0, hi, -lo)


def deferral_span(step, config, params, x_max: float, state, chunk: int) -> int:
    """Steps per span of deferred LTP for this run (:func:`~canns_stdp.functional.event.deferred_span`,
    at most ``chunk``), or 0 where LTP cannot be deferred; ``x_max``: :func:`input_bound`."""
    if step is not train_step or not deferred_compatible(config.dependence):
        return 0
    traces, stdp = params.traces, params.stdp
    if any(np.ndim(a) for a in (traces.d_pre, traces.a_pre, stdp.lr, stdp.A_plus)):
        return 0
    d_pre = float(traces.d_pre)
    if not 0.0 < d_pre < 1.0:  # a trace that never decays has no bound
        return 0
    # no trace exceeds its start or its fixed point under the largest input: a bound that
    # neither T nor a previous call's traces change, so the chunk length (and the
    # compiled loop) stays the same from call to call
    trace_bound = max(float(np.abs(np.asarray(state.trace_pre)).max(initial=0.0)),
                      abs(float(traces.a_pre)) * x_max / (1.0 - d_pre))
    bounds = stdp.bounds
    scale = max(abs(float(bounds.w_min)), abs(float(bounds.w_max))) if config.hardbound else 1.0
    return deferred_span(float(stdp.lr) * float(stdp.A_plus), d_pre, trace_bound, scale, chunk)


def native_deferral_span(step, config, params, x_max: float, state) -> int:
    """Steps per span over which the native kernel defers LTP in this run
    (:func:`deferral_span` over the layer's stretches, which a span divides), or 0: LTP
    that cannot be deferred, or more than ``NATIVE_DEFERRED_MAX_INPUTS`` inputs."""
    if state.W.shape[-1] > NATIVE_DEFERRED_MAX_INPUTS:
        return 0
    stretch = native_pair.stretch_for(state.v.shape[-1], state.trace_pre.shape[-1])
    return deferral_span(step, config, params, x_max, state, stretch)


class _KernelChooser:
    """Dense or event-driven kernels, chosen at the start of each chunk.

    The event-driven kernels keep ``W.T`` in the state, the deferred-LTP one a
    :class:`~canns_stdp.functional.event.DeferredState` (``W.T`` minus the LTP it owes,
    and its ledger); the chooser converts the state when it switches. Where LTP can be
    deferred it uses the deferred-LTP kernel unless fewer than ``COLUMN_MAX_FIRED``
    neurons fire per step, and the fired-column kernel then; the ledger is settled and
    opened again every ``frame.every`` steps of the global count. It only switches to an
    event kernel when the weights are within their bounds (they leave untouched synapses
    unclipped). With ``native``, every chunk runs in the native CPU kernel, which keeps
    ``W``, where it can defer LTP over its spans (``native_span``); elsewhere a chunk
    whose inputs are quiet (``EVENT_MAX_ACTIVITY``) and few of whose neurons fire
    (``NATIVE_MAX_FIRING``, ``NATIVE_MAX_FIRED``) does. Once chosen, a chunk's kernel
    runs all of it, however many calls it takes.
    """

    def __init__(self, event_driven, step, dense_config, params, seq, layer, chunk: int, blocked=False,
                 native=False):
        self.forced = event_driven is True
        self.params, self.chunk, self.blocked = params, chunk, blocked
        self.dense = dense_config
        self.native = _variant(dense_config, native=True) if native else None
        usable = event_driven is not False and event_compatible(dense_config.dependence)
        x_max = input_bound(seq) if (native or usable) and step is train_step else 1.0  # (one pass for both)
        self.native_span = native_deferral_span(step, dense_config, params, x_max, layer) if native else 0
        self.column = _variant(dense_config, event_driven=True) if usable else None
        span = deferral_span(step, dense_config, params, x_max, layer, chunk) if usable else 0
        self.deferred = _variant(self.column, deferred_ltp=True) if span else None
        self.frame = Frame(renew_span, span) if span else None
        self.current = dense_config  # the kernel whose layout the state is in
        self.decided = False         # whether the chunk in progress has its kernel

    # -- layouts ------------------------------------------------------------------------
    def _layer(self, state):
        return state.layer if isinstance(state, (DeferredState, OpenLedger)) else state

    def _convert(self, state, wanted, inputs):
        """``state`` from the layout of ``self.current`` to that of ``wanted``."""
        current = self.current
        if current.native and not wanted.native:  # (settled, W out of the kernel's layout)
            state = settled(self.params, current.hardbound, state)
        if not wanted.native:  # (the native kernels hand on NumPy arrays)
            state = on_device_tree(state)
        if current.deferred_ltp and not wanted.deferred_ltp:
            state = convert(end_span, current, self.params, state)
        if current.event_driven != wanted.event_driven:
            state = state._replace(W=_transposed(state.W))
        if wanted.deferred_ltp and not current.deferred_ltp:
            state = convert(begin_span, wanted, self.params, state, inputs)
        elif wanted.deferred_ltp:  # a buffer for this chunk's rows of W.T
            rows = rows_buffer(inputs[2].shape[-1], (state.layer.v.shape[-1],), state.layer.W.dtype)
            held = state.rows
            if (rows is None) != (held is None) or (rows is not None and rows.shape != held.shape):
                state = state._replace(rows=rows)
        self.current = wanted
        return state

    def canonical(self, state):
        """The settled layer state with ``W`` (not ``W.T`` or the native kernel's layout)."""
        if self.current.native:
            return settled(self.params, self.current.hardbound, state)
        if isinstance(state, DeferredState):
            state = convert(end_span, self.deferred, self.params, state)
        if self.current.event_driven:
            state = state._replace(W=_transposed(state.W))
        return state

    # -- choosing -------------------------------------------------------------------------
    def _choose(self, state, x0, deferred_allowed=True):
        if self.native is not None and self.native_span:
            return self.native  # (nothing read back from the device: the next chunk is queued while one runs)
        if self.native is not None:
            layer = self._layer(state)
            firing = _firing_estimate(layer, self.params)
            if (_input_activity(layer, self.params, x0) <= EVENT_MAX_ACTIVITY and firing <= NATIVE_MAX_FIRING
                    and firing * layer.v.shape[-1] <= NATIVE_MAX_FIRED):
                return self.native
        if self.column is None:
            return self.dense
        layer = self._layer(state)
        if not self.forced and _input_activity(layer, self.params, x0) > EVENT_MAX_ACTIVITY:
            return self.dense
        if self.current is self.dense and self.dense.hardbound:
            bounds = self.params.stdp.bounds
            W = np.asarray(layer.W)  # on the host: no compilation on a first call
            if not np.all((W >= bounds.w_min) & (W <= bounds.w_max)):
                return self.dense
        firing = _firing_estimate(layer, self.params)
        n_out = layer.v.shape[-1]
        if self.deferred is not None and deferred_allowed and firing * n_out >= COLUMN_MAX_FIRED:
            return self.deferred
        if self.forced or firing <= event_max_firing(n_out, self.blocked):
            return self.column
        return self.dense

    def configure(self, state, chunk, offset):
        """``(config, state, chunk)`` for a chunk whose first step is step ``offset`` of
        its chunk: its kernel, the state in that kernel's layout, and the inputs it takes."""
        xs = chunk[0]
        wanted = self.current if (offset and self.decided) else self._choose(state, xs[0])
        self.decided = True
        if wanted.event_driven:
            n_in = xs.shape[1]
            x_events = input_events(xs, n_in if self.forced else n_in // 4)
            if x_events is None:  # busier than the chunk's first step: every input may be an event
                x_events = input_events(xs, n_in)
            chunk = (*chunk, x_events)
        first = tuple(None if a is None else a[0] for a in chunk)
        return wanted, self._convert(state, wanted, first), chunk

    # -- between calls --------------------------------------------------------------------
    def left_open(self, state, end: int):
        """What a call ending at global step ``end`` leaves of its last chunk, or ``None``
        when that chunk is complete."""
        if end % self.chunk == 0 or not self.decided:
            return None
        current = self.current
        kernel = ("deferred" if current.deferred_ltp else "column" if current.event_driven
                  else "native" if current.native else "dense")
        arrays, span = {}, self.frame.every if self.frame else 0
        if isinstance(state, DeferredState) and float(state.ledger.clock) > 0:
            arrays = {"U": state.layer.W, **state.ledger._asdict()}  # a fresh ledger is rebuilt, not stored
        if current.native:
            span = self.native_span
            if isinstance(state, OpenLedger):
                U = state.layer.W  # kept in the kernel's layout; a run going on from it runs on a copy (see resume)
                U = BlockedWeights(U, state.layer.v.shape[-1]) if in_kernel_layout(U) else U
                arrays = {"U": U, "owed": state.owed, "rates": state.rates}
                if state.bases is not None:
                    arrays["bases"] = state.bases
        return OpenChunk(self.chunk, kernel, span, arrays)

    def resume(self, layer, open_chunk):
        """The layer state in the layout of the kernel ``open_chunk`` ran (the settled,
        canonical ``layer`` otherwise), the chooser going on with that kernel."""
        if open_chunk is None or open_chunk.chunk_size != self.chunk:
            return layer
        wanted = {"dense": self.dense, "column": self.column, "deferred": self.deferred,
                  "native": self.native}.get(open_chunk.kernel)
        if wanted is None or (wanted.deferred_ltp and open_chunk.span != self.frame.every):
            return layer
        self.decided = True
        if not wanted.event_driven:
            self.current = wanted
            if wanted.native and open_chunk.arrays:  # a span of deferred LTP left open
                arrays = dict(open_chunk.arrays)
                U = arrays.pop("U")  # (in the kernel's layout: the run updates a copy in place, see host_chunk)
                ledger = OpenLedger(layer._replace(W=U), **arrays)
                return ledger if open_chunk.span == self.native_span else settled(self.params, wanted.hardbound,
                                                                                    ledger)
            return layer
        layer = layer._replace(W=_transposed(layer.W))
        self.current = self.column
        if not wanted.deferred_ltp:
            return layer
        self.current = wanted
        if not open_chunk.arrays:
            return DeferredState(layer, open_ledger(self.params.stdp, layer.trace_pre, layer.v.shape[-1]), None)
        arrays = {k: jnp.asarray(a) for k, a in open_chunk.arrays.items()}
        return DeferredState(layer._replace(W=arrays.pop("U")), Ledger(**arrays), None)
