"""canns_stdp: spike-timing-dependent plasticity on BrainPy and JAX."""

from . import functional, rules
from .base import BrainInspiredModel, TrainerBase
from .checkpoint import CheckpointError, PeriodicCheckpoint
from .compat import RewardSTDPTrainer, STDPTrainer, TripletSTDPTrainer
from .conv_layer import ConvSpikingLayer
from .ensemble import Ensemble
from .layer import SpikingLayer
from .loops import compilation_count
from .trainer import Trainer

__version__ = "0.1.0"

__all__ = [
    "BrainInspiredModel", "CheckpointError", "ConvSpikingLayer", "Ensemble", "PeriodicCheckpoint", "RewardSTDPTrainer",
    "SpikingLayer", "STDPTrainer", "Trainer", "TrainerBase", "TripletSTDPTrainer", "compilation_count",
    "functional", "rules", "__version__",
]
