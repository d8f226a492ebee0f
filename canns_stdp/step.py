"""One step of a plastic layer: a neuron, a synaptic map and a rule composed (the whole
of the page "What one training step computes").

    1. tr_pre'  = add(d_pre · tr_pre, x, a_pre)
    2. v'       = leak · v + M(W, x)                 (M: dense, masked or conv map)
    3. s        = 1[v' ≥ threshold]  (or the imposed post spikes)
    4. v''      = v_reset where s    (with a refractory period: v held and no spike
                                      for that many steps after a spike)
    5. tr_post' = add(d_post · tr_post, s, a_post)
    6. dW, r'   = rule.update(r, pre, post, W, H)    (H: the map's Hebbian term)
    7. W'       = clip(W + lr · dW, w_min, w_max)    (when hardbound; synapses a
                                                      masked map lacks never change)

:func:`plastic_step` is the body that both loops (compiled and Python) run for every
rule on every map; :func:`advance_neurons` (steps 1-5) is shared with the execution
kernels of :mod:`canns_stdp.functional.layer_step`, which compute the same step for the
pair rule with other memory layouts.

Example:
    >>> import jax.numpy as jnp
    >>> from canns_stdp import rules
    >>> from canns_stdp.step import StepConfig, StepParams, StepState, plastic_step
    >>> from canns_stdp.functional.layer_step import LayerState
    >>> layer = LayerState.zeros(n_in=3, n_out=2, W=jnp.full((2, 3), 0.6))
    >>> state = StepState(layer, ())
    >>> params = StepParams(rule=rules.pair())
    >>> state, s = plastic_step(StepConfig(), params, state, jnp.array([1., 1., 0.]))
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, NamedTuple, Optional, Tuple

import jax
import jax.numpy as jnp

from .functional.dependence import WeightBounds
from .functional.neurons import LIFParams, lif_step, refractory_lif_step
from .functional.stdp import TraceParams, Traces, apply_bounds, update_traces
from .functional.synapses import Dense, LinearMap
from .functional.traces import cumulative_add
from .rules.base import Activity, Rule

__all__ = ["Hebbian", "StepConfig", "StepParams", "StepState", "advance_neurons", "check_rule", "forward_step",
           "plastic_step"]


@dataclass(frozen=True)
class StepConfig:
    """The choices that shape the compiled code of a step (static under ``jit``).

    ``extras`` names the per-step inputs after ``x`` and ``post`` (e.g. ``("reward",)``),
    in the order the loops pass them; ``bounds`` says whether the rule takes the weight
    bounds (its ``update`` has a ``bounds`` argument).
    """

    trace_add: Callable = cumulative_add
    synapse: LinearMap = Dense()
    hardbound: bool = True
    batch_reduction: str = "sum"
    extras: Tuple[str, ...] = ()
    bounds: bool = True


class StepParams(NamedTuple):
    """The numbers of a step (traced: changing them never recompiles); the rule's
    numeric fields are leaves of ``rule``."""

    lif: LIFParams = LIFParams()
    traces: TraceParams = TraceParams()
    lr: Any = 0.01
    bounds: WeightBounds = WeightBounds()
    rule: Rule = None


class StepState(NamedTuple):
    """The layer's state and the rule's."""

    layer: Any
    rule: Any


class Hebbian:
    """The synaptic map's Hebbian term ``H(post_term, pre_term)`` at weights ``W``,
    reduced over a batch axis by ``reduction`` (``"sum"`` or ``"mean"``).

    ``per_sample`` is the unreduced term, for a rule that ``jax.vmap``s over the samples
    of a batch, and ``reduce`` reduces such per-sample changes over their leading axis.
    """

    def __init__(self, synapse: LinearMap, W, batch_size: int = 1, reduction: str = "sum"):
        self.synapse, self.W = synapse, W
        self.scale = 1.0 / batch_size if reduction == "mean" and batch_size > 1 else 1.0

    def __call__(self, post_term, pre_term):
        term = self.synapse.hebbian(self.W, post_term, pre_term)
        return term * self.scale if self.scale != 1.0 else term

    @property
    def per_sample(self) -> "Hebbian":
        return Hebbian(self.synapse, self.W)

    def reduce(self, changes):
        total = jnp.sum(changes, axis=0)
        return total * self.scale if self.scale != 1.0 else total


def advance_neurons(trace_add: Callable, lif: LIFParams, traces: TraceParams, layer, x, post, current):
    """Steps 1-5 from the synaptic ``current``: ``(layer', new traces, decayed traces)``.

    A layer state with a ``refractory_left`` counter (a
    :class:`~canns_stdp.functional.layer_step.RefractoryLayerState`) has a refractory period
    of ``lif.refractory`` steps (:func:`~canns_stdp.functional.neurons.refractory_lif_step`)."""
    left = getattr(layer, "refractory_left", None)
    if left is None:
        spikes, v = lif_step(lif, layer.v, current, post)
        changes = {}
    else:
        spikes, v, left = refractory_lif_step(lif, layer.v, left, current, post)
        changes = {"refractory_left": left}
    new, decayed = update_traces(trace_add, traces, Traces(layer.trace_pre, layer.trace_post), x, spikes)
    return layer._replace(v=v, spike=spikes, trace_pre=new.pre, trace_post=new.post, **changes), new, decayed


def forward_step(config: StepConfig, params: StepParams, state: StepState, x, post=None, *extras):
    """Steps 1-5 only, no plasticity; the rule's state moves as ``rule.advance`` says
    (traces of the spikes move, eligibilities stay)."""
    layer, new, decayed = advance_neurons(config.trace_add, params.lif, params.traces, state.layer, x, post,
                                          config.synapse.current(state.layer.W, x))
    rule_state = params.rule.advance(state.rule, Activity(x, new.pre, decayed.pre),
                                     Activity(layer.spike, new.post, decayed.post))
    return StepState(layer, rule_state), layer.spike


def plastic_step(config: StepConfig, params: StepParams, state: StepState, x,
                 post: Optional[Any] = None, *extras):
    """Steps 1-7 for ``params.rule``. Returns ``(state, spikes)``.

    Args:
        config: static choices (trace mode, synaptic map, clipping, batch reduction,
            names of the extra per-step inputs).
        params: numbers of the neuron, the traces, ``lr``, the bounds, and the rule.
        state: the layer's state (``W``, ``v``, ``spike``, ``trace_pre``,
            ``trace_post``) and the rule's.
        x: this step's input, the map's input shape (a leading batch axis allowed).
        post: optional imposed output spikes.
        *extras: per-step inputs named by ``config.extras`` (e.g. the reward).
    """
    W = state.layer.W
    layer, new, decayed = advance_neurons(config.trace_add, params.lif, params.traces, state.layer, x, post,
                                          config.synapse.current(W, x))
    hebbian = Hebbian(config.synapse, W, config.synapse.batch_size(x), config.batch_reduction)
    kwargs = dict(zip(config.extras, extras))
    if config.bounds:
        kwargs["bounds"] = params.bounds
    dW, rule_state = params.rule.update(state.rule, Activity(x, new.pre, decayed.pre),
                                        Activity(layer.spike, new.post, decayed.post), W, hebbian, **kwargs)
    W = config.synapse.keep_absent(W, apply_bounds(W, params.lr * dW, params.bounds, config.hardbound))
    return StepState(layer._replace(W=W), rule_state), layer.spike


_CHECKED: set = set()  # configurations whose rule has been run abstractly


def _built_in(rule: Rule) -> bool:
    """Whether ``rule`` and every rule it wraps are the library's own."""
    inner = [value for value in vars(rule).values() if isinstance(value, Rule)]
    return type(rule).__module__.startswith("canns_stdp.rules.") and all(_built_in(r) for r in inner)


def check_rule(config: StepConfig, params: StepParams, state: StepState, seq) -> None:
    """Run :func:`plastic_step` once abstractly (``jax.eval_shape``, no arithmetic): a user
    rule whose change does not fit ``W``, or whose state changes structure, fails here
    with its name before anything runs. Once per configuration and shapes; the library's
    own rules are trusted.

    Raises:
        ValueError: naming the rule and what does not fit.
    """
    if _built_in(params.rule):
        return
    key = (config, jax.tree_util.tree_structure(params), jax.tree_util.tree_structure(state),
           tuple(jnp.shape(a) for a in jax.tree_util.tree_leaves(state)),
           tuple(None if a is None else a.shape[1:] for a in seq))
    if key in _CHECKED:
        return
    name, shape = type(params.rule).__name__, tuple(state.layer.W.shape)
    first = tuple(None if a is None else jax.ShapeDtypeStruct(a.shape[1:], a.dtype) for a in seq)
    try:
        out, _ = jax.eval_shape(lambda s, *xs: plastic_step(config, params, s, *xs), state, *first)
    except Exception as err:  # noqa: BLE001 - a user rule can fail in any way
        raise ValueError(f"rule {name} failed on W of shape {shape}: {err}") from err
    if out.layer.W.shape != shape:
        raise ValueError(f"rule {name} must return dW of W's shape {shape}, got shape {out.layer.W.shape}")
    want = jax.tree_util.tree_structure(state.rule)
    if jax.tree_util.tree_structure(out.rule) != want:
        raise ValueError(f"rule {name} must return a state of the structure its init makes ({want}), "
                         f"got {jax.tree_util.tree_structure(out.rule)}")
    _CHECKED.add(key)
