"""Ensemble: K trainers of one static configuration trained in one compiled call.

The members may differ in every number (learning rate, a rule's amplitudes, the layer's
threshold or time constants), in their initial weights and in their inputs; they must
share what shapes the compiled program (layer shapes, synaptic map, rule kind and its
strings and functions, clipping, batch reduction, loop). The step is the plain step of
:mod:`canns_stdp.step` under ``jax.vmap``, or, where every member trained alone would run
the native CPU kernel, that kernel's chunks for every member in one call
(:mod:`canns_stdp.kernels.native_ensemble`), or, where each would run the fused kernel (on
a GPU), that kernel batched over the members (:mod:`canns_stdp.kernels.fused_ensemble`):
member ``k`` ends where the same trainer trained alone ends, up to float rounding (spikes
identical).
"""

from __future__ import annotations

import dataclasses
from functools import lru_cache, partial
from typing import Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec

from ._validation import Settled, check_members
from .host_memory import host_empty
from .layer import on_device_tree, read
from .loops import compiled_chunks, default_chunk_size, drive, padded, python_steps
from .rule_state import leaf_names
from .rules.base import Rule, _split
from .sharding import MemberSharding, constrain, gathered, neuron_dims, place, put
from .step import StepState, forward_step, plastic_step
from .trainer import Trainer

__all__ = ["Ensemble"]


@lru_cache(maxsize=None)
def _vmapped(step, input_axes: tuple, layout: Optional[tuple] = None, out_layout=None):
    """``step`` over the members (axis 0 of params and state; of each per-step input, its
    axis in ``input_axes``: 0 for one input per member, ``None`` for one shared by all),
    for the loops of :mod:`canns_stdp.loops` (one compiled program per step and axes).
    ``layout``: on a mesh, the shardings of the state's arrays, which every step keeps;
    ``out_layout``: the sharding of the step's output spikes (by default the spikes'
    in the state)."""
    def members_step(config, params, state, *inputs):
        state, out = jax.vmap(lambda p, s, *x: step(config, p, s, *x),
                              in_axes=(0, 0) + input_axes)(params, state, *inputs)
        if layout is not None:
            state = constrain(state, layout)
            spikes = layout[state.layer._fields.index("spike")] if out_layout is None else out_layout
            out = constrain(out, (spikes,))  # the spikes, shaped alike
        return state, out
    return members_step


@jax.jit
def _stack(trees):
    """The members' pytrees stacked along a new axis 0, in one dispatch."""
    return jax.tree_util.tree_map(lambda *leaves: jnp.stack(leaves), *trees)


def _stack_on_host(trees):
    """:func:`_stack` into NumPy arrays on the host, for the native kernel, which reads them
    there (64 members of 784x400: 104 ms a call stacked on the device, with its
    dispatches and copies; each member's array is read where it is)."""
    def stacked(*leaves):
        first = np.asarray(leaves[0])
        out = host_empty((len(leaves),) + first.shape, first.dtype)
        for k, leaf in enumerate(leaves):
            out[k] = np.asarray(leaf)
        return out
    return jax.tree_util.tree_map(stacked, *trees)


def stacked_inputs(seqs):
    """The members' per-step inputs (one tuple each) as one tuple and the member axis of
    each: an input every member shares (or ``None``) kept once (axis ``None``), the
    others stacked along axis 1 (axis 0 of a step)."""
    seq, axes = [], []
    for i, a in enumerate(seqs[0]):
        if a is None or all(s[i] is a for s in seqs):
            seq.append(a)
            axes.append(None)
        else:
            parts = [s[i] for s in seqs]
            on_device = all(isinstance(part, jax.Array) for part in parts)  # (kept on an accelerator: stacked there)
            seq.append(jnp.stack(parts, axis=1) if on_device else np.stack(parts, axis=1))
            axes.append(0)
    return tuple(seq), tuple(axes)


def _stack_numbers(trees):
    """The members' numbers (NumPy scalars and arrays) stacked on the host, then put on
    the device in one transfer: a jitted stack would transfer each member's scalars."""
    leaves = [jax.tree_util.tree_leaves(t) for t in trees]
    treedef = jax.tree_util.tree_structure(trees[0])
    stacked = [np.stack([np.asarray(member[i]) for member in leaves]) for i in range(len(leaves[0]))]
    return jax.device_put(jax.tree_util.tree_unflatten(treedef, stacked))


@partial(jax.jit, static_argnums=1)
def _unstack(tree, K: int):
    """The K members of a stacked pytree, in one dispatch."""
    return [jax.tree_util.tree_map(lambda a: a[k], tree) for k in range(K)]


@jax.jit
def _finite_members(state):
    """For each array of ``state``, whether each member's part is finite: ``(arrays, K)``,
    reduced on the device (only ``K`` booleans per array come back)."""
    return jnp.stack([jnp.isfinite(a).reshape(a.shape[0], -1).all(axis=1) for a in jax.tree_util.tree_leaves(state)])


class Ensemble:
    """Train ``trainers`` (K :class:`~canns_stdp.Trainer`s, or the CANNs-style trainers
    built on it) as one vectorised model.

    Args:
        trainers: the members; each keeps its layer, rule and settings, and after a call
            holds exactly what training it alone would have left in it.
        mesh: a ``jax.sharding.Mesh`` to run on several devices (:mod:`canns_stdp.sharding`):
            members split along ``member_axis`` (by default the mesh's first axis), a
            dense layer's output neurons along ``neuron_axis``; the results are those of
            the run on one device. The members' trainers hold their arrays on one device
            between calls.
        member_axis, neuron_axis: names of mesh axes (``None``: not split that way).

    Raises:
        ValueError: when the members differ in their static configuration (the message
            names what differs), or share a layer; when the members or the neurons do not
            split evenly over the mesh.

    Example:
        >>> import numpy as np
        >>> from canns_stdp import Ensemble, SpikingLayer, Trainer, rules
        >>> members = [Trainer(SpikingLayer(20, 5, seed=k), rules.pair(A_plus=a), learning_rate=0.05)
        ...            for k, a in enumerate([0.002, 0.005, 0.01])]
        >>> X = (np.random.default_rng(0).random((200, 20)) < 0.2).astype(np.float32)
        >>> spikes = Ensemble(members).train(X, return_spikes=True)   # (3, 200, 5)
    """

    def __init__(self, trainers: Sequence[Trainer], *, mesh=None, member_axis: Optional[str] = None,
                 neuron_axis: Optional[str] = None):
        trainers = check_members("an Ensemble", "trainers", trainers, Trainer, "canns_stdp.Trainer")
        models = [id(t.model) for t in trainers]
        if len(set(models)) != len(models):
            raise ValueError("every member needs a layer of its own: two trainers share one")
        self.trainers = trainers
        # kept while every member's plan is the same
        self._checked, self._numbers, self._native_members = Settled(), Settled(), Settled()
        self._plans(())  # refuse a mixed ensemble now, not at the first call
        self.sharding = None
        if mesh is not None:
            self.sharding = MemberSharding.build(mesh, member_axis, neuron_axis)
            self.sharding.check(len(trainers), trainers[0].weight_shape(), trainers[0].model.sample_shapes()[1])
        elif member_axis is not None or neuron_axis is not None:
            raise ValueError(f"member_axis and neuron_axis need a mesh=, got member_axis={member_axis!r}, "
                             f"neuron_axis={neuron_axis!r} and no mesh")

    def __len__(self) -> int:
        return len(self.trainers)

    # -- the static configuration ---------------------------------------------------------
    def _plans(self, extras: tuple):
        """Each member's ``(rule, config, params)``, checked to share one static configuration."""
        plans = []
        for t in self.trainers:
            rule = t.current_rule()
            plans.append((rule, *t.plan(extras, rule)))
        key = tuple(item for plan in plans for item in plan)  # plans are kept while their settings are
        if self._checked.get(key) is not None:
            return plans
        first_rule, first_config, _ = plans[0]
        first_key = _static_key(self.trainers[0], first_rule, first_config)
        for k, (t, (rule, config, _)) in enumerate(zip(self.trainers, plans)):
            if _static_key(t, rule, config) == first_key:
                continue
            difference = _difference(self.trainers[0], first_rule, first_config, t, rule, config)
            if difference:
                raise ValueError(f"member {k} differs from member 0 in {difference}: an Ensemble runs one "
                                 "static configuration (numbers may differ)")
        self._checked.put(key, True, fixed=len(key))
        return plans

    # -- a call ----------------------------------------------------------------------------
    @staticmethod
    def _per_member(value, K: int, ndim: int):
        """``value`` for every member: a list or tuple of K sequences (each of at least
        ``ndim`` dimensions) gives one to each, anything else is given to all."""
        if isinstance(value, (list, tuple)) and len(value) == K and all(np.ndim(v) >= ndim for v in value):
            return list(value)
        return [value] * K

    def train(self, train_data, post_spikes=None, *, reward=None, progress: Optional[bool] = None,
              return_spikes: bool = False):
        """Train every member on its inputs, one step per row, in one compiled loop.

        Args:
            train_data: one input sequence for all members (as for
                :meth:`Trainer.train`), or a list of K sequences of one shape.
            post_spikes: likewise, one for all or a list of K.
            reward: one for all (a number or ``T`` numbers), or a list of K arrays of
                ``T`` numbers.
            progress: show a progress bar.
            return_spikes: also return the output spikes, ``(K, T) + output shape``.

        Raises:
            ValueError, TypeError: for bad input, before any member changes.
        """
        return self._run(True, train_data, post_spikes, reward, progress, return_spikes)

    def predict_batch(self, patterns, *, progress: Optional[bool] = None):
        """Run every member without plasticity; its spikes ``(K, T) + output shape``."""
        return self._run(False, patterns, None, None, progress, True)

    def _run(self, plastic, train_data, post_spikes, reward, progress, record):
        K = len(self.trainers)
        first = self.trainers[0]
        # the static configuration first: then one input given to many members is checked once
        plans = self._plans(first.current_rule().required_extras() if plastic else ())
        seq, input_axes = self._inputs(plastic, plans, train_data, post_spikes, reward)
        xs = seq[0] if input_axes[0] is None else seq[0][:, 0]
        batch_shape = first._batch_shape(xs)
        config = plans[0][1]
        numbers = tuple(p for _, _, p in plans)
        params = self._numbers.get(numbers)
        if params is None:
            params = self._numbers.put(numbers, _stack_numbers(numbers), fixed=len(numbers))
        native = None if self.sharding is not None else self._native(plastic, plans, numbers, batch_shape)
        states = self._states(plans, batch_shape)
        fused = None
        if native is None and self.sharding is None and first.compiled:
            from .kernels.fused_ensemble import fused_members
            fused = fused_members(self.trainers, plastic, plans, states[0], xs)
        state = _stack_on_host(states) if native is not None else _stack(states)
        layout = out_layout = None
        if self.sharding is not None:
            params, state, layout = self._placed(plans[0][0], params, state, batch_shape)
            if record and self.sharding.multi_process and not first.compiled:
                # the Python loop reads each step's spikes: whole on every device, each process reads them all
                out_layout = NamedSharding(self.sharding.mesh, PartitionSpec())
        per_step = sum(int(np.prod(a.shape[1:])) for a in seq if a is not None)
        chunk = first.chunk_size or default_chunk_size(per_step)
        if native is not None and state.layer.W.dtype == np.float32:
            from .kernels.native_ensemble import chunks, deferral_span
            run_chunk = chunks(native, plastic, input_axes, deferral_span(native, plastic, seq, state.layer))
        elif fused is not None:
            from .kernels.fused_ensemble import fused_member_chunks
            layer_config, member_numbers = fused
            run_chunk = fused_member_chunks(layer_config, _stack_numbers(member_numbers), input_axes, chunk)
        else:
            step = _vmapped(plastic_step if plastic else forward_step, input_axes, layout, out_layout)
            run_chunk = (compiled_chunks(step, config, params, chunk) if first.compiled
                         else python_steps(step, config, params))
        if self.sharding is not None:
            run_chunk = self._sharded_inputs(run_chunk, seq, input_axes, chunk if first.compiled else None,
                                             gather=first.compiled and self.sharding.multi_process)
        progress = first.show_iteration_progress if progress is None else progress
        state, outs = drive(run_chunk, state, seq, chunk_size=chunk, record=record, progress=progress,
                            desc=f"ensemble of {K}")
        if self.sharding is not None:
            state = gathered(state)
        state = on_device_tree(state)  # (the native kernel hands on NumPy arrays)
        _check_finite(state)  # every member checked before any is written
        last_x = jax.device_put(seq[0][-1] if input_axes[0] == 0 else np.broadcast_to(seq[0][-1], (K,) + xs.shape[1:]))
        for t, (member, x) in zip(self.trainers, _unstack((state, last_x), K)):
            t._write(member, x)
            t._open_chunk = None  # the plain step leaves no chunk open
            if plastic:
                t.steps_trained += xs.shape[0]
        return None if outs is None else np.swapaxes(np.asarray(outs), 0, 1)

    def _native(self, plastic, plans, numbers, batch_shape):
        """The members as the native ensemble kernel takes them, where each member alone
        would run the native kernel (:func:`~canns_stdp.kernels.native_ensemble.members_plan`),
        else ``None``; kept while every member's plan is the same."""
        key = (plastic, batch_shape, *(config for _, config, _ in plans), *numbers)
        held = self._native_members.get(key)
        if held is None:
            from .kernels.native_ensemble import members_plan  # loads numba: not before an ensemble's first call
            held = self._native_members.put(key, (members_plan(self.trainers, plastic, plans, batch_shape),),
                                            fixed=len(key))
        return held[0]

    def _placed(self, rule, params, state, batch_shape):
        """The numbers (replicated) and the state (split) placed on the mesh."""
        sharding = self.sharding
        if sharding.neuron_axis is None:
            dims = [None] * len(jax.tree_util.tree_leaves(state))
        else:
            in_shape, out_shape = self.trainers[0].model.sample_shapes()
            dims = neuron_dims(state, rule, in_shape, out_shape, self.trainers[0].weight_shape(), batch_shape)
        layout = sharding.state(state, dims)
        return sharding.replicate(params), place(state, layout), layout

    def _sharded_inputs(self, run_chunk, seq, input_axes, pad_to, gather: bool = False):
        """``run_chunk`` given each chunk of inputs placed on the mesh (padded to ``pad_to``
        steps first, as the compiled loop pads them); with ``gather``, its recorded spikes
        come back whole to every process (a mesh of several processes)."""
        shardings = self.sharding.inputs(seq, input_axes, len(self.trainers[0].model.sample_shapes()[1]))

        def sharded_chunk(state, part, n_steps, record, offset=0):
            part = tuple(None if a is None else put(a if pad_to is None else padded(a, pad_to), s)
                         for a, s in zip(part, shardings))
            state, out = run_chunk(state, part, n_steps, record, offset)
            if record and gather:
                out = gathered(out)
            return state, out
        return sharded_chunk

    def _inputs(self, plastic, plans, train_data, post_spikes, reward):
        """The per-step inputs ``(xs, post_spikes or None, *extras)`` and, for each, its
        member axis: an input given to every member is checked once and kept once (axis
        ``None``); inputs given one per member are stacked along axis 1 (axis 0 of a step)."""
        K = len(self.trainers)
        in_shape, out_shape = self.trainers[0].model.sample_shapes()
        given = zip(self._per_member(train_data, K, len(in_shape) + 1),
                    self._per_member(post_spikes, K, len(out_shape) + 1), self._per_member(reward, K, 1))
        checked, seqs = {}, []
        for t, (rule, _, _), (x, post, r) in zip(self.trainers, plans, given):
            key = (id(x), id(post), id(r))  # the members share one configuration: one check per object
            if key not in checked:
                xs, posts = t._sequence(x, post)
                series = t._extras(xs, {"reward": r}, rule)[1] if plastic else ()
                checked[key] = (x, post, r), (xs, posts, *series)
            seqs.append(checked[key][1])
        shapes = {tuple(None if a is None else a.shape for a in seq) for seq in seqs}
        if len(shapes) != 1:
            raise ValueError(f"every member's inputs must have one shape, got {sorted(map(str, shapes))}")
        return stacked_inputs(seqs)

    def _states(self, plans, batch_shape):
        """Each member's state for a run on ``batch_shape``: the arrays it holds as they are
        when they already have the run's shapes (no copy, no transfer), else the trainer's
        own read (which broadcasts an unbatched state, or names what is wrong)."""
        def read_member(t, rule):
            return StepState(t._read_layer(batch_shape), t._rule_state.read(batch_shape, rule))
        template = read_member(self.trainers[0], plans[0][0])
        layer_names = list(template.layer.arrays())  # the refractory counter only where there is one
        rule_names, rule_leaves, rule_def = leaf_names(template.rule)
        wanted = [(a.shape, a.dtype) for a in (*template.layer.arrays().values(), *rule_leaves)]
        states = [template]
        for t, (rule, _, _) in zip(self.trainers[1:], plans[1:]):
            layer = [read(getattr(t.model, t.weight_attr if n == "W" else n)) for n in layer_names]
            rule_state = [_value(getattr(t, n, None)) for n in rule_names]
            held = layer + rule_state
            if all(isinstance(a, jax.Array) and (a.shape, a.dtype) == w for a, w in zip(held, wanted)):
                rule_state = jax.tree_util.tree_unflatten(rule_def, rule_state)
                states.append(StepState(type(template.layer)(*layer), rule_state))
            else:
                states.append(read_member(t, rule))
        return states


def _value(var):
    """A variable's value (``None`` for no variable)."""
    return None if var is None else read(var)


def _check_finite(state: StepState) -> None:
    """Raise, naming the first member and arrays, if any member's state is not finite."""
    finite = np.asarray(_finite_members(state))
    if finite.all():
        return
    names, _, _ = leaf_names(state.rule)
    arrays = list(state.layer.arrays()) + names
    k = int(np.flatnonzero(~finite.all(axis=0))[0])
    bad = [name for name, ok in zip(arrays, finite[:, k]) if not ok]
    raise FloatingPointError(f"training produced non-finite values in {bad} of member {k}; no member "
                             "was changed (check the inputs' scale and the members' numbers)")


def _static_key(t, rule, config) -> tuple:
    """What shapes the compiled program, compared quickly; :func:`_difference` names it."""
    m = t.model
    return (type(m), m.sample_shapes(), t.weight_shape(), _has_refractory(m), t.compiled, t.chunk_size, config,
            jax.tree_util.tree_structure(rule), tuple(np.shape(a) for a in jax.tree_util.tree_leaves(rule)))


def _has_refractory(model) -> bool:
    """Whether the model's state carries a refractory counter (its steps do then)."""
    return bool(getattr(model, "has_refractory", False))


def _difference(t0, rule0, config0, t, rule, config) -> str:
    """What in the static configuration of ``t`` differs from ``t0``'s ('' for nothing)."""
    m0, m = t0.model, t.model
    for what, a, b in (("layer type", type(m0).__name__, type(m).__name__),
                       ("input shape", m0.sample_shapes()[0], m.sample_shapes()[0]),
                       ("output shape", m0.sample_shapes()[1], m.sample_shapes()[1]),
                       ("weight shape", tuple(m0.W.value.shape), tuple(m.W.value.shape)),
                       ("refractory period", _has_refractory(m0), _has_refractory(m)),
                       ("rule", type(rule0).__name__, type(rule).__name__),
                       ("compiled", t0.compiled, t.compiled),
                       ("chunk_size", t0.chunk_size, t.chunk_size)):
        if a != b:
            return f"{what} ({b!r} against {a!r})"
    for field in dataclasses.fields(config0):
        a, b = getattr(config0, field.name), getattr(config, field.name)
        if a != b:
            return f"{field.name} ({b!r} against {a!r})"
    return _rule_difference(rule0, rule)


def _rule_difference(rule0: Rule, rule: Rule, prefix: str = "rule") -> str:
    if type(rule0) is not type(rule):
        return f"{prefix} ({type(rule).__name__} against {type(rule0).__name__})"
    traced0, fixed0 = _split(rule0)
    traced, fixed = _split(rule)
    for (name, a), (_, b) in zip(fixed0, fixed):
        if a != b:
            return f"{prefix}.{name} ({b!r} against {a!r})"
    for (name, a), (_, b) in zip(traced0, traced):
        if isinstance(a, Rule):
            inner = _rule_difference(a, b, f"{prefix}.{name}")
            if inner:
                return inner
        elif np.shape(a) != np.shape(b):
            return f"{prefix}.{name}'s shape ({np.shape(b)} against {np.shape(a)})"
    return ""
