"""canns_stdp: spike-timing-dependent plasticity on BrainPy and JAX."""

from . import functional
from .base import BrainInspiredModel, Trainer
from .layer import SpikingLayer
from .reward_trainer import RewardSTDPTrainer
from .trainer import STDPTrainer

__version__ = "0.1.0"

__all__ = ["BrainInspiredModel", "RewardSTDPTrainer", "SpikingLayer", "STDPTrainer", "Trainer", "functional", "__version__"]
