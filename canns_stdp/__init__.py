"""canns_stdp: spike-timing-dependent plasticity on BrainPy and JAX."""

from . import functional
from .base import BrainInspiredModel, Trainer
from .conv_layer import ConvSpikingLayer
from .layer import SpikingLayer
from .trainer import STDPTrainer

__version__ = "0.1.0"

__all__ = ["BrainInspiredModel", "ConvSpikingLayer", "SpikingLayer", "STDPTrainer", "Trainer", "functional", "__version__"]
