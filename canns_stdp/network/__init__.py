"""Plastic networks: populations, projections (dense, masked, sparse; delays; any rule),
monitors, run by the library's loops. See :class:`~canns_stdp.network.Network`."""

from ..kernels import native_start  # noqa: F401  (first: numba starts in the background while BrainPy and JAX load)
from .connectivity import AllToAll, Masked, Sparse, fixed_in_degree, fixed_probability, from_indices
from .monitors import PopulationRateMonitor, SpikeMonitor, StateMonitor, WeightMonitor
from .network import Network
from .populations import LIF, Izhikevich, LayerLIF, PoissonInput, Population, SpikeInput
from .projection import Projection

__all__ = ["AllToAll", "Izhikevich", "LIF", "LayerLIF", "Masked", "Network", "PoissonInput", "Population",
           "PopulationRateMonitor", "Projection", "Sparse", "SpikeInput", "SpikeMonitor", "StateMonitor",
           "WeightMonitor", "fixed_in_degree", "fixed_probability", "from_indices", "NetworkEnsemble"]


def __getattr__(name):
    if name == "NetworkEnsemble":  # loaded on first use: it brings in the trainers' ensembles
        from .ensemble import NetworkEnsemble
        return NetworkEnsemble
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
