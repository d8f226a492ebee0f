"""The fitted parameter sets of triplet STDP (Pfister & Gerstner 2006, Table 4).

The rule itself is :class:`canns_stdp.rules.Triplet` (``rules.triplet(...)``); these sets
give it, and the layer's traces, the paper's constants by name.

Example:
    >>> from canns_stdp.functional.triplet import triplet_parameters
    >>> p = triplet_parameters("visual_cortex", "all_to_all")
    >>> p.layer_kwargs()["tau_pre"], p.trainer_kwargs()["tau_y"]
    (16.8, 125.0)
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["DATA_SETS", "PAPER_PARAMETERS", "PaperParameters", "VERSIONS", "triplet_parameters"]


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
