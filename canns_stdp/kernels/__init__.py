"""Execution kernels: each runs a chunk of steps of :mod:`canns_stdp.step` its own way.

A kernel module has ``plan(trainer, plastic, config, params, state, seq)``, returning an
:class:`~canns_stdp.kernels.base.Execution` or ``None`` when it does not support the call.
:func:`choose` asks the specialised kernels first and falls back to the plain step, which
runs every rule on every map. Every kernel is tested equal to the plain step.
"""

from __future__ import annotations

from . import pair_layer, plain
from .base import Execution

__all__ = ["Execution", "choose"]

_SPECIALISED = (pair_layer,)


def choose(trainer, plastic: bool, config, params, state, seq) -> Execution:
    """The execution of one call: the first specialised kernel that supports it, else plain."""
    for kernel in _SPECIALISED:
        execution = kernel.plan(trainer, plastic, config, params, state, seq)
        if execution is not None:
            return execution
    return plain.plan(trainer, plastic, config, params, state, seq)
