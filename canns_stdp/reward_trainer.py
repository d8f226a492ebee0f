"""RewardSTDPTrainer: reward-modulated STDP (MSTDP, MSTDPET, R-STDP) for a SpikingLayer."""

from __future__ import annotations

from typing import Optional

import brainpy.math as bm
import jax.numpy as jnp
import numpy as np

from . import _validation as v
from .functional.reward import (
    RULES,
    RewardParams,
    RewardState,
    RewardStepParams,
    RewardStepState,
    reward_forward_step,
    reward_train_step,
    rule_params,
)
from .trainer import STDPTrainer

__all__ = ["RewardSTDPTrainer"]


class RewardSTDPTrainer(STDPTrainer):
    """Three-factor STDP: the pair rule's change ``ζ`` gated by a reward per step.

    With ``ζ = A+ f+(W) ⊙ (s ⊗ P) − A− f−(W) ⊙ (Q ⊗ x)`` (SPEC step 6 without ``lr``)
    and ``r`` the step's reward:

    * ``rule="mstdp"`` (Florian 2007): ``ΔW = lr · r · ζ``
    * ``rule="mstdpet"`` (Florian 2007): ``z' = exp(−dt/τ_z) z + ζ/τ_z``,
      ``ΔW = lr · r · z'``
    * ``rule="rstdp"`` (Izhikevich 2007): ``c' = exp(−dt/τ_c) c + ζ``,
      ``ΔW = lr · D' · c'`` with ``D' = r`` (``tau_d=None``: the reward *is* the
      dopamine) or ``D' = exp(−dt/τ_d) D + r`` (the reward is the dopamine released)

    then ``W' = clip(W + ΔW, w_min, w_max)``. ``dt`` is the layer's ``dt``.

    State: the layer keeps its own (weights, membrane, traces); the trainer keeps the
    modulation state in two ``bm.Variable``s, :attr:`eligibility` ``(output_size,
    input_size)`` (``ζ`` of the last step for MSTDP, ``z`` for MSTDPET, ``c`` for
    R-STDP) and :attr:`dopamine` (a scalar: ``D``; the last reward for MSTDP/MSTDPET).
    :meth:`get_state`/:meth:`set_state` read and write them for checkpoints.
    ``train()`` continues from both, so training one step at a time equals one long
    call; :meth:`reset_state` zeros them *and* the layer's membrane, spikes and traces
    (weights are kept). ``layer.reset_state()`` alone leaves the eligibility as it is.

    Everything else (pairing, weight dependence, bounds, ``compiled``, ``chunk_size``,
    imposed ``post_spikes``) is as in :class:`~canns_stdp.STDPTrainer`; both loops run
    :func:`~canns_stdp.functional.reward.reward_train_step`.

    Args:
        model: the :class:`~canns_stdp.SpikingLayer` to train.
        rule: ``"mstdp"``, ``"mstdpet"`` or ``"rstdp"``.
        learning_rate: ``lr`` (>= 0).
        A_plus, A_minus: LTP and LTD amplitudes of ``ζ`` (>= 0).
        tau_z: eligibility time constant of MSTDPET (> 0, units of ``dt``).
        tau_c: eligibility time constant of R-STDP (> 0).
        tau_d: dopamine time constant of R-STDP (> 0), or ``None`` for ``D = r``.
        w_min, w_max, compiled, weight_attr: as in :class:`~canns_stdp.STDPTrainer`.
        **kwargs: ``pairing``, ``weight_dependence``, ``mu``, ``hardbound``,
            ``chunk_size``, ``show_iteration_progress`` as in ``STDPTrainer``.

    Example:
        >>> import numpy as np
        >>> from canns_stdp import SpikingLayer, RewardSTDPTrainer
        >>> layer = SpikingLayer(input_size=1, output_size=1, tau_pre=20.0, tau_post=20.0,
        ...                      W_init=np.full((1, 1), 0.2, np.float32))
        >>> trainer = RewardSTDPTrainer(layer, rule="mstdpet", learning_rate=0.1,
        ...                             A_plus=1.0, A_minus=1.0, tau_z=25.0)
        >>> xs = np.zeros((200, 1), np.float32); xs[[10, 85, 115, 135]] = 1
        >>> post = np.zeros((200, 1), np.float32); post[[15, 75, 110, 140]] = 1
        >>> reward = np.where(np.arange(200) < 100, 1.0, -1.0)
        >>> trainer.train(xs, reward=reward, post_spikes=post)
    """

    def __init__(
        self,
        model,
        rule: str = "mstdpet",
        learning_rate: float = 0.01,
        A_plus: float = 0.005,
        A_minus: float = 0.00525,
        tau_z: float = 25.0,
        w_min: float = 0.0,
        w_max: float = 1.0,
        compiled: bool = True,
        *,
        tau_c: float = 1000.0,
        tau_d: Optional[float] = None,
        weight_attr: str = "W",
        **kwargs,
    ):
        self.rule = rule
        self.tau_z = tau_z
        self.tau_c = tau_c
        self.tau_d = tau_d
        super().__init__(model, learning_rate=learning_rate, A_plus=A_plus, A_minus=A_minus,
                         weight_attr=weight_attr, w_min=w_min, w_max=w_max, compiled=compiled,
                         **kwargs)
        zeros = RewardState.zeros(self.model.input_size, self.model.output_size)
        self.eligibility = bm.Variable(zeros.eligibility)
        self.dopamine = bm.Variable(zeros.dopamine)

    def checkpoint_config(self) -> dict:
        """Constructor arguments for :meth:`save`/:meth:`load`; the eligibility and
        dopamine variables are saved with the state."""
        return {**super().checkpoint_config(), "rule": self.rule, "tau_z": self.tau_z,
                "tau_c": self.tau_c, "tau_d": self.tau_d}

    # -- validation -----------------------------------------------------------------
    def _reward_params(self):
        v.check_choice("rule", self.rule, RULES)
        dt = v.check_positive("dt", self.model.dt)
        tau_z = v.check_positive("tau_z", self.tau_z)
        tau_c = v.check_positive("tau_c", self.tau_c)
        tau_d = None if self.tau_d is None else v.check_positive("tau_d", self.tau_d)
        tau = {"mstdp": None, "mstdpet": tau_z, "rstdp": tau_c}[self.rule]
        return rule_params(self.rule, tau, tau_d, dt)

    def _step_setup(self):
        """Validated ``(config, RewardStepParams)`` from the current attributes."""
        config, params = super()._step_setup()
        rparams = RewardParams(*(np.float32(p) for p in self._reward_params()))
        return config, RewardStepParams(params, rparams)

    def _sequence_reward(self, train_data, reward, post_spikes):
        xs, posts = self._sequence(train_data, post_spikes)
        T = xs.shape[0]
        return xs, posts, _reward_series(reward, T)

    # -- state ----------------------------------------------------------------------
    def get_state(self) -> RewardState:
        """The modulation state (eligibility, dopamine), checked against the layer's sizes."""
        shape = (self.model.output_size, self.model.input_size)
        e = jnp.asarray(self.eligibility.value, jnp.float32)
        D = jnp.asarray(self.dopamine.value, jnp.float32)
        if e.shape != shape:
            raise ValueError(f"eligibility must have shape {shape}, got shape {e.shape}")
        if D.shape != ():
            raise ValueError(f"dopamine must be a scalar, got shape {D.shape}")
        return RewardState(e, D)

    def set_state(self, state: RewardState) -> None:
        """Write a modulation state (e.g. from a checkpoint), after checking it."""
        state = RewardState(*state)
        shape = (self.model.output_size, self.model.input_size)
        e = np.asarray(state.eligibility, np.float32)
        D = np.asarray(state.dopamine, np.float32)
        if e.shape != shape:
            raise ValueError(f"eligibility must have shape {shape}, got shape {e.shape}")
        if D.shape != ():
            raise ValueError(f"dopamine must be a scalar, got shape {D.shape}")
        if not (np.isfinite(e).all() and np.isfinite(D)):
            raise ValueError("eligibility and dopamine must be finite")
        self.eligibility.value = jnp.asarray(e)
        self.dopamine.value = jnp.asarray(D)

    def reset_state(self) -> None:
        """Zero the eligibility and dopamine, and the layer's membrane, spikes and traces."""
        zeros = RewardState.zeros(self.model.input_size, self.model.output_size)
        self.eligibility.value = zeros.eligibility
        self.dopamine.value = zeros.dopamine
        self.model.reset_state()

    def _read_state(self, batch_shape=()) -> RewardStepState:
        if batch_shape:
            raise ValueError("RewardSTDPTrainer trains on unbatched input (T, input_size); got a batch "
                             f"of shape {batch_shape}")
        return RewardStepState(super()._read_state(), self.get_state())

    def _write_state(self, state: RewardStepState, last_x) -> None:
        bad = [k for k, a in state.reward._asdict().items() if not bool(jnp.isfinite(a).all())]
        if bad:
            raise FloatingPointError(
                f"training produced non-finite values in {bad}; the layer and trainer were "
                "left unchanged (check the reward's scale)"
            )
        super()._write_state(state.layer, last_x)  # checks the layer, then writes it
        self.eligibility.value = state.reward.eligibility
        self.dopamine.value = state.reward.dopamine

    # -- public API -------------------------------------------------------------------
    def train(self, train_data, reward, post_spikes=None, *, progress: Optional[bool] = None,
              return_spikes: bool = False):
        """Train on a sequence of inputs with a reward per step.

        Args:
            train_data: inputs ``(T, input_size)``: 0/1 spikes or real currents.
            reward: the reward of each step: an array of ``T`` finite numbers, or one
                number used at every step. (For R-STDP with ``tau_d`` it is the
                dopamine released at the step.)
            post_spikes: optional 0/1 array ``(T, output_size)`` imposed as the output spikes.
            progress: show a progress bar (default: ``show_iteration_progress``).
            return_spikes: also return the output spikes ``(T, output_size)``.

        Returns:
            ``None``, or the output spikes when ``return_spikes``.

        Raises:
            ValueError, TypeError: for bad input (shape, NaN/Inf, parameters), before
                anything changes.
        """
        seq = self._sequence_reward(train_data, reward, post_spikes)
        return self._run(reward_train_step, seq, progress, return_spikes, self.rule.upper())

    def predict_batch(self, patterns, *args, progress: Optional[bool] = None, **kwargs):
        """Run the layer over ``patterns`` without plasticity (eligibility unchanged)."""
        xs, _ = self._sequence(patterns, None)
        return self._run(reward_forward_step, (xs, None), progress, True, "predict")


def _reward_series(reward, T: int) -> np.ndarray:
    """``reward`` as a finite float32 array of shape ``(T,)`` (a scalar is broadcast)."""
    if reward is None:
        raise TypeError("reward is required: an array of T numbers or one number")
    if isinstance(reward, (bool, np.bool_)):
        raise TypeError(f"reward must be a number or an array of numbers, got {reward!r}")
    try:
        arr = np.asarray(reward)
    except (ValueError, TypeError) as err:
        raise ValueError(f"reward could not be read as an array: {err}") from None
    if arr.dtype == object or not np.issubdtype(arr.dtype, np.number) or np.iscomplexobj(arr):
        raise TypeError(f"reward must hold real numbers, got dtype {arr.dtype}")
    arr = arr.astype(np.float32)
    if arr.ndim == 0:
        arr = np.full((T,), arr, np.float32)
    elif arr.shape != (T,):
        raise ValueError(
            f"reward must be one number or have shape ({T},) (one value per step), "
            f"got shape {arr.shape}"
        )
    if not np.isfinite(arr).all():
        i = int(np.argwhere(~np.isfinite(arr))[0][0])
        raise ValueError(f"reward must be finite, got {float(arr[i])} at step {i}")
    return arr
