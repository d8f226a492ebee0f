"""Hyperparameter sweeps: a grid (or list) of numbers times seeds, trained as one ensemble.

Every combination of the grid's numbers and every seed builds one trainer with
``make(seed=..., **numbers)``; the trainers are trained in one :class:`~canns_stdp.Ensemble`
call (one compiled program: numbers are traced), and each trained member is scored by
``score(trainer) -> dict``. The result is a table with one row per member: its numbers,
its seed and its scores.

Only numbers may vary: a string, boolean or function changes the compiled program, so a
sweep over it is refused (run one sweep per value instead).
"""

from __future__ import annotations

import itertools
import numbers
from dataclasses import dataclass, field
from typing import Callable, Mapping, Optional, Sequence, Union

import numpy as np

from .ensemble import Ensemble

__all__ = ["SweepResult", "combinations", "sweep"]

Grid = Union[Mapping[str, Sequence], Sequence[Mapping]]


def _is_number(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def _check_number(name: str, value) -> None:
    if not _is_number(value):
        raise TypeError(f"sweep parameter {name!r} must take numbers, got {value!r}: strings, booleans and "
                        "functions change the compiled program (sweep each such value separately)")
    if not np.isfinite(float(value)):
        raise ValueError(f"sweep parameter {name!r} must take finite numbers, got {value!r}")


def combinations(grid: Grid, seeds: Sequence[int] = (0,)) -> list:
    """Every member of a sweep as ``(numbers, seed)``, in the order of the result's rows.

    ``grid`` is a mapping ``name -> numbers`` (its Cartesian product, the first name
    varying slowest) or a list of mappings ``name -> number`` (each one combination). The
    seeds vary fastest.

    Raises:
        TypeError, ValueError: naming the parameter and the value, for a value that is not a
            finite number, an empty grid or list of values, or seeds that are not integers.
    """
    if isinstance(grid, Mapping):
        names = list(grid)
        for name in names:
            values = grid[name]
            if isinstance(values, (str, bytes)) or not isinstance(values, (Sequence, np.ndarray)):
                raise TypeError(f"sweep grid[{name!r}] must be a list of numbers, got {values!r}")
            if len(values) == 0:
                raise ValueError(f"sweep grid[{name!r}] must hold at least one number, got {values!r}")
            for value in values:
                _check_number(name, value)
        points = [dict(zip(names, values)) for values in itertools.product(*(grid[n] for n in names))]
    elif isinstance(grid, Sequence) and not isinstance(grid, (str, bytes)):
        points = []
        for i, point in enumerate(grid):
            if not isinstance(point, Mapping):
                raise TypeError(f"sweep grid[{i}] must be a mapping of parameter names to numbers, got {point!r}")
            for name, value in point.items():
                _check_number(name, value)
            points.append(dict(point))
        if not points:
            raise ValueError("sweep grid must hold at least one combination, got an empty list")
    else:
        raise TypeError(f"sweep grid must be a mapping name -> numbers or a list of mappings, got {grid!r}")
    seeds = list(seeds)
    if not seeds:
        raise ValueError("seeds must hold at least one seed, got none")
    for s in seeds:
        if isinstance(s, bool) or not isinstance(s, numbers.Integral):
            raise TypeError(f"seeds must be integers, got {s!r}")
    return [(point, int(s)) for point in points for s in seeds]


@dataclass
class SweepResult:
    """A trained sweep: ``rows[k]`` (numbers, ``seed`` and scores) describes ``trainers[k]``."""

    rows: list
    trainers: list
    spikes: Optional[np.ndarray] = None  # (K, T) + output shape, when asked for
    columns: list = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.rows)

    def column(self, name: str) -> np.ndarray:
        """One column of the table, a value per member."""
        if name not in self.columns:
            raise KeyError(f"no column {name!r}; the columns are {self.columns}")
        return np.asarray([row[name] for row in self.rows])

    def table(self) -> str:
        """The rows as aligned text, a header first."""
        cells = [self.columns] + [[_cell(row[c]) for c in self.columns] for row in self.rows]
        widths = [max(len(r[i]) for r in cells) for i in range(len(self.columns))]
        return "\n".join("  ".join(c.rjust(w) for c, w in zip(r, widths)) for r in cells)


def _cell(value) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def _scores(score: Callable, trainer, reserved: set) -> dict:
    result = score(trainer)
    if _is_number(result):
        result = {"score": result}
    if not isinstance(result, Mapping):
        raise TypeError(f"score must return a number or a mapping of names to numbers, got {result!r}")
    clash = sorted(set(result) & reserved)
    if clash:
        raise ValueError(f"score's names {clash} are already columns of the sweep (its parameters and 'seed')")
    return {k: (float(v) if _is_number(v) and not isinstance(v, numbers.Integral) else v) for k, v in result.items()}


def sweep(make: Callable, grid: Grid, train_data, *, seeds: Sequence[int] = (0,), post_spikes=None,
          reward=None, score: Optional[Callable] = None, return_spikes: bool = False,
          progress: Optional[bool] = None, mesh=None, member_axis: Optional[str] = None,
          neuron_axis: Optional[str] = None) -> SweepResult:
    """Train one member per combination of ``grid`` and seed, in one ensemble call.

    Args:
        make: ``make(seed=s, **numbers) -> Trainer``, a fresh trainer (and layer) per call.
        grid: ``{name: [numbers]}`` (every combination) or ``[{name: number}, ...]``.
        train_data: one input sequence for every member, or ``train_data(seed)`` giving
            each seed its own (members of one seed share it).
        seeds: the seeds each combination is trained with.
        post_spikes, reward: as for :meth:`Ensemble.train` (one for all, or a list in the
            order of :func:`combinations`).
        score: ``score(trainer) -> {name: value}`` (or a number, the column ``score``),
            called on each trained member.
        return_spikes: keep the output spikes ``(K, T) + output shape`` in the result.
        mesh, member_axis, neuron_axis: run on several devices, as :class:`Ensemble`.

    Returns:
        A :class:`SweepResult`: one row per member, ``{**numbers, "seed": s, **scores}``.

    Raises:
        TypeError, ValueError: for a value in the grid that is not a number (named), and
            as :class:`Ensemble` when the members' static configurations differ.

    Example:
        >>> import numpy as np
        >>> from canns_stdp import SpikingLayer, Trainer, rules
        >>> from canns_stdp.sweep import sweep
        >>> X = (np.random.default_rng(0).random((200, 20)) < 0.2).astype(np.float32)
        >>> result = sweep(lambda seed, lr, a: Trainer(SpikingLayer(20, 5, seed=seed), rules.pair(A_plus=a),
        ...                                             learning_rate=lr),
        ...                {"lr": [0.01, 0.1], "a": [0.005, 0.01]}, X, seeds=[0, 1],
        ...                score=lambda t: {"mean_w": float(t.model.W.value.mean())})
        >>> len(result.rows)
        8
    """
    if not callable(make):
        raise TypeError(f"make must be a callable make(seed=..., **numbers) -> Trainer, got {make!r}")
    if score is not None and not callable(score):
        raise TypeError(f"score must be a callable score(trainer) -> dict, got {score!r}")
    members = combinations(grid, seeds)
    trainers = [make(seed=s, **point) for point, s in members]
    ensemble = Ensemble(trainers, mesh=mesh, member_axis=member_axis, neuron_axis=neuron_axis)
    if callable(train_data):
        per_seed = {s: train_data(s) for s in dict.fromkeys(s for _, s in members)}
        train_data = [per_seed[s] for _, s in members]
    spikes = ensemble.train(train_data, post_spikes, reward=reward, progress=progress, return_spikes=return_spikes)
    columns = list(dict.fromkeys(name for point, _ in members for name in point)) + ["seed"]
    rows = []
    for (point, s), trainer in zip(members, trainers):
        row = {**point, "seed": s}
        if score is not None:
            row.update(_scores(score, trainer, set(columns)))
        rows.append(row)
    for row in rows:
        columns += [name for name in row if name not in columns]
    return SweepResult(rows=rows, trainers=trainers, spikes=spikes, columns=columns)
