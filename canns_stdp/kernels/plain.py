"""The plain kernel: the step body of :mod:`canns_stdp.step`, as written, for any rule on
any synaptic map, driven by the compiled or the Python loop."""

from __future__ import annotations

from functools import partial

from ..loops import default_chunk_size, run_compiled, run_python
from ..step import forward_step, plastic_step
from .base import Execution

__all__ = ["plan"]


def plan(trainer, plastic: bool, config, params, state, seq) -> Execution:
    """Run ``plastic_step`` (or ``forward_step``) with the trainer's loop."""
    chunk = trainer.chunk_size or default_chunk_size(int(seq[0][0].size))
    loop = run_compiled if trainer.compiled else run_python
    step = plastic_step if plastic else forward_step
    return Execution(partial(loop, step, config, params, chunk_size=chunk))
