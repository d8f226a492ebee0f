"""The plain kernel: the step body of :mod:`canns_stdp.step`, as written, for any rule on
any synaptic map, driven by the compiled or the Python loop."""

from __future__ import annotations

from ..loops import compiled_chunks, default_chunk_size, drive, python_steps
from ..step import forward_step, plastic_step
from .base import Execution

__all__ = ["plan"]


def plan(trainer, plastic: bool, config, params, state, seq) -> Execution:
    """Run ``plastic_step`` (or ``forward_step``) with the trainer's loop."""
    chunk = trainer.chunk_size or default_chunk_size(int(seq[0][0].size))
    step = plastic_step if plastic else forward_step
    if trainer.compiled:
        run_chunk = compiled_chunks(step, config, params, chunk)
    else:
        run_chunk = python_steps(step, config, params)

    def run(state, seq, *, open_chunk=None, **options):  # its chunks hold nothing between calls
        return drive(run_chunk, state, seq, chunk_size=chunk, **options)

    return Execution(run)
