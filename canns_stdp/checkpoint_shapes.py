"""The state shapes of the library's layers, from their checkpoint configuration alone.

A loader compares a file's arrays with these shapes before it builds the layer, so a
forged configuration (a few bytes declaring a 20000 x 20000 layer) is refused without
allocating anything. A configuration these functions cannot read gives ``None``: the
layer's constructor then names what is wrong, before it allocates.
"""

from __future__ import annotations

from typing import Dict, Optional

from .functional.refractory import period_steps
from .functional.synapses import Conv

__all__ = ["conv_layer_shapes", "layer_shapes", "shapes_or_none"]


def _size(config: dict, name: str) -> int:
    value = config[name]
    if type(value) is not int or value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value


def _state(weight: tuple, in_shape: tuple, out_shape: tuple, config: dict) -> Dict[str, tuple]:
    shapes = {"W": weight, "x": in_shape, "v": out_shape, "spike": out_shape,
              "trace_pre": in_shape, "trace_post": out_shape}
    if _refractory_steps(config) > 0:
        shapes["refractory_left"] = out_shape
    return shapes


def _refractory_steps(config: dict) -> float:
    """The refractory period in steps, as the layer rounds it (``TypeError`` when unreadable)."""
    period, dt = config.get("refractory", 0.0), config.get("dt", 1.0)
    if not all(isinstance(a, (int, float)) and not isinstance(a, bool) for a in (period, dt)) or dt <= 0:
        raise TypeError(f"refractory={period!r} with dt={dt!r} is not a period")
    return period_steps(period, dt)


def layer_shapes(config: dict) -> Dict[str, tuple]:
    """:class:`~canns_stdp.SpikingLayer`: ``W (out, in)``, inputs ``(in,)``, neurons ``(out,)``."""
    n_in, n_out = _size(config, "input_size"), _size(config, "output_size")
    return _state((n_out, n_in), (n_in,), (n_out,), config)


def conv_layer_shapes(config: dict) -> Dict[str, tuple]:
    """:class:`~canns_stdp.conv_layer.ConvSpikingLayer`: the convolution's shapes."""
    c_in, c_out = _size(config, "in_channels"), _size(config, "out_channels")
    spatial = config["input_shape"]
    if not isinstance(spatial, list) or not all(type(n) is int and n > 0 for n in spatial):
        raise ValueError(f"input_shape must be a list of positive integers, got {spatial!r}")
    conv = Conv.create((c_in, *spatial), config["kernel_size"], config.get("stride", 1),
                       config.get("padding", 0), config.get("dilation", 1), config.get("groups", 1))
    if min(conv.out_spatial) < 1:
        raise ValueError(f"the kernel does not fit the input: output {conv.out_spatial}")
    return _state(tuple(conv.weight_shape(c_out)), tuple(conv.in_shape), (c_out, *conv.out_spatial), config)


def shapes_or_none(shapes, config: dict) -> Optional[Dict[str, tuple]]:
    """``shapes(config)``, or ``None`` when ``config`` is unreadable (the constructor then
    names what is wrong, before it allocates)."""
    try:
        return shapes(config)
    except (TypeError, ValueError, KeyError):
        return None
