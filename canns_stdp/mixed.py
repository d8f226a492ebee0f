"""STDP layers trained side by side with gradient descent (optax).

STDP changes are exposed as "gradients" (SpikingJelly's ``on_grad`` convention):
over a pass of ``T`` steps the weights are held fixed, each STDP layer accumulates
the change of step 6 of docs/step.md (reduced over the batch by ``batch_reduction``), and

    g_l = − Σ_t ΔW_l(t)

so ``optax.sgd(1.0)`` applies exactly ``Σ_t ΔW_l`` and any optax optimizer can be
used. STDP weights and gradient-trained parameters live in one pytree; an
``optax.multi_transform`` and one ``jax.jit`` train both (see
``examples/stdp_conv_digits.py``). optax itself is optional: these functions only
produce arrays.

Example:
    >>> import jax, jax.numpy as jnp, numpy as np
    >>> from canns_stdp import ConvSpikingLayer
    >>> from canns_stdp.functional.pooling import Pool
    >>> from canns_stdp.functional.network import init_states
    >>> from canns_stdp.mixed import stdp_stage, stdp_grads
    >>> conv = ConvSpikingLayer(1, 4, 3, input_shape=(8, 8), seed=0)
    >>> c1, p1 = stdp_stage(conv, learning_rate=1.0, batch_reduction="mean")
    >>> stages, params = (c1, Pool((2, 2))), (p1, None)
    >>> weights = (conv.W.value, None)
    >>> xs = jnp.ones((5, 2, 1, 8, 8))
    >>> states = init_states(stages, weights, xs.shape[1:])
    >>> grads, states, counts = jax.jit(stdp_grads, static_argnums=0)(stages, params, weights, states, xs)
"""

from __future__ import annotations

import jax.numpy as jnp

from .functional.network import init_states, network_step, output_shape
from .loops import run_chunk

__all__ = ["stdp_stage", "stdp_grads", "init_states"]


def stdp_stage(layer, **trainer_kwargs):
    """``(config, params)`` of a layer's STDP step, validated as :class:`~canns_stdp.STDPTrainer`
    validates them (same keyword arguments: ``learning_rate``, ``A_plus``, ``A_minus``,
    ``pairing``, ``weight_dependence``, ``batch_reduction``, ...)."""
    from .compat import STDPTrainer
    from .kernels.pair_layer import layer_step

    return layer_step(*STDPTrainer(layer, **trainer_kwargs).plan())


def stdp_grads(stages, params, weights, states, xs):
    """Run a stack over ``xs`` ``(T, B) + in_shape`` with its weights held fixed.

    Args:
        stages: tuple of ``LayerConfig`` (STDP layers) and hashable stateless
            functions such as :class:`~canns_stdp.functional.pooling.Pool` (static
            under ``jit``).
        params: tuple of ``LayerParams`` / ``None``.
        weights: tuple of weight arrays / ``None`` (e.g. leaves of an optax params tree).
        states: from :func:`~canns_stdp.functional.network.init_states` or a previous
            call; their ``W`` is replaced by ``weights``.
        xs: inputs, spikes or currents.

    Returns:
        ``(grads, states, counts)``: ``grads[l] = −Σ_t ΔW_l`` for STDP stages (``None``
        for the others), the states after the last step, and the last stage's output
        spikes summed over time, shape ``(B,) + out_shape``.
    """
    stages = tuple(stages)
    states = tuple(st if st is None else st._replace(W=jnp.asarray(W, st.W.dtype))
                   for st, W in zip(states, weights))
    grads = tuple(None if st is None else jnp.zeros_like(st.W) for st in states)
    counts = jnp.zeros(output_shape(stages, states, xs.shape[1:]), xs.dtype)
    (states, grads, counts), _ = run_chunk(network_step, stages, tuple(params),
                                            (states, grads, counts), (xs,), xs.shape[0], False)
    return grads, states, counts
