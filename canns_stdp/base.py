"""Base classes shared by trainable models and their trainers (CANNs-compatible)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Iterable

import brainpy as bp
import jax.numpy as jnp

from .checkpoint import Checkpointable

__all__ = ["BrainInspiredModel", "TrainerBase"]


class BrainInspiredModel(Checkpointable, bp.DynamicalSystem):
    """A trainable brain-inspired model: a BrainPy ``DynamicalSystem`` whose state is
    held in ``bm.Variable``s, with ``weight_attr`` naming its weight variable and
    ``predict_state_attr`` the variable a prediction reads. ``save(path)`` /
    ``Model.load(path)`` come from :class:`~canns_stdp.checkpoint.Checkpointable`."""

    @property
    def weight_attr(self) -> str:
        return "W"

    @property
    def predict_state_attr(self) -> str:
        return "s"


class TrainerBase(Checkpointable, ABC):
    """A training procedure bound to one model (the interface CANNs' trainers share;
    :class:`canns_stdp.Trainer` is the one that trains every rule).

    Args:
        model: the model to train.
        show_iteration_progress: show a progress bar during long calls by default.
        compiled_prediction: kept for CANNs compatibility.

    ``save(path)`` writes the trainer, its model and their states in one file;
    ``load(path)`` rebuilds both (see :mod:`canns_stdp.checkpoint`).
    """

    _checkpoint_role = "trainer"

    def __init__(self, model: Any = None, *, show_iteration_progress: bool = False,
                 compiled_prediction: bool = True) -> None:
        self.model = model
        self.show_iteration_progress = show_iteration_progress
        self.compiled_prediction = compiled_prediction

    @abstractmethod
    def train(self, train_data: Iterable[Any]) -> Any:
        """Train the model on ``train_data``."""

    @abstractmethod
    def predict(self, pattern: Any, *args: Any, **kwargs: Any) -> Any:
        """Output for a single pattern."""

    @property
    def weight_attr(self) -> str:
        """The name of the model's weight variable (``"W"`` for the library's layers)."""
        return self._weight_attr

    @weight_attr.setter
    def weight_attr(self, name: str) -> None:
        if not isinstance(name, str) or not name.isidentifier():
            raise TypeError(f"weight_attr must be the name of the model's weight variable (a string "
                            f"such as 'W'), got {name!r}")
        self._weight_attr = name

    def predict_batch(self, patterns: Iterable[Any], *args: Any, **kwargs: Any):
        """Outputs for several patterns, stacked along the first axis."""
        return jnp.stack([jnp.asarray(self.predict(p, *args, **kwargs)) for p in patterns])

    def configure_progress(self, *, show_iteration_progress: bool | None = None,
                           compiled_prediction: bool | None = None) -> None:
        if show_iteration_progress is not None:
            self.show_iteration_progress = show_iteration_progress
        if compiled_prediction is not None:
            self.compiled_prediction = compiled_prediction
