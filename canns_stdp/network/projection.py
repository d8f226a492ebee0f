"""A projection ``pre → post``: connectivity, weights, delays, and a plasticity rule (or none)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np

from .. import _validation as v
from ..functional.traces import TRACE_MODES
from ..rules.base import Rule
from .connectivity import Connectivity, resolve
from .populations import RECEPTORS

__all__ = ["Projection"]


@dataclass
class Projection:
    """Synapses from population ``pre`` onto population ``post``.

    Args:
        pre, post: population names.
        weights: initial weights: a number, an array shaped like ``W`` (``(n_post, n_pre)``
            for all-to-all or masked connectivity, ``(n_syn,)`` for sparse), or a function
            ``(rng, shape) -> array`` (``rng``: a NumPy generator seeded from ``seed``).
        connectivity: ``"all"`` (default), a 0/1 mask ``(n_post, n_pre)``, a
            :class:`~canns_stdp.network.connectivity.Sparse`, or a builder
            (:func:`~canns_stdp.network.fixed_probability`, :func:`~canns_stdp.network.fixed_in_degree`).
        receptor: ``"exc"`` or ``"inh"``: which input of the target the weights drive.
        delay: axonal delay in steps (``>= 0``): one integer, or one per synapse shaped like
            ``W``. A projection that closes a cycle of the network needs delays ``>= 1``.
        rule: a :class:`~canns_stdp.rules.Rule`, or ``None`` for fixed weights.
        learning_rate, w_min, w_max, hardbound: as for :class:`~canns_stdp.Trainer`:
            ``W' = clip(W + lr · dW, w_min, w_max)``.
        tau_pre, tau_post: the traces' time constants in ms (decay ``exp(-dt/τ)`` per
            step), or ``d_pre``/``d_post``: their decays per step, given directly.
        a_pre, a_post: the traces' increments per spike; ``trace_mode``:
            ``"cumulative"`` or ``"nearest"``.
        name: the projection's name (default ``"pre->post"``).
        seed: seed of random initial weights.
        event_driven: for sparse connectivity with one delay, compute the input from the
            fan-out of the presynaptic neurons that spiked (cost follows the spikes) rather
            than from every synapse; ``"auto"``: from 10,000 synapses on.
    """

    pre: str
    post: str
    weights: Any = 0.5
    connectivity: Any = "all"
    receptor: str = "exc"
    delay: Any = 0
    rule: Optional[Rule] = None
    learning_rate: float = 1.0
    w_min: float = 0.0
    w_max: float = 1.0
    hardbound: bool = True
    tau_pre: float = 20.0
    tau_post: float = 20.0
    d_pre: Optional[float] = None
    d_post: Optional[float] = None
    a_pre: float = 1.0
    a_post: float = 1.0
    trace_mode: str = "cumulative"
    name: Optional[str] = None
    seed: int = 0
    event_driven: Any = "auto"
    _bound: dict = field(default_factory=dict, repr=False)

    def __post_init__(self):
        for label in ("pre", "post"):
            if not isinstance(getattr(self, label), str) or not getattr(self, label):
                raise ValueError(f"{label} must be a population name, got {getattr(self, label)!r}")
        self.name = f"{self.pre}->{self.post}" if self.name is None else self.name
        if not isinstance(self.name, str) or not self.name or "/" in self.name:
            raise ValueError(f"name must be a non-empty string without '/', got {self.name!r}")
        v.check_choice("receptor", self.receptor, RECEPTORS)
        v.check_choice("trace_mode", self.trace_mode, tuple(TRACE_MODES))
        if self.rule is not None:
            if not isinstance(self.rule, Rule):
                raise TypeError(f"rule must be a canns_stdp.rules.Rule or None, got {self.rule!r}")
            self.rule.validate()
        v.check_nonnegative("learning_rate", self.learning_rate)
        lo, hi = v.check_number("w_min", self.w_min), v.check_number("w_max", self.w_max)
        if np.float32(lo) >= np.float32(hi):
            raise ValueError(f"w_min must be < w_max (in float32), got w_min={lo!r}, w_max={hi!r}")
        if not isinstance(self.hardbound, bool):
            raise TypeError(f"hardbound must be True or False, got {self.hardbound!r}")
        for name in ("tau_pre", "tau_post"):
            v.check_positive(name, getattr(self, name))
        for name in ("d_pre", "d_post"):
            if getattr(self, name) is not None:
                v.check_decay(name, getattr(self, name))
        v.check_number("a_pre", self.a_pre)
        v.check_number("a_post", self.a_post)
        if self.event_driven not in (True, False, "auto"):
            raise ValueError(f"event_driven must be True, False or 'auto', got {self.event_driven!r}")

    @property
    def plastic(self) -> bool:
        return self.rule is not None

    def decays(self, dt: float):
        """``(d_pre, d_post)`` per step of ``dt`` ms."""
        d_pre = math.exp(-dt / self.tau_pre) if self.d_pre is None else self.d_pre
        d_post = math.exp(-dt / self.tau_post) if self.d_post is None else self.d_post
        for name, d in (("d_pre", d_pre), ("d_post", d_post)):
            if not np.float32(d) > 0:
                raise ValueError(f"{self.name}: the {name} decay exp(-dt/tau) rounds to 0 in float32 "
                                 f"(dt={dt!r}); use a longer time constant")
        return d_pre, d_post

    def bind(self, n_pre: int, n_post: int) -> Connectivity:
        """The connectivity for these sizes (drawn once, then kept)."""
        key = (n_pre, n_post)
        if key not in self._bound:
            try:
                self._bound[key] = resolve(self.connectivity, n_pre, n_post)
            except ValueError as err:
                raise ValueError(f"projection {self.name}: {err}") from None
        return self._bound[key]

    def initial_weights(self, shape) -> np.ndarray:
        w = self.weights
        if callable(w):
            w = w(np.random.default_rng(self.seed), shape)
        arr = np.asarray(w, np.float64)
        if arr.shape not in ((), tuple(shape)):
            raise ValueError(f"projection {self.name}: weights must be a number or of shape {tuple(shape)}, "
                             f"got shape {arr.shape}")
        if not np.isfinite(arr).all():
            raise ValueError(f"projection {self.name}: weights must be finite")
        return np.broadcast_to(arr, shape).astype(np.float32)

    def delays(self, shape):
        """``(uniform delay or None, per-synapse delays or None)``, checked."""
        d = self.delay
        if isinstance(d, (int, np.integer)) and not isinstance(d, bool):
            if d < 0:
                raise ValueError(f"projection {self.name}: delay must be >= 0 steps, got {d!r}")
            return int(d), None
        arr = np.asarray(d)
        if arr.shape != tuple(shape) or not np.issubdtype(arr.dtype, np.integer):
            raise ValueError(f"projection {self.name}: delay must be an integer or an integer array of "
                             f"shape {tuple(shape)}, got {arr.dtype} {arr.shape}")
        if arr.size and arr.min() < 0:
            raise ValueError(f"projection {self.name}: delays must be >= 0 steps, got minimum {arr.min()}")
        if arr.size and arr.min() == arr.max():
            return int(arr.min()), None
        return None, arr.astype(np.int32)
