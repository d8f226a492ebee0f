"""Populations of a network: spike sources and spiking neurons.

A population is a frozen dataclass of its size and numbers (traced under ``jit``:
changing a number never recompiles). It makes its state with :meth:`init` and advances
it one step with :meth:`step`, from the input its projections deliver this step, summed
per receptor (``"exc"``, ``"inh"``). Times are in milliseconds, as the network's ``dt``.

* :class:`SpikeInput`: spikes (or real values) given for every step by the caller.
* :class:`PoissonInput`: independent Poisson spike trains at ``rates_hz``.
* :class:`LayerLIF`: the neuron of :class:`~canns_stdp.SpikingLayer` (``v' = leak · v + I``).
* :class:`LIF`: leaky integrate-and-fire in continuous time, with current-based or
  conductance-based exponential synapses and a refractory period (Euler steps).
* :class:`Izhikevich`: Izhikevich's (2003) two-variable neuron.
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple, Tuple

import jax.numpy as jnp
import numpy as np

from .. import _validation as v
from ..functional.neurons import LIFParams, lif_step

__all__ = ["Izhikevich", "LIF", "LayerLIF", "PoissonInput", "Population", "SpikeInput"]

RECEPTORS = ("exc", "inh")


def _numbers(pop) -> dict:
    return {f.name: getattr(pop, f.name) for f in dataclasses.fields(pop) if f.name not in pop._static}


class Population:
    """Base of populations: ``n`` neurons, numbers as fields (see the module doc)."""

    n: int
    _static: Tuple[str, ...] = ("n",)
    #: state variables a :class:`~canns_stdp.network.StateMonitor` may record
    variables: Tuple[str, ...] = ("spike",)
    is_input: bool = False      # a source: it takes no input
    given_activity: bool = False  # a source whose activity the caller gives to ``run``

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        dataclasses.dataclass(frozen=True)(cls)

    def __post_init__(self):
        v.check_positive_int("n", self.n)
        for name, value in _numbers(self).items():
            label = f"{type(self).__name__}.{name}"
            if value is None or isinstance(value, (bool, np.bool_, str, bytes)):
                raise TypeError(f"{label} must be a number or {self.n} numbers, got {value!r}")
            try:
                arr = np.asarray(value, np.float64)
            except (TypeError, ValueError):
                raise TypeError(f"{label} must be a number or {self.n} numbers, got {value!r:.80}") from None
            if arr.dtype == object or (arr.ndim and np.asarray(value).dtype == np.bool_):
                raise TypeError(f"{label} must be a number or {self.n} numbers, got {value!r:.80}")
            if arr.ndim not in (0, 1) or (arr.ndim == 1 and arr.shape != (self.n,)):
                raise ValueError(f"{type(self).__name__}.{name} must be a number or {self.n} numbers, "
                                 f"got shape {arr.shape}")
            if not np.isfinite(arr).all() or np.abs(arr).max(initial=0.0) > np.finfo(np.float32).max:
                raise ValueError(f"{type(self).__name__}.{name} must be finite in float32, got {value!r}")
        self.check()

    def check(self) -> None:
        """Further checks of the numbers (raise ``ValueError`` naming the field)."""

    def params(self) -> dict:
        """The numbers, as float32 (traced)."""
        return {k: np.asarray(a, np.float32) for k, a in _numbers(self).items()}

    def init(self) -> Any:
        raise NotImplementedError

    def step(self, params, state, drive: dict, dt, imposed=None):
        """``(state', spikes)`` after one step with ``drive[receptor]`` delivered."""
        raise NotImplementedError


def _positive(pop, *names):
    for name in names:
        if np.any(np.asarray(getattr(pop, name)) <= 0):
            raise ValueError(f"{type(pop).__name__}.{name} must be > 0, got {getattr(pop, name)!r}")


class SpikeState(NamedTuple):
    spike: Any


class SpikeInput(Population):
    """A source whose activity at every step is given to ``run`` (``inputs={name: (T, n)}``):
    0/1 spikes, or real values that its projections carry as they are."""

    n: int
    is_input = True
    given_activity = True

    def init(self):
        return SpikeState(jnp.zeros((self.n,), jnp.float32))


class PoissonInput(Population):
    """Independent Poisson spike trains: a spike in a step with probability ``rates_hz · dt``
    (``dt`` in ms, at most 1).

    The uniform numbers come from a counter-based hash of (the network's seed, the
    population, the step, the neuron) (Wellons' ``lowbias32``), so a run split across
    calls draws the same spikes, at a few integer operations per neuron: on a CPU, about
    ten times cheaper than JAX's threefry generator, whose cost would dominate a step.
    """

    n: int
    rates_hz: Any = 10.0
    is_input = True

    def check(self):
        if np.any(np.asarray(self.rates_hz) < 0):
            raise ValueError(f"PoissonInput.rates_hz must be >= 0, got {self.rates_hz!r}")

    def init(self):
        return SpikeState(jnp.zeros((self.n,), jnp.float32))

    def emit(self, params, seed, step, dt):
        """This step's spikes; ``seed`` (uint32) names the stream, ``step`` the step."""
        p = params["rates_hz"] * (dt / 1000.0)
        u = uniform_hash(seed, step, self.n)
        return (u < p).astype(jnp.float32)


def _mix(x):
    """Wellons' lowbias32 integer hash (uint32 in, uint32 out)."""
    x = x ^ (x >> 16)
    x = x * jnp.uint32(0x7FEB352D)
    x = x ^ (x >> 15)
    x = x * jnp.uint32(0x846CA68B)
    return x ^ (x >> 16)


def uniform_hash(seed, step, n: int):
    """``n`` uniform numbers in [0, 1) for ``(seed, step)``, by hashing the counters."""
    base = _mix(jnp.asarray(seed, jnp.uint32) ^ _mix(jnp.asarray(step, jnp.uint32) + jnp.uint32(0x9E3779B9)))
    bits = _mix(base + jnp.arange(n, dtype=jnp.uint32) * jnp.uint32(0x85EBCA6B))
    return (bits >> 8).astype(jnp.float32) * jnp.float32(1.0 / (1 << 24))


class LIFState(NamedTuple):
    v: Any
    spike: Any
    theta: Any  # the adaptive part of the threshold


def _theta_decay(tau_theta, dt):
    return jnp.exp(-dt / tau_theta)


class LayerLIF(Population):
    """The neuron of a :class:`~canns_stdp.SpikingLayer`, in its units: per step,
    ``v' = leak · v + I`` (``I``: the excitatory input less the inhibitory one), a spike
    where ``v' >= threshold + θ``, then ``v = v_reset``.

    ``θ`` is Diehl & Cook's adaptive threshold: it rises by ``theta_plus`` on every spike
    and decays with ``tau_theta`` ms (``θ' = exp(-dt/τ_θ) θ + θ+ s``); with the default
    ``theta_plus = 0`` the threshold is fixed."""

    n: int
    leak: Any = 0.9
    threshold: Any = 1.0
    v_reset: Any = 0.0
    theta_plus: Any = 0.0
    tau_theta: Any = 1e7
    variables = ("v", "spike", "theta")

    def check(self):
        leak = np.asarray(self.leak)
        if np.any(leak < 0) or np.any(leak > 1):
            raise ValueError(f"LayerLIF.leak must be in [0, 1], got {self.leak!r}")
        _positive(self, "tau_theta")

    def init(self):
        z = jnp.zeros((self.n,), jnp.float32)
        return LIFState(z, z, z)

    def step(self, params, state, drive, dt, imposed=None):
        current = _net(drive, self.n)
        lif = LIFParams(params["leak"], params["threshold"] + state.theta, params["v_reset"])
        spikes, v_new = lif_step(lif, state.v, current, imposed)
        theta = _theta_decay(params["tau_theta"], dt) * state.theta + params["theta_plus"] * spikes
        return LIFState(v_new, spikes, theta), spikes


def _net(drive: dict, n: int):
    """Excitatory less inhibitory input (the one present, as it is, when only one is)."""
    exc, inh = drive.get("exc"), drive.get("inh")
    if inh is None:
        return jnp.zeros((n,), jnp.float32) if exc is None else exc
    return -inh if exc is None else exc - inh


class CondState(NamedTuple):
    v: Any
    g_exc: Any
    g_inh: Any
    refractory: Any  # steps left
    spike: Any
    theta: Any       # the adaptive part of the threshold


class LIF(Population):
    """Leaky integrate-and-fire neurons in continuous time (mV, ms), Euler steps of ``dt``:

        τ_m dv/dt = v_rest − v + g_exc · (E_exc − v) + g_inh · (E_inh − v) + bias   (``synapse="conductance"``)
        τ_m dv/dt = v_rest − v + g_exc − g_inh + bias                              (``synapse="current"``, g in mV)
        τ_exc dg_exc/dt = −g_exc,   τ_inh dg_inh/dt = −g_inh

    Each step integrates ``v`` and the ``g`` from their values at the step's start, then
    adds the weights of this step's arriving spikes to ``g_exc`` / ``g_inh``; a neuron
    whose ``v`` exceeds ``v_threshold`` spikes, is reset to ``v_reset`` and stays there
    for ``refractory`` ms. Conductances are in units of the leak conductance; ``bias`` (mV)
    is a constant input (a current times the membrane resistance). ``theta_plus`` and
    ``tau_theta`` make the threshold adaptive, as :class:`LayerLIF`'s. Defaults are those
    of Song, Miller & Abbott (2000).
    """

    n: int
    tau_m: Any = 10.0
    v_rest: Any = -74.0
    v_reset: Any = -60.0
    v_threshold: Any = -54.0
    refractory: Any = 0.0
    tau_exc: Any = 5.0
    tau_inh: Any = 10.0
    E_exc: Any = 0.0
    E_inh: Any = -80.0
    v_init: Any = -60.0
    bias: Any = 0.0
    theta_plus: Any = 0.0
    tau_theta: Any = 1e7
    synapse: str = "conductance"
    _static = ("n", "synapse")
    variables = ("v", "g_exc", "g_inh", "spike", "theta")

    def check(self):
        v.check_choice("synapse", self.synapse, ("conductance", "current"))
        _positive(self, "tau_m", "tau_exc", "tau_inh", "tau_theta")
        if np.any(np.asarray(self.refractory) < 0):
            raise ValueError(f"LIF.refractory must be >= 0 ms, got {self.refractory!r}")

    def init(self):
        z = jnp.zeros((self.n,), jnp.float32)
        return CondState(jnp.broadcast_to(jnp.asarray(self.v_init, jnp.float32), (self.n,)), z, z, z, z, z)

    def step(self, p, state, drive, dt, imposed=None):
        vm, ge, gi = state.v, state.g_exc, state.g_inh
        if self.synapse == "conductance":
            dv = p["v_rest"] - vm + ge * (p["E_exc"] - vm) + gi * (p["E_inh"] - vm) + p["bias"]
        else:
            dv = p["v_rest"] - vm + ge - gi + p["bias"]
        resting = state.refractory > 0
        vm = jnp.where(resting, vm, vm + dt / p["tau_m"] * dv)
        ge = ge - dt / p["tau_exc"] * ge + drive.get("exc", 0.0)
        gi = gi - dt / p["tau_inh"] * gi + drive.get("inh", 0.0)
        spikes = (vm > p["v_threshold"] + state.theta) & ~resting if imposed is None else imposed > 0
        spikes = spikes.astype(jnp.float32)
        refractory_steps = jnp.round(p["refractory"] / dt)
        left = jnp.where(spikes > 0, refractory_steps, jnp.maximum(state.refractory - 1.0, 0.0))
        vm = jnp.where(spikes > 0, p["v_reset"], vm)
        theta = _theta_decay(p["tau_theta"], dt) * state.theta + p["theta_plus"] * spikes
        return CondState(vm, ge, gi, left, spikes, theta), spikes


class IzhState(NamedTuple):
    v: Any
    u: Any
    spike: Any


class Izhikevich(Population):
    """Izhikevich's (2003) neuron (mV, ms):

        dv/dt = 0.04 v² + 5 v + 140 − u + I,   du/dt = a (b v − u);  v >= 30: v = c, u += d

    ``I`` is the input delivered this step (excitatory less inhibitory, in mV, as a pulse
    held for the step); ``v`` takes ``substeps`` Euler steps per ``dt`` (2 in the 2006
    polychronization model, for numerical stability), ``u`` one.
    """

    n: int
    a: Any = 0.02
    b: Any = 0.2
    c: Any = -65.0
    d: Any = 8.0
    substeps: int = 2
    _static = ("n", "substeps")
    variables = ("v", "u", "spike")

    def check(self):
        v.check_positive_int("substeps", self.substeps)

    def init(self):
        v0 = jnp.full((self.n,), -65.0, jnp.float32)
        return IzhState(v0, jnp.asarray(self.b, jnp.float32) * v0, jnp.zeros((self.n,), jnp.float32))

    def step(self, p, state, drive, dt, imposed=None):
        current = _net(drive, self.n)
        vm, u = state.v, state.u
        h = dt / self.substeps
        for _ in range(self.substeps):
            vm = vm + h * (0.04 * vm * vm + 5.0 * vm + 140.0 - u + current)
        u = u + dt * p["a"] * (p["b"] * vm - u)
        spikes = (vm >= 30.0) if imposed is None else imposed > 0
        spikes = spikes.astype(jnp.float32)
        vm = jnp.where(spikes > 0, p["c"], vm)
        u = jnp.where(spikes > 0, u + p["d"], u)
        return IzhState(vm, u, spikes), spikes
