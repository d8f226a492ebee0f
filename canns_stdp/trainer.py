"""Trainer: any plasticity rule on any spiking layer, with one lifecycle.

Every call goes through the same five stages: validate the inputs and settings, read
the layer's and the rule's state, plan (the step's static choices and numbers, and the
kernel that executes it), run (the compiled or the Python loop), and commit the new
state only when everything succeeded. A failed call changes nothing.
"""

from __future__ import annotations

from typing import Optional

import jax
import jax.numpy as jnp
import numpy as np

from . import _validation as v
from . import kernels, loops
from .base import TrainerBase
from .checkpoint import PeriodicCheckpoint, save_trainer
from .functional.dependence import WeightBounds
from .functional.layer_step import BATCH_REDUCTIONS
from .kernels.native_pair import LEDGER_BASES
from .layer import assign, on_device, read, settled_step as _settled_step, store
from .rules.base import Rule, rule_config, rule_from_config
from .rule_state import RuleStateStore
from .step import StepConfig, StepParams, StepState, check_rule

__all__ = ["Trainer"]

_REQUIRED_STATE = ("v", "spike", "trace_pre", "trace_post")
# the trainer's settings a plan is made of (with the rule, the extras and the layer's step)
_PLAN_SETTINGS = ("learning_rate", "w_min", "w_max", "hardbound", "compiled", "chunk_size", "batch_reduction",
                  "event_driven", "fused")


class Trainer(TrainerBase):
    """Train a :class:`~canns_stdp.SpikingLayer` (dense or masked) or a
    :class:`~canns_stdp.ConvSpikingLayer` with any rule of :mod:`canns_stdp.rules`.

    Each step runs the layer (membrane, spikes, traces), asks the rule for its change
    ``dW`` from the synaptic map's Hebbian term, and applies

        W' = clip(W + lr · dW, w_min, w_max)      (clipping when ``hardbound``)

    ``compiled=True`` runs a compiled loop, ``compiled=False`` a Python loop over the
    same step function: both give the same weights. The rule's state (e.g. triplet
    slow traces, reward eligibility) lives in this trainer as ``bm.Variable``s named
    after its fields (``trainer.eligibility``, ``trainer.r2``, ...). Changing a number
    (``trainer.learning_rate``, a rule's amplitude, the layer's threshold) never
    recompiles; changing a string, a function or the shapes does.

    Args:
        model: the layer to train.
        rule: a :class:`~canns_stdp.rules.Rule` (e.g. ``rules.pair()``).
        learning_rate: ``lr`` (>= 0).
        w_min, w_max: weight bounds (``w_min < w_max``), for the clipping and the
            rule's weight dependence.
        compiled: compiled loop (``True``) or Python loop (``False``).
        hardbound: clip the weights after each step.
        batch_reduction: ``"sum"`` or ``"mean"`` of the per-sample changes of a batch.
        chunk_size: steps per compiled chunk (default: from the input size).
        weight_attr: name of the model's weight variable.
        event_driven, fused: kernel choices for the pair rule on a dense, unbatched
            layer, ``"auto"`` by default as for :class:`~canns_stdp.STDPTrainer`; every
            kernel computes the same step.
        mesh, neuron_axis: run on the devices of a ``jax.sharding.Mesh``, the layer's
            output neurons split along ``neuron_axis`` (an ensemble of one member,
            :class:`~canns_stdp.Ensemble`); the result is the one-device result. A
            runtime placement: not stored in checkpoints.
        show_iteration_progress: show a progress bar by default.

    Example:
        >>> import numpy as np
        >>> from canns_stdp import SpikingLayer, Trainer, rules
        >>> layer = SpikingLayer(20, 5, seed=0)
        >>> trainer = Trainer(layer, rules.reward(rules.pair(), kind="mstdp"), learning_rate=0.1)
        >>> X = (np.random.default_rng(0).random((100, 20)) < 0.2).astype(np.float32)
        >>> trainer.train(X, reward=np.ones(100))
    """

    def __init__(self, model, rule: Rule, learning_rate: float = 0.01, w_min: float = 0.0,
                 w_max: float = 1.0, compiled: bool = True, *, hardbound: bool = True,
                 batch_reduction: str = "sum", chunk_size: Optional[int] = None, weight_attr: str = "W",
                 event_driven="auto", fused="auto", mesh=None, neuron_axis: Optional[str] = None, **kwargs):
        super().__init__(model=model, **kwargs)
        self.rule = rule
        self.learning_rate = learning_rate
        self.w_min, self.w_max = w_min, w_max
        self.compiled = compiled
        self.hardbound = hardbound
        self.batch_reduction = batch_reduction
        self.chunk_size = chunk_size
        self.weight_attr = weight_attr
        self.event_driven = event_driven
        self.fused = fused
        self.mesh, self.neuron_axis = mesh, neuron_axis
        self._check_model()
        self._plan_numbers()
        self._rule_state = RuleStateStore(self)
        self._rule_state.reset()
        if mesh is not None or neuron_axis is not None:
            self._on_mesh()  # checks the mesh now, not at the first call
        #: plasticity steps this trainer has run; chunks of steps follow this count, so a
        #: sequence split across calls (or across a checkpoint) runs as in one call
        self.steps_trained = 0
        self._open_chunk = None  # (OpenChunk, the arrays committed with it) or None

    # -- validation -----------------------------------------------------------------
    def _check_model(self) -> None:
        model = self.model
        for name in (self.weight_attr,) + _REQUIRED_STATE:
            if not hasattr(getattr(model, name, None), "value"):
                raise AttributeError(
                    f"{type(model).__name__} has no state variable '{name}' (a bm.Variable); "
                    f"{type(self).__name__} needs {(self.weight_attr,) + _REQUIRED_STATE}")
        for name in ("input_size", "output_size", "step_params", "step_config", "sample_shapes"):
            if not hasattr(model, name):
                raise AttributeError(f"{type(model).__name__} has no '{name}'; "
                                     f"{type(self).__name__} trains a SpikingLayer")

    def current_rule(self) -> Rule:
        """The rule the next call runs (compatible trainers build it from attributes)."""
        return self.rule

    def _plan_numbers(self, rule: Optional[Rule] = None):
        """Validated ``(rule, lr, bounds)`` from the current settings."""
        rule = self.current_rule() if rule is None else rule
        if not isinstance(rule, Rule):
            raise TypeError(f"rule must be a canns_stdp.rules.Rule, got {rule!r}")
        rule.validate()
        lr = v.check_nonnegative("learning_rate", self.learning_rate)
        w_min = v.check_number("w_min", self.w_min)
        w_max = v.check_number("w_max", self.w_max)
        if w_min >= w_max:
            raise ValueError(f"w_min must be < w_max, got w_min={w_min!r}, w_max={w_max!r}")
        if np.float32(w_min) >= np.float32(w_max):
            raise ValueError(f"w_min must be < w_max in float32, got w_min={w_min!r}, w_max={w_max!r} "
                             "(equal in float32)")
        for name in ("hardbound", "compiled"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"{name} must be True or False, got {getattr(self, name)!r}")
        if self.chunk_size is not None:
            v.check_positive_int("chunk_size", self.chunk_size)
        v.check_choice("batch_reduction", self.batch_reduction, BATCH_REDUCTIONS)
        for name in ("event_driven", "fused"):
            if getattr(self, name) not in (True, False, "auto"):
                raise ValueError(f"{name} must be True, False or 'auto', got {getattr(self, name)!r}")
        bounds = WeightBounds(w_min, w_max)
        rule.check_shapes(self.weight_shape(), bounds)
        return rule, lr, bounds

    def plan(self, extras: tuple = (), rule: Optional[Rule] = None):
        """``(StepConfig, StepParams)``: the step's static choices and numbers for a call
        with the per-step extra inputs named ``extras``, validated from the current settings
        (``rule``: the call's rule, by default :meth:`current_rule`).

        While the settings are the objects they were at the last call (the rule, the
        trainer's numbers and choices, the layer's parameters), the same pair is returned
        without checking them again (:class:`~canns_stdp._validation.Settled`)."""
        rule = self.current_rule() if rule is None else rule
        extras = tuple(extras)
        layer_step = _settled_step(self.model)
        if layer_step is None:  # a model whose parameters are not kept settled: check them every call
            return self._make_plan(extras, rule)
        key = (self.model, layer_step, rule, extras) + tuple(getattr(self, name) for name in _PLAN_SETTINGS)
        return self._settled("_settled_plan", key, lambda: self._make_plan(extras, rule), fixed=2)

    def _make_plan(self, extras: tuple, rule: Rule):
        rule, lr, bounds = self._plan_numbers(rule)
        layer_config = self.model.step_config()
        layer_params = self.model.step_params()
        names = rule.extras()
        config = StepConfig(trace_add=layer_config.trace_add, synapse=layer_config.synapse,
                            hardbound=self.hardbound, batch_reduction=self.batch_reduction,
                            extras=extras, bounds="bounds" in names)
        # NumPy scalars: traced by jit like arrays, without a device transfer per call
        numbers = StepParams(layer_params.lif, layer_params.traces, lr, bounds, rule)
        return config, jax.tree_util.tree_map(_as_float32, numbers)

    def _settled(self, name: str, key: tuple, build, fixed: int = 0):
        """``build()``, kept in ``self.<name>`` while ``key``'s objects stay the same (see
        :class:`~canns_stdp._validation.Settled`)."""
        settled = self.__dict__.get(name)
        if settled is None:
            settled = self.__dict__[name] = v.Settled()
        held = settled.get(key)
        if held is None:
            held = settled.put(key, (build(),), fixed)
        return held[0]

    def _forget(self) -> None:
        """Drop what calls keep from one to the next (the checked settings and plans, the rule's
        layout, the layer's checked step and arrays, the numbers' copies on the device): the next
        call checks and derives all of it anew, as a first call does."""
        for name in [n for n in self.__dict__ if n.startswith("_settled_")]:
            del self.__dict__[name]
        self._rule_state._layout_of = (None, None, None, None)
        for name in ("_settled_step", "_checked_state"):
            self.model.__dict__.pop(name, None)
        loops.forget_resident()

    def weight_shape(self) -> tuple:
        """The shape of the model's ``W``."""
        model = self.model
        return tuple(getattr(model, "weight_shape", (model.output_size, model.input_size)))

    # -- inputs ------------------------------------------------------------------------
    def _sample_shapes(self):
        return self.model.sample_shapes()

    def _batch_shape(self, xs):
        return tuple(xs.shape[1:xs.ndim - len(self._sample_shapes()[0])])

    def _sequence(self, train_data, post_spikes):
        """Validated per-step inputs ``(xs, post_spikes or None)`` as float32 arrays (JAX arrays
        on an accelerator stay there: see ``_validation.kept_on_device``)."""
        in_shape, out_shape = self._sample_shapes()
        xs = v.as_sequence("patterns", train_data, in_shape, keep_device=True)
        posts = None
        if post_spikes is not None:
            posts = v.as_sequence("post_spikes", post_spikes, out_shape, keep_device=True)
            posts = v.check_binary("post_spikes", posts)
            if posts.shape[0] != xs.shape[0]:
                raise ValueError(f"post_spikes must have one row per pattern: got {posts.shape[0]} rows "
                                 f"for {xs.shape[0]} patterns")
            batch, post_batch = self._batch_shape(xs), tuple(posts.shape[1:posts.ndim - len(out_shape)])
            if post_batch != batch:
                raise ValueError(f"post_spikes must have the batch shape of patterns {batch}, "
                                 f"got batch shape {post_batch}")
        return xs, posts

    def _extras(self, xs, given: dict, rule: Rule):
        """The per-step extra inputs the rule takes, validated, in the rule's order."""
        for name, value in given.items():
            if value is not None and name not in rule.extras():
                raise TypeError(f"{type(rule).__name__} takes no {name}= (its update takes {rule.extras()})")
        names, series = [], []
        for name in rule.required_extras():
            value = given.get(name)
            if value is None:
                raise TypeError(f"{name} is required by {type(rule).__name__}: an array "
                                f"of T numbers or one number")
            names.append(name)
            series.append(v.as_per_step(name, value, xs.shape[0], self._batch_shape(xs)))
        return tuple(names), tuple(series)

    # -- state -------------------------------------------------------------------------
    def _read_layer(self, batch_shape=()):
        model = self.model
        state = model.get_state(batch_shape) if batch_shape else model.get_state()
        if self.weight_attr != "W":
            W = jnp.asarray(read(getattr(model, self.weight_attr)), jnp.float32)
            if W.shape != state.W.shape:
                raise ValueError(f"{self.weight_attr} must have shape {state.W.shape}, got {W.shape}")
            state = state._replace(W=W)
        return state

    def _commit(self, state: StepState, last_x) -> None:
        """Write the run's final state, after checking every array is finite."""
        self._check_finite(state)
        self._write(state, last_x)

    def _check_finite(self, state: StepState) -> None:
        # on a CPU checked on the host (one small compilation per array shape would slow first
        # calls); on an accelerator in one reduction there (fetching the state would copy it)
        arrays = (*state.layer, *jax.tree_util.tree_leaves(state.rule))
        if v.all_finite_together(arrays):
            return
        named = {**state.layer.arrays(), **self._rule_state.named(state.rule)}
        bad = [k for k, a in named.items() if not v.all_finite(a)]
        raise FloatingPointError(
            f"training produced non-finite values in {bad}; the layer and trainer were left unchanged "
            "(check the inputs' scale, the rule's amplitudes, or hardbound=False)")

    def _write(self, state: StepState, last_x) -> None:
        model, layer = self.model, state.layer
        for name, value in zip(layer._fields, layer):
            if name == "W":
                var = _variable(model, self.weight_attr)
                if not store(var, value):
                    var.value = value
            elif not store(_variable(model, name), value):
                assign(model, name, value)
        x = _variable(model, "x")
        if x is not None:
            last_x = on_device(last_x)
            if not store(x, last_x):
                assign(model, "x", last_x)
        if jax.tree_util.tree_leaves(state.rule):
            self._rule_state.write(state.rule)

    @property
    def batchable_state(self) -> tuple:
        """The rule's variables, which may carry a leading batch axis (checkpoints store
        them as they are)."""
        return tuple(self._rule_state.names())

    optional_checkpoint_prefix = "run."

    def checkpoint_state(self) -> dict:
        """The rule's variables, the step count and the chunk the last call left open."""
        return {**super().checkpoint_state(), **_run_arrays(self.steps_trained, self._open_chunk_here())}

    def restore_checkpoint_state(self, arrays) -> None:
        arrays = dict(arrays)
        steps, open_chunk = _read_run_arrays({k: arrays.pop(k) for k in list(arrays) if k.startswith("run.")},
                                             self.weight_shape())
        for name in self.batchable_state:  # a batched state replaces the unbatched variable
            if name in arrays:
                assign(self, name, jnp.asarray(arrays.pop(name)))
        super().restore_checkpoint_state(arrays)
        self.steps_trained = steps
        self._open_chunk = None if open_chunk is None else (open_chunk, self._committed())

    def reset_state(self) -> None:
        """Zero the rule's state (unbatched) and the layer's membrane, spikes and traces
        (weights are kept)."""
        self._rule_state.reset()
        self.model.reset_state()

    # -- checkpoints -------------------------------------------------------------------
    def checkpoint_config(self) -> dict:
        """Constructor arguments for :meth:`save`/:meth:`load`; the rule as plain data (a
        user function in it cannot be stored: pass ``rule=`` again to ``load``)."""
        names = ("learning_rate", "w_min", "w_max", "compiled", "hardbound", "batch_reduction", "chunk_size",
                 "weight_attr", "event_driven", "fused", "show_iteration_progress")
        return {"rule": rule_config(self.rule), **{name: getattr(self, name) for name in names}}

    @classmethod
    def from_checkpoint_config(cls, config: dict, **context):
        config = dict(config)
        if isinstance(config.get("rule"), dict):
            config["rule"] = rule_from_config(config["rule"])
        return cls(context["model"], **config)

    def _save_running(self, path, total, state: StepState, last_x, steps: int, open_chunk) -> None:
        """Save the loop's state after ``total`` steps of this call, ``steps`` in all (a
        periodic checkpoint), with the chunk it leaves open."""
        arrays = {name: np.asarray(a) for name, a in state.layer.arrays().items()}
        rule_arrays = {name: np.asarray(a) for name, a in self._rule_state.named(state.rule).items()}
        bad = [k for k, a in {**arrays, **rule_arrays}.items() if not np.isfinite(a).all()]
        if bad:
            raise FloatingPointError(
                f"training produced non-finite values in {bad} by step {total}; no checkpoint "
                "was written and the layer was left unchanged")
        arrays[self.weight_attr] = arrays.pop("W")
        if hasattr(self.model, "x"):
            arrays["x"] = last_x
        run = {**dict.fromkeys(_RUN_NAMES), **_run_arrays(steps, open_chunk)}
        save_trainer(self, path, model_state=arrays, trainer_state={**rule_arrays, **run}, extra={"step": total})

    # -- the lifecycle -------------------------------------------------------------------
    def _run(self, plastic: bool, seq: tuple, extra_names: tuple, progress, record: bool, desc: str,
             checkpoint: Optional[PeriodicCheckpoint] = None, rule: Optional[Rule] = None, monitors=()):
        """Validate, read, plan, run and commit (see the module docstring)."""
        rule = self.current_rule() if rule is None else rule
        config, params = self.plan(extra_names, rule)
        batch_shape = self._batch_shape(seq[0])
        state = StepState(self._read_layer(batch_shape), self._rule_state.read(batch_shape, rule))
        if plastic:
            check_rule(config, params, state, seq)
        progress = self.show_iteration_progress if progress is None else progress
        execution = kernels.choose(self, plastic, config, params, state, seq)
        start = self.steps_trained if plastic else 0
        open_chunk = self._open_chunk_here() if plastic else None
        first = None if checkpoint is None else checkpoint.step
        callbacks = []
        if checkpoint is not None:
            def save(path, total, running):
                self._save_running(path, total, execution.canonical(running), seq[0][total - first - 1],
                                   start + total, execution.left_open(running, start + total) if plastic else None)
            callbacks.append(checkpoint.callback(save))
        periodic = [m for m in monitors if m.every is not None]
        spikes_wanted = [m for m in monitors if m.every is None]
        for m in monitors:
            m.begin()
        if periodic:
            previous = [start]

            def sample(done, running):
                layer = execution.canonical(running).layer
                for m in periodic:
                    if m.due(previous[0], start + done):
                        m.snapshot(start + done, layer)
                previous[0] = start + done
            callbacks.append(sample)

        def callback(done, running):
            for each in callbacks:
                each(done, running)
        try:
            state, outs = execution.run(state, seq, start=start, open_chunk=open_chunk,
                                        record=record or bool(spikes_wanted), progress=progress, desc=desc,
                                        callback=callback if callbacks else None)
            self._finish(execution, plastic, state, seq, start)
        except BaseException:
            if checkpoint is not None:  # the layer is unchanged: so is the step count
                checkpoint.step = first
            raise
        for m in spikes_wanted:
            m.consume(np.asarray(outs), start)
        for m in monitors:
            m.commit()
        return outs if record else None

    def _finish(self, execution, plastic: bool, state, seq: tuple, start: int) -> None:
        """Commit the run's final state, the step count and the chunk it leaves open (nothing
        changes when the state is not finite)."""
        end = start + seq[0].shape[0]
        left = execution.left_open(state, end) if plastic else None
        self._commit(execution.canonical(state), seq[0][-1])
        if plastic:
            self.steps_trained = end
        self._open_chunk = None if left is None else (left, self._committed())

    def _committed(self) -> tuple:
        """The arrays the layer and the rule hold now (compared by identity)."""
        model = self.model
        held = [read(_variable(model, n)) for n in (self.weight_attr,) + _REQUIRED_STATE]
        refractory = _variable(model, "refractory_left")
        if refractory is not None:
            held.append(read(refractory))
        names = self._rule_state.names()
        return tuple(held + [read(getattr(self, n)) for n in names]) if names else tuple(held)

    def _open_chunk_here(self):
        """The chunk the last call left open, while the layer holds what it committed."""
        if self._open_chunk is None:
            return None
        open_chunk, committed = self._open_chunk
        now = self._committed()
        if len(now) != len(committed) or any(a is not b for a, b in zip(now, committed)):
            return None
        return open_chunk

    # -- public API ----------------------------------------------------------------------
    def train(self, train_data, post_spikes=None, *, reward=None, progress: Optional[bool] = None,
              return_spikes: bool = False, checkpoint: Optional[PeriodicCheckpoint] = None, monitors=()):
        """Train on a sequence of inputs, one plasticity step per row.

        Args:
            train_data: inputs ``(T,) + input shape`` (``(T, input_size)`` for a dense
                layer, ``(T, C, H, W)`` for a conv layer), 0/1 spikes or real
                currents; ``(T, B, ...)`` for a batch (one membrane and trace per
                sample, the changes reduced by ``batch_reduction``). A JAX array on a GPU
                is checked and used where it is, with no copy to the host.
            post_spikes: optional 0/1 output spikes imposed at each step.
            reward: the reward of each step, for reward-modulated rules: ``T``
                numbers (``(T, B)`` with a batch) or one number for every step.
            progress: show a progress bar (default: ``show_iteration_progress``).
            return_spikes: also return the output spikes ``(T,) + output shape``.
            checkpoint: a :class:`~canns_stdp.PeriodicCheckpoint` that saves the
                trainer every ``every`` steps from inside the run.
            monitors: :mod:`canns_stdp.monitors` recording spikes, state or weights
                during the call.

        Returns:
            ``None``, or the output spikes when ``return_spikes``.

        Raises:
            ValueError, TypeError: for bad input, before anything changes.
        """
        if self.mesh is not None:
            if checkpoint is not None or monitors:
                raise ValueError("checkpoint= and monitors= are not available with a mesh (train on one device, "
                                 "or save between calls)")
            spikes = self._on_mesh().train(train_data, post_spikes, reward=reward, progress=progress,
                                           return_spikes=return_spikes)
            return None if spikes is None else spikes[0]
        xs, posts = self._sequence(train_data, post_spikes)
        rule = self.current_rule()
        names, series = self._extras(xs, {"reward": reward}, rule)
        if checkpoint is not None and not isinstance(checkpoint, PeriodicCheckpoint):
            raise TypeError(f"checkpoint must be a PeriodicCheckpoint, got {checkpoint!r}")
        monitors = self._monitors(monitors)
        return self._run(True, (xs, posts, *series), names, progress, return_spikes, self._describe(rule),
                         checkpoint, rule, monitors)

    def _on_mesh(self):
        """This trainer as an ensemble of one on ``self.mesh``."""
        from .ensemble import Ensemble

        if self.mesh is None:
            raise ValueError(f"neuron_axis={self.neuron_axis!r} needs a mesh=")
        return Ensemble([self], mesh=self.mesh, neuron_axis=self.neuron_axis)

    def _monitors(self, monitors) -> tuple:
        monitors = tuple(monitors)
        if not monitors:
            return monitors
        from .monitors import Monitor

        for m in monitors:
            if not isinstance(m, Monitor):
                raise TypeError(f"monitors must be canns_stdp.monitors monitors, got {m!r}")
            if hasattr(m, "bind"):
                m.bind(self._read_layer())
        return monitors

    def _describe(self, rule: Rule) -> str:
        return type(rule).__name__

    def predict(self, pattern, *args, **kwargs):
        """Advance the layer one step on ``pattern`` (no plasticity); its 0/1 spikes."""
        return self.model.forward(pattern)

    def predict_batch(self, patterns, *args, progress: Optional[bool] = None, **kwargs):
        """Run the layer over ``patterns`` without plasticity (the rule's state is kept).

        Equivalent to :meth:`predict` on each row in turn, in one compiled loop. Returns the
        spikes ``(T,) + output shape``.
        """
        if self.mesh is not None:
            return self._on_mesh().predict_batch(patterns, progress=progress)[0]
        return self._run(False, self._sequence(patterns, None), (), progress, True, "predict")


_KERNELS = ("dense", "column", "deferred", "native")
_LEDGERS = {  # the running state of deferred LTP an open chunk holds, per kernel
    "deferred": ("U", "rate", "fired", "clock"),  # functional.event's ledger (U is W.T less what it owes)
    "native": ("U", "owed", "rates", "bases"),    # the native kernel's open period (kernels.native_pair.OpenLedger)
}
_LEDGER_OPTIONAL = {"bases"}  # (absent from a native ledger of one base, as earlier versions wrote it)
_LEDGER_NAMES = tuple(dict.fromkeys(n for names in _LEDGERS.values() for n in names))  # every kernel's, once
_RUN_NAMES = ("run.steps", "run.chunk_size", "run.kernel", "run.span") + tuple(f"run.{n}" for n in _LEDGER_NAMES)


def _run_arrays(steps: int, open_chunk) -> dict:
    """Checkpoint entries for the step count and an open chunk (:class:`~canns_stdp.kernels.base.OpenChunk`)."""
    arrays = {"run.steps": np.asarray(steps, np.int64)}
    if open_chunk is not None:
        arrays.update({"run.chunk_size": np.asarray(open_chunk.chunk_size, np.int64),
                       "run.kernel": np.asarray(_KERNELS.index(open_chunk.kernel), np.int64),
                       "run.span": np.asarray(open_chunk.span, np.int64)})
        arrays.update({f"run.{k}": np.asarray(a) for k, a in open_chunk.arrays.items()})
    return arrays


def _read_run_arrays(arrays: dict, weight_shape: tuple):
    """``(steps, OpenChunk or None)`` from checkpoint entries, each checked."""
    from .checkpoint import CheckpointError
    from .kernels.base import OpenChunk

    def integer(name, low=0, high=None):
        a = np.asarray(arrays[name])
        if a.shape != () or a.dtype != np.int64 or a < low or (high is not None and a > high):
            raise CheckpointError(f"checkpoint entry {name} must be an int64 scalar in [{low}, {high}], "
                                  f"got {a!r}")
        return int(a)

    unknown = sorted(set(arrays) - set(_RUN_NAMES))
    if unknown:
        raise CheckpointError(f"checkpoint holds unknown trainer entries {unknown}")
    if "run.steps" not in arrays:
        return 0, None  # written before steps were counted
    steps = integer("run.steps")
    if "run.chunk_size" not in arrays:
        return steps, None
    chunk = integer("run.chunk_size", 1)
    kernel = _KERNELS[integer("run.kernel", 0, len(_KERNELS) - 1)]
    span = integer("run.span", 0, chunk)
    names = _LEDGERS.get(kernel, ())
    ledger = {n: arrays[f"run.{n}"] for n in _LEDGER_NAMES if f"run.{n}" in arrays}
    n_out, n_in = weight_shape[-2:] if len(weight_shape) >= 2 else (None, None)
    present = list(ledger)
    one_base = kernel == "native" and "bases" not in present  # (a native ledger as earlier versions wrote it)
    shapes = {"U": (n_out, n_in) if kernel == "native" else (n_in, n_out), "rate": (n_in,), "fired": (n_out,),
              "clock": (), "owed": (n_out,) if one_base else (LEDGER_BASES, n_out), "rates": (n_in,),
              "bases": (n_in,)}
    required = [n for n in names if not (one_base and n in _LEDGER_OPTIONAL)]
    if present and sorted(present) != sorted(required):
        raise CheckpointError(f"checkpoint holds an incomplete ledger of deferred LTP: {present} "
                              f"(a {kernel} chunk holds all of {list(names)} or none)")
    for name in present:
        a = np.asarray(ledger[name])
        if name == "bases":  # (indices of the bases a native ledger keeps)
            if a.shape != shapes[name] or a.dtype != np.int32 or ((a < 0) | (a >= LEDGER_BASES)).any():
                raise CheckpointError(f"checkpoint entry run.bases must be int32 of shape {shapes[name]} in "
                                      f"[0, {LEDGER_BASES - 1}], got {a.dtype} {a.shape}")
        elif a.shape != shapes[name] or a.dtype != np.float32 or not np.isfinite(a).all():
            raise CheckpointError(f"checkpoint entry run.{name} must be finite float32 of shape {shapes[name]}, "
                                  f"got {a.dtype} {a.shape}")
    return steps, OpenChunk(chunk, kernel, span, {n: ledger[n] for n in present})


def _variable(owner, name: str):
    """``owner.<name>`` (``None`` when absent), read from the instance's own attributes first:
    BrainPy's attribute lookup costs a microsecond or more, and a call reads a dozen."""
    var = owner.__dict__.get(name)
    return var if var is not None else getattr(owner, name, None)


def _as_float32(leaf):
    return np.float32(leaf) if isinstance(leaf, (float, np.floating)) or (
        isinstance(leaf, (np.ndarray, jax.Array)) and np.issubdtype(leaf.dtype, np.floating)) else leaf
