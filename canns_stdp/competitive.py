"""CompetitiveNetwork: a Diehl & Cook (2015) style layer trained sample by sample.

Poisson inputs drive ``n_neurons`` excitatory LIF neurons with adaptive
thresholds, lateral inhibition, a refractory period, per-neuron weight
normalisation and STDP (:func:`~canns_stdp.functional.competitive_step.competitive_step`,
event-driven: a step costs in proportion to the active inputs and the winners).
Each sample is presented for ``steps_per_sample`` steps after its fast variables
are reset; the network returns each sample's spike counts, which
:mod:`canns_stdp.readout` turns into labels and predictions. With learning off the
samples are independent and the compiled loop runs a batch of them at once (the
same step, vectorised with ``jax.vmap``).

Example:
    >>> import numpy as np
    >>> from canns_stdp.competitive import CompetitiveNetwork
    >>> net = CompetitiveNetwork(n_in=64, n_neurons=10, seed=0, norm=6.4, steps_per_sample=50)
    >>> counts = net.present(np.random.default_rng(0).random((4, 64)) * 0.1, learn=True, seed=1)
"""

from __future__ import annotations

import dataclasses
from concurrent.futures import ThreadPoolExecutor
from typing import Optional

import jax
import jax.numpy as jnp
import numpy as np

from . import _validation as val
from . import rules
from .encoders import poisson_events
from .functional.competitive_step import (CompetitiveConfig, CompetitiveParams, CompetitiveState,
                                          begin_sample, competitive_step)
from .functional.neurons import LIFParams
from .functional.homeostasis import ThetaParams
from .functional.stdp import TraceParams
from .kernels.pair_layer import pair_terms
from .functional.dependence import WeightBounds
from .loops import run_compiled, run_python
from .progress import progress_bar

__all__ = ["CompetitiveNetwork"]

# per-sample state axes when samples run side by side (weights and thresholds are shared)
_BATCH_AXES = CompetitiveState(WT=None, v=0, spike=0, spike_before=0, pending=0, trace_pre=0,
                               trace_post=0, theta=None, refractory=0)


def _check_floor(name: str, value) -> float:
    """A lower bound of the membrane: a finite number, or ``-inf`` for none."""
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool) \
            and float(value) == -np.inf:
        return -np.inf
    try:
        return val.check_number(name, value)
    except ValueError:
        raise ValueError(f"{name} must be a finite number or -inf (no floor), got {value!r}") from None


def checked_probabilities(probabilities, n_in: int) -> np.ndarray:
    """``probabilities`` as a checked ``(N, n_in)`` float array of values in ``[0, 1]``."""
    probs = val._to_float_array("probabilities", probabilities)
    if probs.ndim != 2 or probs.shape[1] != n_in or probs.shape[0] == 0:
        raise ValueError(f"probabilities must have shape (N, {n_in}) with N >= 1, got shape {probs.shape}")
    val.check_finite("probabilities", probs)
    if probs.min() < 0 or probs.max() > 1:
        raise ValueError(f"probabilities must be in [0, 1], got values in [{probs.min()}, {probs.max()}]")
    return probs


def drawn_blocks(draw, n: int, B: int, progress: bool, desc: str):
    """``(start, draw(start))`` for the blocks of ``B`` of ``n`` samples, each block drawn
    on a host thread while the one before runs, with a progress bar over the samples."""
    with progress_bar(n, progress, desc, unit="image") as bar, ThreadPoolExecutor(max_workers=1) as pool:
        upcoming = pool.submit(draw, 0)
        for b in range(0, n, B):
            drawn = upcoming.result()
            if b + B < n:
                upcoming = pool.submit(draw, b + B)
            yield b, drawn
            if bar is not None:
                bar.update(min(B, n - b))


def _counting_step(config, params, carry, events, new_sample, u):
    """A batch of samples side by side (learning off), counting each one's spikes."""
    state, counts = carry
    state, spikes = jax.vmap(lambda s, e, n, r: competitive_step(config, params, s, e, n, r),
                             in_axes=(_BATCH_AXES, 0, None, 0),
                             out_axes=(_BATCH_AXES, 0))(state, events, new_sample, u)
    return (state, counts + spikes), None


class CompetitiveNetwork:
    """Excitatory competitive layer with STDP (Diehl & Cook 2015).

    Args:
        n_in: number of inputs.
        n_neurons: number of excitatory neurons.
        steps_per_sample: steps each sample is shown (1 step = 1 ms; D&C: 350, BindsNET 250).
        k: winners allowed per step (``0``: no k-WTA, only the inhibitory weights).
        winner: ``"random"`` (one crossing neuron per step chosen uniformly, as BindsNET's
            ``one_spike``; needs ``k=1``) or ``"largest"`` (the ``k`` with the largest overshoot).
        inhibition_delay: steps from a winner's spike to the inhibition of the others
            (2: through an inhibitory population, as Diehl & Cook and BindsNET; 1: direct).
        input_delay: 1 for a one-step synaptic delay of the input current (as BindsNET), 0 for none.
        threshold_rise: whose adaptive threshold rises by ``theta_plus``: ``"winners"`` (the
            neurons that spike) or ``"crossings"`` (every neuron crossing threshold, as BindsNET).
        compiled: run the compiled loop (``True``) or the Python loop (``False``); both call
            the same step function.
        seed: seed of the initial weights ``W ~ w_init * U(0, 1)``.
        W_init: explicit initial weights ``(n_neurons, n_in)`` (overrides ``seed``).
        block: samples per compiled call while learning.
        batch: samples run side by side while testing (learning off).
        Remaining keyword arguments are the numeric parameters (see ``CompetitiveParams``):
        ``threshold, v_reset, tau_m, v_min, w_inh, refractory, theta_plus, tau_theta,
        tau_pre, tau_post, nu_pre, nu_post, norm, w_init``.
    """

    def __init__(self, n_in: int, n_neurons: int, *, steps_per_sample: int = 250, k: int = 1,
                 winner: str = "random", inhibition_delay: int = 2, input_delay: int = 1,
                 threshold_rise: str = "crossings",
                 compiled: bool = True, seed: int = 0, W_init=None, block: int = 16, batch: int = 250,
                 normalize: bool = True, threshold: float = 13.0, v_reset: float = 5.0,
                 tau_m: float = 100.0, v_min: float = -np.inf, w_inh: float = 120.0,
                 refractory: int = 5, theta_plus: float = 0.05, tau_theta: float = 1e7,
                 tau_pre: float = 20.0, tau_post: float = 20.0, nu_pre: float = 1e-4,
                 nu_post: float = 1e-2, norm: float = 78.4, w_init: float = 0.3):
        self.n_in = val.check_positive_int("n_in", n_in)
        self.n_neurons = val.check_positive_int("n_neurons", n_neurons)
        self.steps_per_sample = val.check_positive_int("steps_per_sample", steps_per_sample)
        self.block = val.check_positive_int("block", block)
        self.batch = val.check_positive_int("batch", batch)
        self.k = k = val.check_nonnegative_int("k", k)
        for name, value, allowed in (("inhibition_delay", inhibition_delay, (1, 2)), ("input_delay", input_delay, (0, 1))):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value not in allowed:
                raise ValueError(f"{name} must be {' or '.join(map(str, allowed))} (steps), got {value!r}")
        inhibition_delay, input_delay = int(inhibition_delay), int(input_delay)
        self.compiled = val.check_bool("compiled", compiled)
        self.normalize = normalize = val.check_bool("normalize", normalize)
        for name, value in (("tau_m", tau_m), ("tau_theta", tau_theta), ("tau_pre", tau_pre),
                            ("tau_post", tau_post), ("norm", norm), ("threshold", threshold)):
            val.check_positive(name, value)
        for name, value in (("w_inh", w_inh), ("theta_plus", theta_plus),
                            ("nu_pre", nu_pre), ("nu_post", nu_post), ("w_init", w_init)):
            val.check_nonnegative(name, value)
        val.check_nonnegative_int("refractory", refractory)  # in steps
        val.check_number("v_reset", v_reset)
        v_min = _check_floor("v_min", v_min)
        seed = val.check_seed("seed", seed)
        #: the plasticity: pair STDP (nearest-spike traces, symmetric), run by the event kernel
        self.rule = rules.pair(A_plus=nu_post, A_minus=nu_pre)
        stdp, choices = pair_terms(self.rule, 1.0, WeightBounds(0.0, 1.0, 1.0))
        self._config = CompetitiveConfig(k=k, winner=winner, inhibition_delay=inhibition_delay,
                                         input_delay=input_delay, threshold_rise=threshold_rise,
                                         normalize=bool(normalize), **choices)
        self.params = CompetitiveParams(
            lif=LIFParams(leak=float(np.exp(-1.0 / tau_m)), threshold=float(threshold),
                          v_reset=float(v_reset)),
            v_min=float(v_min), w_inh=float(w_inh), refractory=float(refractory),
            theta=ThetaParams(decay=float(np.exp(-1.0 / tau_theta)), theta_plus=float(theta_plus)),
            traces=TraceParams(d_pre=float(np.exp(-1.0 / tau_pre)),
                               d_post=float(np.exp(-1.0 / tau_post)), a_pre=1.0, a_post=1.0),
            stdp=stdp,
            norm=float(norm))
        if W_init is None:
            W = w_init * np.random.default_rng(seed).random((n_neurons, n_in))
        else:
            W = val._to_float_array("W_init", W_init)
            if W.shape != (n_neurons, n_in):
                raise ValueError(f"W_init must have shape ({n_neurons}, {n_in}), got shape {W.shape}")
            val.check_finite("W_init", W)
        self.state = CompetitiveState.zeros(n_in, n_neurons, W=W)

    @property
    def W(self) -> np.ndarray:
        """Weights ``(n_neurons, n_in)`` (kept transposed in ``state.WT``)."""
        return np.asarray(self.state.WT).T

    @property
    def theta(self) -> np.ndarray:
        return np.asarray(self.state.theta)

    def config(self, learn: bool) -> CompetitiveConfig:
        return dataclasses.replace(self._config, learn=bool(learn))

    def present(self, probabilities, *, learn: bool, seed: int = 0, progress: bool = False,
                desc: Optional[str] = None) -> np.ndarray:
        """Show each sample for ``steps_per_sample`` steps; return spike counts ``(N, n_neurons)``.

        Args:
            probabilities: ``(N, n_in)`` spike probability per step of each input
                (e.g. :func:`~canns_stdp.encoders.rate_to_probability` of the pixels).
            learn: STDP, adaptive thresholds and normalisation on (training; ``W`` is
                left normalised after the last sample) or off (testing: ``W`` and
                ``theta`` are not changed).
            seed: seed of the Poisson spikes and winner draws (sample ``i`` draws from
                ``numpy.random.default_rng((seed, i))``).
            progress: show a progress bar over samples.
        """
        learn = val.check_bool("learn", learn)
        seed = val.check_seed("seed", seed)
        progress = val.check_bool("progress", progress)
        if desc is not None and not isinstance(desc, str):
            raise TypeError(f"desc must be a string or None, got {desc!r}")
        probs = checked_probabilities(probabilities, self.n_in)
        T, n = self.steps_per_sample, probs.shape[0]
        config = self.config(learn)
        # each sample's spikes and winner draws come from its own seeded generator
        rngs = [np.random.default_rng((seed, i)) for i in range(n)]
        B = self.block if learn or not self.compiled else self.batch

        def draw(b):
            m = min(B, n - b)
            events = poisson_events(probs[b:b + m], T, rngs[b:b + m])          # (m, T, width)
            return events, np.stack([r.random(T, dtype=np.float32) for r in rngs[b:b + m]])

        state = self.state
        counts = np.zeros((n, self.n_neurons), np.float32)
        for b, (events, u) in drawn_blocks(draw, n, B, progress, desc or ("train" if learn else "test")):
            m = events.shape[0]
            if learn or not self.compiled:
                state, counts[b:b + m] = self._sequential(config, state, events, u)
            else:
                counts[b:b + m] = self._side_by_side(config, state, events, u)
        if learn:  # leave W normalised, as the next sample would see it (and testing uses it)
            state = jax.jit(begin_sample, static_argnums=0)(config, self.params, state)
        if not all(val.all_finite(a) for a in (state.WT, state.theta)):
            raise FloatingPointError("training produced non-finite weights or thresholds; "
                                     "state left unchanged")
        self.state = state
        return counts

    def _sequential(self, config, state, events, u):
        """Samples one after another (compiled or Python loop); returns state and counts."""
        m, T, width = events.shape
        starts = np.zeros((m, T), np.float32)
        starts[:, 0] = 1.0
        seq = (events.reshape(m * T, width), starts.reshape(-1), u.reshape(-1))
        if self.compiled:
            state, out = run_compiled(competitive_step, config, self.params, state, seq,
                                      record=True, chunk_size=self.block * T)
        else:
            state, out = run_python(competitive_step, config, self.params, state, seq, record=True)
        return state, np.asarray(out).reshape(m, T, self.n_neurons).sum(1)

    def _side_by_side(self, config, state, events, u):
        """Learning off: a batch of samples run together in one compiled loop; their counts."""
        m, T, width = events.shape
        pad = self.batch - m                       # fixed batch size: no recompilation
        events = np.concatenate([events, np.full((pad, T, width), self.n_in, np.int32)])
        u = np.concatenate([u, np.zeros((pad, T), np.float32)])
        fields = {f: (jnp.broadcast_to(a, (self.batch,) + a.shape) if ax == 0 else a)
                  for f, a, ax in zip(state._fields, state, _BATCH_AXES)}
        carry = (CompetitiveState(**fields), jnp.zeros((self.batch, self.n_neurons), state.v.dtype))
        starts = np.zeros(T, np.float32)
        starts[0] = 1.0
        seq = (np.swapaxes(events, 0, 1), starts, np.swapaxes(u, 0, 1))
        (_, counts), _ = run_compiled(_counting_step, config, self.params, carry, seq, chunk_size=T)
        return np.asarray(counts)[:m]
