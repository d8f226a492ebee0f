"""What a kernel hands the trainer: how to run a call, and how to read its state."""

from __future__ import annotations

from typing import Callable, NamedTuple

__all__ = ["Execution"]


def _same(state):
    return state


class Execution(NamedTuple):
    """A planned call.

    ``run(state, seq, *, record, progress, desc, callback) -> (state, outs)`` runs every
    step of ``seq`` from the trainer's :class:`~canns_stdp.step.StepState`;
    ``canonical(state)`` turns the state it returns (or hands ``callback``) back into a
    ``StepState`` whose ``W`` is ``W`` (a kernel may keep its own layout meanwhile).
    """

    run: Callable
    canonical: Callable = _same
