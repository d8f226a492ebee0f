"""One step of a network (the order is that of docs/step.md, "Networks"):

1. input populations emit (given activity, or Poisson spikes from the key and the step),
2. each projection's arrivals ``a(t) = s_pre(t - D)`` are read from its source's ring
   buffer of past spikes (its current spikes for ``D = 0``),
3. populations update in the order of the zero-delay projections, each from the input its
   projections deliver, ``Σ current(W, a)`` per receptor; their spikes enter their ring
   buffers at once,
4. each plastic projection advances its traces (``x := a(t)``, ``s :=`` its target's
   spikes), asks its rule for ``dW`` from its connectivity's Hebbian term, and applies
   ``W' = clip(W + lr · dW, w_min, w_max)`` (absent synapses never change).

The functions of a layer's step (:mod:`canns_stdp.step`) are used as they are, so a
network of one input, one :class:`~canns_stdp.network.LayerLIF` population and one
projection of delay 0 computes bitwise what the layer computes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple, Optional, Tuple

import jax.numpy as jnp

from ..functional.dependence import WeightBounds
from ..functional.stdp import TraceParams, Traces, apply_bounds, update_traces
from ..rules.base import Activity
from .connectivity import listed, visit_events

__all__ = ["NetConfig", "NetParams", "NetState", "PopConfig", "ProjConfig", "ProjState", "network_step"]


@dataclass(frozen=True)
class PopConfig:
    """A population's static part: its name, its template (numbers left out), its ring
    buffer length (0: none) and whether the caller gives its activity or imposes spikes."""

    name: str
    template: Any
    history: int
    given: bool
    imposed: bool


@dataclass(frozen=True)
class ProjConfig:
    """A projection's static part."""

    name: str
    pre: int           # population indices
    post: int
    receptor: str
    connectivity: Any
    delay: Optional[int]       # uniform delay, or None when per synapse
    plastic: bool
    local: bool                # plasticity visits only the synapses of the neurons that spiked
    trace_add: Any
    hardbound: bool
    extras: Tuple[str, ...]    # the rule's extra inputs (``bounds``, ``reward``)


@dataclass(frozen=True)
class NetConfig:
    pops: Tuple[PopConfig, ...]
    projs: Tuple[ProjConfig, ...]
    order: Tuple[int, ...]     # population update order
    learn: bool = True
    reward: bool = False       # a reward is given at every step
    samplers: tuple = ()       # what the monitors record (monitors.Sampler)
    split: Any = None          # neurons split over devices: gathers a population's spikes (sharded.NeuronSplit)


class ProjParams(NamedTuple):
    arrays: dict               # connectivity index arrays
    delays: Any                # per-synapse delays, or None
    lr: Any
    bounds: WeightBounds
    traces: TraceParams
    rule: Any


class NetParams(NamedTuple):
    dt: Any
    pops: tuple                # per population: its numbers
    projs: tuple               # per projection: ProjParams
    take: tuple = ()           # per sampler: the indices it records


class ProjState(NamedTuple):
    W: Any
    trace_pre: Any
    trace_post: Any
    rule: Any


class NetState(NamedTuple):
    t: Any                     # steps run so far (int32)
    seed: Any                  # uint32 seed of the Poisson inputs' streams
    pops: tuple
    history: tuple             # per population: (H, n) past spikes, or None
    projs: tuple


def _arrivals(config: NetConfig, params: NetParams, state: NetState, history, spikes, k: int):
    """``a(t)`` of projection ``k``: per presynaptic neuron, or per synapse."""
    proj, p = config.projs[k], params.projs[k]
    if proj.delay == 0:
        return spikes[proj.pre]
    buffer = history[proj.pre]
    H = buffer.shape[0]
    if proj.delay is not None:
        return buffer[(state.t - proj.delay) % H]
    return buffer[(state.t - p.delays) % H, proj.connectivity.pre_index(p.arrays)]


def network_step(config: NetConfig, params: NetParams, state: NetState, given: tuple, imposed: tuple,
                 reward=None):
    """One step; ``given`` holds this step's activity of the populations whose activity
    the caller gives, ``imposed`` the spikes imposed on populations (in the order of
    ``config.pops`` among those that take them). Returns ``(state', spikes per population)``.

    With ``config.split`` (a network whose neurons are split over devices, see
    :mod:`~canns_stdp.network.sharded`), the state holds this device's neurons and the
    synapses onto them: each population's spikes are gathered as they are computed, and
    the gathered spikes feed the projections, the ring buffers and the output, while
    the plasticity of this device's synapses takes its own neurons' spikes."""
    n_pops = len(config.pops)
    pops, history = list(state.pops), list(state.history)
    spikes: list = [None] * n_pops
    own: dict = {}  # a split population's own neurons' spikes (the others: ``spikes``)
    arrivals: dict = {}
    events: dict = {}  # (population, delay): its active neurons, listed once per step

    def events_of(key, vector):
        if key not in events:
            events[key] = listed(vector != 0)
        return events[key]

    given_of = dict(zip([i for i, c in enumerate(config.pops) if c.given], given))
    imposed_of = dict(zip([i for i, c in enumerate(config.pops) if c.imposed], imposed))
    for i in config.order:
        pop = config.pops[i]
        template = pop.template
        if pop.given:
            s = given_of[i]
            pops[i] = pops[i]._replace(spike=s)
        elif template.is_input:  # Poisson
            s = template.emit(params.pops[i], state.seed + jnp.uint32(i * 0x632BE5AB), state.t, params.dt)
            pops[i] = pops[i]._replace(spike=s)
        else:
            drive: dict = {}
            for k, proj in enumerate(config.projs):
                if proj.post != i:
                    continue
                a = _arrivals(config, params, state, history, spikes, k)
                arrivals[k] = a
                listing = None
                if "fanout" in params.projs[k].arrays and proj.delay is not None:
                    listing = events_of((proj.pre, proj.delay), a)
                c = proj.connectivity.current(params.projs[k].arrays, state.projs[k].W, a,
                                              proj.delay is None, listing)
                drive[proj.receptor] = c if proj.receptor not in drive else drive[proj.receptor] + c
            pops[i], s = template.step(params.pops[i], pops[i], drive, params.dt, imposed_of.get(i))
            if config.split is not None:
                own[i], s = s, config.split.gather(s)
        spikes[i] = s
        if pop.history:
            history[i] = history[i].at[state.t % pop.history].set(s.astype(history[i].dtype))
    projs = list(state.projs)
    if config.learn:
        for k, proj in enumerate(config.projs):
            if proj.plastic:
                s_post = own.get(proj.post, spikes[proj.post])
                listings = None
                if proj.local:
                    listings = (events_of((proj.pre, proj.delay), arrivals[k]),
                                events_of((proj.post, 0 if proj.post not in own else "own"), s_post))
                projs[k] = _plasticity(proj, params.projs[k], state.projs[k], arrivals[k], s_post, reward, listings)
    return NetState(state.t + 1, state.seed, tuple(pops), tuple(history), tuple(projs)), tuple(spikes)


def _plasticity(proj: ProjConfig, p: ProjParams, st: ProjState, a, s_post, reward, listings=None):
    """Traces, the rule's change and the clipped update of one projection (steps 5-7)."""
    new, decayed = update_traces(proj.trace_add, p.traces, Traces(st.trace_pre, st.trace_post), a, s_post)
    pre, post = Activity(a, new.pre, decayed.pre), Activity(s_post, new.post, decayed.post)
    W, per_synapse = st.W, proj.delay is None
    kwargs = {}
    if "bounds" in proj.extras:
        kwargs["bounds"] = p.bounds
    if "reward" in proj.extras:
        kwargs["reward"] = reward
    if proj.local:
        W_new, rule_state = _local_update(proj, p, st.rule, pre, post, W, kwargs, listings)
        return ProjState(W_new, new.pre, new.post, rule_state)

    def hebbian(post_term, pre_term):
        return proj.connectivity.hebbian(p.arrays, W, post_term, pre_term, per_synapse)

    dW, rule_state = p.rule.update(st.rule, pre, post, W, hebbian, **kwargs)
    W_new = proj.connectivity.keep_absent(p.arrays, W, apply_bounds(W, p.lr * dW, p.bounds, proj.hardbound))
    return ProjState(W_new, new.pre, new.post, rule_state)


def _local_update(proj: ProjConfig, p: ProjParams, rule_state, pre: Activity, post: Activity, W, kwargs,
                  listings):
    """A local rule's update on a sparse projection, visiting only the synapses of the
    inputs that arrived (their fan-out) and then of the neurons that fired (their fan-in,
    less the synapses already visited): each changed synapse once, as the full update
    would change it, at a cost that follows the spikes."""
    arrays, n_syn = p.arrays, W.shape[0]
    pre_of, post_of = arrays["pre"], arrays["post"]

    def on(ids, W):
        pre_idx = pre_of.at[ids].get(mode="fill", fill_value=0)
        post_idx = post_of.at[ids].get(mode="fill", fill_value=0)
        part = W.at[ids].get(mode="fill", fill_value=0.0)
        dW, _ = p.rule.update(rule_state, pre, post, part,
                              lambda post_term, pre_term: post_term[post_idx] * pre_term[pre_idx], **kwargs)
        return apply_bounds(part, p.lr * dW, p.bounds, proj.hardbound), pre_idx

    def arrived(ids, neurons, W):
        values, _ = on(ids, W)
        return W.at[ids].set(values, mode="drop")

    def fired(ids, neurons, W):
        values, pre_idx = on(ids, W)
        done = pre.spikes[pre_idx] != 0  # visited with their input
        return W.at[jnp.where(done, n_syn, ids)].set(values, mode="drop")

    arrivals, firings = listings
    W = visit_events(arrivals, arrays["fanout"], n_syn, arrived, W)
    W = visit_events(firings, arrays["fanin"], n_syn, fired, W)
    none = jnp.zeros((0,), jnp.int32)  # the rule's new state, from the activities alone
    _, rule_state = p.rule.update(rule_state, pre, post, W[:0], lambda a, b: a[none] * b[none], **kwargs)
    return W, rule_state


def monitored_step(config: NetConfig, params: NetParams, state: NetState, tick, *inputs):
    """:func:`network_step` as the loops drive it: the per-step inputs flat (``tick``, the
    step's number in the call, then the given activities, the imposed spikes and the
    reward), and what the monitors sample as the step's output."""
    given, imposed, reward = step_inputs(config, inputs)
    state, spikes = network_step(config, params, state, given, imposed, reward)
    return state, sampled(config, params, state, spikes)


def step_inputs(config: NetConfig, inputs):
    """``(given, imposed, reward)`` from a step's flat inputs (after ``tick``)."""
    n_given = sum(p.given for p in config.pops)
    n_imposed = sum(p.imposed for p in config.pops)
    given, imposed = inputs[:n_given], inputs[n_given:n_given + n_imposed]
    reward = inputs[n_given + n_imposed] if config.reward else None
    return given, imposed, reward


def sampled(config: NetConfig, params: NetParams, state: NetState, spikes):
    """What the monitors record after a step, from the state and the spikes it left."""
    return tuple(s(state, spikes, take) for s, take in zip(config.samplers, params.take))
