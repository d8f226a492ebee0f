"""Pure JAX functions behind canns_stdp: no objects with state.

Every function here can be called directly, ``jax.jit``-ed, ``jax.vmap``-ed or
differentiated without any layer or trainer object.
"""

import importlib

# public name -> the submodule that defines it; submodules load on first use, so that a
# program using a few of them (a network, say) does not wait for the others
_FROM = {
    "WeightBounds": "dependence", "additive": "dependence", "hard": "dependence", "power": "dependence",
    "soft": "dependence",
    "LayerConfig": "layer_step", "LayerParams": "layer_step", "LayerState": "layer_step",
    "RefractoryLayerState": "layer_step", "forward_step": "layer_step", "plasticity_step": "layer_step",
    "train_step": "layer_step",
    "LIFParams": "neurons", "lif_step": "neurons", "refractory_lif_step": "neurons",
    "STDPParams": "stdp", "TraceParams": "stdp", "Traces": "stdp", "apply_bounds": "stdp",
    "pairing_terms": "stdp", "stdp_delta": "stdp", "update_traces": "stdp",
    "Conv": "synapses", "Dense": "synapses", "LinearMap": "synapses", "MaskedDense": "synapses",
    "cumulative_trace": "traces", "decay_from_tau": "traces", "nearest_trace": "traces",
    "triplet_parameters": "triplet",
}
_SUBMODULES = ("dependence", "event", "layer_step", "network", "neurons", "pooling", "psp", "stdp", "synapses",
               "traces", "triplet")

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


def __getattr__(name: str):
    if name in _FROM:
        value = getattr(importlib.import_module(f".{_FROM[name]}", __name__), name)
    elif name in _SUBMODULES:
        value = importlib.import_module(f".{name}", __name__)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
