"""Execution kernels: each runs a chunk of steps of :mod:`canns_stdp.step` its own way.

A kernel module has ``plan(trainer, plastic, config, params, state, seq)``, returning an
:class:`~canns_stdp.kernels.base.Execution` or ``None`` when it does not support the call.
:func:`choose` asks the specialised kernels first and falls back to the plain step, which
runs every rule on every map. Every kernel is tested equal to the plain step.
"""

from __future__ import annotations

from .base import Execution

__all__ = ["Execution", "choose"]


def choose(trainer, plastic: bool, config, params, state, seq) -> Execution:
    """The execution of one call: the first specialised kernel that supports it, else plain.
    (Imported here: a network, which needs none of them, does not load the layer's code.)"""
    from . import pair_layer, plain
    for kernel in (pair_layer,):
        execution = kernel.plan(trainer, plastic, config, params, state, seq)
        if execution is not None:
            return execution
    return plain.plan(trainer, plastic, config, params, state, seq)
