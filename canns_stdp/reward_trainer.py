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
from .layer import assign
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
    After a batched ``train()`` (inputs ``(T, B, input_size)``) they hold one per sample,
    ``(B, output_size, input_size)`` and ``(B,)``; an unbatched state is broadcast to a
    batch, a batch of another size needs :meth:`reset_state` first (as the layer's).
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
        return xs, posts, _reward_series(reward, xs.shape[0], self._batch_shape(xs))

    # -- state ----------------------------------------------------------------------
    # modulation state that may carry a leading batch axis (one per sample); checkpoints
    # store it as it is (canns_stdp.checkpoint)
    batchable_state = ("eligibility", "dopamine")

    def _check_reward_state(self, e, D, batch_shape=None):
        """``(e, D)`` checked against the layer's sizes; ``batch_shape`` as in
        :meth:`get_state` (``None``: whatever batch ``e`` and ``D`` agree on)."""
        shape = (self.model.output_size, self.model.input_size)
        held = tuple(e.shape[:-2]) if e.ndim > 2 and tuple(e.shape[-2:]) == shape else None
        if batch_shape is None:  # take the stored batch, if consistent
            if e.shape != shape and held is None:
                raise ValueError(f"eligibility must have shape {shape} (or (B,) + {shape} for a "
                                 f"batch), got shape {e.shape}")
            batch_shape = held or ()
            if D.shape != batch_shape:
                raise ValueError(f"dopamine must have shape {batch_shape} (one per sample of the "
                                 f"eligibility), got shape {D.shape}")
            return e, D
        batch_shape = tuple(batch_shape)
        if not batch_shape and e.shape != shape:
            hint = "; the trainer holds a batched state: call reset_state() first" if held else ""
            raise ValueError(f"eligibility must have shape {shape}, got shape {e.shape}{hint}")
        if batch_shape and e.shape != batch_shape + shape:
            if e.shape != shape:
                if held is not None:
                    raise ValueError(f"eligibility holds a batch of shape {held}, the input a batch of "
                                     f"shape {batch_shape}; call reset_state() first")
                raise ValueError(f"eligibility must have shape {batch_shape + shape}, got shape {e.shape}")
            if D.shape != ():
                raise ValueError(f"dopamine must be a scalar, got shape {D.shape}")
            return jnp.broadcast_to(e, batch_shape + shape), jnp.broadcast_to(D, batch_shape)
        if D.shape != batch_shape:
            what = "a scalar" if not batch_shape else f"of shape {batch_shape} (one per sample)"
            raise ValueError(f"dopamine must be {what}, got shape {D.shape}")
        return e, D

    def get_state(self, batch_shape: Optional[tuple] = None) -> RewardState:
        """The modulation state (eligibility, dopamine), checked against the layer's sizes.

        Args:
            batch_shape: ``None`` for the unbatched state (eligibility ``(output_size,
                input_size)``, dopamine a scalar); ``(B,)`` for one per sample
                (``(B, output_size, input_size)`` and ``(B,)``): a stored unbatched
                state (e.g. after :meth:`reset_state`) is broadcast to the batch, a
                stored batch of another size is an error.
        """
        e = jnp.asarray(self.eligibility.value, jnp.float32)
        D = jnp.asarray(self.dopamine.value, jnp.float32)
        return RewardState(*self._check_reward_state(e, D, batch_shape or ()))

    def set_state(self, state: RewardState) -> None:
        """Write a modulation state (e.g. from a checkpoint), after checking it: unbatched,
        or eligibility ``(B, output_size, input_size)`` with dopamine ``(B,)``."""
        state = RewardState(*state)
        e = np.asarray(state.eligibility, np.float32)
        D = np.asarray(state.dopamine, np.float32)
        self._check_reward_state(e, D)
        if not (np.isfinite(e).all() and np.isfinite(D).all()):
            raise ValueError("eligibility and dopamine must be finite")
        assign(self, "eligibility", jnp.asarray(e))
        assign(self, "dopamine", jnp.asarray(D))

    def restore_checkpoint_state(self, arrays) -> None:
        arrays = dict(arrays)
        for name in self.batchable_state:  # a batched state replaces the unbatched variable
            if name in arrays:
                assign(self, name, jnp.asarray(arrays.pop(name)))
        super().restore_checkpoint_state(arrays)

    def reset_state(self) -> None:
        """Zero the eligibility and dopamine (unbatched), and the layer's membrane,
        spikes and traces (weights are kept)."""
        zeros = RewardState.zeros(self.model.input_size, self.model.output_size)
        assign(self, "eligibility", zeros.eligibility)
        assign(self, "dopamine", zeros.dopamine)
        self.model.reset_state()

    _predicting = False

    def _read_state(self, batch_shape=()) -> RewardStepState:
        layer = super()._read_state(batch_shape)
        if self._predicting:  # unused by reward_forward_step: any batch size will do
            zeros = RewardState.zeros(self.model.input_size, self.model.output_size,
                                      batch_shape=batch_shape)
            return RewardStepState(layer, zeros)
        return RewardStepState(layer, self.get_state(batch_shape))

    def _write_state(self, state: RewardStepState, last_x) -> None:
        bad = [k for k, a in state.reward._asdict().items() if not bool(jnp.isfinite(a).all())]
        if bad:
            raise FloatingPointError(
                f"training produced non-finite values in {bad}; the layer and trainer were "
                "left unchanged (check the reward's scale)"
            )
        super()._write_state(state.layer, last_x)  # checks the layer, then writes it
        if self._predicting:
            return
        assign(self, "eligibility", state.reward.eligibility)
        assign(self, "dopamine", state.reward.dopamine)

    # -- public API -------------------------------------------------------------------
    def train(self, train_data, reward, post_spikes=None, *, progress: Optional[bool] = None,
              return_spikes: bool = False):
        """Train on a sequence of inputs with a reward per step.

        Args:
            train_data: inputs ``(T, input_size)``: 0/1 spikes or real currents;
                ``(T, B, input_size)`` for a batch: each sample has its own membrane,
                traces, eligibility and dopamine, and ``W`` changes once per step by the
                sum (or mean: ``batch_reduction``) of the samples' ``lr · D_b · e_b``.
            reward: the reward of each step: an array of ``T`` finite numbers, or one
                number used at every step; with a batch also ``(T, B)``, one per step
                and sample. (For R-STDP with ``tau_d`` it is the dopamine released at
                the step.)
            post_spikes: optional 0/1 array ``(T, output_size)`` imposed as the output
                spikes (``(T, B, output_size)`` with a batch).
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
        self._predicting = True  # the modulation state is neither read nor written
        try:
            return self._run(reward_forward_step, (xs, None), progress, True, "predict")
        finally:
            self._predicting = False


def _reward_series(reward, T: int, batch_shape: tuple = ()) -> np.ndarray:
    """``reward`` as a finite float32 array of shape ``(T,)``, or ``(T, B)`` for a batch
    ``(B,)`` (a scalar, or ``(T,)`` for a batch, is broadcast)."""
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
    batch_shape = tuple(batch_shape)
    if arr.ndim == 0:
        arr = np.full((T,), arr, np.float32)
    elif arr.shape != (T,) and (not batch_shape or arr.shape != (T,) + batch_shape):
        per_sample = f" or {(T,) + batch_shape} (one value per step and sample)" if batch_shape else ""
        raise ValueError(
            f"reward must be one number or have shape ({T},) (one value per step){per_sample}, "
            f"got shape {arr.shape}"
        )
    if not np.isfinite(arr).all():
        where = tuple(int(k) for k in np.argwhere(~np.isfinite(arr))[0])
        at = f"step {where[0]}" + (f", sample {where[1]}" if len(where) > 1 else "")
        raise ValueError(f"reward must be finite, got {float(arr[where])} at {at}")
    if batch_shape and arr.ndim == 1:
        arr = np.broadcast_to(arr[:, None], (T,) + batch_shape)
    return np.ascontiguousarray(arr)
