"""The fused kernel lowers to Triton for a CUDA GPU, here on a machine without one: every
operation of each variant has a Triton lowering (what its interpret-mode tests on the CPU
cannot tell). Compiling the Triton module to the GPU's code needs the GPU."""

import itertools

import jax
import jax.numpy as jnp
import pytest

from canns_stdp.functional import fused
from canns_stdp.functional.dependence import DEPENDENCES
from canns_stdp.functional.fused import FusedTiling, fused_train
from canns_stdp.functional.layer_step import LayerConfig, LayerParams, LayerState
from canns_stdp.functional.neurons import LIFParams
from canns_stdp.functional.stdp import PAIRINGS
from canns_stdp.functional.traces import TRACE_MODES
from canns_stdp.kernels import fused_ensemble

N_IN, N_OUT, T, K = 96, 40, 16, 3
PARAMS = LayerParams(lif=LIFParams(0.9, 1.0, 0.0))
STATE = LayerState.zeros(N_IN, N_OUT, W=jnp.zeros((N_OUT, N_IN)))


def cuda_module(function, *args) -> str:
    """``function``'s program lowered for a CUDA GPU, as text."""
    traced = function.trace(*args) if hasattr(function, "trace") else jax.jit(function).trace(*args)
    try:
        return traced.lower(lowering_platforms=("cuda",)).as_text()
    except (TypeError, NotImplementedError) as err:  # a JAX that cannot lower for another platform
        if "lowering_platforms" in str(err) or "platform" in str(err):
            pytest.skip(f"this JAX cannot lower for CUDA here: {err}")
        raise


def _variants():
    modes, pairings = list(TRACE_MODES), list(PAIRINGS)
    for k, dependence in enumerate(DEPENDENCES):  # each choice at least once, with both tilings
        for tiling in (FusedTiling(1), FusedTiling(4, 32)):
            yield dependence, modes[k % len(modes)], pairings[k % len(pairings)], k % 2 == 0, tiling
    for mode, pairing in itertools.product(modes, pairings):
        yield "additive", mode, pairing, True, FusedTiling(2)


@pytest.mark.parametrize("dependence, mode, pairing, hardbound, tiling", list(_variants()))
def test_every_variant_of_the_kernel_lowers_to_triton(dependence, mode, pairing, hardbound, tiling):
    config = LayerConfig(trace_add=TRACE_MODES[mode], dependence=DEPENDENCES[dependence], pairing=pairing,
                         hardbound=hardbound)
    xs, posts = jnp.zeros((T, N_IN)), jnp.zeros((T, N_OUT))
    for given in (None, posts):
        text = cuda_module(lambda s, x, q: fused_train(config, PARAMS, s, x, q, tiling=tiling, interpret=False),
                           STATE, xs, given)
        assert "triton" in text


@pytest.mark.parametrize("shared_input", [True, False])
def test_the_ensembles_kernel_batched_over_members_lowers_to_triton(monkeypatch, shared_input):
    monkeypatch.setattr(fused, "fused_available", lambda: True)  # as on a GPU: compiled, not interpreted
    params = jax.tree_util.tree_map(lambda a: jnp.full((K,), a, jnp.float32), PARAMS)
    state = jax.tree_util.tree_map(lambda a: jnp.stack([a] * K), STATE)
    xs = jnp.zeros((T, N_IN) if shared_input else (T, K, N_IN))
    text = cuda_module(fused_ensemble._members, LayerConfig(), None if shared_input else 0, 0, params, state, xs,
                       jnp.zeros((T, K, N_OUT)), jnp.int32(T))
    assert "triton" in text  # (interpreted, it would lower to plain XLA operations)
