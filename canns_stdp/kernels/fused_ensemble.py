"""The fused kernel for an ensemble: every member's chunk in one launch.

Where each member trained alone would run the fused kernel (on a GPU, or with
``fused=True``), an :class:`~canns_stdp.Ensemble` runs ``jax.vmap`` of
:func:`~canns_stdp.functional.fused.fused_train` over its members. Pallas batches the
kernel by making the members an axis of its grid: K members of a layer of ``n_out``
neurons are one launch of K times the programs of one, each program computing one
member's rows exactly as that member's own kernel does. A small layer, which alone fills
a fraction of a GPU, then runs its members side by side.
"""

from __future__ import annotations

from functools import partial
from typing import Optional

import jax

from ..functional.fused import fused_train
from ..loops import padded
from .pair_layer import fused_chosen, layer_step, refractory_state, supports

__all__ = ["fused_members", "fused_member_chunks"]


def fused_members(trainers, plastic: bool, plans, template, xs) -> Optional[tuple]:
    """``(layer_config, per-member layer numbers)`` where every member trained alone would
    run the fused kernel (:func:`~canns_stdp.kernels.pair_layer.supports` its call, and
    :func:`~canns_stdp.kernels.pair_layer.fused_chosen` it), else ``None``. ``template``:
    member 0's stepping state; ``xs``: member 0's inputs."""
    _, config, params = plans[0]
    if not plastic or not supports(plastic, config, params, template, (xs,)):
        return None
    layer_config = layer_step(config, params, True)[0]
    resting = refractory_state(template.layer)
    if not all(fused_chosen(t, True, layer_config, resting) for t in trainers):
        return None
    return layer_config, [layer_step(c, p, True)[1] for _, c, p in plans]


def fused_member_chunks(layer_config, params, input_axes: tuple, chunk: int):
    """The chunk function of :func:`~canns_stdp.loops.drive` for the members' stacked
    state and per-step inputs ``(xs, posts)`` (each with its member axis in
    ``input_axes``: ``None`` for one shared by all, 0 for axis 1 of the sequence);
    ``params``: the members' layer numbers stacked on axis 0. The spikes of a chunk come
    back ``(chunk, K, n_out)``."""
    x_axis, post_axis = input_axes[:2]

    def run_chunk(state, inputs, n_steps, record, offset=0):
        xs, posts = (padded(a, chunk) for a in inputs[:2])
        layer, spikes = _members(layer_config, x_axis, post_axis, params, state.layer, xs, posts, n_steps)
        return state._replace(layer=layer), spikes
    return run_chunk


@partial(jax.jit, static_argnums=(0, 1, 2))
def _members(config, x_axis, post_axis, params, layer, xs, posts, n_steps):
    def member(p, state, x, post):
        return fused_train(config, p, state, x, post, n_steps)
    in_axes = (0, 0, None if x_axis is None else 1, None if posts is None or post_axis is None else 1)
    return jax.vmap(member, in_axes=in_axes, out_axes=(0, 1))(params, layer, xs, posts)
