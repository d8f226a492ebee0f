"""canns_stdp: spike-timing-dependent plasticity on BrainPy and JAX."""

from . import functional
from .base import BrainInspiredModel, Trainer
from .checkpoint import CheckpointError, PeriodicCheckpoint
from .conv_layer import ConvSpikingLayer
from .layer import SpikingLayer
from .reward_trainer import RewardSTDPTrainer
from .trainer import STDPTrainer
from .triplet_trainer import TripletSTDPTrainer

__version__ = "0.1.0"

__all__ = [
    "BrainInspiredModel", "CheckpointError", "ConvSpikingLayer", "PeriodicCheckpoint", "RewardSTDPTrainer",
    "SpikingLayer", "STDPTrainer", "Trainer", "TripletSTDPTrainer", "functional", "__version__",
]
