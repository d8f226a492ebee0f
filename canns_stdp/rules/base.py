"""The base of every plasticity rule: a frozen dataclass that is also a JAX pytree.

A rule is two pure functions over arrays (the pattern of optax's gradient
transformations):

    state       = rule.init(pre_shape, post_shape)
    dW, state'  = rule.update(state, pre, post, W, hebbian, **extra)

``pre`` and ``post`` are :class:`Activity` tuples (this step's spikes, the trace with
them, the trace decayed to this step without them). ``hebbian(post_term, pre_term)`` is
the synaptic map's Hebbian term: ``post_term ⊗ pre_term`` for a dense layer, the same
under a connectivity mask, the weight-gradient of the convolution for a conv layer,
reduced over a batch. A rule that only ever builds its change from ``hebbian`` therefore
runs on every map. ``dW`` is the change per unit learning rate: the step applies
``W' = clip(W + lr · dW, w_min, w_max)``.

Numbers stored on a rule (``float``, ``int``, arrays) are traced by ``jax.jit``:
changing them never recompiles. Everything else (strings, functions, booleans, fields
declared with :func:`static`) is part of the compiled program's key: changing it
compiles once more.

Keyword arguments ``update`` declares beyond the five above are the rule's extras; the
step passes ``bounds`` (the trainer's :class:`~canns_stdp.functional.dependence.WeightBounds`)
and the per-step inputs a caller gives (``reward``) to the rules that ask for them.

Example:
    >>> import jax.numpy as jnp
    >>> from canns_stdp import rules
    >>> class Hebb(rules.Rule):
    ...     rate: float = 1.0
    ...     def init(self, pre_shape, post_shape):
    ...         return ()
    ...     def update(self, state, pre, post, W, hebbian):
    ...         return self.rate * hebbian(post.spikes, pre.spikes), state
    >>> rule = Hebb(rate=0.5)
    >>> pre = rules.Activity(jnp.array([1., 0.]), jnp.zeros(2), jnp.zeros(2))
    >>> post = rules.Activity(jnp.array([1.]), jnp.zeros(1), jnp.zeros(1))
    >>> dW, _ = rule.update((), pre, post, jnp.zeros((1, 2)), lambda a, b: jnp.outer(a, b))
    >>> dW.tolist()
    [[0.5, 0.0]]
"""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any, Dict, NamedTuple, Tuple

import jax
import numpy as np

__all__ = ["Activity", "Rule", "rule_config", "rule_from_config", "static"]

_STANDARD_ARGS = ("self", "state", "pre", "post", "W", "hebbian")  # by position: any names will do
_RULES: Dict[str, type] = {}  # every Rule subclass, by "module.qualname": what a checkpoint may name


class Activity(NamedTuple):
    """One side of the synapses at one step.

    Attributes:
        spikes: this step's spikes (``x`` on the presynaptic side, ``s`` on the
            postsynaptic side), 0/1 or real-valued input.
        trace: the trace including this step's spikes (steps 1 and 5 of docs/step.md).
        decayed: the trace decayed to this step, without this step's spikes.
    """

    spikes: Any
    trace: Any
    decayed: Any


def static(default=dataclasses.MISSING, **kwargs):
    """A rule field that is part of the compiled program (a number that shapes the
    code, e.g. a window length); changing it compiles once more."""
    metadata = {**kwargs.pop("metadata", {}), "static": True}
    return dataclasses.field(default=default, metadata=metadata, **kwargs)


def _is_traced(value) -> bool:
    """Numbers and arrays are traced; bools, strings, functions and ``None`` are static."""
    if isinstance(value, (bool, np.bool_)) or value is None:
        return False
    if isinstance(value, (int, float, np.number, np.ndarray, jax.Array)):
        return True
    return isinstance(value, Rule)  # a wrapped rule is a pytree of its own


class Rule:
    """Base class of plasticity rules (see the module docstring).

    Subclasses are made frozen dataclasses automatically: declare hyperparameters as
    annotated class attributes with defaults, and implement :meth:`init` and
    :meth:`update`.
    """

    #: ``True`` when the rule's change is zero at every synapse whose presynaptic input and
    #: postsynaptic neuron are both silent this step, and its state holds no array shaped
    #: like ``W``: a sparse network projection then only visits the synapses of the
    #: neurons that spiked (:mod:`canns_stdp.network`). Default: ``False``.
    local = False

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "__dataclass_fields__" not in cls.__dict__:
            dataclasses.dataclass(frozen=True)(cls)
        _RULES[f"{cls.__module__}.{cls.__qualname__}"] = cls
        jax.tree_util.register_pytree_node(cls, _flatten, lambda aux, leaves: _unflatten(cls, aux, leaves))

    # -- the two functions of a rule ---------------------------------------------------
    def init(self, pre_shape: Tuple[int, ...], post_shape: Tuple[int, ...]):
        """The rule's state for inputs of ``pre_shape`` and outputs of ``post_shape``
        (with a leading batch axis when training on a batch). Default: no state."""
        return ()

    def update(self, state, pre: Activity, post: Activity, W, hebbian, **extra):
        """``(dW, state')``: the change per unit learning rate and the new state."""
        raise NotImplementedError(f"{type(self).__name__} must define update()")

    def advance(self, state, pre: Activity, post: Activity):
        """The state after a step without plasticity (``predict``). Default: unchanged;
        a rule whose state holds traces of the spikes advances them."""
        return state

    def init_state(self, pre_shape, post_shape, weight_shape, batch_shape=()):
        """What a trainer calls: :meth:`init` with the batch axes in front. Rules whose
        state is shaped like ``W`` (eligibility traces) override this."""
        batch_shape = tuple(batch_shape)
        return self.init(batch_shape + tuple(pre_shape), batch_shape + tuple(post_shape))

    # -- introspection ---------------------------------------------------------------
    @classmethod
    def extras(cls) -> Tuple[str, ...]:
        """Names of the keyword arguments :meth:`update` takes beyond the standard five."""
        return _signature(cls)[0]

    @classmethod
    def required_extras(cls) -> Tuple[str, ...]:
        """The extras without a default (a call must give them, e.g. ``reward``)."""
        return _signature(cls)[1]

    def validate(self) -> None:
        """Raise ``ValueError``/``TypeError`` naming a bad hyperparameter (default: none)."""

    def check_shapes(self, weight_shape, bounds) -> None:
        """Check the rule's functions against ``W``'s shape (e.g. a user weight
        dependence); raise ``ValueError`` naming what does not fit. Default: nothing."""

    def replace(self, **changes) -> "Rule":
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)


_SIGNATURES: Dict[type, Tuple[Tuple[str, ...], Tuple[str, ...]]] = {}


def _signature(cls) -> Tuple[Tuple[str, ...], Tuple[str, ...]]:
    """``(extras, required extras)`` of ``cls.update``, read once per class."""
    if cls not in _SIGNATURES:
        params = list(inspect.signature(cls.update).parameters.values())[len(_STANDARD_ARGS):]
        named = [p for p in params if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)]
        _SIGNATURES[cls] = (tuple(p.name for p in named),
                            tuple(p.name for p in named if p.default is p.empty and p.name != "bounds"))
    return _SIGNATURES[cls]


_FIELDS: Dict[type, Tuple[Tuple[str, bool], ...]] = {}


def _fields(cls) -> Tuple[Tuple[str, bool], ...]:
    """``(name, declared static)`` of each field of a rule class, read once per class."""
    if cls not in _FIELDS:
        _FIELDS[cls] = tuple((f.name, bool(f.metadata.get("static"))) for f in dataclasses.fields(cls))
    return _FIELDS[cls]


def _split(rule: Rule):
    traced, fixed = [], []
    for name, declared_static in _fields(type(rule)):
        value = getattr(rule, name)
        if declared_static or not _is_traced(value):
            fixed.append((name, value))
        else:
            traced.append((name, value))
    return traced, fixed


def _flatten(rule: Rule):
    traced, fixed = _split(rule)
    return [value for _, value in traced], (tuple(name for name, _ in traced), tuple(fixed))


def _unflatten(cls, aux, leaves):
    names, fixed = aux
    obj = object.__new__(cls)
    for name, value in zip(names, leaves):
        object.__setattr__(obj, name, value)
    for name, value in fixed:
        object.__setattr__(obj, name, value)
    return obj


def rule_config(rule: Rule) -> dict:
    """A rule as plain data for a checkpoint: its class and its fields (a built-in weight
    dependence by name; a wrapped rule nested; other objects as they are, which a
    checkpoint stores as a placeholder to be passed again when loading)."""
    from ..functional.dependence import DEPENDENCES

    names = {fn: name for name, fn in DEPENDENCES.items()}
    config = {"rule": f"{type(rule).__module__}.{type(rule).__qualname__}"}
    for field in dataclasses.fields(rule):
        value = getattr(rule, field.name)
        if isinstance(value, Rule):
            value = rule_config(value)
        elif callable(value) and value in names:
            value = names[value]
        config[field.name] = value
    return config


def rule_from_config(config: dict) -> Rule:
    """The rule :func:`rule_config` describes (only classes already defined are built)."""
    from ..functional.dependence import resolve_dependence

    config = dict(config)
    kind = config.pop("rule", None)
    cls = _RULES.get(kind)
    if cls is None:
        raise ValueError(f"rule {kind!r} is not defined: import the module that defines it before loading")
    fields = {}
    for name, value in config.items():
        if isinstance(value, dict) and "rule" in value:
            value = rule_from_config(value)
        elif name == "dependence":
            value = resolve_dependence(value)
        fields[name] = value
    rule = cls(**fields)
    rule.validate()
    return rule
