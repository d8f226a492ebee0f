"""SpikingLayer: a dense layer of LIF neurons with STDP traces, as a BrainPy model."""

from __future__ import annotations

import operator
import weakref
from functools import partial
from typing import Callable, Optional, Union

from .kernels import native_start  # noqa: F401  (first: numba starts in the background while BrainPy and JAX load)

import brainpy.math as bm
import jax
import jax.numpy as jnp
import numpy as np

from . import _validation as v
from .base import BrainInspiredModel
from .functional.layer_step import LayerConfig, LayerParams, LayerState, forward_step, layer_state
from .functional.neurons import LIFParams
from .functional.refractory import period_steps
from .functional.stdp import STDPParams, TraceParams
from .functional.synapses import Dense, MaskedDense
from .functional.traces import DECAY_METHODS, TRACE_MODES, decay_from_tau
from .loops import count_compilations

__all__ = ["SpikingLayer", "assign", "on_device", "on_device_tree", "read", "settled_step", "store", "zeros"]

try:  # the transformations brainstate is tracing now, which record every variable read and written
    from brainstate._state import TRACE_CONTEXT as _TRACE_CONTEXT
except ImportError:  # another brainstate: every access goes through BrainPy's checks
    _TRACE_CONTEXT = None
if not all(hasattr(bm.Variable, name) for name in ("_value", "_write_value")):
    _TRACE_CONTEXT = None


def _recording() -> bool:
    """Whether BrainPy's ``.value`` has to be used: a brainstate transformation is
    recording variable accesses (or this brainstate is one the shortcuts do not know)."""
    return _TRACE_CONTEXT is None or bool(_TRACE_CONTEXT.state_stack)


def read(var):
    """``var.value``, without BrainPy's per-read bookkeeping where it records nothing."""
    if type(var) is bm.Variable and not _recording():
        value = var._value
        if isinstance(value, jax.Array):
            return value
    return var.value


def _put(var, value) -> None:
    """What BrainPy's setter does once it has checked ``value``'s shape and dtype."""
    if not var._been_writen:
        var._been_writen = True
    var._write_value(value)


def store(var, value) -> bool:
    """``var.value = value`` for a JAX array of the variable's shape and dtype, without
    BrainPy's per-write checks (made here: shape and dtype) where it records nothing.
    Returns ``False``, writing nothing, for a value BrainPy's setter has to check."""
    if type(var) is not bm.Variable or not isinstance(value, jax.Array) or _recording():
        return False
    old = var._value
    if not isinstance(old, jax.Array) or old.shape != value.shape or old.dtype != value.dtype:
        return False
    _put(var, value)
    return True


def assign(owner, name: str, value) -> None:
    """``owner.<name>.value = value``; a value of another shape (a batched state after
    an unbatched one, or back) gets a fresh ``bm.Variable``, since BrainPy variables
    keep their shape."""
    var = getattr(owner, name)
    if store(var, value):
        return
    if tuple(var.value.shape) == tuple(jnp.shape(value)):
        var.value = value
    else:  # BrainPy's __setattr__ would write into the old variable: drop it first
        owner.__dict__.pop(name, None)
        setattr(owner, name, bm.Variable(jnp.asarray(value)))

_forward = jax.jit(forward_step, static_argnums=0)

#: the parameters a step's configuration and numbers are made of (see ``SpikingLayer._step``)
_STEP_SETTINGS = ("synapse", "threshold", "v_reset", "leak", "trace_decay", "dt", "tau_m", "tau_pre", "tau_post",
                  "decay", "trace_mode", "a_pre", "a_post", "refractory")
_step_settings = operator.itemgetter(*_STEP_SETTINGS)
_NO_PLASTICITY = STDPParams()
_STATE = LayerState._fields + ("refractory_left",)


@count_compilations
@partial(jax.jit, static_argnums=0)
def _forward_arrays(config: LayerConfig, numbers, x, *arrays):
    """One step without plasticity (:func:`~canns_stdp.functional.layer_step.forward_step`)
    from the state's arrays (in the order of ``LayerState``, then the refractory counter
    where there is one) and the numbers of the neuron and the traces in one array:
    ``(*new arrays but W, x, finite)``, ``x`` on the device and ``finite`` whether each
    array of the new state is finite."""
    params = LayerParams(LIFParams(*numbers[:4]), TraceParams(*numbers[4:8]))
    state, _ = forward_step(config, params, layer_state(**dict(zip(_STATE, arrays))), x, None)
    arrays = list(state.arrays().values())
    return (*arrays[1:], x, jnp.stack([jnp.isfinite(a).all() for a in arrays]))


@count_compilations
@jax.jit
def _copy(a):
    return a


_COPIED = (np.dtype(np.float32), np.dtype(np.int32), np.dtype(np.bool_))


def on_device(a):
    """``jnp.asarray(a)`` for a NumPy array, in a compiled call: a few microseconds where
    ``jnp.asarray`` and ``jax.device_put`` take tens (a JAX array is returned as it is)."""
    if isinstance(a, jax.Array):
        return a
    if type(a) is np.ndarray and a.dtype in _COPIED:
        return _copy(a)
    return jnp.asarray(a)


_TAKEN_OVER = 1 << 20  # bytes from which a NumPy array handed over becomes a JAX array without a copy


def on_device_tree(tree):
    """``tree`` with its NumPy arrays as JAX arrays (:func:`on_device`; e.g. a state the
    native kernels, which run on the host, hand on). The arrays are handed over: a large
    one whose memory JAX can take (C-contiguous, 64-byte aligned, see ``host_memory.host_empty``)
    becomes a JAX array without a copy (a copy of a weight matrix costs the CPU more than
    the kernels' steps of a short call), so nothing may write to them afterwards."""
    def handed_over(a):
        if (type(a) is np.ndarray and a.nbytes >= _TAKEN_OVER and a.dtype == np.float32
                and a.flags.c_contiguous and a.ctypes.data % 64 == 0):
            return jax.device_put(a, may_alias=True)
        return on_device(a)
    return jax.tree_util.tree_map(handed_over, tree)


_ZEROS: dict = {}  # shape -> float32 zeros on the device


def zeros(shape) -> jax.Array:
    """``jnp.zeros(shape, jnp.float32)``, made once per shape (a JAX array never changes:
    every variable reset to it can share it)."""
    shape = tuple(shape)
    held = _ZEROS.get(shape)
    if held is None:
        if len(_ZEROS) >= 256:
            _ZEROS.clear()
        held = _ZEROS[shape] = jnp.zeros(shape, jnp.float32)
    return held


def settled_step(model) -> Optional[tuple]:
    """``model._step()`` for a :class:`SpikingLayer` (or a subclass that makes its step
    alike) whose parameters are valid: the same tuple while they stay the same objects;
    else ``None``."""
    if not isinstance(model, SpikingLayer) or not _plain_step(type(model)):
        return None
    try:
        return model._step()
    except (TypeError, ValueError):  # the caller checks again, in its own order
        return None


_PLAIN_STEP = ("validate", "step_params", "step_config", "membrane_leak", "refractory_steps", "d_pre", "d_post",
               "_decay", "_step")
_plain: dict = {}  # class -> whether its step is SpikingLayer's


def _plain_step(cls) -> bool:
    """Whether ``cls`` makes its step from ``_STEP_SETTINGS`` as SpikingLayer does (a
    subclass that redefines how may read other attributes: its step is never kept)."""
    if cls not in _plain:
        _plain[cls] = all(getattr(cls, name) is getattr(SpikingLayer, name) for name in _PLAIN_STEP)
    return _plain[cls]


class SpikingLayer(BrainInspiredModel):
    """A layer of leaky integrate-and-fire neurons with pre/post spike traces.

    One step (steps 1-5 of docs/step.md; the trainer adds the weight update):

        tr_pre  = d_pre * tr_pre + a_pre * x
        v       = leak * v + W @ x
        s       = 1[v >= threshold];   v = v_reset where s
        tr_post = d_post * tr_post + a_post * s

    With a ``refractory`` period, a neuron that fires stays at ``v_reset``, ignoring its
    input and unable to fire, for the next ``round(refractory / dt)`` steps.

    State lives in ``bm.Variable``s: ``W`` ``(output_size, input_size)``, ``x``,
    ``v``, ``spike``, ``trace_pre``, ``trace_post`` and ``refractory_left`` (the steps
    each neuron has left in its refractory period). Names, arguments and defaults
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
        refractory: absolute refractory period, in the units of ``dt`` (rounded to
            whole steps); ``0`` (the default) for none.
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
        >>> path = layer.save("layer.npz"); layer = SpikingLayer.load(path)
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
        refractory: float = 0.0,
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
                            refractory=refractory, decay=decay, trace_mode=trace_mode, a_pre=a_pre, a_post=a_post)

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
        self.refractory_left = bm.Variable(jnp.zeros(out_shape, jnp.float32))

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

    refractory = 0.0  # the refractory period, in the units of dt

    @property
    def refractory_steps(self) -> float:
        """The refractory period in whole steps: ``round(refractory / dt)``."""
        return period_steps(v.check_nonnegative("refractory", self.refractory), v.check_positive("dt", self.dt))

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
        self.refractory_steps  # checks refractory
        v.check_choice("decay", self.decay, DECAY_METHODS)
        v.check_choice("trace_mode", self.trace_mode, tuple(TRACE_MODES))
        v.check_nonnegative("a_pre", self.a_pre)
        v.check_nonnegative("a_post", self.a_post)
        self.d_pre, self.d_post  # checks trace_decay, tau_pre, tau_post

    def step_params(self, stdp: STDPParams = _NO_PLASTICITY) -> LayerParams:
        """The numeric parameters of a step, with the plasticity part from a trainer."""
        params = self._step()[1]
        return params if stdp is _NO_PLASTICITY else params._replace(stdp=stdp)

    def step_config(self, **plasticity) -> LayerConfig:
        """The static choices of a step; ``plasticity`` comes from a trainer."""
        config = self._step()[0]
        return LayerConfig(trace_add=config.trace_add, synapse=config.synapse, **plasticity) if plasticity else config

    def _step(self) -> tuple:
        """``(LayerConfig, LayerParams, numbers)`` of a step without plasticity, every
        parameter checked (``numbers``: the neuron's and the traces' numbers as one float32
        array on the device). Kept while the parameters are the objects they were (see
        :class:`~canns_stdp._validation.Settled`): the same tuple then, so that callers
        may keep what they derive from it by its identity."""
        attrs = self.__dict__
        key = None
        if _plain_step(type(self)):
            try:
                key = _step_settings(attrs)
            except KeyError:  # a parameter held elsewhere than on the layer itself
                key = None
        settled = attrs.get("_settled_step")
        if settled is None:
            settled = attrs["_settled_step"] = v.Settled()
        if key is not None:
            held = settled.get(key)
            if held is not None:
                return held
        self.validate()
        lif = LIFParams(float(self.membrane_leak), float(self.threshold), float(self.v_reset), self.refractory_steps)
        traces = TraceParams(self.d_pre, self.d_post, float(self.a_pre), float(self.a_post))
        config = LayerConfig(trace_add=TRACE_MODES[self.trace_mode], synapse=self.synapse)
        numbers = jnp.asarray(np.array(lif + traces, np.float32))
        step = (config, LayerParams(lif=lif, traces=traces, stdp=_NO_PLASTICITY), numbers)
        return settled.put(key, step, fixed=1) if key is not None else step

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
    batchable_state = ("x", "v", "spike", "trace_pre", "trace_post", "refractory_left")

    @property
    def batched_together(self) -> tuple:
        """Held per sample of a batch all together or not at all (``x``, the last input,
        may stay one sample's)."""
        return _STATE[1:] if self.has_refractory else _STATE[1:-1]

    @property
    def has_refractory(self) -> bool:
        """Whether the neurons have a refractory period (and the state its counter)."""
        return self._step()[1].lif.refractory > 0

    def _checkpoint_variables(self):
        found = super()._checkpoint_variables()
        if not self.has_refractory:  # files of layers without one stay as they were
            found.pop("refractory_left", None)
        return found

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
        if self.refractory:
            config["refractory"] = self.refractory
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
        if batch_shape is None:
            held = self._held_state()
            if held is not None:
                return layer_state(**dict(zip(_STATE, held)))
        expected = self._state_shapes()
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
        return layer_state(**arrays)

    def _state_shapes(self) -> dict:
        """The unbatched shape of each array of the state, in the order of ``LayerState``
        (the refractory counter only where there is a refractory period)."""
        in_shape, out_shape = self.sample_shapes()
        shapes = {"W": self.weight_shape, "v": out_shape, "spike": out_shape, "trace_pre": in_shape,
                  "trace_post": out_shape}
        if self.has_refractory:
            shapes["refractory_left"] = out_shape
        return shapes

    def _held_state(self, resting: Optional[bool] = None) -> Optional[list]:
        """The arrays of the state (``W``, ``v``, ``spike``, ``trace_pre``, ``trace_post``
        and, with a refractory period, ``refractory_left``) as the variables hold them,
        when each is a plain variable holding a float32 JAX array of its unbatched shape
        (and no transformation records accesses); else ``None`` (:meth:`get_state` then
        converts them, or says what is wrong). Arrays found so before are known by their
        identity (weakly: they are not kept alive). ``resting``: whether there is a
        refractory period, when the caller knows."""
        if _recording():
            return None
        attrs = self.__dict__
        held = []
        resting = self.has_refractory if resting is None else resting
        for name in (_STATE if resting else _STATE[:-1]):
            var = attrs.get(name)
            if type(var) is not bm.Variable:
                return None
            held.append(var._value)
        known = attrs.get("_checked_state")
        if known is not None and len(known) == len(held) and all([ref() is a for ref, a in zip(known, held)]):
            return held
        for value, shape in zip(held, self._state_shapes().values()):
            if not (isinstance(value, jax.Array) and value.shape == shape and value.dtype == np.float32):
                return None
        attrs["_checked_state"] = [weakref.ref(a) for a in held]
        return held

    def set_state(self, state: LayerState) -> None:
        """Write a state pytree into the layer's variables, after checking every array's
        shape (``W`` the layer's, the others one sample's or one batch's) and finiteness.

        Raises:
            ValueError: naming the array; nothing is written then.
        """
        self._check_state(state)
        for name, value in state.arrays().items():
            assign(self, name, value)

    def _check_state(self, state: LayerState) -> None:
        sample = self._state_shapes()
        given = state.arrays()
        if set(given) != set(sample):
            have = "has" if "refractory_left" in given else "lacks"
            raise ValueError(f"the state {have} a refractory counter (refractory_left), the layer's "
                             f"refractory={self.refractory!r}")
        batch = None
        for name, value in given.items():
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
        """Zero the membrane, the last spikes, the last input, both traces and the
        refractory counters (unbatched)."""
        in_shape, out_shape = self.sample_shapes()
        attrs = self.__dict__  # the variables read directly: BrainPy's attribute lookup is slow
        for name, shape in (("x", in_shape), ("v", out_shape), ("spike", out_shape),
                            ("trace_pre", in_shape), ("trace_post", out_shape), ("refractory_left", out_shape)):
            var = attrs.get(name)
            if var is not None and store(var, zeros(shape)):
                continue
            if hasattr(self, name):  # a subclass may make its state otherwise
                assign(self, name, zeros(shape))

    # -- dynamics -----------------------------------------------------------------
    def forward(self, x) -> jnp.ndarray:
        """Advance one step without plasticity and return the ``(output_size,)`` spikes.

        One compiled call (one per configuration and shapes): the parameters and ``x``
        are checked on the host first, the new state is written only once it is finite.
        """
        config, params, numbers = self._step()
        x = v.as_vector("x", x, self.input_size)
        state = self._held_state(params.lif.refractory > 0)
        direct = state is not None  # the variables are plain ones holding arrays of these shapes
        if not direct:
            state = self.get_state()  # converts, or raises naming the array
        *new, x, finite = _forward_arrays(config, numbers, x, *state)
        finite = np.asarray(finite)
        if not finite.all():
            bad = [name for name, ok in zip(_STATE, finite) if not ok]
            raise FloatingPointError(f"forward produced non-finite values in {bad}; the layer was left "
                                     "unchanged (check the input's scale and the weights)")
        attrs = self.__dict__
        for name, value in zip(_STATE[1:], new):
            if direct:
                _put(attrs[name], value)
            else:
                getattr(self, name).value = value
        if direct:  # the arrays written are known to be of their shapes
            attrs["_checked_state"] = [attrs["_checked_state"][0]] + [weakref.ref(a) for a in new]
        var = getattr(self, "x")
        if not store(var, x):
            var.value = x
        return new[1]

    def update(self, x) -> jnp.ndarray:
        """BrainPy's per-step entry point: the same as :meth:`forward`."""
        return self.forward(x)

    @property
    def energy(self) -> float:
        return 0.0

    @property
    def predict_state_attr(self) -> str:
        return "spike"
