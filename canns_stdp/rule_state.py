"""A rule's state kept on its trainer as named ``bm.Variable``s.

The rule's state is a pytree (``rule.init_state``); each leaf becomes a variable of the
trainer named after its field (``eligibility``, ``dopamine``, ``r2``, ``o2``; the full
path joined by ``_`` where two fields share a name), so that checkpoints store it and
users read it as ``trainer.<name>.value``. A state may carry a leading batch axis (one
per sample) after a batched call; an unbatched state is broadcast to a batch, a batch of
another size needs ``reset_state()`` first.
"""

from __future__ import annotations

from typing import Dict, List, Tuple

import brainpy.math as bm
import jax
import jax.numpy as jnp
import numpy as np

from .layer import assign, read

__all__ = ["RuleStateStore", "leaf_names"]

_STRUCTURES: dict = {}  # (rule structure, shapes, batch shape) -> the state's shapes


def _key_name(key) -> str:
    for attr in ("name", "key", "idx"):
        if hasattr(key, attr):
            return str(getattr(key, attr))
    return str(key)


def leaf_names(tree) -> Tuple[List[str], list, object]:
    """``(names, leaves, treedef)``: each leaf named by its last field, or its whole
    path where the last field is not unique."""
    paths, treedef = jax.tree_util.tree_flatten_with_path(tree)
    full = ["_".join(_key_name(k) for k in path) for path, _ in paths]
    last = [_key_name(path[-1]) if path else "rule_state" for path, _ in paths]
    names = [short if last.count(short) == 1 else long for short, long in zip(last, full)]
    return names, [leaf for _, leaf in paths], treedef


class RuleStateStore:
    """Reads, checks and writes the rule's state of ``trainer`` (see the module doc)."""

    def __init__(self, trainer):
        self.trainer = trainer
        self._layout_of = (None, None, None, None)  # (rule, batch shape, model, layout) of the last read

    def _layout(self, batch_shape, rule):
        """``(names, unbatched leaves, batched treedef)`` of ``rule``'s state for inputs with
        ``batch_shape``; the last one is kept for the same rule object, batch and model (whose
        sizes are fixed when it is made)."""
        held_rule, held_batch, held_model, layout = self._layout_of
        model = self.trainer.model
        if held_rule is not rule or held_batch != batch_shape or held_model is not model:
            names, unbatched, _ = leaf_names(self._structure((), rule))
            treedef = leaf_names(self._structure(batch_shape, rule))[2]
            layout = (names, unbatched, treedef)
            self._layout_of = (rule, batch_shape, model, layout)
        return layout

    def _shapes(self):
        in_shape, out_shape = self.trainer.model.sample_shapes()
        return tuple(in_shape), tuple(out_shape), tuple(self.trainer.weight_shape())

    def _template(self, batch_shape=(), rule=None):
        """The rule's initial state (arrays)."""
        rule = self.trainer.current_rule() if rule is None else rule
        return rule.init_state(*self._shapes(), tuple(batch_shape))

    def _structure(self, batch_shape, rule):
        """The rule's state as shapes, computed once per rule structure and shapes."""
        key = (jax.tree_util.tree_structure(rule), self._shapes(), tuple(batch_shape))
        if key not in _STRUCTURES:
            _STRUCTURES[key] = jax.eval_shape(lambda: self._template(batch_shape, rule))
        return _STRUCTURES[key]

    def names(self) -> List[str]:
        """The variables' names, in the order of the rule's state."""
        return list(self._layout((), self.trainer.current_rule())[0])

    def reset(self) -> None:
        """Zero every variable (unbatched)."""
        names, leaves, _ = leaf_names(self._template())
        for name, leaf in zip(names, leaves):
            if hasattr(self.trainer, name) and isinstance(getattr(self.trainer, name), bm.Variable):
                assign(self.trainer, name, jnp.asarray(leaf))
            else:
                setattr(self.trainer, name, bm.Variable(jnp.asarray(leaf)))

    def named(self, state) -> Dict[str, object]:
        names, leaves, _ = leaf_names(state)
        return dict(zip(names, leaves))

    def read(self, batch_shape=(), rule=None):
        """The state as the rule's pytree, for inputs with ``batch_shape``."""
        batch_shape = tuple(batch_shape)
        rule = self.trainer.current_rule() if rule is None else rule
        names, unbatched, treedef = self._layout(batch_shape, rule)
        values = []
        for name, one in zip(names, unbatched):
            var = getattr(self.trainer, name, None)
            if not isinstance(var, bm.Variable):
                raise ValueError(f"trainer.{name} is missing: the rule's state changed; call reset_state()")
            value = read(var)
            if not (isinstance(value, jax.Array) and value.dtype == np.float32):
                value = jnp.asarray(value, jnp.float32)
            values.append(check_leaf(name, value, one.shape, batch_shape))
        return jax.tree_util.tree_unflatten(treedef, values)

    def check_stored(self, arrays: Dict[str, np.ndarray]) -> None:
        """Check arrays meant for the variables (e.g. from a checkpoint or ``set_state``):
        unbatched, or all with one batch shape."""
        names, unbatched, _ = leaf_names(self._structure((), self.trainer.current_rule()))
        batch = None
        for name, one in zip(names, unbatched):
            arr = np.asarray(arrays[name])
            if not np.isfinite(arr).all():
                raise ValueError(f"{name} must be finite")
            held = _held_batch(arr.shape, one.shape)
            if held is None:
                raise ValueError(f"{name} must have shape {one.shape} (or (B,) + {one.shape} for a batch), "
                                 f"got shape {arr.shape}")
            if batch is not None and held != batch:
                raise ValueError(f"{name} must have shape {batch + one.shape} (one per sample of the "
                                 f"batch {batch}), got shape {arr.shape}")
            batch = held

    def write(self, state) -> None:
        for name, value in self.named(state).items():
            assign(self.trainer, name, value)


def _held_batch(shape, unbatched):
    """The batch shape an array of ``shape`` holds over ``unbatched``, or ``None``."""
    shape, unbatched = tuple(shape), tuple(unbatched)
    n = len(shape) - len(unbatched)
    if n < 0 or shape[n:] != unbatched:
        return None
    return shape[:n]


def check_leaf(name: str, value, unbatched: tuple, batch_shape: tuple):
    """``value`` for a run on ``batch_shape``: as it is, or broadcast from unbatched."""
    unbatched, full = tuple(unbatched), tuple(batch_shape) + tuple(unbatched)
    held = _held_batch(value.shape, unbatched)
    if value.shape == full:
        return value
    if not batch_shape:
        hint = "; the trainer holds a batched state: call reset_state() first" if held else ""
        raise ValueError(f"{name} must have shape {unbatched}, got shape {value.shape}{hint}")
    if value.shape == unbatched:
        return jnp.broadcast_to(value, full)
    if held:
        raise ValueError(f"{name} holds a batch of shape {held}, the input a batch of shape "
                         f"{tuple(batch_shape)}; call reset_state() first")
    raise ValueError(f"{name} must have shape {full}, got shape {value.shape}")
