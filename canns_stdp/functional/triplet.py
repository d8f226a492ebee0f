"""Triplet STDP (Pfister & Gerstner 2006), all-to-all and nearest-spike.

Four traces: ``r1``, ``r2`` per input (presynaptic), ``o1``, ``o2`` per neuron
(postsynaptic). Between spikes each decays with its own time constant
(``tau_plus``, ``tau_x``, ``tau_minus``, ``tau_y``); at a spike of its neuron it
jumps by ``a`` (all-to-all: ``r ← r + a``) or is reset to ``a``
(nearest-spike: ``r ← a``), with ``a = a_pre`` for ``r1, r2`` and ``a_post`` for
``o1, o2`` (the paper: ``a = 1``). The weight changes at spikes:

* post spike of neuron ``i`` (LTP): ``w_ij += r1_j · (A2+ + A3+ · o2_i(t−ε))``
* pre spike of input ``j`` (LTD):   ``w_ij −= o1_i · (A2− + A3− · r2_j(t−ε))``

``o2(t−ε)`` and ``r2(t−ε)`` are the slow traces *just before* this step's own
spike is added (decayed to this step), so a spike never pairs with itself. In
discrete time, one step of the rule is SPEC steps 1-7 with step 6 replaced by

    ΔW = lr · ( f+(W) ⊙ ((s ⊙ (A2+ + A3+·o2_dec)) ⊗ P)
              − f−(W) ⊙ (Q ⊗ (x ⊙ (A2− + A3−·r2_dec))) )

where ``(P, Q)`` are ``(r1, o1)`` chosen by the pairing convention of SPEC step 6
(``symmetric``, ``causal``, ``strict``; in continuous time coincident spikes do not
occur and all three agree) and ``r2_dec = d_x·r2``, ``o2_dec = d_y·o2``. With
``A3± = 0`` it is the pair rule with ``A± = A2±``.

``r1`` and ``o1`` are the layer's ``trace_pre`` and ``trace_post`` (decays
``d_pre = exp(−dt/τ+)``, ``d_post = exp(−dt/τ−)``); ``r2`` and ``o2`` are extra state.

Example:
    >>> import jax.numpy as jnp
    >>> from canns_stdp.functional import dependence, traces, triplet
    >>> p = triplet.triplet_parameters("visual_cortex", "all_to_all")
    >>> rule = triplet.TripletParams(p.A2_plus, p.A3_plus, p.A2_minus, p.A3_minus,
    ...                              d_x=traces.decay_from_tau(p.tau_x),
    ...                              d_y=traces.decay_from_tau(p.tau_y))
    >>> x, s = jnp.array([1., 0.]), jnp.array([1.])
    >>> r2, o2 = jnp.zeros(2), jnp.zeros(1)
    >>> dW = triplet.triplet_delta(dependence.additive, rule, jnp.full((1, 2), .5),
    ...                            x, s, P=x, Q=s, r2_before=r2, o2_before=o2)
"""

from __future__ import annotations

from typing import Callable, NamedTuple, Optional

import jax.numpy as jnp

from .dependence import WeightBounds
from .layer_step import LayerConfig, LayerParams, LayerState, advance_neurons
from .stdp import apply_bounds, pairing_terms
from .synapses import dense_hebbian

__all__ = [
    "TripletParams",
    "TripletState",
    "TripletStepParams",
    "PaperParameters",
    "PAPER_PARAMETERS",
    "triplet_parameters",
    "update_slow_traces",
    "triplet_delta",
    "triplet_train_step",
    "triplet_forward_step",
]


class TripletParams(NamedTuple):
    """Numeric parameters of the triplet rule (traced under ``jit``)."""

    A2_plus: float = 5e-10
    A3_plus: float = 6.2e-3
    A2_minus: float = 7e-3
    A3_minus: float = 2.3e-4
    d_x: float = 0.99014   # decay per step of r2: exp(-dt / tau_x)
    d_y: float = 0.99203   # decay per step of o2: exp(-dt / tau_y)
    lr: float = 1.0
    bounds: WeightBounds = WeightBounds()


class TripletState(NamedTuple):
    """A layer's state plus the slow traces ``r2`` ``(n_in,)`` and ``o2`` ``(n_out,)``."""

    layer: LayerState
    r2: jnp.ndarray
    o2: jnp.ndarray


class TripletStepParams(NamedTuple):
    layer: LayerParams
    triplet: TripletParams


def update_slow_traces(add: Callable, params: TripletParams, r2, o2, pre, post,
                       a_pre=1.0, a_post=1.0):
    """Advance ``r2`` and ``o2`` one step.

    Returns ``(r2', o2', r2_dec, o2_dec)``: the new traces and their values decayed
    to this step without this step's spikes (the paper's ``t − ε``).
    """
    r2_dec, o2_dec = params.d_x * r2, params.d_y * o2
    return add(r2_dec, pre, a_pre), add(o2_dec, post, a_post), r2_dec, o2_dec


def triplet_delta(dependence: Callable, params: TripletParams, W, pre, post, P, Q,
                  r2_before, o2_before, hebbian: Callable = dense_hebbian):
    """The triplet weight change of one step (see the module docstring).

    Args:
        dependence: weight dependence ``dep(W, bounds) -> (f_plus, f_minus)``.
        params: amplitudes, ``lr`` and bounds.
        W: weights ``(n_out, n_in)``; pre: input ``x``; post: spikes ``s``.
        P, Q: the fast traces ``r1``, ``o1`` chosen by the pairing convention.
        r2_before, o2_before: the slow traces at ``t − ε``.
    """
    f_plus, f_minus = dependence(W, params.bounds)
    ltp = f_plus * hebbian(post * (params.A2_plus + params.A3_plus * o2_before), P)
    ltd = f_minus * hebbian(Q, pre * (params.A2_minus + params.A3_minus * r2_before))
    return params.lr * (ltp - ltd)


def _advance_all(config: LayerConfig, params: TripletStepParams, state: TripletState, x, post):
    layer, new, decayed = advance_neurons(config, params.layer, state.layer, x, post)
    tr = params.layer.traces
    r2, o2, r2_dec, o2_dec = update_slow_traces(
        config.trace_add, params.triplet, state.r2, state.o2, x, layer.spike, tr.a_pre, tr.a_post
    )
    return TripletState(layer, r2, o2), new, decayed, r2_dec, o2_dec


def triplet_train_step(config: LayerConfig, params: TripletStepParams, state: TripletState, x,
                       post: Optional[jnp.ndarray] = None):
    """One training step of a dense layer with triplet STDP. Returns ``(state, spikes)``.

    SPEC steps 1-5 (neuron, ``r1 = trace_pre``, ``o1 = trace_post``), the slow
    traces, then the triplet ``ΔW`` and the clipping of step 7 (when
    ``config.hardbound``).
    """
    W = state.layer.W
    state, new, decayed, r2_dec, o2_dec = _advance_all(config, params, state, x, post)
    P, Q = pairing_terms(config.pairing, new, decayed)
    s = state.layer.spike
    dW = triplet_delta(config.dependence, params.triplet, W, x, s, P, Q, r2_dec, o2_dec)
    W = apply_bounds(W, dW, params.triplet.bounds, config.hardbound)
    return state._replace(layer=state.layer._replace(W=W)), s


def triplet_forward_step(config: LayerConfig, params: TripletStepParams, state: TripletState, x,
                         post: Optional[jnp.ndarray] = None):
    """Neuron and all four traces, no plasticity. Returns ``(state, spikes)``."""
    state, _, _, _, _ = _advance_all(config, params, state, x, post)
    return state, state.layer.spike


# -- the paper's fitted parameters ------------------------------------------------------

class PaperParameters(NamedTuple):
    """One fitted parameter set of Pfister & Gerstner (2006), times in ms.

    ``layer_kwargs()`` and ``trainer_kwargs()`` give the arguments of
    :class:`~canns_stdp.SpikingLayer` and :class:`~canns_stdp.TripletSTDPTrainer`.
    """

    data: str
    version: str
    minimal: bool
    tau_plus: float
    tau_minus: float
    tau_x: float
    tau_y: float
    A2_plus: float
    A3_plus: float
    A2_minus: float
    A3_minus: float

    @property
    def trace_mode(self) -> str:
        return "cumulative" if self.version == "all_to_all" else "nearest"

    def layer_kwargs(self) -> dict:
        return dict(tau_pre=self.tau_plus, tau_post=self.tau_minus, decay="exact",
                    trace_mode=self.trace_mode, a_pre=1.0, a_post=1.0)

    def trainer_kwargs(self) -> dict:
        return dict(A2_plus=self.A2_plus, A3_plus=self.A3_plus, A2_minus=self.A2_minus,
                    A3_minus=self.A3_minus, tau_x=self.tau_x, tau_y=self.tau_y)


def _sets():
    # Table 4 of Pfister & Gerstner (2006); tau_plus = 16.8 ms and tau_minus = 33.7 ms
    # throughout. The minimal model has A3- = 0, so r2 (and tau_x) plays no role there:
    # the table leaves tau_x blank and we keep the full model's value so that r2 is defined.
    vc, hc = "visual_cortex", "hippocampal"
    rows = [
        # data, version,    minimal, tau_x, tau_y, A2+,     A3+,    A2-,    A3-
        (vc, "all_to_all", False, 101.0, 125.0, 5e-10, 6.2e-3, 7e-3, 2.3e-4),
        (vc, "all_to_all", True, 101.0, 125.0, 0.0, 6.5e-3, 7.1e-3, 0.0),
        (vc, "nearest", False, 714.0, 40.0, 8.8e-11, 5.3e-2, 6.6e-3, 3.1e-3),
        (hc, "all_to_all", False, 946.0, 27.0, 6.1e-3, 6.7e-3, 1.6e-3, 1.4e-3),
        (hc, "nearest", False, 575.0, 47.0, 4.6e-3, 9.1e-3, 3e-3, 7.5e-9),
    ]
    return {(d, v, m): PaperParameters(d, v, m, 16.8, 33.7, *rest) for d, v, m, *rest in rows}


PAPER_PARAMETERS: dict = _sets()
DATA_SETS = ("visual_cortex", "hippocampal")
VERSIONS = ("all_to_all", "nearest")


def triplet_parameters(data: str = "visual_cortex", version: str = "all_to_all",
                       minimal: bool = False) -> PaperParameters:
    """A fitted parameter set of Pfister & Gerstner (2006), Table 4, by name.

    Args:
        data: ``"visual_cortex"`` (Sjöström et al. 2001) or ``"hippocampal"``
            (cultures; Bi & Poo 1998, Wang et al. 2005).
        version: ``"all_to_all"`` (cumulative traces) or ``"nearest"``
            (nearest-spike: traces reset to 1).
        minimal: the minimal model (``A2+ = A3− = 0``); available for
            ``("visual_cortex", "all_to_all")``.

    Example:
        >>> from canns_stdp.functional.triplet import triplet_parameters
        >>> p = triplet_parameters("visual_cortex", "all_to_all", minimal=True)
        >>> p.tau_y, p.A3_plus, p.A2_minus
        (125.0, 0.0065, 0.0071)
    """
    if data not in DATA_SETS:
        raise ValueError(f"data must be one of {DATA_SETS}, got {data!r}")
    if version not in VERSIONS:
        raise ValueError(f"version must be one of {VERSIONS}, got {version!r}")
    if not isinstance(minimal, bool):
        raise TypeError(f"minimal must be True or False, got {minimal!r}")
    try:
        return PAPER_PARAMETERS[(data, version, minimal)]
    except KeyError:
        available = [k for k in PAPER_PARAMETERS if k[2]]
        raise ValueError(
            f"no minimal parameter set for ({data!r}, {version!r}); minimal sets: {available}"
        ) from None
