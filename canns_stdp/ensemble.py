"""Ensemble: K trainers of one static configuration trained in one compiled call.

The members may differ in every number (learning rate, a rule's amplitudes, the layer's
threshold or time constants), in their initial weights and in their inputs; they must
share what shapes the compiled program (layer shapes, synaptic map, rule kind and its
strings and functions, clipping, batch reduction, loop). The step is the plain step of
:mod:`canns_stdp.step` under ``jax.vmap``: member ``k`` ends where the same trainer trained
alone ends, up to float rounding (spikes identical).
"""

from __future__ import annotations

import dataclasses
from functools import lru_cache, partial
from typing import Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from .loops import compiled_chunks, default_chunk_size, drive, python_steps
from .rule_state import leaf_names
from .rules.base import Rule, _split
from .step import StepState, forward_step, plastic_step
from .trainer import Trainer

__all__ = ["Ensemble"]


@lru_cache(maxsize=None)
def _vmapped(step):
    """``step`` over the members (axis 0 of params, state and per-step inputs), for the
    loops of :mod:`canns_stdp.loops` (one compiled program per step function)."""
    def members_step(config, params, state, *inputs):
        return jax.vmap(lambda p, s, *x: step(config, p, s, *x))(params, state, *inputs)
    return members_step


@jax.jit
def _stack(trees):
    """The members' pytrees stacked along a new axis 0, in one dispatch."""
    return jax.tree_util.tree_map(lambda *leaves: jnp.stack(leaves), *trees)


@partial(jax.jit, static_argnums=1)
def _unstack(tree, K: int):
    """The K members of a stacked pytree, in one dispatch."""
    return [jax.tree_util.tree_map(lambda a: a[k], tree) for k in range(K)]


class Ensemble:
    """Train ``trainers`` (K :class:`~canns_stdp.Trainer`s, or the CANNs-style trainers
    built on it) as one vectorised model.

    Args:
        trainers: the members; each keeps its layer, rule and settings, and after a call
            holds exactly what training it alone would have left in it.

    Raises:
        ValueError: when the members differ in their static configuration (the message
            names what differs), or share a layer.

    Example:
        >>> import numpy as np
        >>> from canns_stdp import Ensemble, SpikingLayer, Trainer, rules
        >>> members = [Trainer(SpikingLayer(20, 5, seed=k), rules.pair(A_plus=a), learning_rate=0.05)
        ...            for k, a in enumerate([0.002, 0.005, 0.01])]
        >>> X = (np.random.default_rng(0).random((200, 20)) < 0.2).astype(np.float32)
        >>> spikes = Ensemble(members).train(X, return_spikes=True)   # (3, 200, 5)
    """

    def __init__(self, trainers: Sequence[Trainer]):
        trainers = list(trainers)
        if not trainers:
            raise ValueError("an Ensemble needs at least one trainer, got none")
        for k, t in enumerate(trainers):
            if not isinstance(t, Trainer):
                raise TypeError(f"trainers[{k}] must be a canns_stdp.Trainer, got {type(t).__name__}")
        models = [id(t.model) for t in trainers]
        if len(set(models)) != len(models):
            raise ValueError("every member needs a layer of its own: two trainers share one")
        self.trainers = trainers
        self._plans(())  # refuse a mixed ensemble now, not at the first call

    def __len__(self) -> int:
        return len(self.trainers)

    # -- the static configuration ---------------------------------------------------------
    def _plans(self, extras: tuple):
        """Each member's ``(rule, config, params)``, checked to share one static configuration."""
        plans = []
        for t in self.trainers:
            rule = t.current_rule()
            plans.append((rule, *t.plan(extras, rule)))
        first_rule, first_config, _ = plans[0]
        for k, (t, (rule, config, _)) in enumerate(zip(self.trainers, plans)):
            difference = _difference(self.trainers[0], first_rule, first_config, t, rule, config)
            if difference:
                raise ValueError(f"member {k} differs from member 0 in {difference}: an Ensemble runs one "
                                 "static configuration (numbers may differ)")
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
        in_shape, out_shape = self.trainers[0].model.sample_shapes()
        seqs, names = [], None
        for t, x, post, r in zip(self.trainers, self._per_member(train_data, K, len(in_shape) + 1),
                                 self._per_member(post_spikes, K, len(out_shape) + 1),
                                 self._per_member(reward, K, 1)):
            xs, posts = t._sequence(x, post)
            if plastic:
                member_names, series = t._extras(xs, {"reward": r}, t.current_rule())
            else:
                member_names, series = (), ()
            names = member_names if names is None else names
            seqs.append((xs, posts, *series))
        shapes = {tuple(None if a is None else a.shape for a in seq) for seq in seqs}
        if len(shapes) != 1:
            raise ValueError(f"every member's inputs must have one shape, got {sorted(map(str, shapes))}")
        plans = self._plans(names)
        config = plans[0][1]
        batch_shape = self.trainers[0]._batch_shape(seqs[0][0])
        states = [StepState(t._read_layer(batch_shape), t._rule_state.read(batch_shape, rule))
                  for t, (rule, _, _) in zip(self.trainers, plans)]
        params = _stack([p for _, _, p in plans])
        state = _stack(states)
        seq = tuple(None if a is None else np.stack([s[i] for s in seqs], axis=1) for i, a in enumerate(seqs[0]))
        step = plastic_step if plastic else forward_step
        first = self.trainers[0]
        chunk = first.chunk_size or default_chunk_size(K * int(seqs[0][0][0].size))
        if first.compiled:
            run_chunk = compiled_chunks(_vmapped(step), config, params, chunk)
        else:
            run_chunk = python_steps(_vmapped(step), config, params)
        progress = first.show_iteration_progress if progress is None else progress
        state, outs = drive(run_chunk, state, seq, chunk_size=chunk, record=record, progress=progress,
                            desc=f"ensemble of {K}")
        _check_finite(state)  # every member checked before any is written
        members = _unstack(state, K)
        for t, member, s in zip(self.trainers, members, seqs):
            t._write(member, s[0][-1])
            t._open_chunk = None  # the plain step leaves no chunk open
            if plastic:
                t.steps_trained += s[0].shape[0]
        return None if outs is None else np.swapaxes(np.asarray(outs), 0, 1)


def _check_finite(state: StepState) -> None:
    """Raise, naming the first member and arrays, if any member's state is not finite."""
    host = jax.device_get(state)
    names, leaves, _ = leaf_names(host.rule)
    arrays = {**host.layer._asdict(), **dict(zip(names, leaves))}
    for k in range(np.shape(host.layer.W)[0]):
        bad = [name for name, a in arrays.items() if not np.isfinite(a[k]).all()]
        if bad:
            raise FloatingPointError(f"training produced non-finite values in {bad} of member {k}; no member "
                                     "was changed (check the inputs' scale and the members' numbers)")


def _difference(t0, rule0, config0, t, rule, config) -> str:
    """What in the static configuration of ``t`` differs from ``t0``'s ('' for nothing)."""
    m0, m = t0.model, t.model
    for what, a, b in (("layer type", type(m0).__name__, type(m).__name__),
                       ("input shape", m0.sample_shapes()[0], m.sample_shapes()[0]),
                       ("output shape", m0.sample_shapes()[1], m.sample_shapes()[1]),
                       ("weight shape", tuple(m0.W.value.shape), tuple(m.W.value.shape)),
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
