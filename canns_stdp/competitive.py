"""CompetitiveNetwork: a Diehl & Cook (2015) style layer trained sample by sample.

Poisson inputs drive ``n_neurons`` excitatory LIF neurons with adaptive
thresholds, lateral inhibition, a refractory period, per-neuron weight
normalisation and STDP (:func:`~canns_stdp.functional.competitive_step.competitive_step`).
Each sample is presented for ``steps_per_sample`` steps after its fast variables
are reset; the network returns each sample's spike counts, which
:mod:`canns_stdp.readout` turns into labels and predictions.

Example:
    >>> import numpy as np
    >>> from canns_stdp.competitive import CompetitiveNetwork
    >>> net = CompetitiveNetwork(n_in=64, n_neurons=10, seed=0, norm=6.4, steps_per_sample=50)
    >>> counts = net.present(np.random.default_rng(0).random((4, 64)) * 0.1, learn=True, seed=1)
"""

from __future__ import annotations

from typing import Optional

import jax
import jax.numpy as jnp
import numpy as np

from . import _validation as val
from .encoders import poisson_encode
from .functional.competitive_step import (CompetitiveConfig, CompetitiveParams, CompetitiveState,
                                          begin_sample, competitive_step)
from .functional.neurons import LIFParams
from .functional.homeostasis import ThetaParams
from .functional.stdp import STDPParams, TraceParams
from .functional.dependence import WeightBounds
from .loops import run_compiled, run_python
from .progress import progress_bar

__all__ = ["CompetitiveNetwork"]


class CompetitiveNetwork:
    """Excitatory competitive layer with STDP (Diehl & Cook 2015).

    Args:
        n_in: number of inputs.
        n_neurons: number of excitatory neurons.
        steps_per_sample: steps each sample is shown (1 step = 1 ms; D&C: 350, BindsNET 250).
        k: winners allowed per step (``0``: no k-WTA, only the inhibitory weights).
        compiled: run the compiled loop (``True``) or the Python loop (``False``); both call
            the same step function.
        seed: seed of the initial weights ``W ~ w_init * U(0, 1)``.
        W_init: explicit initial weights ``(n_neurons, n_in)`` (overrides ``seed``).
        block: samples per compiled call.
        Remaining keyword arguments are the numeric parameters (see ``CompetitiveParams``):
        ``threshold, v_reset, tau_m, v_min, w_inh, refractory, theta_plus, tau_theta,
        tau_pre, tau_post, nu_pre, nu_post, norm, w_init``.
    """

    def __init__(self, n_in: int, n_neurons: int, *, steps_per_sample: int = 250, k: int = 1,
                 compiled: bool = True, seed: int = 0, W_init=None, block: int = 16,
                 normalize: bool = True, threshold: float = 13.0, v_reset: float = 5.0,
                 tau_m: float = 100.0, v_min: float = -np.inf, w_inh: float = 120.0,
                 refractory: int = 5, theta_plus: float = 0.05, tau_theta: float = 1e7,
                 tau_pre: float = 20.0, tau_post: float = 20.0, nu_pre: float = 1e-4,
                 nu_post: float = 1e-2, norm: float = 78.4, w_init: float = 0.3):
        self.n_in = val.check_positive_int("n_in", n_in)
        self.n_neurons = val.check_positive_int("n_neurons", n_neurons)
        self.steps_per_sample = val.check_positive_int("steps_per_sample", steps_per_sample)
        self.block = val.check_positive_int("block", block)
        if isinstance(k, bool) or not isinstance(k, int) or k < 0:
            raise ValueError(f"k must be an integer >= 0, got {k!r}")
        self.k, self.compiled, self.normalize = k, bool(compiled), bool(normalize)
        for name, value in (("tau_m", tau_m), ("tau_theta", tau_theta), ("tau_pre", tau_pre),
                            ("tau_post", tau_post), ("norm", norm), ("threshold", threshold)):
            val.check_positive(name, value)
        for name, value in (("w_inh", w_inh), ("refractory", refractory), ("theta_plus", theta_plus),
                            ("nu_pre", nu_pre), ("nu_post", nu_post), ("w_init", w_init)):
            val.check_nonnegative(name, value)
        self.params = CompetitiveParams(
            lif=LIFParams(leak=float(np.exp(-1.0 / tau_m)), threshold=float(threshold),
                          v_reset=float(v_reset)),
            v_min=float(v_min), w_inh=float(w_inh), refractory=float(refractory),
            theta=ThetaParams(decay=float(np.exp(-1.0 / tau_theta)), theta_plus=float(theta_plus)),
            traces=TraceParams(d_pre=float(np.exp(-1.0 / tau_pre)),
                               d_post=float(np.exp(-1.0 / tau_post)), a_pre=1.0, a_post=1.0),
            stdp=STDPParams(lr=1.0, A_plus=float(nu_post), A_minus=float(nu_pre),
                            bounds=WeightBounds(0.0, 1.0, 1.0)),
            norm=float(norm))
        if W_init is None:
            W = w_init * np.random.default_rng(seed).random((n_neurons, n_in))
        else:
            W = np.asarray(W_init, np.float32)
            if W.shape != (n_neurons, n_in):
                raise ValueError(f"W_init must have shape ({n_neurons}, {n_in}), got shape {W.shape}")
        self.state = CompetitiveState.zeros(n_in, n_neurons, W=W)

    @property
    def W(self) -> np.ndarray:
        return np.asarray(self.state.W)

    @property
    def theta(self) -> np.ndarray:
        return np.asarray(self.state.theta)

    def config(self, learn: bool) -> CompetitiveConfig:
        return CompetitiveConfig(k=self.k, learn=bool(learn), normalize=self.normalize)

    def present(self, probabilities, *, learn: bool, seed: int = 0, progress: bool = False,
                desc: Optional[str] = None) -> np.ndarray:
        """Show each sample for ``steps_per_sample`` steps; return spike counts ``(N, n_neurons)``.

        Args:
            probabilities: ``(N, n_in)`` spike probability per step of each input
                (e.g. :func:`~canns_stdp.encoders.rate_to_probability` of the pixels).
            learn: STDP, adaptive thresholds and normalisation on (training; ``W`` is
                left normalised after the last sample) or off (testing: ``W`` and
                ``theta`` are not changed).
            seed: seed of the Poisson spikes (``jax.random.PRNGKey(seed)``, folded per block).
            progress: show a progress bar over samples.
        """
        probs = np.asarray(probabilities, np.float32)
        if probs.ndim != 2 or probs.shape[1] != self.n_in or probs.shape[0] == 0:
            raise ValueError(f"probabilities must have shape (N, {self.n_in}) with N >= 1, "
                             f"got shape {probs.shape}")
        if not np.isfinite(probs).all():
            raise ValueError("probabilities must be finite, got NaN or Inf at index "
                             f"{tuple(int(i) for i in np.argwhere(~np.isfinite(probs))[0])}")
        if probs.min() < 0 or probs.max() > 1:
            raise ValueError("probabilities must be in [0, 1], got values in "
                             f"[{probs.min()}, {probs.max()}]")
        T, n, B = self.steps_per_sample, probs.shape[0], self.block
        config, key = self.config(learn), jax.random.PRNGKey(seed)
        state = self.state
        counts = np.zeros((n, self.n_neurons), np.float32)
        starts = np.zeros(B * T, np.float32)
        starts[::T] = 1.0
        with progress_bar(n, progress, desc or ("train" if learn else "test"), unit="image") as bar:
            for b in range(0, n, B):
                m = min(B, n - b)
                p = np.zeros((B, self.n_in), np.float32)     # fixed shape: no recompilation
                p[:m] = probs[b:b + m]
                x = poisson_encode(jax.random.fold_in(key, b), jnp.asarray(p), T)  # (T, B, n_in)
                x = jnp.swapaxes(x, 0, 1).reshape(B * T, self.n_in)[: m * T]
                seq = (x, jnp.asarray(starts[: m * T]))
                if self.compiled:
                    state, out = run_compiled(competitive_step, config, self.params, state, seq,
                                              record=True, chunk_size=B * T)
                else:
                    state, out = run_python(competitive_step, config, self.params, state, seq,
                                            record=True)
                counts[b:b + m] = np.asarray(out).reshape(m, T, self.n_neurons).sum(1)
                if bar is not None:
                    bar.update(m)
        if learn:  # leave W normalised, as the next sample would see it (and testing uses it)
            state = jax.jit(begin_sample, static_argnums=0)(config, self.params, state)
        if not all(np.isfinite(np.asarray(a)).all() for a in (state.W, state.theta)):
            raise FloatingPointError("training produced non-finite weights or thresholds; "
                                     "state left unchanged")
        self.state = state
        return counts
