"""One step of a competitive (Diehl & Cook 2015 style) excitatory layer.

Built from the core pieces (:func:`~canns_stdp.functional.neurons.lif_step`,
:func:`~canns_stdp.functional.stdp.update_traces`, :func:`~canns_stdp.functional.stdp.stdp_delta`)
and the small mechanisms of this package. With ``n`` neurons and input ``x``:

0. at the first step of a sample (``new_sample = 1``): ``v, traces, spikes,
   refractory counters = 0`` and, when ``config.normalize`` and learning, each row of ``W`` is
   rescaled to sum to ``params.norm`` and clipped to the weight bounds (``theta``
   and ``W`` otherwise persist);
1. ``I = W x - w_inh * (sum(s_prev) - s_prev)``   (lateral inhibition from the last step)
2. ``I = 0`` for refractory neurons
3. LIF with threshold ``threshold + theta``: ``v' = leak v + I``, ``c = 1[v' >= thr]``,
   ``v'' = v_reset`` where ``c``, then ``v'' = max(v'', v_min)``
4. ``s = kwta(c, v' - thr, k)`` (at most ``k`` spikes per step; ``k = 0``: all of ``c``)
5. refractory counters from ``c``; when learning, ``theta' = d_theta theta + theta_plus s``
6. when learning: traces, ``dW = stdp_delta(...)``, ``W' = clip(W + dW)`` exactly as SPEC
   steps 1, 5, 6, 7 with ``s`` as the postsynaptic spikes.

The membrane is measured from rest, so Diehl & Cook's ``rest = -65 mV``,
``threshold = -52 mV``, ``reset = -60 mV`` become ``threshold = 13``, ``v_reset = 5``.

Example:
    >>> import jax.numpy as jnp
    >>> from canns_stdp.functional.competitive_step import (
    ...     CompetitiveConfig, CompetitiveParams, CompetitiveState, competitive_step)
    >>> state = CompetitiveState.zeros(4, 3, W=jnp.full((3, 4), 0.5))
    >>> state, s = competitive_step(CompetitiveConfig(), CompetitiveParams(), state,
    ...                             jnp.ones(4), jnp.float32(1))
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp

from .dependence import WeightBounds, additive
from .homeostasis import ThetaParams, effective_threshold, theta_step
from .inhibition import kwta, lateral_current
from .neurons import LIFParams, lif_step
from .normalization import normalize_rows
from .refractory import gate_current, refractory_step
from .stdp import STDPParams, TraceParams, Traces, apply_bounds, pairing_terms, stdp_delta, update_traces
from .synapses import dense_current
from .traces import nearest_add

__all__ = ["CompetitiveState", "CompetitiveParams", "CompetitiveConfig", "competitive_step",
           "begin_sample"]


class CompetitiveState(NamedTuple):
    W: jnp.ndarray           # (n, n_in)
    v: jnp.ndarray           # (n,) membrane relative to rest
    spike: jnp.ndarray       # (n,) last step's (winning) spikes
    trace_pre: jnp.ndarray   # (n_in,)
    trace_post: jnp.ndarray  # (n,)
    theta: jnp.ndarray       # (n,) adaptive threshold
    refractory: jnp.ndarray  # (n,) steps left in the refractory period

    @classmethod
    def zeros(cls, n_in: int, n: int, W=None, dtype=jnp.float32) -> "CompetitiveState":
        W = jnp.zeros((n, n_in), dtype) if W is None else jnp.asarray(W, dtype)
        z = jnp.zeros((n,), dtype)
        return cls(W, z, z, jnp.zeros((n_in,), dtype), z, z, z)


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


@dataclass(frozen=True)
class CompetitiveConfig:
    """Static choices: winners per step, learning on/off, normalisation, STDP form."""

    k: int = 1
    learn: bool = True
    normalize: bool = True
    trace_add: Callable = nearest_add
    dependence: Callable = additive
    pairing: str = "symmetric"


def begin_sample(config: CompetitiveConfig, params: CompetitiveParams, state: CompetitiveState):
    """Step 0: zero the fast variables, keep ``theta``; when learning, normalise ``W``."""
    z = jnp.zeros_like(state.v)
    W = state.W
    if config.normalize and config.learn:
        W = jnp.clip(normalize_rows(W, params.norm), params.stdp.bounds.w_min, params.stdp.bounds.w_max)
    return state._replace(W=W, v=z, spike=z, trace_pre=jnp.zeros_like(state.trace_pre),
                          trace_post=z, refractory=z)


def competitive_step(config: CompetitiveConfig, params: CompetitiveParams,
                     state: CompetitiveState, x, new_sample):
    """One step (see the module docstring). Returns ``(state, spikes)``.

    Args:
        config: static configuration.
        params: numeric parameters.
        state: state after the previous step.
        x: input spikes ``(n_in,)``.
        new_sample: scalar, 1 at the first step of a sample, else 0.
    """
    # a loop run 0 or 1 times: unlike lax.cond it updates W in place (no copy per step)
    state = jax.lax.fori_loop(0, (new_sample > 0).astype(jnp.int32),
                              lambda _, s: begin_sample(config, params, s), state)
    drive = dense_current(state.W, x)
    current = drive + lateral_current(state.spike, params.w_inh)
    current = gate_current(state.refractory, current)
    thr = effective_threshold(params.lif.threshold, state.theta)
    lif = params.lif._replace(threshold=thr)
    crossed, v = lif_step(lif, state.v, current)
    v = jnp.maximum(v, params.v_min)
    if config.k > 0:
        spikes = kwta(crossed, lif.leak * state.v + current - thr, config.k)
    else:
        spikes = crossed
    refractory = refractory_step(state.refractory, crossed, params.refractory)
    if not config.learn:
        return state._replace(v=v, spike=spikes, refractory=refractory), spikes
    theta = theta_step(params.theta, state.theta, spikes)
    new, decayed = update_traces(config.trace_add, params.traces,
                                 Traces(state.trace_pre, state.trace_post), x, spikes)
    P, Q = pairing_terms(config.pairing, new, decayed)
    dW = stdp_delta(config.dependence, params.stdp, state.W, x, spikes, P, Q)
    W = apply_bounds(state.W, dW, params.stdp.bounds, True)
    return CompetitiveState(W, v, spikes, new.pre, new.post, theta, refractory), spikes
