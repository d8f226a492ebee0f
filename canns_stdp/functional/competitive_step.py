"""One step of a competitive (Diehl & Cook 2015) excitatory layer, event-driven.

Built from the core pieces (:func:`~canns_stdp.functional.neurons.lif_step`,
:func:`~canns_stdp.functional.stdp.update_traces`, the event-driven
:func:`~canns_stdp.functional.event.event_update`) and the small mechanisms of this
package. The input is binary spikes given as the indices of the active inputs
(``events``, padded with ``n_in``: :func:`~canns_stdp.encoders.poisson_events`), and
the weights are kept transposed, ``WT = W.T`` of shape ``(n_in, n)``, so that a step
touches only the rows of the active inputs and the columns of the neurons that
spike. With ``n`` neurons and input spikes ``x`` (``x_i = 1`` for ``i`` in ``events``):

0. at the first step of a sample (``new_sample = 1``): ``v``, traces, spikes, pending
   input and refractory counters are zeroed and, when ``config.normalize`` and
   learning, each neuron's input weights (a column of ``WT``) are rescaled to sum to
   ``params.norm`` and clipped to the weight bounds (``theta`` and ``W`` persist);
1. input current ``J = W x``; with ``config.input_delay = 1`` the current of this
   step's input arrives at the next step (``I_in = J`` of the previous step, computed
   with the weights after that step's plasticity), else ``I_in = J``;
2. ``I = I_in - w_inh * (sum(r) - r)`` with ``r`` the winners of ``config.inhibition_delay``
   steps ago (2: Diehl & Cook's excitatory -> inhibitory -> excitatory loop, one step per
   connection; 1: direct inhibition), then ``I = 0`` for refractory neurons;
3. LIF with threshold ``threshold + theta``: ``v' = leak v + I``, ``c = 1[v' >= thr]``,
   ``v'' = v_reset`` where ``c``, then ``v'' = max(v'', v_min)``;
4. refractory counters from ``c`` (every neuron that crossed threshold is reset and made
   refractory);
5. winners ``s``: of the crossing neurons, ``config.k`` emit a spike (``k = 0``: all of
   them): those with the largest overshoot ``v' - thr`` (``winner = "largest"``) or,
   with ``k = 1`` and ``winner = "random"``, one chosen uniformly with the step's random
   number ``u`` in ``[0, 1)`` (the ``floor(u c_total)``-th crossing neuron in index order;
   BindsNET's ``one_spike``). Only winners drive inhibition, traces and STDP;
6. when learning: ``theta' = d_theta theta + theta_plus a`` with ``a = c`` (every crossing
   neuron, as BindsNET: ``config.threshold_rise = "crossings"``) or ``a = s`` (the winners
   only: ``"winners"``);
7. when learning: nearest-spike traces (a spike sets its trace to 1), then
   ``W' = clip(W + nu_post s ⊗ tr_pre - nu_pre tr_post ⊗ x)`` exactly as steps 5-7 of docs/step.md
   with the ``symmetric`` pairing (both traces include this step's spikes).

The membrane is measured from rest, so Diehl & Cook's ``rest = -65 mV``,
``threshold = -52 mV``, ``reset = -60 mV`` become ``threshold = 13``, ``v_reset = 5``.

Example:
    >>> import jax.numpy as jnp
    >>> from canns_stdp.functional.competitive_step import (
    ...     CompetitiveConfig, CompetitiveParams, CompetitiveState, competitive_step)
    >>> state = CompetitiveState.zeros(4, 3, W=jnp.full((3, 4), 0.5))
    >>> events = jnp.array([0, 2, 4, 4])           # inputs 0 and 2 fire; 4 = n_in pads
    >>> state, s = competitive_step(CompetitiveConfig(), CompetitiveParams(), state,
    ...                             events, jnp.float32(1), jnp.float32(0.5))
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp

from .dependence import WeightBounds, additive
from .event import event_current, event_update
from .homeostasis import ThetaParams, effective_threshold, theta_step
from .inhibition import WINNER_RULES, kwta, lateral_current, random_winner
from .neurons import LIFParams, lif_step
from .normalization import normalize_columns
from .refractory import gate_current, refractory_step
from .stdp import STDPParams, TraceParams, Traces, pairing_terms, update_traces
from .traces import nearest_add

__all__ = ["CompetitiveState", "CompetitiveParams", "CompetitiveConfig", "competitive_step",
           "begin_sample", "events_to_spikes"]


class CompetitiveState(NamedTuple):
    WT: jnp.ndarray            # (n_in, n) weights, transposed
    v: jnp.ndarray             # (n,) membrane relative to rest
    spike: jnp.ndarray         # (n,) winners of the last step
    spike_before: jnp.ndarray  # (n,) winners of the step before
    pending: jnp.ndarray       # (n,) input current arriving next step (input_delay = 1)
    trace_pre: jnp.ndarray     # (n_in,)
    trace_post: jnp.ndarray    # (n,)
    theta: jnp.ndarray         # (n,) adaptive threshold
    refractory: jnp.ndarray    # (n,) steps left in the refractory period

    @classmethod
    def zeros(cls, n_in: int, n: int, W=None, dtype=jnp.float32) -> "CompetitiveState":
        """Zero state; ``W`` (``(n, n_in)``, the usual layout) gives the weights."""
        WT = jnp.zeros((n_in, n), dtype) if W is None else jnp.asarray(W, dtype).T
        z = jnp.zeros((n,), dtype)
        return cls(WT, z, z, z, z, jnp.zeros((n_in,), dtype), z, z, z)


class CompetitiveParams(NamedTuple):
    """Numeric parameters (traced: changing them never recompiles).

    Defaults follow Diehl & Cook (2015) as configured in BindsNET's
    ``DiehlAndCook2015`` model (dt = 1 ms): membrane time constant 100 ms, trace
    time constants 20 ms, ``nu = (1e-4, 1e-2)``, ``theta_plus = 0.05``, norm 78.4.
    """

    lif: LIFParams = LIFParams(leak=0.990049834, threshold=13.0, v_reset=5.0)
    v_min: float = -jnp.inf
    w_inh: float = 120.0
    refractory: float = 5.0
    theta: ThetaParams = ThetaParams(decay=1.0, theta_plus=0.05)
    traces: TraceParams = TraceParams(d_pre=0.951229425, d_post=0.951229425, a_pre=1.0, a_post=1.0)
    stdp: STDPParams = STDPParams(lr=1.0, A_plus=1e-2, A_minus=1e-4, bounds=WeightBounds(0.0, 1.0, 1.0))
    norm: float = 78.4


THRESHOLD_RISES = ("winners", "crossings")


@dataclass(frozen=True)
class CompetitiveConfig:
    """Static choices: winners per step and how they are picked, delays, whose threshold
    rises, learning on/off."""

    k: int = 1
    winner: str = "random"
    inhibition_delay: int = 2
    input_delay: int = 1
    threshold_rise: str = "crossings"
    learn: bool = True
    normalize: bool = True
    trace_add: Callable = nearest_add
    dependence: Callable = additive
    pairing: str = "symmetric"

    def __post_init__(self):
        if isinstance(self.k, bool) or not isinstance(self.k, int) or self.k < 0:
            raise ValueError(f"k must be an integer >= 0, got {self.k!r}")
        if self.winner not in WINNER_RULES:
            raise ValueError(f"winner must be one of {WINNER_RULES}, got {self.winner!r}")
        if self.winner == "random" and self.k != 1:
            raise ValueError(f"winner='random' picks one neuron per step and needs k=1, got k={self.k!r}")
        if self.inhibition_delay not in (1, 2):
            raise ValueError(f"inhibition_delay must be 1 or 2, got {self.inhibition_delay!r}")
        if self.input_delay not in (0, 1):
            raise ValueError(f"input_delay must be 0 or 1, got {self.input_delay!r}")
        if self.threshold_rise not in THRESHOLD_RISES:
            raise ValueError(f"threshold_rise must be one of {THRESHOLD_RISES}, got {self.threshold_rise!r}")


def events_to_spikes(events, n_in: int, dtype=jnp.float32):
    """Dense 0/1 spikes ``(n_in,)`` from an event row (entries ``n_in`` are padding)."""
    return jnp.zeros((n_in,), dtype).at[events].set(1, mode="drop")


def begin_sample(config: CompetitiveConfig, params: CompetitiveParams, state: CompetitiveState):
    """Step 0: zero the fast variables, keep ``theta``; when learning, normalise ``W``."""
    z = jnp.zeros_like(state.v)
    WT = state.WT
    if config.normalize and config.learn:
        bounds = params.stdp.bounds
        WT = jnp.clip(normalize_columns(WT, params.norm), bounds.w_min, bounds.w_max)
    return state._replace(WT=WT, v=z, spike=z, spike_before=z, pending=z,
                          trace_pre=jnp.zeros_like(state.trace_pre), trace_post=z, refractory=z)


def _winners(config: CompetitiveConfig, crossed, overshoot, u):
    if config.k == 0:
        return crossed
    if config.winner == "random":
        return random_winner(crossed, u)
    return kwta(crossed, overshoot, config.k)


def competitive_step(config: CompetitiveConfig, params: CompetitiveParams,
                     state: CompetitiveState, events, new_sample, u):
    """One step (see the module docstring). Returns ``(state, winners)``.

    Args:
        config: static configuration.
        params: numeric parameters.
        state: state after the previous step.
        events: indices of this step's active inputs ``(width,)``, padded with ``n_in``.
        new_sample: scalar, 1 at the first step of a sample, else 0.
        u: scalar uniform random number in ``[0, 1)`` (used by ``winner="random"``).
    """
    # a loop run 0 or 1 times: unlike lax.cond it updates W in place (no copy per step)
    state = jax.lax.fori_loop(0, (new_sample > 0).astype(jnp.int32),
                              lambda _, s: begin_sample(config, params, s), state)
    n_in = state.WT.shape[0]
    x = events_to_spikes(events, n_in, state.v.dtype)
    drive = state.pending if config.input_delay else event_current(state.WT, x, events)
    inhibitors = state.spike_before if config.inhibition_delay == 2 else state.spike
    current = gate_current(state.refractory, drive + lateral_current(inhibitors, params.w_inh))
    thr = effective_threshold(params.lif.threshold, state.theta)
    lif = params.lif._replace(threshold=thr)
    crossed, v = lif_step(lif, state.v, current)
    v = jnp.maximum(v, params.v_min)
    spikes = _winners(config, crossed, lif.leak * state.v + current - thr, u)
    refractory = refractory_step(state.refractory, crossed, params.refractory)
    state = state._replace(v=v, spike=spikes, spike_before=state.spike, refractory=refractory)
    if config.learn:
        new, decayed = update_traces(config.trace_add, params.traces,
                                     Traces(state.trace_pre, state.trace_post), x, spikes)
        P, Q = pairing_terms(config.pairing, new, decayed)
        risers = spikes if config.threshold_rise == "winners" else crossed
        WT = event_update(config.dependence, params.stdp, True, state.WT, x, events, spikes, P, Q)
        state = state._replace(WT=WT, trace_pre=new.pre, trace_post=new.post,
                               theta=theta_step(params.theta, state.theta, risers))
    if config.input_delay:
        state = state._replace(pending=event_current(state.WT, x, events))
    return state, spikes
