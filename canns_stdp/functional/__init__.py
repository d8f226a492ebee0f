"""Pure JAX functions behind canns_stdp: no objects with state.

Every function here can be called directly, ``jax.jit``-ed, ``jax.vmap``-ed or
differentiated without any layer or trainer object.
"""

from . import dependence, event, layer_step, network, neurons, pooling, psp, stdp, synapses, traces, triplet
from .dependence import WeightBounds, additive, hard, power, soft
from .layer_step import (LayerConfig, LayerParams, LayerState, RefractoryLayerState, forward_step, plasticity_step,
                         train_step)
from .neurons import LIFParams, lif_step, refractory_lif_step
from .stdp import STDPParams, TraceParams, Traces, apply_bounds, pairing_terms, stdp_delta, update_traces
from .synapses import Conv, Dense, LinearMap, MaskedDense
from .traces import cumulative_trace, decay_from_tau, nearest_trace
from .triplet import triplet_parameters

__all__ = [
    "dependence", "event", "layer_step", "network", "neurons", "pooling", "psp", "stdp", "synapses",
    "traces", "triplet",
    "WeightBounds", "additive", "hard", "power", "soft",
    "LayerConfig", "LayerParams", "LayerState", "RefractoryLayerState", "forward_step", "plasticity_step",
    "train_step",
    "Conv", "Dense", "LinearMap", "MaskedDense",
    "LIFParams", "lif_step", "refractory_lif_step",
    "STDPParams", "TraceParams", "Traces", "apply_bounds", "pairing_terms", "stdp_delta",
    "update_traces",
    "cumulative_trace", "decay_from_tau", "nearest_trace",
    "triplet_parameters",
]
