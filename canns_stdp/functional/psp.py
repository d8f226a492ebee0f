"""Two-variable LIF: the discrete form of a double-exponential PSP kernel.

A synaptic current ``I`` (time constant ``tau_s``) feeds the membrane ``v`` (``tau_m``):

    v'  = d_m * v + scale * I                       (d_m = exp(-dt / tau_m))
    s   = 1[v' >= threshold]
    v'' = v_reset where s = 1, else v'
    I'  = d_s * (i_reset where s = 1, else I) + current    (d_s = exp(-dt / tau_s))

(the spike forgets the inputs before it; this step's input arrives after the spike).

A unit input at step 0 then gives ``v_k = scale * (d_m^k - d_s^k) / (d_m - d_s)``,
i.e. the kernel ``eps(s) ∝ exp(-s/tau_m) - exp(-s/tau_s)`` sampled exactly at
``s = k dt`` (``eps(0) = 0``: an input cannot make the neuron fire in its own step), the
spike-response model of Masquelier, Guyonneau & Thorpe (2008). :func:`psp_scale` picks
``scale`` so that the largest of these samples is exactly 1.

Example:
    >>> import jax.numpy as jnp
    >>> from canns_stdp.functional.psp import psp_params, psp_lif_step
    >>> p = psp_params(tau_m=10.0, tau_s=2.5, threshold=2.0)
    >>> s, I, v = psp_lif_step(p, jnp.zeros(1), jnp.zeros(1), jnp.ones(1))
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, NamedTuple

import jax.numpy as jnp

from .dependence import additive
from ..rules.base import Activity
from ..rules.restricted import Restricted, RestrictedTraces
from .stdp import STDPParams, TraceParams, apply_bounds

__all__ = ["PSPParams", "PSPConfig", "PSPLayerParams", "PSPState", "psp_scale", "psp_params", "psp_lif_step",
           "psp_train_step"]


class PSPParams(NamedTuple):
    """Decays, PSP scale and threshold (scalars or per-neuron arrays; traced)."""

    d_m: float = math.exp(-1 / 10.0)
    d_s: float = math.exp(-1 / 2.5)
    scale: float = 1.0
    threshold: float = 1.0
    v_reset: float = 0.0
    i_reset: float = 0.0


def _positive(name, value):
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")


def psp_scale(tau_m: float, tau_s: float, dt: float = 1.0) -> float:
    """``scale`` that makes the peak of the sampled PSP exactly 1.

    The samples ``(d_m^k - d_s^k) / (d_m - d_s)``, ``k = 1, 2, ...``, rise then
    fall; the peak is at one of the two integers around the continuous maximum
    ``t* = ln(tau_m / tau_s) tau_m tau_s / (tau_m - tau_s)``.

    Raises:
        ValueError: when a time constant or ``dt`` is not positive, or ``tau_m == tau_s``.
    """
    for name, value in (("tau_m", tau_m), ("tau_s", tau_s), ("dt", dt)):
        _positive(name, value)
    if tau_m == tau_s:
        raise ValueError(f"tau_m and tau_s must differ, got both {tau_m!r}")
    d_m, d_s = math.exp(-dt / tau_m), math.exp(-dt / tau_s)
    t_star = math.log(tau_m / tau_s) * tau_m * tau_s / (tau_m - tau_s) / dt
    ks = {max(1, math.floor(t_star)), max(1, math.ceil(t_star))}
    peak = max((d_m ** k - d_s ** k) / (d_m - d_s) for k in ks)
    return 1.0 / peak


def psp_params(tau_m: float = 10.0, tau_s: float = 2.5, threshold: float = 1.0,
               dt: float = 1.0, k1: float = 0.0, k2: float = 0.0) -> PSPParams:
    """:class:`PSPParams` from time constants (ms), with the PSP peak normalised to 1.

    After a spike the input is forgotten and the membrane follows the afterpotential
    ``eta(s) = threshold * (k1 exp(-s/tau_m) - k2 (exp(-s/tau_m) - exp(-s/tau_s)))``
    (Masquelier et al. 2008: ``k1 = 2``, ``k2 = 4``; ``k1 = k2 = 0``: reset to 0), sampled
    exactly at ``s = 0, dt, 2 dt, ...``: ``v`` is set to ``k1 * threshold`` and ``I`` to
    ``-k2 * threshold * (d_m - d_s) / (scale * d_s)`` (before its decay in the step).
    """
    _positive("threshold", threshold)
    for name, value in (("k1", k1), ("k2", k2)):
        if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
            raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    d_m, d_s = math.exp(-dt / tau_m), math.exp(-dt / tau_s)
    scale = psp_scale(tau_m, tau_s, dt)
    theta = float(threshold)
    return PSPParams(d_m, d_s, scale, theta, k1 * theta, -k2 * theta * (d_m - d_s) / (scale * d_s))


def psp_lif_step(params: PSPParams, I, v, current):
    """Advance current and membrane one step.

    Args:
        params: decays, PSP scale, threshold.
        I: synaptic current, shape ``(n_out,)``.
        v: membrane potential, shape ``(n_out,)``.
        current: this step's input ``W @ x``, shape ``(n_out,)``.

    Returns:
        ``(spikes, I, v)``: float 0/1 spikes, and current and membrane after the reset.
    """
    v = params.d_m * v + params.scale * I
    spikes = (v >= params.threshold).astype(v.dtype)
    v = jnp.where(spikes > 0, params.v_reset, v).astype(v.dtype)
    I = jnp.where(spikes > 0, params.i_reset, I).astype(I.dtype)
    I = params.d_s * I + current
    return spikes, I, v


class PSPState(NamedTuple):
    """State of :func:`psp_train_step` (``n_out`` neurons, ``n_in`` inputs)."""

    W: jnp.ndarray           # (n_out, n_in)
    I: jnp.ndarray           # (n_out,) synaptic current
    v: jnp.ndarray           # (n_out,) membrane
    spike: jnp.ndarray       # (n_out,)
    trace_pre: jnp.ndarray   # (n_out, n_in) per-synapse pre traces
    trace_post: jnp.ndarray  # (n_out, n_in) per-synapse post traces

    @classmethod
    def zeros(cls, n_in: int, n_out: int, W=None, dtype=jnp.float32) -> "PSPState":
        W = jnp.zeros((n_out, n_in), dtype) if W is None else jnp.asarray(W, dtype)
        z, zz = jnp.zeros((n_out,), dtype), jnp.zeros((n_out, n_in), dtype)
        return cls(W, z, z, z, zz, zz)


class PSPLayerParams(NamedTuple):
    """Numeric parameters of :func:`psp_train_step` (traced)."""

    psp: PSPParams = PSPParams()
    traces: TraceParams = TraceParams()
    stdp: STDPParams = STDPParams()


@dataclass(frozen=True)
class PSPConfig:
    """Static choices of :func:`psp_train_step`."""

    dependence: Callable = additive
    hardbound: bool = True


def psp_train_step(config: PSPConfig, params: PSPLayerParams, state: PSPState, x):
    """One step of a dense layer of two-variable LIF neurons with restricted nearest STDP.

        current = W @ x;  (s, I, v) = psp_lif_step(...)
        dW = rules.Restricted.update(...)        (restricted nearest-spike STDP)
        W' = clip(W + lr dW)

    With ``params.stdp.lr == 0`` the weights do not change (testing). Returns
    ``(state, spikes)``.

    Example:
        >>> import jax.numpy as jnp
        >>> p = PSPLayerParams(psp_params(threshold=1.5), TraceParams(0.9, 0.9, 1.0, 1.0),
        ...                    STDPParams(1.0, 0.03, 0.025))
        >>> st = PSPState.zeros(3, 1, W=jnp.ones((1, 3)))
        >>> st, s = psp_train_step(PSPConfig(), p, st, jnp.array([1.0, 1.0, 0.0]))
    """
    current = state.W @ x
    spikes, I, v = psp_lif_step(params.psp, state.I, state.v, current)
    traces, stdp = params.traces, params.stdp
    rule = Restricted(stdp.A_plus, stdp.A_minus, traces.d_pre, traces.d_post, traces.a_pre, traces.a_post,
                      stdp.bounds.mu, config.dependence)
    dW, (pre, post) = rule.update(RestrictedTraces(state.trace_pre, state.trace_post), Activity(x, x, x),
                                  Activity(spikes, spikes, spikes), state.W, None, bounds=stdp.bounds)
    W = apply_bounds(state.W, stdp.lr * dW, stdp.bounds, config.hardbound)
    return PSPState(W, I, v, spikes, pre, post), spikes
