"""canns_stdp: spike-timing-dependent plasticity on BrainPy and JAX."""

from . import functional
from .base import BrainInspiredModel, Trainer
from .checkpoint import CheckpointError, PeriodicCheckpoint
from .layer import SpikingLayer
from .trainer import STDPTrainer

__version__ = "0.1.0"

__all__ = ["BrainInspiredModel", "CheckpointError", "PeriodicCheckpoint", "SpikingLayer", "STDPTrainer",
           "Trainer", "functional", "__version__"]
