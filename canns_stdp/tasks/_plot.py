"""Lazy matplotlib access for the tasks' figures."""

from __future__ import annotations


def pyplot():
    """``matplotlib.pyplot`` with the non-interactive Agg backend, or a clear ImportError."""
    try:
        import matplotlib
    except ImportError:
        raise ImportError("figures need matplotlib: pip install 'canns_stdp[plot]' "
                          "(or pass --no-figures)") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt
