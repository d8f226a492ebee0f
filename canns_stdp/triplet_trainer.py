"""TripletSTDPTrainer: trains a SpikingLayer with triplet STDP (Pfister & Gerstner 2006)."""

from __future__ import annotations

from typing import Any, Optional

import brainpy.math as bm
import jax
import jax.numpy as jnp
import numpy as np

from . import _validation as v
from .functional.dependence import resolve_dependence
from .functional.traces import decay_from_tau
from .functional.triplet import (
    TripletParams,
    TripletState,
    TripletStepParams,
    triplet_forward_step,
    triplet_train_step,
)
from .base import Trainer
from .trainer import STDPTrainer

__all__ = ["TripletSTDPTrainer"]


class TripletSTDPTrainer(STDPTrainer):
    """Triplet STDP for a :class:`~canns_stdp.SpikingLayer`.

    Each step runs the layer (SPEC steps 1-5), advances the slow traces ``r2``,
    ``o2`` and applies

        ΔW = lr · ( f+(W) ⊙ ((s ⊙ (A2+ + A3+·o2(t−ε))) ⊗ r1)
                  − f−(W) ⊙ (o1 ⊗ (x ⊙ (A2− + A3−·r2(t−ε)))) )

    then clips to ``[w_min, w_max]`` (see :mod:`canns_stdp.functional.triplet`).
    ``r1``/``o1`` are the layer's ``trace_pre``/``trace_post``, so their time
    constants ``τ+``/``τ−``, the trace mode (``"cumulative"`` = all-to-all,
    ``"nearest"`` = nearest-spike), ``dt`` and the decay method are the layer's;
    ``r2``/``o2`` decay with ``tau_x``/``tau_y`` (same ``dt`` and method) and live in
    this trainer as ``bm.Variable``s ``trainer.r2`` ``(input_size,)`` and
    ``trainer.o2`` ``(output_size,)``. :meth:`reset_state` zeroes them together with
    the layer's state. Compiled and Python loops run the same step function.

    Args:
        model: the layer to train.
        learning_rate: global factor ``lr`` (>= 0); the amplitudes are the paper's.
        A2_plus, A3_plus, A2_minus, A3_minus: pair and triplet amplitudes (>= 0).
        tau_x, tau_y: time constants of ``r2`` and ``o2``, in the units of the
            layer's ``dt``.
        w_min, w_max, compiled, pairing, weight_dependence, mu, hardbound,
        chunk_size: as in :class:`~canns_stdp.STDPTrainer`.

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

    def __init__(
        self,
        model,
        learning_rate: float = 1.0,
        A2_plus: float = 5e-10,
        A3_plus: float = 6.2e-3,
        A2_minus: float = 7e-3,
        A3_minus: float = 2.3e-4,
        tau_x: float = 101.0,
        tau_y: float = 125.0,
        w_min: float = 0.0,
        w_max: float = 1.0,
        compiled: bool = True,
        *,
        weight_attr: str = "W",
        pairing: str = "symmetric",
        weight_dependence: Any = "additive",
        mu: float = 1.0,
        hardbound: bool = True,
        chunk_size: Optional[int] = None,
        **kwargs,
    ):
        Trainer.__init__(self, model=model, **kwargs)  # not the pair trainer's: no A_plus, A_minus
        self._set_shared_settings(learning_rate, weight_attr, w_min, w_max, compiled, pairing,
                                  weight_dependence, mu, hardbound, chunk_size)
        self.A2_plus, self.A3_plus = A2_plus, A3_plus
        self.A2_minus, self.A3_minus = A2_minus, A3_minus
        self.tau_x, self.tau_y = tau_x, tau_y
        self._check_model()
        self._step_setup()
        self.r2 = bm.Variable(jnp.zeros(model.input_size, jnp.float32))
        self.o2 = bm.Variable(jnp.zeros(model.output_size, jnp.float32))

    def checkpoint_config(self) -> dict:
        """Constructor arguments for :meth:`save`/:meth:`load`; ``r2`` and ``o2`` are
        saved with the state."""
        names = ("learning_rate", "A2_plus", "A3_plus", "A2_minus", "A3_minus", "tau_x", "tau_y",
                 "w_min", "w_max", "compiled", "weight_attr", "pairing", "weight_dependence", "mu",
                 "hardbound", "chunk_size", "show_iteration_progress")
        return {name: getattr(self, name) for name in names}

    # -- validation -----------------------------------------------------------------
    def _step_setup(self):
        lr = v.check_nonnegative("learning_rate", self.learning_rate)
        amps = [v.check_nonnegative(n, getattr(self, n))
                for n in ("A2_plus", "A3_plus", "A2_minus", "A3_minus")]
        bounds = self._check_shared_settings()
        model = self.model
        dt = v.check_positive("dt", model.dt)
        d_x = decay_from_tau(v.check_positive("tau_x", self.tau_x), dt, model.decay)
        d_y = decay_from_tau(v.check_positive("tau_y", self.tau_y), dt, model.decay)
        dependence = resolve_dependence(self.weight_dependence)
        config = model.step_config(dependence=dependence, pairing=self.pairing,
                                   hardbound=self.hardbound)
        layer_params = model.step_params()
        layer_params = layer_params._replace(stdp=layer_params.stdp._replace(bounds=bounds))
        self._check_dependence(config, layer_params)
        params = TripletStepParams(layer_params, TripletParams(*amps, d_x, d_y, lr, bounds))
        return config, jax.tree_util.tree_map(np.float32, params)

    # -- state --------------------------------------------------------------------------
    def _read_state(self, batch_shape=()) -> TripletState:
        if batch_shape:
            raise ValueError("TripletSTDPTrainer trains on unbatched input (T, input_size); got a batch "
                             f"of shape {batch_shape}")
        layer = super()._read_state()
        arrays = []
        for name, size in (("r2", self.model.input_size), ("o2", self.model.output_size)):
            value = jnp.asarray(getattr(self, name).value, jnp.float32)
            if value.shape != (size,):
                raise ValueError(f"trainer.{name} must have shape {(size,)}, got shape {value.shape}")
            arrays.append(value)
        return TripletState(layer, *arrays)

    def _write_state(self, state: TripletState, last_x) -> None:
        for name in ("r2", "o2"):
            if not bool(jnp.isfinite(getattr(state, name)).all()):
                raise FloatingPointError(
                    f"training produced non-finite values in ['{name}']; nothing was changed"
                )
        super()._write_state(state.layer, last_x)  # checks the layer's arrays, then writes
        self.r2.value, self.o2.value = state.r2, state.o2

    def reset_state(self) -> None:
        """Zero the layer's membrane, spikes and traces, and the slow traces ``r2``, ``o2``."""
        self.model.reset_state()
        self.r2.value = jnp.zeros(self.model.input_size, jnp.float32)
        self.o2.value = jnp.zeros(self.model.output_size, jnp.float32)

    # -- public API -------------------------------------------------------------------
    def train(self, train_data, post_spikes=None, *, progress: Optional[bool] = None,
              return_spikes: bool = False):
        """Train on ``(T, input_size)`` inputs, one triplet-STDP step per row.

        Arguments and errors as in :meth:`STDPTrainer.train`; the layer and the slow
        traces are written back only when the whole call succeeds.
        """
        seq = self._sequence(train_data, post_spikes)
        return self._run(triplet_train_step, seq, progress, return_spikes, "triplet STDP")

    def predict(self, pattern, *args, **kwargs):
        """Advance one step on ``pattern`` without plasticity (all four traces move)."""
        x = v.as_vector("x", pattern, self.model.input_size)
        compiled, self.compiled = self.compiled, False
        try:
            spikes = self._run(triplet_forward_step, (x[None],), False, True, "predict")
        finally:
            self.compiled = compiled
        return jnp.asarray(spikes[0])

    def predict_batch(self, patterns, *args, progress: Optional[bool] = None, **kwargs):
        """Run over ``patterns`` ``(T, input_size)`` without plasticity; spikes ``(T, output_size)``."""
        seq = self._sequence(patterns, None)
        return self._run(triplet_forward_step, seq, progress, True, "predict")
