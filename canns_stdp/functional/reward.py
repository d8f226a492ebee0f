"""Reward-modulated STDP: MSTDP, MSTDPET (Florian 2007) and R-STDP (Izhikevich 2007).

Reward modulation wraps the pair rule of :mod:`~canns_stdp.functional.stdp`. Let

    ζ = A+ · f+(W) ⊙ (s ⊗ P) − A− · f−(W) ⊙ (Q ⊗ x)

be the pair rule's weight change without ``lr`` (SPEC step 6, computed by
:func:`~canns_stdp.functional.stdp.stdp_delta` with ``lr = 1``) and ``r`` the reward
given at the step. The three rules are one update with different constants:

    e' = d_e · e + g · ζ            (eligibility)
    D' = d_D · D + r                (dopamine)
    ΔW = lr · D' · e'
    W' = clip(W + ΔW, w_min, w_max)

=============  ======================  =============  ==========================
rule           ``d_e``                 ``g``          ``d_D``
=============  ======================  =============  ==========================
``mstdp``      0 (``e' = ζ``)          1              0 (``D' = r``)
``mstdpet``    ``exp(−dt/τ_z)``        ``1/τ_z``      0 (``D' = r``)
``rstdp``      ``exp(−dt/τ_c)``        1              0, or ``exp(−dt/τ_d)``
=============  ======================  =============  ==========================

so MSTDP is ``ΔW = lr·r·ζ``, MSTDPET ``z' = d_z·z + ζ/τ_z, ΔW = lr·r·z'`` and R-STDP
``c' = d_c·c + ζ, ΔW = lr·D·c'`` with ``D = r`` (the caller gives the dopamine) or
``D`` a trace of the reward ``r`` (the caller gives the dopamine release), as in SPEC
"Reward-modulated rules".

With a batch (inputs ``(B, n_in)``, SPEC "Batches"), each sample ``b`` has its own
``ζ_b`` from its own spikes and traces, its own eligibility ``e_b`` and dopamine
``D_b`` (reward ``r_b``), and the shared weights take the batch reduction
(``config.batch_reduction``: sum or mean over ``b``) of ``lr · D_b' · e_b'``.

Because the constants are numbers (traced under ``jit``),
switching rule or time constant never recompiles.

Example:
    >>> import jax.numpy as jnp
    >>> from canns_stdp.functional import reward
    >>> from canns_stdp.functional.layer_step import LayerConfig, LayerParams, LayerState
    >>> layer = LayerState.zeros(n_in=3, n_out=2, W=jnp.full((2, 3), 0.6))
    >>> state = reward.RewardStepState(layer, reward.RewardState.zeros(3, 2))
    >>> params = reward.RewardStepParams(LayerParams(), reward.mstdpet(tau_z=25.0))
    >>> state, s = reward.reward_train_step(LayerConfig(), params, state,
    ...                                     jnp.array([1., 1., 0.]), None, jnp.float32(1.0))
"""

from __future__ import annotations

import math
from typing import NamedTuple, Optional

import jax
import jax.numpy as jnp

from .layer_step import LayerConfig, LayerParams, LayerState, advance_and_pair, forward_step
from .stdp import apply_bounds, stdp_delta

__all__ = [
    "RULES",
    "RewardParams",
    "RewardState",
    "RewardStepParams",
    "RewardStepState",
    "mstdp",
    "mstdpet",
    "rstdp",
    "rule_params",
    "modulate",
    "reward_train_step",
    "reward_forward_step",
]

RULES = ("mstdp", "mstdpet", "rstdp")


class RewardParams(NamedTuple):
    """Constants of the modulation (see the module docstring)."""

    d_e: float = 0.0       # per-step decay of the eligibility
    gain: float = 1.0      # factor on ζ entering the eligibility
    d_D: float = 0.0       # per-step decay of the dopamine (0: D is this step's reward)


class RewardState(NamedTuple):
    """What the modulation carries from one step to the next."""

    eligibility: jnp.ndarray  # (n_out, n_in): ζ (mstdp), z (mstdpet) or c (rstdp); batch: (B, n_out, n_in)
    dopamine: jnp.ndarray     # (): D after the last step (mstdp/mstdpet: the last reward); batch: (B,)

    @classmethod
    def zeros(cls, n_in: int, n_out: int, dtype=jnp.float32, batch_shape: tuple = ()) -> "RewardState":
        batch_shape = tuple(batch_shape)
        return cls(jnp.zeros(batch_shape + (n_out, n_in), dtype), jnp.zeros(batch_shape, dtype))


class RewardStepParams(NamedTuple):
    layer: LayerParams
    reward: RewardParams


class RewardStepState(NamedTuple):
    layer: LayerState
    reward: RewardState


def _decay(tau: float, dt: float) -> float:
    return math.exp(-dt / tau)


def mstdp() -> RewardParams:
    """MSTDP: ``ΔW = lr · r · ζ``."""
    return RewardParams(0.0, 1.0, 0.0)


def mstdpet(tau_z: float, dt: float = 1.0) -> RewardParams:
    """MSTDPET: ``z' = exp(−dt/τ_z) z + ζ/τ_z``, ``ΔW = lr · r · z'``."""
    return RewardParams(_decay(tau_z, dt), 1.0 / tau_z, 0.0)


def rstdp(tau_c: float, tau_d: Optional[float] = None, dt: float = 1.0) -> RewardParams:
    """R-STDP: ``c' = exp(−dt/τ_c) c + ζ``, ``ΔW = lr · D' · c'``.

    With ``tau_d=None`` the reward is the dopamine, ``D' = r``; otherwise
    ``D' = exp(−dt/τ_d) D + r`` (the reward is the dopamine released at the step).
    """
    return RewardParams(_decay(tau_c, dt), 1.0, 0.0 if tau_d is None else _decay(tau_d, dt))


def rule_params(rule: str, tau: Optional[float] = None, tau_d: Optional[float] = None,
                dt: float = 1.0) -> RewardParams:
    """The constants of ``rule`` (``"mstdp"``, ``"mstdpet"`` with ``tau = τ_z``,
    ``"rstdp"`` with ``tau = τ_c``). Time constants must be positive (checked by callers)."""
    if rule == "mstdp":
        return mstdp()
    if rule == "mstdpet":
        return mstdpet(tau, dt)
    if rule == "rstdp":
        return rstdp(tau, tau_d, dt)
    raise ValueError(f"rule must be one of {RULES}, got {rule!r}")


def modulate(params: RewardParams, state: RewardState, zeta, reward):
    """One step of the modulation: ``(D' · e', new state)``.

    Args:
        params: the rule's constants.
        state: eligibility and dopamine after the previous step.
        zeta: the pair rule's change without ``lr``, shape of ``W`` (with a batch:
            ``(B,) + W.shape``, one per sample).
        reward: this step's reward ``r`` (a scalar; with a batch ``(B,)``).

    With a batch the first output is per sample, ``D_b' · e_b'``, shape ``(B,) + W.shape``.
    """
    e = params.d_e * state.eligibility + params.gain * zeta
    D = params.d_D * state.dopamine + reward
    D_e = D.reshape(D.shape + (1,) * (e.ndim - D.ndim)) if D.ndim else D  # D_b on sample b
    return D_e * e, RewardState(e, D)


def reward_train_step(config: LayerConfig, params: RewardStepParams, state: RewardStepState,
                      x, post=None, reward=0.0):
    """One reward-modulated training step. Returns ``(state, spikes)``.

    SPEC steps 1-5 as in :func:`~canns_stdp.functional.layer_step.train_step`, then
    ``ζ`` (step 6 with ``lr = 1``), the modulation and the clipping of step 7.

    Args:
        config: static choices of the layer step (trace mode, dependence, pairing, clipping).
        params: layer parameters (``params.layer.stdp.lr`` is ``lr``) and rule constants.
        state: layer state and modulation state after the previous step.
        x: input ``(n_in,)``; post: optional imposed spikes ``(n_out,)``;
        reward: this step's reward (scalar).

    With a batch, ``x`` is ``(B, n_in)``, ``post`` ``(B, n_out)``, ``reward`` ``(B,)``
    and the modulation state per sample (``(B, n_out, n_in)`` and ``(B,)``): each ``ζ_b``
    comes from sample ``b`` alone, and ``W`` changes once by the sum (or mean, with
    ``config.batch_reduction == "mean"``) over ``b`` of ``lr · D_b' · e_b'``.
    """
    lp = params.layer
    W = state.layer.W
    layer, P, Q = advance_and_pair(config, lp, state.layer, x, post)
    stdp = lp.stdp._replace(lr=1.0)

    def zeta_of(x_, s_, P_, Q_):  # ζ of one sample
        return stdp_delta(config.dependence, stdp, W, x_, s_, P_, Q_)

    batched = state.reward.eligibility.ndim > W.ndim
    if batched:
        zeta = jax.vmap(zeta_of)(x, layer.spike, P, Q)
    else:
        zeta = zeta_of(x, layer.spike, P, Q)
    modulation, rstate = modulate(params.reward, state.reward, zeta, reward)
    if batched:
        reduce = jnp.mean if config.batch_reduction == "mean" else jnp.sum
        modulation = reduce(modulation, axis=0)
    W = apply_bounds(W, lp.stdp.lr * modulation, lp.stdp.bounds, config.hardbound)
    return RewardStepState(layer._replace(W=W), rstate), layer.spike


def reward_forward_step(config: LayerConfig, params: RewardStepParams, state: RewardStepState,
                        x, post=None, reward=None):
    """The layer step without plasticity; the modulation state is left as it is."""
    layer, spikes = forward_step(config, params.layer, state.layer, x, post)
    return RewardStepState(layer, state.reward), spikes
