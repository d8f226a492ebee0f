"""Monitors: what a network run records, inside the compiled loop, without keeping the
whole history.

Each monitor samples its quantity after every step (a few numbers: the chosen neurons'
variables, the chosen synapses' weights, or one population's spikes); at the end of every
chunk of steps it keeps what it was asked for (spike times and indices, every ``every``-th
sample) on the host, and drops the rest. They accumulate over runs; a failed run adds
nothing. Times are in ms from the network's first step.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax.numpy as jnp
import numpy as np

from ..monitors import checked_indices

__all__ = ["PopulationRateMonitor", "SpikeMonitor", "StateMonitor", "WeightMonitor"]


@dataclass(frozen=True)
class Sampler:
    """What a monitor samples inside the compiled step (static: its kind, the population
    or projection, the variable); the indices it takes are traced (``take``)."""

    kind: str          # "spikes", "state", "weights" or "rate"
    index: int
    variable: str = ""

    def __call__(self, state, spikes, take):
        if self.kind == "spikes":
            return spikes[self.index] > 0
        if self.kind == "rate":
            return jnp.mean(spikes[self.index])
        return self.read(state, take)

    def read(self, state, take, xp=jnp):
        """A state variable's or a projection's weights' entries ``take`` (``xp``: jnp
        inside the step, np on the host)."""
        if self.kind == "state":
            return xp.asarray(getattr(state.pops[self.index], self.variable)).reshape(-1)[take]
        return xp.asarray(state.projs[self.index].W).reshape(-1)[take]


class Monitor:
    """Base: ``bind(network)`` resolves names and returns ``(Sampler, take)``; ``consume``
    keeps a chunk's samples on the host; ``commit`` makes a run's samples visible."""

    def __init__(self):
        self._pending, self._kept = [], []

    def bind(self, network):  # pragma: no cover - abstract
        raise NotImplementedError

    def consume(self, samples: np.ndarray, first_step: int, dt: float) -> None:  # pragma: no cover
        raise NotImplementedError

    def begin(self) -> None:
        self._pending = []

    def commit(self) -> None:
        self._kept.extend(self._pending)
        self._pending = []

    def _concat(self, i: int, empty_shape=(0,), dtype=np.float64):
        parts = [p[i] for p in self._kept]
        return np.concatenate(parts) if parts else np.zeros(empty_shape, dtype)


class SpikeMonitor(Monitor):
    """Spikes of a population: ``t`` (ms) and ``i`` (neuron) of every spike, as Brian2's."""

    def __init__(self, population: str):
        super().__init__()
        self.population = population

    def bind(self, network):
        self.n = network.populations[self.population].n
        return Sampler("spikes", network._population_index(self.population)), None

    def consume(self, samples, first_step, dt):
        steps, neurons = unpacked_spikes(samples) if samples.dtype == np.uint32 else np.nonzero(samples)
        self._pending.append(((steps + first_step) * dt, neurons))

    @property
    def t(self) -> np.ndarray:
        return self._concat(0)

    @property
    def i(self) -> np.ndarray:
        return self._concat(1, dtype=np.int64)

    @property
    def count(self) -> np.ndarray:
        """Spikes per neuron."""
        return np.bincount(self.i, minlength=self.n)


def unpacked_spikes(words: np.ndarray):
    """``(steps, neurons)`` of the spikes recorded as bits, 32 neurons to a ``uint32`` word
    (neuron ``j`` is bit ``j % 32`` of word ``j // 32``), in the order of ``np.nonzero`` on
    the ``(steps, neurons)`` array of booleans; only the nonzero words are unpacked."""
    words = np.ascontiguousarray(words)
    width = words.shape[1]
    at = np.flatnonzero(words != 0)  # (a scan of booleans: faster than np.nonzero of the words)
    bits = np.flatnonzero(np.unpackbits(words.reshape(-1)[at].astype("<u4", copy=False).view(np.uint8),
                                        bitorder="little"))
    at = at[bits >> 5]  # the word of each spike, then its bit
    return at // width, (at % width) * 32 + (bits & 31)


class StateMonitor(Monitor):
    """A state variable (``"v"``, ``"g_exc"``, ...) of chosen neurons every ``every`` steps:
    ``t`` (ms) and ``values`` of shape ``(len(t), len(indices))``."""

    def __init__(self, population: str, variable: str, indices=None, every: int = 1):
        super().__init__()
        self.population, self.variable, self.indices, self.every = population, variable, indices, every
        if isinstance(every, bool) or not isinstance(every, (int, np.integer)) or every < 1:
            raise ValueError(f"every must be an integer >= 1, got {every!r}")

    def bind(self, network):
        index = network._population_index(self.population)
        pop = network.populations[self.population]
        if self.variable not in pop.variables:
            raise ValueError(f"{type(pop).__name__} population {self.population!r} has no variable "
                             f"{self.variable!r} (it has {pop.variables})")
        self._take = checked_indices("indices", self.indices, pop.n).astype(np.int32)
        return Sampler("state", index, self.variable), self._take

    def consume(self, samples, first_step, dt):
        keep = (first_step + np.arange(samples.shape[0]) + 1) % self.every == 0
        steps = first_step + np.nonzero(keep)[0] + 1  # the state after step k is at time (k + 1) dt
        self._pending.append((steps * dt, samples[keep]))

    def snapshot(self, sampler: Sampler, take, state, steps_done: int, dt) -> None:
        """Record from the state between chunks, at ``steps_done`` steps (a multiple of
        ``every``): what the network does when chunks end on those steps, instead of
        sampling every step."""
        self._pending.append((np.array([steps_done * dt]), sampler.read(state, take, np)[None]))

    @property
    def t(self) -> np.ndarray:
        return self._concat(0)

    @property
    def values(self) -> np.ndarray:
        return self._concat(1, (0, len(self._take)))


class WeightMonitor(StateMonitor):
    """Weights of chosen synapses of a projection (indices into its ``W`` flattened; all by
    default) every ``every`` steps: ``t`` (ms) and ``values``."""

    def __init__(self, projection: str, synapses=None, every: int = 1):
        Monitor.__init__(self)
        self.projection, self.indices, self.every = projection, synapses, every
        if isinstance(every, bool) or not isinstance(every, (int, np.integer)) or every < 1:
            raise ValueError(f"every must be an integer >= 1, got {every!r}")

    def bind(self, network):
        index = network._projection_index(self.projection)
        size = int(np.prod(network._bound[index].shape))  # its weights' (read without unpacking a held state)
        self._take = checked_indices("synapses", self.indices, size).astype(np.int32)
        return Sampler("weights", index), self._take


class PopulationRateMonitor(Monitor):
    """The population's mean rate (Hz) at every step: ``t`` (ms) and ``rate``."""

    def __init__(self, population: str):
        super().__init__()
        self.population = population

    def bind(self, network):
        return Sampler("rate", network._population_index(self.population)), None

    def consume(self, samples, first_step, dt):
        self._pending.append(((first_step + np.arange(samples.shape[0])) * dt, samples * (1000.0 / dt)))

    @property
    def t(self) -> np.ndarray:
        return self._concat(0)

    @property
    def rate(self) -> np.ndarray:
        return self._concat(1)
