"""What a kernel hands the trainer: how to run a call, how to read its state, and what
it leaves of a chunk for the next call."""

from __future__ import annotations

from typing import Callable, NamedTuple

__all__ = ["Execution", "OpenChunk"]


def _same(state):
    return state


def _nothing_open(state, end):
    return None


class OpenChunk(NamedTuple):
    """The chunk a call ended inside of, for the next call to finish as one call would.

    ``kernel`` names the kernel the chunk runs (e.g. ``"deferred"``), ``span`` its span
    of deferred LTP (0 when none), ``arrays`` its running state that the settled layer
    does not hold (e.g. the ledger; empty when there is none). Valid only as long as the
    layer holds exactly what the call committed.
    """

    chunk_size: int
    kernel: str
    span: int
    arrays: dict


class Execution(NamedTuple):
    """A planned call.

    ``run(state, seq, *, start, open_chunk, record, progress, desc, callback) -> (state,
    outs)`` runs every step of ``seq`` from the trainer's
    :class:`~canns_stdp.step.StepState`, the first being step ``start`` of the global
    count (chunks follow it), going on with ``open_chunk`` when the previous call left
    one; ``canonical(state)`` turns the state it returns (or hands ``callback``) back
    into a ``StepState`` whose ``W`` is ``W`` (a kernel may keep its own layout
    meanwhile); ``left_open(state, end)`` is the :class:`OpenChunk` a call that ends at
    global step ``end`` with ``state`` leaves, or ``None``.
    """

    run: Callable
    canonical: Callable = _same
    left_open: Callable = _nothing_open
