"""Monitors of a layer's training: what :meth:`canns_stdp.Trainer.train` records during one
compiled call (``trainer.train(X, monitors=[...])``), without a Python loop of short calls.

* :class:`SpikeMonitor`: every output spike, as ``steps`` (the trainer's step count) and
  ``neurons`` (flat indices into the output).
* :class:`StateMonitor`: chosen entries of ``v``, ``spike``, ``trace_pre``, ``trace_post`` or
  (for a layer with a refractory period) ``refractory_left`` every ``every`` steps.
* :class:`WeightMonitor`: chosen synapses (flat indices into ``W``) every ``every`` steps.

State and weights are read between chunks of steps: at the first chunk end at or after
each multiple of ``every`` (give the trainer a ``chunk_size`` that divides ``every`` for
exact steps); ``steps`` says when each sample was taken. Monitors accumulate over calls; a
failed call adds nothing. (Networks have their own: :mod:`canns_stdp.network.monitors`.)

Example:
    >>> import numpy as np
    >>> from canns_stdp import SpikingLayer, Trainer, rules
    >>> from canns_stdp.monitors import WeightMonitor
    >>> trainer = Trainer(SpikingLayer(20, 5, seed=0), rules.pair(), chunk_size=50)
    >>> weights = WeightMonitor(synapses=[0, 1, 2], every=100)
    >>> trainer.train(np.ones((500, 20), np.float32), monitors=[weights])
    >>> weights.steps.tolist(), weights.values.shape
    ([100, 200, 300, 400, 500], (5, 3))
"""

from __future__ import annotations

from typing import Optional

import numpy as np

__all__ = ["SpikeMonitor", "StateMonitor", "WeightMonitor"]

LAYER_VARIABLES = ("v", "spike", "trace_pre", "trace_post", "refractory_left")


def checked_indices(name: str, indices, size: int) -> np.ndarray:
    """``indices`` (all of ``range(size)`` when ``None``) as a 1-D integer array, checked."""
    if indices is None:
        return np.arange(size)
    idx = np.atleast_1d(np.asarray(indices))
    if idx.ndim != 1 or not np.issubdtype(idx.dtype, np.integer) or (idx.size and (idx.min() < 0 or idx.max() >= size)):
        raise ValueError(f"{name} must be integers in [0, {size}), got {indices!r}")
    return idx


class Monitor:
    every: Optional[int] = None

    def __init__(self):
        self._kept, self._pending = [], []

    def begin(self) -> None:
        self._pending = []

    def commit(self) -> None:
        self._kept.extend(self._pending)
        self._pending = []

    def _column(self, i: int, empty_shape=(0,), dtype=np.float64) -> np.ndarray:
        parts = [p[i] for p in self._kept]
        return np.concatenate(parts) if parts else np.zeros(empty_shape, dtype)


class SpikeMonitor(Monitor):
    """Every output spike of the calls it is given to."""

    def consume(self, spikes: np.ndarray, first_step: int) -> None:
        flat = np.asarray(spikes).reshape(spikes.shape[0], -1)
        steps, neurons = np.nonzero(flat)
        self._pending.append((steps + first_step + 1, neurons))  # the spike of step k is seen after k + 1 steps

    @property
    def steps(self) -> np.ndarray:
        """When each spike happened: the trainer's step count after its step."""
        return self._column(0, dtype=np.int64)

    @property
    def neurons(self) -> np.ndarray:
        return self._column(1, dtype=np.int64)


class _Periodic(Monitor):
    def __init__(self, indices, every: int):
        super().__init__()
        if isinstance(every, bool) or not isinstance(every, (int, np.integer)) or every < 1:
            raise ValueError(f"every must be an integer >= 1, got {every!r}")
        self.every, self.indices = int(every), indices
        self._last = None

    def _take(self, name: str, size: int) -> np.ndarray:
        return checked_indices(name, self.indices, size)

    def due(self, before: int, now: int) -> bool:
        """Whether a multiple of ``every`` was crossed between step ``before`` and ``now``."""
        return now // self.every > before // self.every

    def snapshot(self, steps: int, layer) -> None:
        values = np.asarray(self._read(layer)).reshape(-1)[self._indices]
        self._pending.append((np.array([steps]), values[None]))

    @property
    def steps(self) -> np.ndarray:
        """The trainer's step count at each sample."""
        return self._column(0, dtype=np.int64)

    @property
    def values(self) -> np.ndarray:
        """``(samples, len(indices))``."""
        return self._column(1, (0, len(self._indices) if hasattr(self, "_indices") else 0))


class StateMonitor(_Periodic):
    """Entries ``indices`` (flat; all by default) of a layer variable every ``every`` steps."""

    def __init__(self, variable: str, indices=None, every: int = 1):
        if variable not in LAYER_VARIABLES:
            raise ValueError(f"variable must be one of {LAYER_VARIABLES}, got {variable!r}")
        super().__init__(indices, every)
        self.variable = variable

    def bind(self, layer) -> None:
        if not hasattr(layer, self.variable):
            raise ValueError(f"the layer has no {self.variable} to record (refractory_left needs a layer "
                             "with a refractory period)")
        self._indices = self._take("indices", int(np.prod(getattr(layer, self.variable).shape)))

    def _read(self, layer):
        return getattr(layer, self.variable)


class WeightMonitor(_Periodic):
    """Synapses ``synapses`` (flat indices into ``W``; all by default) every ``every`` steps."""

    def __init__(self, synapses=None, every: int = 1):
        super().__init__(synapses, every)

    def bind(self, layer) -> None:
        self._indices = self._take("synapses", int(np.prod(layer.W.shape)))

    def _read(self, layer):
        return layer.W
