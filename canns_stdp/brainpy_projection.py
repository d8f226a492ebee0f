"""A BrainPy projection whose weights learn by any rule of this library.

:class:`PlasticProjection` sits in a ``bp.DynSysGroup`` like BrainPy's own projections
(``bp.dyn.FullProjAlignPostMg``, ``bp.dyn.STDP_Song2000``): it reads the presynaptic
spikes through BrainPy's delay and sends ``current(W, a)`` to a BrainPy synapse and
output (``bp.dyn.Expon.desc(...)`` with ``bp.dyn.COBA.desc(...)`` or ``bp.dyn.CUBA.desc()``)
or, with ``syn=None``, straight onto the target's potential (delta synapses).

Its plasticity is a projection step of :mod:`canns_stdp.network` (docs/step.md,
"Networks"), made of the library's functions: the traces advance (``x :=`` the arriving
spikes ``a``, ``s :=`` the target's spikes), the rule gives ``dW`` from the connectivity's
Hebbian term, and ``W' = clip(W + lr · dW, w_min, w_max)``; absent synapses never change.
When it happens is ``timing``:

* ``"network"`` (default), the order of :mod:`canns_stdp.network`: the input of a step
  uses the weights before the step's change; the change comes right after the target
  updates (an after-update registered on it) and pairs the step's arrivals with the
  target's spikes of the same step.
* ``"brainpy"``, the order of ``bp.dyn.STDP_Song2000``: in the projection's update, before
  the neurons, the change pairs the step's arrivals with the target's spikes of the step
  before; the input then uses the changed weights.

Weights are laid out as in :mod:`canns_stdp.network`: ``(n_post, n_pre)`` for all-to-all
connectivity, ``(n_syn,)`` for a sparse one (the synapses of ``connectivity.indices()``).
"""

from __future__ import annotations

import math
from typing import Any, Callable, NamedTuple, Optional, Tuple

import brainpy as bp
import brainpy.math as bm
import jax
import jax.numpy as jnp
import numpy as np
from brainpy.delay import register_delay_by_return
from brainpy.dyn.projections.align_post import align_post_add_bef_update
from brainpy.dyn.projections.align_pre import align_pre2_add_bef_update
from brainpy.mixin import AlignPost, ParamDescriber, ReturnInfo

from . import _validation as v
from .functional.dependence import WeightBounds
from .functional.stdp import TraceParams, Traces, apply_bounds, update_traces
from .functional.traces import TRACE_MODES
from .network.connectivity import AllToAll, Connectivity, Sparse, resolve
from .rules.base import Activity, Rule

__all__ = ["PlasticProjection"]

EXTRAS = ("bounds", "reward")  # the per-step inputs a PlasticProjection gives a rule
TIMINGS = ("network", "brainpy")


class Plasticity(NamedTuple):
    """The numbers and choices of one projection's plasticity step (see the module doc)."""

    rule: Rule
    connectivity: Connectivity
    arrays: dict
    trace_add: Callable
    traces: TraceParams
    lr: float
    bounds: WeightBounds
    hardbound: bool
    takes: Tuple[str, ...]   # the extras the rule's update declares
    learning: bool = True

    def __call__(self, W, tr_pre, tr_post, rule_state, a, s, reward):
        """``(W', trace_pre', trace_post', rule_state')`` after one step."""
        dW, new, rule_state, bounds = self.change(W, tr_pre, tr_post, rule_state, a, s, reward)
        if dW is not None:
            W = self.connectivity.keep_absent(self.arrays, W,
                                              apply_bounds(W, np.float32(self.lr) * dW, bounds, self.hardbound))
        return W, new.pre, new.post, rule_state

    def change(self, W, tr_pre, tr_post, rule_state, a, s, reward):
        """``(dW or None when not learning, new traces, rule_state', bounds)``."""
        traces = TraceParams(*(np.float32(x) for x in self.traces))
        new, decayed = update_traces(self.trace_add, traces, Traces(tr_pre, tr_post), a, s)
        pre, post = Activity(a, new.pre, decayed.pre), Activity(s, new.post, decayed.post)
        bounds = WeightBounds(*(np.float32(x) for x in self.bounds))
        if not self.learning:
            return None, new, self.rule.advance(rule_state, pre, post), bounds
        given = {"bounds": bounds, "reward": reward}
        conn, arrays = self.connectivity, self.arrays

        def hebbian(post_term, pre_term):
            return conn.hebbian(arrays, W, post_term, pre_term, False)

        dW, rule_state = self.rule.update(rule_state, pre, post, W, hebbian, **{k: given[k] for k in self.takes})
        return dW, new, rule_state, bounds

    def initial_rule_state(self):
        c = self.connectivity
        return self.rule.init_state((c.n_pre,), (c.n_post,), c.shape)

    def check(self, W) -> None:
        """Run one step abstractly: a rule whose ``dW`` or state does not fit fails here,
        naming the rule, before anything runs."""
        name, shape, state = type(self.rule).__name__, self.connectivity.shape, self.initial_rule_state()
        pre, post = jnp.zeros((self.connectivity.n_pre,)), jnp.zeros((self.connectivity.n_post,))
        try:
            dW, _, new_state, _ = jax.eval_shape(self._replace(learning=True).change, W, pre, post, state, pre, post,
                                                 jnp.zeros(()))
            jax.eval_shape(self.rule.advance, state, Activity(pre, pre, pre), Activity(post, post, post))
        except Exception as err:  # noqa: BLE001 - a user rule can fail in any way
            raise ValueError(f"rule {name} failed on W of shape {shape}: {err}") from err
        if jnp.shape(dW) != shape:
            raise ValueError(f"rule {name} must return dW of W's shape {shape}, got shape {jnp.shape(dW)}")
        want, got = jax.tree_util.tree_structure(state), jax.tree_util.tree_structure(new_state)
        if got != want:
            raise ValueError(f"rule {name} must return a state of the structure its init makes ({want}), got {got}")


def connectivity_of(conn, n_pre: int, n_post: int) -> Connectivity:
    """The library's connectivity for a ``bp.conn`` connector (or a connectivity of
    :mod:`canns_stdp.network`), checked against the populations' sizes."""
    if conn is None:
        return AllToAll(n_pre, n_post)
    if isinstance(conn, bp.conn.All2All) and (conn.include_self or n_pre != n_post):
        return AllToAll(n_pre, n_post)
    if isinstance(conn, bp.conn.TwoEndConnector):
        if conn.pre_num is not None and (conn.pre_num, conn.post_num) != (n_pre, n_post):
            raise ValueError(f"conn is built for {conn.pre_num} -> {conn.post_num} neurons but pre and post "
                             f"have {n_pre} -> {n_post}, got conn={conn!r}")
        if conn.pre_num is None:
            conn = conn(n_pre, n_post)
        pre_ids, post_ids = conn.require("pre_ids", "post_ids")
        return Sparse(np.asarray(pre_ids), np.asarray(post_ids)).bind(n_pre, n_post)
    if isinstance(conn, (str, Connectivity)) or callable(getattr(conn, "bind", None)):
        try:
            return resolve(conn, n_pre, n_post)
        except ValueError as err:
            raise ValueError(f"conn: {err}") from None
    raise TypeError(f"conn must be None (all to all), a bp.conn connector or a canns_stdp.network "
                    f"connectivity, got {conn!r}")


def weights_of(weight, shape) -> np.ndarray:
    """``weight`` (a number, an array of ``shape`` or an initializer) as float32 ``shape``."""
    if callable(weight):  # a bp.init initializer, or any (shape) -> array
        weight = weight(shape)
    if weight is None or isinstance(weight, (bool, str)):
        raise TypeError(f"weight must be a number, an array of shape {tuple(shape)} or an initializer, "
                        f"got {weight!r}")
    arr = np.asarray(bm.as_numpy(weight), np.float64)
    if arr.shape not in ((), tuple(shape)):
        raise ValueError(f"weight must be a number or of the weights' shape {tuple(shape)}, got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError("weight must be finite")
    return np.broadcast_to(arr, shape).astype(np.float32)


def _bounds(w_min, w_max) -> WeightBounds:
    lo, hi = v.check_number("w_min", w_min), v.check_number("w_max", w_max)
    if np.float32(lo) >= np.float32(hi):
        raise ValueError(f"w_min must be < w_max (in float32), got w_min={lo!r}, w_max={hi!r}")
    return WeightBounds(lo, hi)


def _decay(label: str, tau) -> float:
    """``exp(-dt/τ)`` per step of ``bm.get_dt()``, checked."""
    dt = float(bm.get_dt())
    d = math.exp(-dt / v.check_positive(label, tau))
    if not np.float32(d) > 0:
        raise ValueError(f"{label} = {tau!r} ms makes the decay exp(-dt/tau) 0 in float32 at dt = {dt}")
    return d


def _check_size(syn, n: int) -> None:
    """A synapse aligned with the targets (``Expon``) has their number; one aligned with the
    sources (``DualExpon``, ``AMPA``: one variable per presynaptic neuron) has theirs."""
    size = syn.args[0] if syn.args else syn.kwargs.get("size")
    if size is not None and bp.tools.size2num(size) != n:
        side = "post" if issubclass(syn.cls, AlignPost) else "pre"
        raise ValueError(f"syn {syn.cls.__name__} must have the size of {side} ({n}), got size {size!r}")


def _flat(x):
    return jnp.asarray(bm.as_jax(x), jnp.float32).reshape(-1)


class _Delta:
    """The output of delta synapses: the input moves the target's potential as it is."""

    def __init__(self):
        self.value = None

    def bind_cond(self, value):
        self.value = value

    def __call__(self, *args, **kwargs):
        return self.value


class _AfterTarget(bp.DynamicalSystem):
    """The after-update of the target that runs the projection's plasticity."""

    def __init__(self, projection):
        super().__init__()
        self.refs = {"projection": projection}  # a reference, not a child node

    def update(self, *args):
        self.refs["projection"].learn()

    def reset_state(self, *args, **kwargs):
        pass


class PlasticProjection(bp.Projection):
    """A BrainPy projection ``pre → post`` whose weights follow a rule of this library.

    Args:
        pre, post: BrainPy neuron groups with a ``spike`` variable (``bp.dyn.LifRef``, ...).
        rule: a :class:`~canns_stdp.rules.Rule`: ``rules.pair()``, ``rules.triplet()``,
            ``rules.reward(...)`` or a subclass of your own.
        conn: ``None`` (all to all), a ``bp.conn`` connector (``bp.conn.All2All()``,
            ``bp.conn.FixedProb(0.1, seed=0)``, ...) or a :mod:`canns_stdp.network`
            connectivity.
        weight: initial weights: a number, an array shaped like ``W``, or an initializer
            such as ``bp.init.Uniform(0., 0.1)`` (called with ``W``'s shape).
        delay: the presynaptic delay in ms, or ``None``, as for BrainPy's projections.
        syn, out: BrainPy descriptions (``bp.dyn.Expon.desc(n, tau=5.)``,
            ``bp.dyn.COBA.desc(E=0.)``); both ``None``: delta synapses.
        learning_rate, w_min, w_max, hardbound: ``W' = clip(W + lr · dW, w_min, w_max)``
            (no clipping when ``hardbound`` is ``False``), as for :class:`~canns_stdp.Trainer`.
        tau_pre, tau_post: the traces' time constants in ms (decay ``exp(-dt/τ)`` per step of
            ``bm.get_dt()``); a_pre, a_post: their increments per spike; trace_mode:
            ``"cumulative"`` or ``"nearest"``.
        timing: ``"network"`` or ``"brainpy"`` (see the module doc).
        out_label, name, mode: as for BrainPy's projections (non-batching modes only).

    Attributes:
        W: the weights, a ``bm.Variable`` (:attr:`weights` reads and sets them checked).
        reward: the reward of this step for a reward-modulated rule, a ``bm.Variable``
            (or give ``reward=`` to the projection's update).
        connectivity: the library's connectivity the weights are laid out by.

    Example:
        >>> import brainpy as bp, brainpy.math as bm
        >>> from canns_stdp import PlasticProjection, rules
        >>> class Net(bp.DynSysGroup):
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.inp = bp.dyn.PoissonGroup(20, freqs=50.)
        ...         self.out = bp.dyn.LifRef(4, V_rest=0., V_reset=0., V_th=1., tau=10.)
        ...         self.proj = PlasticProjection(self.inp, self.out, rules.pair(), weight=0.3)
        >>> net = Net()
        >>> bp.DSRunner(net, progress_bar=False).run(50.)   # 500 steps of 0.1 ms
        >>> net.proj.weights.shape
        (4, 20)
    """

    def __init__(self, pre, post, rule: Rule, *, conn: Any = None, weight: Any = 0.5,
                 delay: Optional[float] = None, syn: Any = None, out: Any = None,
                 learning_rate: float = 1.0, w_min: float = 0.0, w_max: float = 1.0, hardbound: bool = True,
                 tau_pre: float = 20.0, tau_post: float = 20.0, a_pre: float = 1.0, a_post: float = 1.0,
                 trace_mode: str = "cumulative", timing: str = "network", out_label: Optional[str] = None,
                 name: Optional[str] = None, mode: Optional[bm.Mode] = None):
        # every check first: a failed construction leaves pre and post as they were
        for label, group in (("pre", pre), ("post", post)):
            if not isinstance(group, bp.DynamicalSystem) or not isinstance(getattr(group, "spike", None),
                                                                           bm.Variable):
                raise TypeError(f"{label} must be a BrainPy neuron group with a spike variable, got {group!r}")
            if group.mode.is_child_of(bm.BatchingMode):
                raise ValueError(f"{label} must be in a non-batching mode, got {group.mode!r}")
        if not isinstance(rule, Rule):
            raise TypeError(f"rule must be a canns_stdp.rules.Rule (rules.pair(), rules.triplet(), ...), "
                            f"got {rule!r}")
        rule.validate()
        unknown = [e for e in rule.required_extras() if e not in EXTRAS]
        if unknown:
            raise ValueError(f"rule {type(rule).__name__} needs per-step inputs {unknown}; "
                             f"a PlasticProjection gives {EXTRAS}")
        if (syn is None) != (out is None):
            raise ValueError(f"syn and out go together (both None: delta synapses), got syn={syn!r}, out={out!r}")
        for label, desc in (("syn", syn), ("out", out)):
            if desc is not None and not isinstance(desc, ParamDescriber):
                raise TypeError(f"{label} must be a BrainPy description such as bp.dyn.Expon.desc(n, tau=5.) "
                                f"or bp.dyn.COBA.desc(E=0.), got {desc!r}")
        if syn is not None:
            _check_size(syn, post.num if issubclass(syn.cls, AlignPost) else pre.num)
        if delay is not None:
            v.check_nonnegative("delay", delay)
        v.check_choice("trace_mode", trace_mode, tuple(TRACE_MODES))
        v.check_choice("timing", timing, TIMINGS)
        connectivity = connectivity_of(conn, pre.num, post.num)
        bounds = _bounds(w_min, w_max)
        rule.check_shapes(connectivity.shape, bounds)
        plasticity = Plasticity(
            rule, connectivity, {k: jnp.asarray(a) for k, a in connectivity.arrays().items()},
            TRACE_MODES[trace_mode],
            TraceParams(_decay("tau_pre", tau_pre), _decay("tau_post", tau_post), v.check_number("a_pre", a_pre),
                        v.check_number("a_post", a_post)),
            v.check_nonnegative("learning_rate", learning_rate), bounds, v.check_bool("hardbound", hardbound),
            tuple(e for e in rule.extras() if e in EXTRAS))
        W0 = jnp.asarray(weights_of(weight, connectivity.shape))
        plasticity.check(W0)
        if mode is not None and mode.is_child_of(bm.BatchingMode):
            raise ValueError(f"mode must be a non-batching mode, got {mode!r}")

        super().__init__(name=name, mode=mode)
        self.plasticity, self.timing = plasticity, timing
        state = plasticity.initial_rule_state()
        self.W = bm.Variable(W0)
        self.rule_state = bm.VarList([bm.Variable(jnp.asarray(x)) for x in jax.tree_util.tree_leaves(state)])
        self._state_def = jax.tree_util.tree_structure(state)
        self.trace_pre = bm.Variable(jnp.zeros((pre.num,), jnp.float32))
        self.trace_post = bm.Variable(jnp.zeros((post.num,), jnp.float32))
        self.arrivals = bm.Variable(jnp.zeros((pre.num,), jnp.float32))
        self.reward = bm.Variable(jnp.zeros((), jnp.float32))

        # wiring, as BrainPy's own projections do
        delay_cls = register_delay_by_return(pre)
        delay_cls.register_entry(self.name, delay)
        self._align_post = syn is not None and issubclass(syn.cls, AlignPost)
        if syn is None:
            syn_cls, out_cls = None, _Delta()
            post.add_inp_fun(self.name, out_cls, category="delta")
        elif self._align_post:
            syn_cls, out_cls = align_post_add_bef_update(out_label, syn_desc=syn, out_desc=out, post=post,
                                                         proj_name=self.name)
        else:
            syn_cls = align_pre2_add_bef_update(syn, delay, delay_cls, self.name + "-pre")
            out_cls = out()
            post.add_inp_fun(self.name, out_cls, label=out_label)
        if timing == "network":
            post.add_aft_update(self.name + "-plasticity", _AfterTarget(self))
        self.refs = {"pre": pre, "post": post, "delay": delay_cls, "syn": syn_cls, "out": out_cls}

    pre = property(lambda self: self.refs["pre"])
    post = property(lambda self: self.refs["post"])
    rule = property(lambda self: self.plasticity.rule)
    connectivity = property(lambda self: self.plasticity.connectivity)

    # -- settings (read when a run compiles its step) -------------------------------------
    @property
    def learning_rate(self) -> float:
        return self.plasticity.lr

    @learning_rate.setter
    def learning_rate(self, value):
        self.plasticity = self.plasticity._replace(lr=v.check_nonnegative("learning_rate", value))

    @property
    def bounds(self) -> Tuple[float, float]:
        """``(w_min, w_max)``; set both at once."""
        return self.plasticity.bounds.w_min, self.plasticity.bounds.w_max

    @bounds.setter
    def bounds(self, value):
        if not isinstance(value, (tuple, list)) or len(value) != 2:
            raise ValueError(f"bounds must be a pair (w_min, w_max), got {value!r}")
        self.plasticity = self.plasticity._replace(bounds=_bounds(*value))

    @property
    def learning(self) -> bool:
        """``False`` holds the weights; the traces and the rule's traces still move."""
        return self.plasticity.learning

    @learning.setter
    def learning(self, value):
        self.plasticity = self.plasticity._replace(learning=v.check_bool("learning", value))

    @property
    def weights(self) -> np.ndarray:
        """A NumPy copy of ``W``; assign a number or an array of ``W``'s shape to set it."""
        return np.array(self.W.value)

    @weights.setter
    def weights(self, value):
        self.W.value = jnp.asarray(weights_of(value, self.connectivity.shape))

    # -- state ------------------------------------------------------------------------------
    def reset_state(self, *args, **kwargs):
        """Traces, the rule's state, the arrivals and the reward back to zero; the weights stay."""
        for var in (self.trace_pre, self.trace_post, self.arrivals, self.reward):
            var.value = jnp.zeros_like(var.value)
        for var, leaf in zip(self.rule_state, jax.tree_util.tree_leaves(self.plasticity.initial_rule_state())):
            var.value = jnp.asarray(leaf)

    # -- the step ---------------------------------------------------------------------------
    def update(self, reward=None):
        """This step's input from the arriving spikes (and, with ``timing="brainpy"``, the
        plasticity first). Returns the input sent to the target."""
        if reward is not None:
            if "reward" not in self.plasticity.takes:
                raise TypeError(f"reward= is given but rule {type(self.rule).__name__} takes no reward")
            if jnp.shape(reward) != ():
                raise ValueError(f"reward must be one number per step, got shape {jnp.shape(reward)}")
            self.reward.value = jnp.asarray(reward, jnp.float32)
        self.arrivals.value = _flat(self.refs["delay"].at(self.name))
        if self.timing == "brainpy":
            self.learn()
        x = self.arrivals.value
        if self.refs["syn"] is not None and not self._align_post:  # align-pre: the synapses' variable
            info = self.refs["syn"].return_info()
            x = _flat(info.get_data() if isinstance(info, ReturnInfo) else info.value)
        current = self.connectivity.current(self.plasticity.arrays, self.W.value, x, False)
        current = current.reshape(self.refs["post"].varshape)
        if self._align_post:
            self.refs["syn"].add_current(current)
        else:
            self.refs["out"].bind_cond(current)
        return current

    def learn(self):
        """The plasticity of this step, from the arrivals and the target's latest spikes."""
        state = jax.tree_util.tree_unflatten(self._state_def, [x.value for x in self.rule_state])
        W, tr_pre, tr_post, state = self.plasticity(self.W.value, self.trace_pre.value, self.trace_post.value, state,
                                                    self.arrivals.value, _flat(self.refs["post"].spike.value),
                                                    self.reward.value)
        self.W.value, self.trace_pre.value, self.trace_post.value = W, tr_pre, tr_post
        for var, leaf in zip(self.rule_state, jax.tree_util.tree_leaves(state)):
            var.value = leaf
