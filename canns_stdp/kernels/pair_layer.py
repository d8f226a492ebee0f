"""Kernels for the pair rule on a dense, unbatched layer.

They compute :func:`canns_stdp.step.plastic_step` for :class:`~canns_stdp.rules.Pair`
with other memory layouts and less work (:mod:`canns_stdp.functional.layer_step`):

* dense XLA, writing ``W`` in place (on a CPU, in two halves),
* neuron blocks that keep a block's weights in cache for a whole chunk,
* event-driven, visiting the active inputs' rows and the fired neurons' columns of ``W.T``,
* deferred LTP, a ledger settled every span of steps (the additive dependence),
* the fused Pallas kernel (GPU), many steps per launch.

The choice is made per chunk from the chunk's input activity and the post trace's
estimate of the firing rate, with the thresholds of :mod:`canns_stdp.kernels.policy`.
"""

from __future__ import annotations

import dataclasses
import jax
import jax.numpy as jnp
import numpy as np

from ..functional.event import deferred_compatible, deferred_span, event_compatible, input_events
from ..functional.fused import fused_available, fused_chunk, fused_compatible
from ..functional.layer_step import (LayerConfig, LayerParams, NeuronBlocks, begin_span, end_span, forward_step,
                                     train_step)
from ..functional.stdp import STDPParams
from ..functional.synapses import Dense
from ..loops import Frame, blocked_chunks, compiled_chunks, default_chunk_size, drive, padded, python_steps
from ..rules.pair import Pair
from ..step import StepState
from .base import Execution
from .policy import COLUMN_MAX_FIRED, EVENT_MAX_ACTIVITY, event_max_firing

__all__ = ["layer_step", "pair_terms", "plan", "supports"]


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


def plan(trainer, plastic: bool, config, params, state, seq):
    """The execution for this call, or ``None`` when these kernels do not apply."""
    supported = supports(plastic, config, params, state, seq)
    if trainer.fused is True and plastic:
        fits = supported and fused_compatible(layer_step(config, params, True)[0])
        if not fits:
            raise ValueError(
                "fused=True needs a dense, unbatched layer, the pair rule and a built-in weight dependence; "
                f"got synapse {type(config.synapse).__name__}, input of shape {tuple(seq[0].shape[1:])} per "
                f"step, rule {type(params.rule).__name__}")
    if not supported:
        return None
    layer_config, layer_params = layer_step(config, params, plastic)
    step = train_step if plastic else forward_step
    layer = state.layer
    chunk = trainer.chunk_size or default_chunk_size(int(seq[0].shape[1]))
    fused = plastic and trainer.fused is not False and fused_compatible(layer_config) and (
        trainer.fused is True or fused_available())
    if fused:
        layer_config = dataclasses.replace(layer_config, fused=True)
    blocks = None if fused or not trainer.compiled else _neuron_blocks(layer_params, seq, layer)
    configure = None if fused else _kernel_chooser(trainer.event_driven, step, layer_config, layer_params, seq,
                                                   layer, chunk, blocked=blocks is not None)
    frame = None if configure is None else configure.frame
    if fused:
        layer_params = jax.device_put(layer_params)  # once per call, not once per chunk

    def runner(config):
        """The chunk function for chunks of ``config``."""
        if fused and trainer.compiled:
            return lambda state, inputs, n, record: fused_chunk(config, layer_params, state,
                                                                tuple(padded(a, chunk) for a in inputs), n)
        if not trainer.compiled:
            return python_steps(step, config, layer_params, frame)
        if blocks is not None and blocks.fits(config):
            return blocked_chunks(step, config, layer_params, chunk, blocks)
        return compiled_chunks(step, config, layer_params, chunk, frame)

    runners = {}

    def run_chunk(state, chunk_inputs, n_steps, record):
        config = layer_config
        if configure is not None:  # dense or event-driven, for this chunk
            config, state, chunk_inputs = configure(state, chunk_inputs)
        if config not in runners:
            runners[config] = runner(config)
        return runners[config](state, chunk_inputs, n_steps, record)

    def canonical_layer(layer):  # W, not the event kernels' W.T
        if configure is not None and configure.layout[0].event_driven:
            return layer._replace(W=_transposed(layer.W))
        return layer

    def run(state, seq, *, callback=None, **options):
        rule_state, layer = state.rule, state.layer
        wrapped = None if callback is None else (lambda done, s: callback(done, StepState(s, rule_state)))
        layer, outs = drive(run_chunk, layer, seq, chunk_size=chunk, callback=wrapped, **options)
        return StepState(layer, rule_state), outs

    return Execution(run, lambda s: StepState(canonical_layer(s.layer), s.rule))


def _transposed(W):
    """``W.T`` (the dense and event kernels' layouts): on the host for a small ``W`` on the
    CPU, where XLA would compile a transposition per shape on a first call."""
    if W.size <= (1 << 20) and all(d.platform == "cpu" for d in W.devices()):
        return jnp.asarray(np.ascontiguousarray(np.asarray(W).T))
    return W.T


def _firing_estimate(state, params) -> float:
    """Fraction of neurons firing per step, from the post trace (which averages the
    recent spikes: ``E[tr_post] = a_post * rate / (1 - d_post)``); 1 for a layer that
    has not run yet, whose activity is unknown."""
    a_post, d_post = float(params.traces.a_post), float(params.traces.d_post)
    if not (np.any(np.asarray(state.trace_pre)) or np.any(np.asarray(state.trace_post))):
        return 1.0
    if a_post <= 0:
        return float(np.mean(np.asarray(state.spike)))
    return float(np.mean(np.asarray(state.trace_post))) * (1.0 - d_post) / a_post


def _neuron_blocks(params, seq, state):
    """Blocks of output neurons for the compiled loop when ``W`` outgrows the cache
    (:class:`~canns_stdp.functional.layer_step.NeuronBlocks`), else ``None``."""
    if not all(np.ndim(leaf) == 0 for leaf in jax.tree_util.tree_leaves(params)):
        return None
    return NeuronBlocks.for_layer(seq[0].shape[1], state.v.shape[-1])


def _deferred_span(step, config, params, seq, state, chunk: int) -> int:
    """Steps per span of deferred LTP for this run (:func:`~canns_stdp.functional.event.deferred_span`,
    at most ``chunk``), or 0 where LTP cannot be deferred."""
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
    x_max = max(1.0, float(np.abs(seq[0]).max(initial=0.0)))
    trace_bound = max(float(np.abs(np.asarray(state.trace_pre)).max(initial=0.0)),
                      abs(float(traces.a_pre)) * x_max / (1.0 - d_pre))
    bounds = stdp.bounds
    scale = max(abs(float(bounds.w_min)), abs(float(bounds.w_max))) if config.hardbound else 1.0
    return deferred_span(float(stdp.lr) * float(stdp.A_plus), d_pre, trace_bound, scale, chunk)


def _kernel_chooser(event_driven, step, dense_config, params, seq, state, chunk: int, blocked=False):
    """``configure(state, chunk)`` for the loops: dense or event-driven per chunk.

    The event-driven kernels keep ``W.T`` in the state; the chooser transposes when it
    switches. Where LTP can be deferred it uses the deferred-LTP kernel unless fewer than
    ``COLUMN_MAX_FIRED`` neurons fire per step, and the fired-column kernel then;
    ``configure.frame`` is the :class:`~canns_stdp.loops.Frame` with which the loops open
    and settle the ledger every span (``None`` otherwise). It only switches to an event
    kernel when the weights are within their bounds (they leave untouched synapses unclipped).
    """
    if event_driven is False or not event_compatible(dense_config.dependence):
        return None
    span = _deferred_span(step, dense_config, params, seq, state, chunk)
    column_config = dataclasses.replace(dense_config, event_driven=True)
    deferred_config = dataclasses.replace(column_config, deferred_ltp=True) if span else None
    bounds = params.stdp.bounds
    current = [dense_config]

    def event_kernel(state, xs):
        """The event kernel for this chunk, or ``None`` when the dense one is faster."""
        forced = event_driven is True
        if not (forced or np.count_nonzero(xs) <= EVENT_MAX_ACTIVITY * xs.size):
            return None
        n_out = state.v.shape[-1]
        firing = _firing_estimate(state, params)
        if deferred_config is not None and firing * n_out >= COLUMN_MAX_FIRED:
            return deferred_config
        return column_config if forced or firing <= event_max_firing(n_out, blocked) else None

    def configure(state, chunk):
        xs = chunk[0]
        wanted = event_kernel(state, xs)
        x_events = None
        if wanted is not None:
            x_events = input_events(xs, xs.shape[1] if event_driven is True else xs.shape[1] // 4)
        if x_events is not None and current[0] is dense_config and dense_config.hardbound:
            W = np.asarray(state.W)  # on the host: no compilation on a first call
            if not np.all((W >= bounds.w_min) & (W <= bounds.w_max)):
                x_events = None
        if x_events is None:
            wanted = dense_config
        if wanted.event_driven != current[0].event_driven:
            state = state._replace(W=_transposed(state.W))
        current[0] = wanted
        if x_events is not None:
            chunk = (*chunk, x_events)
        return wanted, state, chunk

    configure.layout = current  # read by canonical_layer to undo the transposition
    configure.frame = Frame(begin_span, end_span, span) if span else None
    return configure
