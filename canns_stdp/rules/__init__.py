"""Plasticity rules: small factories of pure functions (see :mod:`canns_stdp.rules.base`).

Every rule runs on every synaptic map (dense, masked, convolutional, batched), in the
compiled and the Python loop, through :class:`canns_stdp.Trainer`.

Example:
    >>> from canns_stdp import rules
    >>> stdp = rules.pair(A_plus=0.005, A_minus=0.00525)
    >>> three_factor = rules.reward(stdp, kind="rstdp", tau_c=200.0)
"""

from .base import Activity, Rule, static
from .inhibitory import Vogels, vogels
from .pair import Pair, pair
from .restricted import Restricted, RestrictedTraces, restricted
from .reward import KINDS, Reward, RewardTraces, reward
from .slow import SlowSTDP, SlowState, slow_stdp
from .triplet import Triplet, TripletTraces, triplet

__all__ = ["Activity", "KINDS", "Pair", "Restricted", "RestrictedTraces", "Reward", "RewardTraces", "Rule",
           "SlowSTDP", "SlowState", "Triplet", "TripletTraces", "Vogels", "pair", "restricted", "reward",
           "slow_stdp", "static", "triplet", "vogels"]
