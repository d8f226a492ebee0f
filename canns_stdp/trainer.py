"""STDPTrainer: trains a SpikingLayer with pair-based STDP (SPEC.md)."""

from __future__ import annotations

import dataclasses
from functools import partial
from typing import Any, Optional

import jax
import jax.numpy as jnp
import numpy as np

from . import _validation as v
from .base import Trainer
from .checkpoint import PeriodicCheckpoint, save_trainer
from .functional.dependence import WeightBounds, resolve_dependence
from .functional.event import deferred_compatible, deferred_span, event_compatible, input_events
from .functional.fused import fused_available, fused_chunk, fused_compatible
from .functional.layer_step import (BATCH_REDUCTIONS, LayerState, NeuronBlocks, begin_span, end_span, forward_step,
                                    train_step)
from .functional.stdp import PAIRINGS, STDPParams
from .functional.synapses import Dense
from .layer import assign
from .loops import Frame, default_chunk_size, run_compiled, run_python

__all__ = ["STDPTrainer"]

_REQUIRED_STATE = ("v", "spike", "trace_pre", "trace_post")
_EVENT_KERNEL_STEPS = (train_step, forward_step)  # the pair steps that have an event-driven kernel
EVENT_MAX_ACTIVITY = 1 / 10  # above this fraction of active inputs or firing neurons, dense is faster
# Below this many neurons firing per step, visiting their columns costs less than deferring LTP
# (784x400, measured: 34k against 25k steps/s with none firing, about even with 5 per step).
COLUMN_MAX_FIRED = 4


def event_max_firing(n_out: int, blocked: bool = False) -> float:
    """Firing fraction up to which the event kernel beats the dense one (measured on CPU).

    Each fired neuron costs the event kernel one strided column of ``W.T``; once a row of
    ``W.T`` spans a memory page (``n_out >= 1024`` floats) every element of that column
    is on its own page, and the break-even falls from about 1/8 of the neurons (784x400)
    to about 1/25 (4096x4096). Run in neuron blocks that stay in cache (``blocked``), the
    columns are cheap again and the small layers' 1/10 applies (4096x4096, measured: 2.6
    against 5.4 ms per step at 3% firing, 15 against 5.5 ms at 35%).
    """
    return EVENT_MAX_ACTIVITY if 4 * n_out < 4096 or blocked else 1 / 30


def _dense_unbatched(step, config, seq) -> bool:
    """Whether ``step`` has event kernels and runs a dense layer on unbatched input, the
    layers the event kernels and neuron blocks serve."""
    return step in _EVENT_KERNEL_STEPS and type(config.synapse) is Dense and seq[0].ndim == 2


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


class STDPTrainer(Trainer):
    """Spike-timing-dependent plasticity for a :class:`~canns_stdp.SpikingLayer` or
    :class:`~canns_stdp.ConvSpikingLayer`.

    Each step runs the layer (SPEC steps 1-5) and then

        dW = lr * (A+ f+(W) ⊙ (s ⊗ P) - A- f-(W) ⊙ (Q ⊗ x)),  W = clip(W + dW, w_min, w_max)

    with ``(P, Q)`` the traces chosen by ``pairing``. ``compiled=True`` runs a
    compiled loop, ``compiled=False`` a Python loop; both call the same step
    function and give the same weights. ``train()`` continues from the layer's
    current state (membrane, traces) and writes the new state back only when it
    succeeds.

    Args:
        model: the layer to train (a :class:`~canns_stdp.SpikingLayer`).
        learning_rate: global factor ``lr`` (>= 0).
        A_plus, A_minus: LTP and LTD amplitudes (>= 0).
        weight_attr: name of the model's weight variable.
        w_min, w_max: weight bounds, ``w_min < w_max``.
        compiled: compiled loop (``True``) or Python loop (``False``).
        pairing: ``"symmetric"``, ``"causal"`` or ``"strict"`` (SPEC step 6).
        weight_dependence: ``"additive"``, ``"hard"``, ``"soft"``, ``"power"``, or a
            pair ``(f_plus, f_minus)`` of functions of ``W``.
        mu: exponent of the ``"power"`` dependence (>= 0).
        hardbound: clip the weights to ``[w_min, w_max]`` after each step.
        signed_amplitudes: allow negative ``A_plus``/``A_minus`` (e.g. Inferno's
            anti-Hebbian, potentiative-only or depressive-only modes; see docs/peers.md).
        chunk_size: steps per compiled chunk (default: chosen from the input size).
            Deferred LTP settles its ledger every span of steps, the chunk halved as
            often as its rounding needs; the span depends on ``lr * A_plus`` and the
            pre trace's decay, so changing those can compile the loop once more.
        event_driven: ``"auto"`` (default) runs each chunk of steps with an
            event-driven kernel (cost proportional to the spikes,
            :mod:`canns_stdp.functional.event`) when at most 1/10 of the chunk's
            inputs are active, else with the dense kernel; ``True`` always
            event-driven, ``False`` always dense. With the additive dependence the
            event kernel defers the LTP of silent inputs' synapses (its cost then
            follows the active inputs only; the ledger is settled every span of
            steps :func:`~canns_stdp.functional.event.deferred_span` allows), unless
            fewer than 4 neurons fire per step; otherwise it visits the fired
            neurons' columns, and "auto" also needs the post trace to say that few
            neurons fire. All kernels compute the same step; masked,
            convolutional and batched layers and user-defined weight dependences
            always use the dense one.
        fused: ``"auto"`` (default) trains a dense, unbatched layer with a built-in
            weight dependence in the fused Pallas kernel
            (:mod:`canns_stdp.functional.fused`: many steps per launch, each synapse
            read and written once per step) when JAX runs on a GPU, else as above;
            ``True`` always (off GPU the kernel is interpreted: slow, for testing);
            ``False`` never. It computes the same step as the other kernels.
        batch_reduction: ``"sum"`` or ``"mean"``: how the per-sample weight changes
            of a batched input ``(T, B, ...)`` are reduced (SPEC "Batches").
        show_iteration_progress: show a progress bar during ``train()`` by default.

    Example:
        >>> import numpy as np
        >>> from canns_stdp import SpikingLayer, STDPTrainer
        >>> layer = SpikingLayer(input_size=20, output_size=5, seed=0)
        >>> trainer = STDPTrainer(layer, learning_rate=0.01)
        >>> patterns = (np.random.default_rng(0).random((100, 20)) < 0.1).astype(np.float32)
        >>> trainer.train(patterns)
        >>> spikes = trainer.predict(patterns[0])
    """

    def __init__(
        self,
        model,
        learning_rate: float = 0.01,
        A_plus: float = 0.005,
        A_minus: float = 0.00525,
        weight_attr: str = "W",
        w_min: float = 0.0,
        w_max: float = 1.0,
        compiled: bool = True,
        *,
        pairing: str = "symmetric",
        weight_dependence: Any = "additive",
        mu: float = 1.0,
        hardbound: bool = True,
        chunk_size: Optional[int] = None,
        event_driven: Any = "auto",
        fused: Any = "auto",
        signed_amplitudes: bool = False,
        batch_reduction: str = "sum",
        **kwargs,
    ):
        super().__init__(model=model, **kwargs)
        self._set_shared_settings(learning_rate, weight_attr, w_min, w_max, compiled, pairing,
                                  weight_dependence, mu, hardbound, chunk_size)
        self.signed_amplitudes = signed_amplitudes
        self.A_plus = A_plus
        self.A_minus = A_minus
        self.event_driven = event_driven
        self.fused = fused
        self.batch_reduction = batch_reduction
        self._check_model()
        self._step_setup()

    def _set_shared_settings(self, learning_rate, weight_attr, w_min, w_max, compiled, pairing,
                             weight_dependence, mu, hardbound, chunk_size) -> None:
        """Store the settings every STDP trainer has (checked by :meth:`_check_shared_settings`)."""
        self.learning_rate = learning_rate
        self.weight_attr = weight_attr
        self.w_min, self.w_max = w_min, w_max
        self.compiled = compiled
        self.pairing = pairing
        self.weight_dependence = weight_dependence
        self.mu = mu
        self.hardbound = hardbound
        self.chunk_size = chunk_size

    # -- validation -----------------------------------------------------------------
    def _check_model(self) -> None:
        model = self.model
        for name in (self.weight_attr,) + _REQUIRED_STATE:
            if not hasattr(getattr(model, name, None), "value"):
                raise AttributeError(
                    f"{type(model).__name__} has no state variable '{name}' (a bm.Variable); "
                    f"STDPTrainer needs {(self.weight_attr,) + _REQUIRED_STATE}"
                )
        for name in ("input_size", "output_size", "step_params", "step_config"):
            if not hasattr(model, name):
                raise AttributeError(
                    f"{type(model).__name__} has no '{name}'; STDPTrainer trains a SpikingLayer"
                )

    def _check_shared_settings(self) -> WeightBounds:
        """Check the settings every STDP trainer has (bounds, ``mu``, pairing, loop
        options) and return the weight bounds."""
        w_min = v.check_number("w_min", self.w_min)
        w_max = v.check_number("w_max", self.w_max)
        if w_min >= w_max:
            raise ValueError(f"w_min must be < w_max, got w_min={w_min!r}, w_max={w_max!r}")
        mu = v.check_nonnegative("mu", self.mu)
        v.check_choice("pairing", self.pairing, PAIRINGS)
        for name in ("hardbound", "compiled"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"{name} must be True or False, got {getattr(self, name)!r}")
        if self.chunk_size is not None:
            v.check_positive_int("chunk_size", self.chunk_size)
        return WeightBounds(w_min, w_max, mu)

    def _step_setup(self):
        """Validated ``(config, params)`` for a training step, from current attributes."""
        lr = v.check_nonnegative("learning_rate", self.learning_rate)
        if not isinstance(self.signed_amplitudes, bool):
            raise TypeError(f"signed_amplitudes must be True or False, got {self.signed_amplitudes!r}")
        check_amplitude = v.check_number if self.signed_amplitudes else v.check_nonnegative
        A_plus = check_amplitude("A_plus", self.A_plus)
        A_minus = check_amplitude("A_minus", self.A_minus)
        bounds = self._check_shared_settings()
        if self.event_driven not in (True, False, "auto"):
            raise ValueError(f"event_driven must be True, False or 'auto', got {self.event_driven!r}")
        if self.fused not in (True, False, "auto"):
            raise ValueError(f"fused must be True, False or 'auto', got {self.fused!r}")
        v.check_choice("batch_reduction", self.batch_reduction, BATCH_REDUCTIONS)
        dependence = resolve_dependence(self.weight_dependence)
        config = self.model.step_config(dependence=dependence, pairing=self.pairing,
                                        hardbound=self.hardbound,
                                        batch_reduction=self.batch_reduction)
        stdp = STDPParams(lr, A_plus, A_minus, bounds)
        params = self.model.step_params(stdp)
        if not event_compatible(dependence):  # a user function: check what it returns
            self._check_dependence(config, params)
        # NumPy scalars: traced by jit like arrays, without a device transfer per call
        return config, jax.tree_util.tree_map(np.float32, params)

    def _check_dependence(self, config, params) -> None:
        shape = tuple(getattr(self.model, "weight_shape", (self.model.output_size, self.model.input_size)))
        W = jax.ShapeDtypeStruct(shape, jnp.float32)
        try:
            outs = jax.eval_shape(config.dependence, W, params.stdp.bounds)
        except Exception as err:  # a user function that cannot run on W
            raise ValueError(f"weight_dependence failed on W of shape {shape}: {err}") from err
        for name, out in zip(("f_plus", "f_minus"), outs):
            if out.shape not in ((), shape):
                raise ValueError(
                    f"weight_dependence {name} must return a scalar or shape {shape}, "
                    f"got shape {out.shape}"
                )

    def _sample_shapes(self):
        """``(input shape, output shape)`` of one sample (a layer's hook, dense by default)."""
        if hasattr(self.model, "sample_shapes"):
            return self.model.sample_shapes()
        return (self.model.input_size,), (self.model.output_size,)

    def _batch_shape(self, xs):
        """``()`` for a sequence ``(T,) + in_shape``, ``(B,)`` for ``(T, B) + in_shape``."""
        return tuple(xs.shape[1:xs.ndim - len(self._sample_shapes()[0])])

    def _read_state(self, batch_shape=()) -> LayerState:
        model = self.model
        state = model.get_state(batch_shape) if batch_shape else model.get_state()
        if self.weight_attr != "W":
            W = jnp.asarray(getattr(model, self.weight_attr).value, jnp.float32)
            if W.shape != state.W.shape:
                raise ValueError(f"{self.weight_attr} must have shape {state.W.shape}, got {W.shape}")
            state = state._replace(W=W)
        return state

    def _write_state(self, state: LayerState, last_x) -> None:
        # checked on the host: one small compilation per array shape would slow first calls
        bad = [k for k, a in state._asdict().items() if not np.isfinite(np.asarray(a)).all()]
        if bad:
            raise FloatingPointError(
                f"training produced non-finite values in {bad}; the layer was left unchanged "
                "(check the inputs' scale, the weight dependence, or hardbound=False)"
            )
        values = state._asdict()
        getattr(self.model, self.weight_attr).value = values.pop("W")
        for name, value in values.items():
            assign(self.model, name, value)
        if hasattr(self.model, "x"):
            assign(self.model, "x", jnp.asarray(last_x))

    # -- checkpoints ---------------------------------------------------------------------
    def checkpoint_config(self) -> dict:
        """Constructor arguments for :meth:`save`/:meth:`load` (a user weight
        dependence cannot be stored: pass it again to ``load``)."""
        names = ("learning_rate", "A_plus", "A_minus", "weight_attr", "w_min", "w_max", "compiled",
                 "pairing", "weight_dependence", "mu", "hardbound", "chunk_size",
                 "event_driven", "fused", "signed_amplitudes", "batch_reduction", "show_iteration_progress")
        return {name: getattr(self, name) for name in names}

    def _save_running(self, path, total, state, seq, done) -> None:
        """Save the loop's state after ``done`` steps of ``seq`` (a periodic checkpoint)."""
        arrays = {name: np.asarray(a) for name, a in state._asdict().items()}
        bad = [k for k, a in arrays.items() if not np.isfinite(a).all()]
        if bad:
            raise FloatingPointError(
                f"training produced non-finite values in {bad} by step {total}; no checkpoint "
                "was written and the layer was left unchanged"
            )
        arrays[self.weight_attr] = arrays.pop("W")
        if hasattr(self.model, "x"):
            arrays["x"] = seq[0][done - 1]
        save_trainer(self, path, model_state=arrays, extra={"step": total})

    # -- public API -------------------------------------------------------------------
    def _sequence(self, train_data, post_spikes):
        """Validated per-step inputs ``(xs, post_spikes or None)`` as float32 arrays."""
        in_shape, out_shape = self._sample_shapes()
        xs = v.as_sequence("patterns", train_data, in_shape)
        posts = None
        if post_spikes is not None:
            posts = v.check_binary("post_spikes", v.as_sequence("post_spikes", post_spikes, out_shape))
            if posts.shape[0] != xs.shape[0]:
                raise ValueError(
                    f"post_spikes must have one row per pattern: got {posts.shape[0]} rows "
                    f"for {xs.shape[0]} patterns"
                )
            batch, post_batch = self._batch_shape(xs), tuple(posts.shape[1:posts.ndim - len(out_shape)])
            if post_batch != batch:
                raise ValueError(f"post_spikes must have the batch shape of patterns {batch}, "
                                 f"got batch shape {post_batch}")
        return xs, posts

    def _kernel_chooser(self, step, dense_config, params, seq, state, chunk: int, blocked=False):
        """``configure(state, chunk)`` for the loops: dense or event-driven per chunk.

        The event-driven kernels keep ``W.T`` in the state; the chooser transposes when
        it switches. Where LTP can be deferred (:meth:`_deferred_span`) it uses the
        deferred-LTP kernel unless fewer than ``COLUMN_MAX_FIRED`` neurons fire per step,
        and the fired-column kernel then; ``configure.frame`` is the
        :class:`~canns_stdp.loops.Frame` with which the loops open and settle the ledger
        every span (``None`` otherwise). It only switches to an event kernel when the
        weights are within their bounds (they leave untouched synapses unclipped).
        """
        if (not _dense_unbatched(step, dense_config, seq) or self.event_driven is False  # step first:
                or not event_compatible(dense_config.dependence)):  # other trainers have no event_driven
            return None
        span = self._deferred_span(step, dense_config, params, seq, state, chunk)
        column_config = dataclasses.replace(dense_config, event_driven=True)
        deferred_config = dataclasses.replace(column_config, deferred_ltp=True) if span else None
        bounds = params.stdp.bounds
        current = [dense_config]

        def event_kernel(state, xs):
            """The event kernel for this chunk, or ``None`` when the dense one is faster."""
            forced = self.event_driven is True
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
                x_events = input_events(xs, xs.shape[1] if self.event_driven is True else xs.shape[1] // 4)
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

        configure.layout = current  # read by _run to undo the transposition
        configure.frame = Frame(begin_span, end_span, span) if span else None
        return configure

    def _deferred_span(self, step, config, params, seq, state, chunk: int) -> int:
        """Steps per span of deferred LTP for this run of an event-driven layer
        (:func:`~canns_stdp.functional.event.deferred_span`, at most ``chunk``), or 0
        where LTP cannot be deferred."""
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

    def _fused(self, step, config, seq) -> bool:
        """Whether this run goes through the fused kernel (see ``fused`` in the class doc)."""
        if step is not train_step or self.fused is False:
            return False
        fits = fused_compatible(config) and seq[0].ndim == 2
        if self.fused is True and not fits:
            raise ValueError(
                "fused=True needs a dense, unbatched layer and a built-in weight dependence; "
                f"got synapse {type(config.synapse).__name__}, input of shape "
                f"{tuple(seq[0].shape[1:])} per step, weight_dependence {self.weight_dependence!r}"
            )
        return fits and (self.fused is True or fused_available())

    @staticmethod
    def _neuron_blocks(step, config, params, seq, state):
        """Blocks of output neurons for the compiled loop when ``W`` outgrows the cache
        (:class:`~canns_stdp.functional.layer_step.NeuronBlocks`), else ``None``."""
        scalars = all(np.ndim(leaf) == 0 for leaf in jax.tree_util.tree_leaves(params))
        if not (_dense_unbatched(step, config, seq) and scalars):
            return None
        return NeuronBlocks.for_layer(seq[0].shape[1], state.v.shape[-1])

    def _checkpoint_callback(self, checkpoint, seq, canonical):
        """``callback(done, state)`` for the loops: periodic saves of the layer's state."""
        start = checkpoint.step

        def save(path, total, running):
            self._save_running(path, total, running, seq, total - start)

        save_chunk = checkpoint.callback(save)
        return lambda done, state: save_chunk(done, canonical(state))

    def _run(self, step, seq, progress, record, desc, checkpoint=None):
        """Run ``step`` over the validated inputs ``seq`` and commit the final state.

        Everything that can fail (validation, the run itself, the finiteness check)
        happens before the layer's variables are written.
        """
        config, params = self._step_setup()
        state = self._read_state(self._batch_shape(seq[0]))
        progress = self.show_iteration_progress if progress is None else progress
        chunk = self.chunk_size or default_chunk_size(int(np.prod(seq[0].shape[1:])))
        fused = self._fused(step, config, seq)
        if fused:
            config = dataclasses.replace(config, fused=True)
        blocks = None if fused or not self.compiled else self._neuron_blocks(step, config, params, seq, state)
        configure = None if fused else self._kernel_chooser(step, config, params, seq, state, chunk,
                                                            blocked=blocks is not None)

        def canonical(state):  # W, not the event kernel's W.T
            if configure is not None and configure.layout[0].event_driven:
                return state._replace(W=_transposed(state.W))
            return state

        start = None if checkpoint is None else checkpoint.step
        callback = None if checkpoint is None else self._checkpoint_callback(checkpoint, seq, canonical)
        loop = run_compiled if self.compiled else run_python
        if blocks is not None:
            loop = partial(run_compiled, blocks=blocks)
        if fused:
            params = jax.device_put(params)  # once per call, not once per chunk
            if self.compiled:
                loop = partial(run_compiled, chunk_runner=fused_chunk)
        try:
            state, outs = loop(step, config, params, state, seq, record=record, chunk_size=chunk,
                               progress=progress, desc=desc, configure=configure, callback=callback,
                               frame=None if configure is None else configure.frame)
            self._write_state(canonical(state), seq[0][-1])
        except BaseException:
            if checkpoint is not None:  # the layer is unchanged: so is the step count
                checkpoint.step = start
            raise
        return outs

    def train(self, train_data, post_spikes=None, *, progress: Optional[bool] = None,
              return_spikes: bool = False, checkpoint: Optional[PeriodicCheckpoint] = None):
        """Train on a sequence of inputs, one STDP step per row.

        Args:
            train_data: inputs of shape ``(T, input_size)`` (array, or list of rows):
                0/1 spikes or real currents; ``(T, B, input_size)`` for a batch (one
                membrane and trace per sample, the weight changes reduced by
                ``batch_reduction``). For a :class:`~canns_stdp.ConvSpikingLayer`
                ``(T, C_in, H, W)`` or ``(T, B, C_in, H, W)``.
            post_spikes: optional 0/1 array ``(T, output_size)`` imposed as the output
                spikes instead of the neurons' own (teacher forcing); with the batch
                axis of ``train_data``; ``(T, [B,] C_out, H_out, W_out)`` for a conv layer.
            progress: show a progress bar (default: ``show_iteration_progress``).
            return_spikes: also return the output spikes, ``(T, output_size)``.
            checkpoint: a :class:`~canns_stdp.checkpoint.PeriodicCheckpoint`
                that saves the trainer every ``every`` steps (at chunk boundaries,
                from inside the run) and keeps the last ``keep_last`` files.

        Returns:
            ``None``, or the output spikes when ``return_spikes``.

        Raises:
            ValueError, TypeError: for bad input, before anything changes.
        """
        seq = self._sequence(train_data, post_spikes)
        if checkpoint is not None and not isinstance(checkpoint, PeriodicCheckpoint):
            raise TypeError(f"checkpoint must be a PeriodicCheckpoint, got {checkpoint!r}")
        return self._run(train_step, seq, progress, return_spikes, "STDP", checkpoint)

    def predict(self, pattern, *args, **kwargs):
        """Advance the layer one step on ``pattern`` (no plasticity); its 0/1 spikes."""
        return self.model.forward(pattern)

    def predict_batch(self, patterns, *args, progress: Optional[bool] = None, **kwargs):
        """Run the layer over ``patterns`` ``(T, input_size)`` without plasticity.

        Equivalent to calling :meth:`predict` on each row in turn (the membrane and
        traces carry over), in one compiled loop. Returns the spikes ``(T, output_size)``.
        """
        return self._run(forward_step, self._sequence(patterns, None), progress, True, "predict")
