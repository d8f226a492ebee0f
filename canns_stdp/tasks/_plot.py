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


def figure_folder(out):
    """``(pyplot, out as a created Path)`` for a task's figures."""
    import pathlib

    plt = pyplot()
    out = pathlib.Path(out)
    out.mkdir(parents=True, exist_ok=True)
    return plt, out


def save(plt, fig, path):
    """Write ``fig`` to ``path`` and close it; returns ``path``."""
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_figures(res: dict, make, out, echo) -> dict:
    """``res`` with ``res["figures"]``: the paths ``make(res, out)`` wrote (none without ``out``)."""
    res["figures"] = [] if out is None else make(res, out)
    for path in res["figures"]:
        echo(f"wrote {path}")
    return res
