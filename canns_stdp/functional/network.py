"""A stack of STDP layers and stateless stages (pooling): one time step of all of it.

:func:`canns_stdp.mixed.stdp_grads` drives :func:`network_step` over time.

For gradient-based optimizers (optax) the STDP change is exposed the way
SpikingJelly's ``on_grad`` does it: during a pass of ``T`` steps the weights are
held fixed, each STDP layer accumulates its per-step change of step 6 of docs/step.md (reduced
over the batch by its ``batch_reduction``), and its "gradient" is the negative:

    g_l = − Σ_t ΔW_l(t)

so that plain SGD with learning rate 1 (``optax.sgd(1.0)``) adds exactly ``Σ_t ΔW_l``,
and any other optax optimizer or schedule can be used on it. Gradient-trained layers
sit in the same parameter pytree: one ``optax.multi_transform`` and one jitted step
train both. Clipping to ``[w_min, w_max]`` (step 7 of docs/step.md) is left to the caller
(e.g. ``jnp.clip`` after ``optax.apply_updates``).

A stage is a :class:`~canns_stdp.functional.layer_step.LayerConfig` (an STDP layer,
with its :class:`~canns_stdp.functional.layer_step.LayerParams`) or any hashable
function of the spikes (e.g. :class:`~canns_stdp.functional.pooling.Pool`, params
``None``). The time loop is the package's compiled driver
(:mod:`canns_stdp.loops`), so this is the same step as everywhere else.

Example:
    >>> import jax.numpy as jnp
    >>> from canns_stdp.functional import LayerConfig, LayerParams
    >>> from canns_stdp.functional.synapses import Conv
    >>> from canns_stdp.functional.pooling import Pool
    >>> from canns_stdp.functional.network import init_states
    >>> from canns_stdp.mixed import stdp_grads
    >>> conv = Conv.create((1, 8, 8), 3)
    >>> stages, params = (LayerConfig(synapse=conv), Pool((2, 2))), (LayerParams(), None)
    >>> weights = (jnp.full((4, 1, 3, 3), 0.3), None)
    >>> xs = jnp.ones((5, 2, 1, 8, 8))                       # (T, B, C, H, W)
    >>> states = init_states(stages, weights, xs.shape[1:])
    >>> grads, states, counts = stdp_grads(stages, params, weights, states, xs)
    >>> counts.shape                                          # spikes summed over T
    (2, 4, 3, 3)
"""

from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp

from .layer_step import LayerConfig, LayerState, plasticity_step

__all__ = ["init_states", "network_step", "output_shape"]


def _is_layer(stage) -> bool:
    return isinstance(stage, LayerConfig)


def init_states(stages: Sequence, weights: Sequence, x_shape, dtype=jnp.float32):
    """Zero membranes, spikes and traces for inputs of shape ``x_shape`` (``(B,) + in_shape``).

    Returns a tuple with a :class:`LayerState` per STDP stage and ``None`` for the others.
    """
    x = jax.ShapeDtypeStruct(tuple(x_shape), dtype)
    states = []
    for stage, W in zip(stages, weights):
        if _is_layer(stage):
            W = jnp.asarray(W, dtype)
            out = jax.eval_shape(stage.synapse.current, W, x)
            z_out = jnp.zeros(out.shape, dtype)
            states.append(LayerState(W, z_out, z_out, jnp.zeros(x.shape, dtype), z_out))
            x = jax.ShapeDtypeStruct(out.shape, dtype)
        else:
            states.append(None)
            x = jax.eval_shape(stage, x)
    return tuple(states)


def output_shape(stages, states, x_shape):
    """Shape of the last stage's output for an input of shape ``x_shape``."""
    x = jax.ShapeDtypeStruct(tuple(x_shape), jnp.float32)
    for stage, st in zip(stages, states):
        x = jax.ShapeDtypeStruct(st.v.shape, x.dtype) if _is_layer(stage) else jax.eval_shape(stage, x)
    return x.shape


def network_step(stages, params, carry, x):
    """One time step through every stage; accumulates ``−ΔW`` and the output spikes.

    ``carry = (states, grads, counts)``. Returns ``(carry, None)``.
    """
    states, grads, counts = carry
    new_states, new_grads = [], []
    for stage, p, state, g in zip(stages, params, states, grads):
        if _is_layer(stage):
            state, x, dW = plasticity_step(stage, p, state, x)
            g = g - dW
        else:
            x = stage(x)
        new_states.append(state)
        new_grads.append(g)
    return (tuple(new_states), tuple(new_grads), counts + x), None
