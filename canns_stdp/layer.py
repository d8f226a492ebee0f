"""SpikingLayer: a dense layer of LIF neurons with STDP traces, as a BrainPy model."""

from __future__ import annotations

from typing import Callable, Optional, Union

import brainpy.math as bm
import jax
import jax.numpy as jnp
import numpy as np

from . import _validation as v
from .base import BrainInspiredModel
from .functional.layer_step import LayerConfig, LayerParams, LayerState, forward_step
from .functional.neurons import LIFParams
from .functional.stdp import STDPParams, TraceParams
from .functional.synapses import Dense, MaskedDense
from .functional.traces import DECAY_METHODS, TRACE_MODES, decay_from_tau

__all__ = ["SpikingLayer", "assign"]


def assign(owner, name: str, value) -> None:
    """``owner.<name>.value = value``; a value of another shape (a batched state after
    an unbatched one, or back) gets a fresh ``bm.Variable``, since BrainPy variables
    keep their shape."""
    var = getattr(owner, name)
    if tuple(var.value.shape) == tuple(jnp.shape(value)):
        var.value = value
    else:  # BrainPy's __setattr__ would write into the old variable: drop it first
        owner.__dict__.pop(name, None)
        setattr(owner, name, bm.Variable(jnp.asarray(value)))

_forward = jax.jit(forward_step, static_argnums=0)


class SpikingLayer(BrainInspiredModel):
    """A layer of leaky integrate-and-fire neurons with pre/post spike traces.

    One step (steps 1-5 of docs/step.md; the trainer adds the weight update):

        tr_pre  = d_pre * tr_pre + a_pre * x
        v       = leak * v + W @ x
        s       = 1[v >= threshold];   v = v_reset where s
        tr_post = d_post * tr_post + a_post * s

    State lives in ``bm.Variable``s: ``W`` ``(output_size, input_size)``, ``x``,
    ``v``, ``spike``, ``trace_pre`` and ``trace_post``. Names, arguments and defaults
    are those of CANNs 1.5's ``SpikingLayer``; the keyword-only arguments go beyond.

    Args:
        input_size: number of inputs ``n_in``.
        output_size: number of neurons ``n_out``.
        threshold: firing threshold.
        v_reset: membrane potential after a spike.
        leak: membrane decay per step, in [0, 1].
        trace_decay: decay per step of both traces, in (0, 1], unless a time
            constant is given.
        dt: time step, in the units of ``tau_m``/``tau_pre``/``tau_post``.
        tau_m: membrane time constant; when given it sets ``leak`` to ``exp(-dt/tau_m)``
            (``decay="exact"``) or ``1 - dt/tau_m`` (``decay="euler"``).
        tau_pre, tau_post: trace time constants; when given they set ``d_pre`` /
            ``d_post`` to ``exp(-dt/tau)`` (``decay="exact"``) or ``1 - dt/tau``
            (``decay="euler"``) in place of ``trace_decay``.
        decay: ``"exact"`` or ``"euler"``.
        trace_mode: ``"cumulative"`` (every spike adds ``a``) or ``"nearest"``
            (a spike resets the trace to ``a``).
        a_pre, a_post: trace increments per spike.
        W_init: initial weights: an array of shape ``(output_size, input_size)``, a
            function ``shape -> array``, or ``None`` for ``0.05 * normal`` drawn with
            ``brainpy.math.random``'s current key (as CANNs 1.5 does) or with
            ``seed`` when given.
        seed: integer seed for the default initial weights.
        mask: optional 0/1 array ``(output_size, input_size)``: sparse connectivity;
            absent synapses carry no current and never change.

    Example:
        >>> from canns_stdp import SpikingLayer
        >>> layer = SpikingLayer(input_size=4, output_size=2, tau_pre=20.0, tau_post=20.0)
        >>> spikes = layer.forward([1.0, 0.0, 1.0, 0.0])
        >>> layer.save("layer.npz"); layer = SpikingLayer.load("layer.npz")
    """

    def __init__(
        self,
        input_size: int,
        output_size: int,
        threshold: float = 1.0,
        v_reset: float = 0.0,
        leak: float = 0.9,
        trace_decay: float = 0.95,
        dt: float = 1.0,
        *,
        tau_m: Optional[float] = None,
        tau_pre: Optional[float] = None,
        tau_post: Optional[float] = None,
        decay: str = "exact",
        trace_mode: str = "cumulative",
        a_pre: float = 1.0,
        a_post: float = 1.0,
        W_init: Union[None, np.ndarray, Callable] = None,
        seed: Optional[int] = None,
        mask: Optional[np.ndarray] = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.input_size = v.check_positive_int("input_size", input_size)
        self.output_size = v.check_positive_int("output_size", output_size)
        self.synapse = Dense() if mask is None else MaskedDense(mask)
        if mask is not None and self.synapse.mask.shape != (self.output_size, self.input_size):
            raise ValueError(f"mask must have shape {(self.output_size, self.input_size)}, "
                             f"got shape {self.synapse.mask.shape}")
        self._init_dynamics(W_init, seed, threshold=threshold, v_reset=v_reset, leak=leak,
                            trace_decay=trace_decay, dt=dt, tau_m=tau_m, tau_pre=tau_pre, tau_post=tau_post,
                            decay=decay, trace_mode=trace_mode, a_pre=a_pre, a_post=a_post)

    def _init_dynamics(self, W_init, seed, **neuron) -> None:
        """Set and check the neuron and trace parameters, then create the state variables
        (shapes from :attr:`weight_shape` and :meth:`sample_shapes`)."""
        for name, value in neuron.items():
            setattr(self, name, value)
        self.validate()
        self.W = bm.Variable(self._initial_weights(W_init, seed, self.weight_shape))
        in_shape, out_shape = self.sample_shapes()
        self.x = bm.Variable(jnp.zeros(in_shape, jnp.float32))
        self.v = bm.Variable(jnp.zeros(out_shape, jnp.float32))
        self.spike = bm.Variable(jnp.zeros(out_shape, jnp.float32))
        self.trace_pre = bm.Variable(jnp.zeros(in_shape, jnp.float32))
        self.trace_post = bm.Variable(jnp.zeros(out_shape, jnp.float32))

    @staticmethod
    def _initial_weights(W_init, seed, shape):
        if seed is not None:
            seed = v.check_seed("seed", seed)
        if W_init is None:
            key = bm.random.get_key() if seed is None else jax.random.PRNGKey(seed)
            return jax.random.normal(key, shape, dtype=jnp.float32) * 0.05
        W = W_init(shape) if callable(W_init) else W_init
        try:
            W = np.asarray(W, dtype=np.float32)
        except (TypeError, ValueError):
            raise TypeError(f"W_init must be an array of numbers, a function of the shape or None, "
                            f"got {type(W).__name__} {W!r:.80}") from None
        if W.shape != shape:
            raise ValueError(f"W_init must have shape {shape}, got shape {W.shape}")
        if not np.isfinite(W).all():
            raise ValueError("W_init must be finite")
        return jnp.asarray(W)

    # -- parameters -------------------------------------------------------------
    def _decay(self, tau, name: str) -> float:
        if tau is None:
            return v.check_decay("trace_decay", self.trace_decay)
        return decay_from_tau(v.check_positive(name, tau), v.check_positive("dt", self.dt), self.decay)

    tau_m = None  # the membrane time constant, when it sets the leak

    @property
    def membrane_leak(self) -> float:
        """The membrane's decay per step: ``leak``, or from ``tau_m`` when given."""
        if self.tau_m is None:
            return v.check_unit_interval("leak", self.leak)
        tau = v.check_positive("tau_m", self.tau_m)
        try:
            return decay_from_tau(tau, v.check_positive("dt", self.dt), self.decay)
        except ValueError as err:
            raise ValueError(f"tau_m={tau!r} with dt={self.dt!r} gives no usable leak: {err}") from None

    @property
    def d_pre(self) -> float:
        """Per-step decay of the presynaptic trace."""
        return self._decay(self.tau_pre, "tau_pre")

    @property
    def d_post(self) -> float:
        """Per-step decay of the postsynaptic trace."""
        return self._decay(self.tau_post, "tau_post")

    def validate(self) -> None:
        """Check every parameter; raise ``ValueError``/``TypeError`` naming a bad one."""
        v.check_number("threshold", self.threshold)
        v.check_number("v_reset", self.v_reset)
        v.check_unit_interval("leak", self.leak)
        v.check_positive("dt", self.dt)
        self.membrane_leak  # checks tau_m
        v.check_choice("decay", self.decay, DECAY_METHODS)
        v.check_choice("trace_mode", self.trace_mode, tuple(TRACE_MODES))
        v.check_nonnegative("a_pre", self.a_pre)
        v.check_nonnegative("a_post", self.a_post)
        self.d_pre, self.d_post  # checks trace_decay, tau_pre, tau_post

    def step_params(self, stdp: STDPParams = STDPParams()) -> LayerParams:
        """The numeric parameters of a step, with the plasticity part from a trainer."""
        self.validate()
        lif = LIFParams(float(self.membrane_leak), float(self.threshold), float(self.v_reset))
        traces = TraceParams(self.d_pre, self.d_post, float(self.a_pre), float(self.a_post))
        return LayerParams(lif=lif, traces=traces, stdp=stdp)

    def step_config(self, **plasticity) -> LayerConfig:
        """The static choices of a step; ``plasticity`` comes from a trainer."""
        self.validate()
        return LayerConfig(trace_add=TRACE_MODES[self.trace_mode], synapse=self.synapse, **plasticity)

    @property
    def weight_shape(self) -> tuple:
        """Shape of ``W``."""
        return (self.output_size, self.input_size)

    def sample_shapes(self) -> tuple:
        """``(input shape, output shape)`` of one sample, without time or batch axes."""
        return (self.input_size,), (self.output_size,)

    # -- state --------------------------------------------------------------------
    _CONFIG = ("input_size", "output_size", "threshold", "v_reset", "leak", "trace_decay", "dt",
               "tau_pre", "tau_post", "decay", "trace_mode", "a_pre", "a_post")

    # state that may carry a leading batch axis (one membrane and trace per sample)
    batchable_state = ("x", "v", "spike", "trace_pre", "trace_post")
    #: held per sample of a batch all together or not at all (``x``, the last input, may stay one sample's)
    batched_together = ("v", "spike", "trace_pre", "trace_post")

    def restore_checkpoint_state(self, arrays) -> None:
        for name, value in arrays.items():
            assign(self, name, jnp.asarray(value))

    #: the function of :mod:`canns_stdp.checkpoint_shapes` that reads this class's configuration
    _shapes_of_config = "layer_shapes"

    @classmethod
    def checkpoint_shapes(cls, config: dict):
        """The state shapes ``config`` gives (only for a class that declares its own
        ``_shapes_of_config``: a subclass may take other arguments), checked against a
        file before anything is built."""
        if "_shapes_of_config" not in vars(cls):
            return None
        from . import checkpoint_shapes

        return checkpoint_shapes.shapes_or_none(getattr(checkpoint_shapes, cls._shapes_of_config), config)

    def checkpoint_config(self) -> dict:
        """Constructor arguments for :meth:`save`/:meth:`load` (weights are state; a
        connectivity mask is stored as nested 0/1 lists)."""
        config = {name: getattr(self, name) for name in self._CONFIG}
        if self.tau_m is not None:
            config["tau_m"] = self.tau_m
        mask = getattr(self.synapse, "mask", None)
        if mask is not None:
            config["mask"] = np.asarray(mask).astype(int).tolist()
        return config

    @classmethod
    def from_checkpoint_config(cls, config: dict, **context) -> "SpikingLayer":
        config = dict(config)
        if config.get("mask") is not None:
            config["mask"] = np.asarray(config["mask"], np.float32)
        return cls(**config, W_init=lambda shape: np.zeros(shape, np.float32))

    def get_state(self, batch_shape: Optional[tuple] = None) -> LayerState:
        """The state as a pytree of arrays, checked against the layer's sizes.

        Args:
            batch_shape: ``None`` for the unbatched state; ``(B,)`` for a state with
                one membrane/trace per sample: a stored unbatched state (e.g. after
                :meth:`reset_state`) is broadcast to the batch, a stored batch of
                another size is an error.
        """
        in_shape, out_shape = self.sample_shapes()
        expected = {
            "W": self.weight_shape, "v": out_shape, "spike": out_shape,
            "trace_pre": in_shape, "trace_post": out_shape,
        }
        arrays = {}
        for name, shape in expected.items():
            value = jnp.asarray(getattr(self, name).value, jnp.float32)
            batched = value.ndim > len(shape) and value.shape[-len(shape):] == shape
            if name == "W" or batch_shape is None:
                if value.shape != shape:
                    hint = "; the layer holds a batched state: call layer.reset_state() first" if batched else ""
                    raise ValueError(f"layer.{name} must have shape {shape}, got shape {value.shape}{hint}")
            else:
                full = tuple(batch_shape) + shape
                if value.shape == shape:
                    value = jnp.broadcast_to(value, full)
                elif value.shape != full:
                    if batched:
                        raise ValueError(
                            f"layer.{name} holds a batch of shape {value.shape[:-len(shape)]}, the input "
                            f"a batch of shape {tuple(batch_shape)}; call layer.reset_state() first")
                    raise ValueError(f"layer.{name} must have shape {full}, got shape {value.shape}")
            arrays[name] = value
        return LayerState(**arrays)

    def set_state(self, state: LayerState) -> None:
        """Write a state pytree into the layer's variables, after checking every array's
        shape (``W`` the layer's, the others one sample's or one batch's) and finiteness.

        Raises:
            ValueError: naming the array; nothing is written then.
        """
        self._check_state(state)
        for name, value in state._asdict().items():
            assign(self, name, value)

    def _check_state(self, state: LayerState) -> None:
        in_shape, out_shape = self.sample_shapes()
        sample = {"W": self.weight_shape, "v": out_shape, "spike": out_shape, "trace_pre": in_shape,
                  "trace_post": out_shape}
        batch = None
        for name, value in state._asdict().items():
            shape, want = tuple(np.shape(value)), tuple(sample[name])
            held = shape[:len(shape) - len(want)] if shape[len(shape) - len(want):] == want else None
            if held is None or (name == "W" and held) or (name != "W" and batch is not None and held != batch):
                expected = want if name == "W" or not batch else tuple(batch) + want
                raise ValueError(f"layer.{name} must have shape {expected}, got shape {shape}")
            if name != "W":
                batch = held
            if not np.isfinite(np.asarray(value)).all():
                raise ValueError(f"layer.{name} must be finite")

    def reset_state(self, *args, **kwargs) -> None:
        """Zero the membrane, the last spikes, the last input and both traces (unbatched)."""
        in_shape, out_shape = self.sample_shapes()
        for name, shape in (("x", in_shape), ("v", out_shape), ("spike", out_shape),
                            ("trace_pre", in_shape), ("trace_post", out_shape)):
            assign(self, name, jnp.zeros(shape, jnp.float32))

    # -- dynamics -----------------------------------------------------------------
    def forward(self, x) -> jnp.ndarray:
        """Advance one step without plasticity and return the ``(output_size,)`` spikes."""
        params = self.step_params()
        x = jnp.asarray(v.as_vector("x", x, self.input_size))
        state, spikes = _forward(self.step_config(), params, self.get_state(), x, None)
        bad = [name for name, a in state._asdict().items() if not np.isfinite(np.asarray(a)).all()]
        if bad:
            raise FloatingPointError(f"forward produced non-finite values in {bad}; the layer was left "
                                     "unchanged (check the input's scale and the weights)")
        self.set_state(state)
        self.x.value = x
        return spikes

    def update(self, x) -> jnp.ndarray:
        """BrainPy's per-step entry point: the same as :meth:`forward`."""
        return self.forward(x)

    @property
    def energy(self) -> float:
        return 0.0

    @property
    def predict_state_attr(self) -> str:
        return "spike"
