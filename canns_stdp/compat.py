"""CANNs-style trainers: thin constructors over :class:`~canns_stdp.Trainer`.

Each keeps its signature, attributes and checkpoint format, and builds its rule from
its attributes at every call (so ``trainer.A_plus = ...`` takes effect at the next
``train()``, without recompiling).
"""

from __future__ import annotations

from typing import Any, NamedTuple, Optional

import jax.numpy as jnp
import numpy as np

from . import _validation as v
from . import rules
from .checkpoint import register_kind
from .layer import assign, settled_step
from .trainer import Trainer

__all__ = ["RewardSTDPTrainer", "RewardState", "STDPTrainer", "TripletSTDPTrainer"]


class RewardState(NamedTuple):
    """A :class:`RewardSTDPTrainer`'s modulation state."""

    eligibility: Any  # W's shape; (B,) + W's shape after a batched call
    dopamine: Any     # (); (B,) after a batched call

class STDPTrainer(Trainer):
    """Pair STDP for a :class:`~canns_stdp.SpikingLayer` or
    :class:`~canns_stdp.ConvSpikingLayer` (CANNs 1.5's ``STDPTrainer``, same signature):
    ``Trainer(model, rules.pair(A_plus, A_minus, ...))``.

    Each step runs the layer and then

        dW = lr * (A+ f+(W) ⊙ (s ⊗ P) - A- f-(W) ⊙ (Q ⊗ x)),  W = clip(W + dW, w_min, w_max)

    with ``(P, Q)`` the traces chosen by ``pairing``. ``compiled=True`` runs a
    compiled loop, ``compiled=False`` a Python loop; both call the same step
    function and give the same weights. ``train()`` continues from the layer's
    current state (membrane, traces) and writes the new state back only when it
    succeeds.

    Args:
        model: the layer to train.
        learning_rate: global factor ``lr`` (>= 0).
        A_plus, A_minus: LTP and LTD amplitudes (>= 0).
        weight_attr: name of the model's weight variable.
        w_min, w_max: weight bounds, ``w_min < w_max``.
        compiled: compiled loop (``True``) or Python loop (``False``).
        pairing: ``"symmetric"``, ``"causal"`` or ``"strict"``.
        weight_dependence: ``"additive"``, ``"hard"``, ``"soft"``, ``"power"``, or a
            pair ``(f_plus, f_minus)`` of functions of ``W``.
        mu: exponent of the ``"power"`` dependence (>= 0).
        hardbound: clip the weights to ``[w_min, w_max]`` after each step.
        signed_amplitudes: allow negative ``A_plus``/``A_minus`` (e.g. Inferno's
            anti-Hebbian, potentiative-only or depressive-only modes; see docs/peers.md).
        chunk_size: steps per compiled chunk (default: chosen from the input size).
        event_driven: ``"auto"`` (default) runs each chunk of a dense layer with an
            event-driven kernel (cost proportional to the spikes) when at most 1/10 of
            the chunk's inputs are active, else with the dense kernel; ``True`` always
            event-driven, ``False`` always dense (:mod:`canns_stdp.kernels.pair_layer`).
            Every kernel computes the same step.
        fused: ``"auto"`` (default) trains a dense, unbatched layer with a built-in
            weight dependence in the fused Pallas kernel when JAX runs on a GPU;
            ``True`` always (off GPU the kernel is interpreted: slow, for testing);
            ``False`` never.
        batch_reduction: ``"sum"`` or ``"mean"``: how the per-sample weight changes
            of a batched input ``(T, B, ...)`` are reduced.
        show_iteration_progress: show a progress bar during ``train()`` by default.

    Example:
        >>> import numpy as np
        >>> from canns_stdp import SpikingLayer, STDPTrainer
        >>> layer = SpikingLayer(input_size=20, output_size=5, seed=0)
        >>> trainer = STDPTrainer(layer, learning_rate=0.01)
        >>> patterns = (np.random.default_rng(0).random((100, 20)) < 0.1).astype(np.float32)
        >>> trainer.train(patterns)
        >>> spikes = trainer.predict(patterns[0])
    """

    def __init__(self, model, learning_rate: float = 0.01, A_plus: float = 0.005, A_minus: float = 0.00525,
                 weight_attr: str = "W", w_min: float = 0.0, w_max: float = 1.0, compiled: bool = True, *,
                 pairing: str = "symmetric", weight_dependence: Any = "additive", mu: float = 1.0,
                 hardbound: bool = True, chunk_size: Optional[int] = None, event_driven: Any = "auto",
                 fused: Any = "auto", signed_amplitudes: bool = False, batch_reduction: str = "sum", **kwargs):
        self.A_plus, self.A_minus = A_plus, A_minus
        self.pairing, self.weight_dependence, self.mu = pairing, weight_dependence, mu
        self.signed_amplitudes = signed_amplitudes
        super().__init__(model, None, learning_rate, w_min, w_max, compiled, hardbound=hardbound,
                         batch_reduction=batch_reduction, chunk_size=chunk_size, weight_attr=weight_attr,
                         event_driven=event_driven, fused=fused, **kwargs)

    def current_rule(self) -> rules.Rule:
        """The pair rule of the current attributes (the same object while they are the same)."""
        def build():
            _check_signed(self.signed_amplitudes)
            return rules.pair(self.A_plus, self.A_minus, pairing=self.pairing, dependence=self.weight_dependence,
                              mu=self.mu, signed=self.signed_amplitudes)
        key = (self.A_plus, self.A_minus, self.pairing, self.weight_dependence, self.mu, self.signed_amplitudes)
        return self._settled("_settled_pair", key, build)

    def _describe(self, rule) -> str:
        return "STDP"

    def checkpoint_config(self) -> dict:
        """Constructor arguments for :meth:`save`/:meth:`load` (a user weight
        dependence cannot be stored: pass it again to ``load``)."""
        names = ("learning_rate", "A_plus", "A_minus", "weight_attr", "w_min", "w_max", "compiled",
                 "pairing", "weight_dependence", "mu", "hardbound", "chunk_size",
                 "event_driven", "fused", "signed_amplitudes", "batch_reduction", "show_iteration_progress")
        return {name: getattr(self, name) for name in names}

    @classmethod
    def from_checkpoint_config(cls, config: dict, **context):
        return cls(context["model"], **config)


class RewardSTDPTrainer(STDPTrainer):
    """Three-factor STDP: the pair rule's change ``ζ`` gated by a reward per step,
    ``Trainer(model, rules.reward(rules.pair(A_plus, A_minus, ...), kind=rule, ...))``.

    With ``ζ = A+ f+(W) ⊙ (s ⊗ P) − A− f−(W) ⊙ (Q ⊗ x)`` and ``r`` the step's reward:

    * ``rule="mstdp"`` (Florian 2007): ``ΔW = lr · r · ζ``
    * ``rule="mstdpet"`` (Florian 2007): ``z' = exp(−dt/τ_z) z + ζ/τ_z``, ``ΔW = lr · r · z'``
    * ``rule="rstdp"`` (Izhikevich 2007): ``c' = exp(−dt/τ_c) c + ζ``,
      ``ΔW = lr · D' · c'`` with ``D' = r`` (``tau_d=None``) or ``D' = exp(−dt/τ_d) D + r``

    then ``W' = clip(W + ΔW, w_min, w_max)``. ``dt`` is the layer's ``dt``. The
    modulation state lives in this trainer: :attr:`eligibility` (shaped like ``W``)
    and :attr:`dopamine` (a scalar), with a leading batch axis after a batched call;
    :meth:`reset_state` zeros them *and* the layer's membrane, spikes and traces.
    Every map works: dense, masked (absent synapses never change) and convolutional.

    Args:
        model: the layer to train.
        rule: ``"mstdp"``, ``"mstdpet"`` or ``"rstdp"``.
        learning_rate: ``lr`` (>= 0).
        A_plus, A_minus: LTP and LTD amplitudes of ``ζ`` (>= 0).
        tau_z: eligibility time constant of MSTDPET (> 0, units of ``dt``).
        tau_c: eligibility time constant of R-STDP (> 0).
        tau_d: dopamine time constant of R-STDP (> 0), or ``None`` for ``D = r``.
        w_min, w_max, compiled, weight_attr: as in :class:`STDPTrainer`.
        **kwargs: ``pairing``, ``weight_dependence``, ``mu``, ``hardbound``,
            ``chunk_size``, ``batch_reduction``, ``show_iteration_progress`` as in
            ``STDPTrainer``.

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

    def __init__(self, model, rule: str = "mstdpet", learning_rate: float = 0.01, A_plus: float = 0.005,
                 A_minus: float = 0.00525, tau_z: float = 25.0, w_min: float = 0.0, w_max: float = 1.0,
                 compiled: bool = True, *, tau_c: float = 1000.0, tau_d: Optional[float] = None,
                 weight_attr: str = "W", pairing: str = "symmetric", weight_dependence: Any = "additive",
                 mu: float = 1.0, hardbound: bool = True, chunk_size: Optional[int] = None,
                 batch_reduction: str = "sum", signed_amplitudes: bool = False, event_driven: Any = "auto",
                 fused: Any = "auto", **kwargs):
        self.kind = rule
        self.tau_z, self.tau_c, self.tau_d = tau_z, tau_c, tau_d
        super().__init__(model, learning_rate, A_plus, A_minus, weight_attr, w_min, w_max, compiled,
                         pairing=pairing, weight_dependence=weight_dependence, mu=mu, hardbound=hardbound,
                         chunk_size=chunk_size, event_driven=event_driven, fused=fused,
                         signed_amplitudes=signed_amplitudes, batch_reduction=batch_reduction, **kwargs)

    # ``rule`` is CANNs' name for the kind of modulation: a string attribute here
    @property
    def rule(self) -> str:
        return self.kind

    @rule.setter
    def rule(self, value) -> None:
        if value is not None:
            self.kind = value

    def current_rule(self) -> rules.Rule:
        """The reward rule of the current attributes (the same object while they are the same)."""
        pair = super().current_rule()

        def build():
            v.check_choice("rule", self.kind, rules.KINDS)
            dt = v.check_positive("dt", self.model.dt)
            return rules.reward(pair, self.kind, tau_z=self.tau_z, tau_c=self.tau_c, tau_d=self.tau_d, dt=dt)
        key = (pair, self.kind, self.tau_z, self.tau_c, self.tau_d, self.model.dt)
        return self._settled("_settled_reward", key, build)

    def _describe(self, rule) -> str:
        return str(self.kind).upper()

    def checkpoint_config(self) -> dict:
        """Constructor arguments for :meth:`save`/:meth:`load`; the eligibility and
        dopamine variables are saved with the state."""
        return {**super().checkpoint_config(), "rule": self.rule, "tau_z": self.tau_z, "tau_c": self.tau_c,
                "tau_d": self.tau_d}

    def get_state(self, batch_shape: Optional[tuple] = None) -> RewardState:
        """The modulation state (eligibility, dopamine), checked against the layer's sizes
        (``batch_shape``: ``None`` for the unbatched state, ``(B,)`` for one per sample)."""
        state = self._rule_state.read(tuple(batch_shape or ()))
        return RewardState(state.eligibility, state.dopamine)

    def set_state(self, state: RewardState) -> None:
        """Write a modulation state (e.g. from a checkpoint), after checking it: unbatched,
        or eligibility ``(B,) + W.shape`` with dopamine ``(B,)``."""
        state = RewardState(*state)
        arrays = {"eligibility": np.asarray(state.eligibility, np.float32),
                  "dopamine": np.asarray(state.dopamine, np.float32)}
        self._rule_state.check_stored(arrays)
        for name, value in arrays.items():
            assign(self, name, jnp.asarray(value))

    def train(self, train_data, reward=None, post_spikes=None, *, progress: Optional[bool] = None,
              return_spikes: bool = False, checkpoint=None):
        """Train on a sequence of inputs with a reward per step.

        Args:
            train_data: inputs ``(T, input_size)`` (``(T, B, input_size)`` for a batch:
                each sample has its own membrane, traces, eligibility and dopamine).
            reward: the reward of each step: ``T`` finite numbers (``(T, B)`` with a
                batch), or one number for every step. (For R-STDP with ``tau_d`` it is
                the dopamine released at the step.)
            post_spikes: optional 0/1 output spikes imposed at each step.
            progress, return_spikes, checkpoint: as in :meth:`Trainer.train`.
        """
        if reward is None:
            raise TypeError("reward is required: an array of T numbers or one number")
        return super().train(train_data, post_spikes, reward=reward, progress=progress,
                             return_spikes=return_spikes, checkpoint=checkpoint)


class TripletSTDPTrainer(Trainer):
    """Triplet STDP (Pfister & Gerstner 2006) for a layer:
    ``Trainer(model, rules.triplet(...))`` with the layer's trace mode and increments.

    Each step runs the layer, advances the slow traces ``r2``, ``o2`` and applies

        ΔW = lr · ( f+(W) ⊙ ((s ⊙ (A2+ + A3+·o2(t−ε))) ⊗ r1)
                  − f−(W) ⊙ (o1 ⊗ (x ⊙ (A2− + A3−·r2(t−ε)))) )

    then clips to ``[w_min, w_max]``. ``r1``/``o1`` are the layer's
    ``trace_pre``/``trace_post``; ``r2``/``o2`` decay with ``tau_x``/``tau_y`` (the
    layer's ``dt`` and decay method) and live in this trainer as ``trainer.r2`` and
    ``trainer.o2``. :meth:`reset_state` zeroes them with the layer's state.

    Args:
        model: the layer to train.
        learning_rate: global factor ``lr`` (>= 0); the amplitudes are the paper's.
        A2_plus, A3_plus, A2_minus, A3_minus: pair and triplet amplitudes (>= 0).
        tau_x, tau_y: time constants of ``r2`` and ``o2``, in units of the layer's ``dt``.
        w_min, w_max, compiled, pairing, weight_dependence, mu, hardbound,
        chunk_size: as in :class:`STDPTrainer`.

    Example:
        >>> from canns_stdp import SpikingLayer, TripletSTDPTrainer
        >>> from canns_stdp.functional.triplet import triplet_parameters
        >>> p = triplet_parameters("visual_cortex", "all_to_all")
        >>> layer = SpikingLayer(1, 1, dt=1.0, W_init=[[0.5]], **p.layer_kwargs())
        >>> trainer = TripletSTDPTrainer(layer, hardbound=False, **p.trainer_kwargs())
        >>> x = [[1.0]] + [[0.0]] * 19          # pre at 0 ms, post imposed at 10 ms
        >>> post = [[0.0]] * 10 + [[1.0]] + [[0.0]] * 9
        >>> trainer.train(x, post_spikes=post)
    """

    def __init__(self, model, learning_rate: float = 1.0, A2_plus: float = 5e-10, A3_plus: float = 6.2e-3,
                 A2_minus: float = 7e-3, A3_minus: float = 2.3e-4, tau_x: float = 101.0, tau_y: float = 125.0,
                 w_min: float = 0.0, w_max: float = 1.0, compiled: bool = True, *, weight_attr: str = "W",
                 pairing: str = "symmetric", weight_dependence: Any = "additive", mu: float = 1.0,
                 hardbound: bool = True, chunk_size: Optional[int] = None, batch_reduction: str = "sum",
                 **kwargs):
        self.A2_plus, self.A3_plus, self.A2_minus, self.A3_minus = A2_plus, A3_plus, A2_minus, A3_minus
        self.tau_x, self.tau_y = tau_x, tau_y
        self.pairing, self.weight_dependence, self.mu = pairing, weight_dependence, mu
        super().__init__(model, None, learning_rate, w_min, w_max, compiled, hardbound=hardbound,
                         batch_reduction=batch_reduction, chunk_size=chunk_size, weight_attr=weight_attr,
                         **kwargs)

    def current_rule(self) -> rules.Rule:
        """The triplet rule of the current attributes and the layer's parameters (the same
        object while they are the same)."""
        model = self.model

        def build():
            model.validate()
            return rules.triplet(self.A2_plus, self.A3_plus, self.A2_minus, self.A3_minus, tau_x=self.tau_x,
                                 tau_y=self.tau_y, dt=model.dt, decay=model.decay, trace_mode=model.trace_mode,
                                 a_pre=model.a_pre, a_post=model.a_post, pairing=self.pairing,
                                 dependence=self.weight_dependence, mu=self.mu)
        layer_step = settled_step(model)  # the layer's parameters, valid and unchanged while the same tuple
        if layer_step is None:
            return build()
        key = (model, layer_step, self.A2_plus, self.A3_plus, self.A2_minus, self.A3_minus, self.tau_x, self.tau_y,
               self.pairing, self.weight_dependence, self.mu)
        return self._settled("_settled_triplet", key, build, fixed=2)

    def _describe(self, rule) -> str:
        return "triplet STDP"

    def checkpoint_config(self) -> dict:
        """Constructor arguments for :meth:`save`/:meth:`load`; ``r2`` and ``o2`` are
        saved with the state."""
        names = ("learning_rate", "A2_plus", "A3_plus", "A2_minus", "A3_minus", "tau_x", "tau_y",
                 "w_min", "w_max", "compiled", "weight_attr", "pairing", "weight_dependence", "mu",
                 "hardbound", "chunk_size", "batch_reduction", "show_iteration_progress")
        return {name: getattr(self, name) for name in names}

    @classmethod
    def from_checkpoint_config(cls, config: dict, **context):
        return cls(context["model"], **config)

    def predict(self, pattern, *args, **kwargs):
        """Advance one step on ``pattern`` without plasticity (all four traces move)."""
        x = v.as_vector("x", pattern, self.model.input_size)
        return jnp.asarray(self.predict_batch(x[None])[0])


def _check_signed(value) -> None:
    if not isinstance(value, bool):
        raise TypeError(f"signed_amplitudes must be True or False, got {value!r}")


# the modules these trainers were defined in before: checkpoints name them
for _cls, _old in ((STDPTrainer, "canns_stdp.trainer.STDPTrainer"),
                   (RewardSTDPTrainer, "canns_stdp.reward_trainer.RewardSTDPTrainer"),
                   (TripletSTDPTrainer, "canns_stdp.triplet_trainer.TripletSTDPTrainer")):
    register_kind(_old, _cls)
