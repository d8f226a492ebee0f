"""canns_stdp: spike-timing-dependent plasticity on BrainPy and JAX.

The public names are imported on first use (``canns_stdp.SpikingLayer`` or
``from canns_stdp import SpikingLayer`` loads ``canns_stdp.layer`` then), so that
``import canns_stdp`` and ``canns-stdp --help`` do not wait for JAX and BrainPy.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

__version__ = "0.1.0"

# public name -> the module that defines it. To add a public name, add one line here.
_PUBLIC = {
    "BrainInspiredModel": ".base",
    "TrainerBase": ".base",
    "CheckpointError": ".checkpoint",
    "PeriodicCheckpoint": ".checkpoint",
    "STDPTrainer": ".compat",
    "RewardSTDPTrainer": ".compat",
    "TripletSTDPTrainer": ".compat",
    "ConvSpikingLayer": ".conv_layer",
    "Ensemble": ".ensemble",
    "release_host_memory": ".host_memory",
    "SpikingLayer": ".layer",
    "compilation_count": ".loops",
    "Network": ".network",
    "PlasticProjection": ".brainpy_projection",
    "Projection": ".network",
    "Trainer": ".trainer",
}

# public subpackages, also loaded on first use
_SUBMODULES = ("functional", "monitors", "network", "plot", "rules")

__all__ = sorted(_PUBLIC) + list(_SUBMODULES) + ["__version__"]


def __getattr__(name: str):
    if name in _PUBLIC:
        value = getattr(importlib.import_module(_PUBLIC[name], __name__), name)
    elif name in _SUBMODULES:
        value = importlib.import_module(f".{name}", __name__)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value  # the next lookup is a plain attribute
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:  # what static tools and IDEs see
    from . import functional, monitors, network, plot, rules
    from .base import BrainInspiredModel, TrainerBase
    from .brainpy_projection import PlasticProjection
    from .checkpoint import CheckpointError, PeriodicCheckpoint
    from .compat import RewardSTDPTrainer, STDPTrainer, TripletSTDPTrainer
    from .conv_layer import ConvSpikingLayer
    from .ensemble import Ensemble
    from .host_memory import release_host_memory
    from .layer import SpikingLayer
    from .loops import compilation_count
    from .network import Network, Projection
    from .trainer import Trainer
