"""Figures of a recorded run: spike rasters, population rates, weight histograms, weight
trajectories and the pair STDP window.

Each function takes NumPy arrays or the library's monitors (:mod:`canns_stdp.monitors` for
layers, :mod:`canns_stdp.network.monitors` for networks), draws on ``ax`` (a new figure when
``None``) and returns the Axes; other keywords go to the matplotlib call that draws. Times
are in steps, or in ms when ``dt_ms`` (the length of a step in ms) is given; network monitors
record ms already. Needs matplotlib (``pip install "canns_stdp[plot]"``).

Example:
    >>> import numpy as np
    >>> from canns_stdp import plot
    >>> ax = plot.raster(np.eye(5), dt_ms=0.5)
    >>> ax.get_xlabel(), ax.collections[0].get_offsets().tolist()
    ('time (ms)', [[0.0, 0.0], [0.5, 1.0], [1.0, 2.0], [1.5, 3.0], [2.0, 4.0]])
"""

from __future__ import annotations

import numpy as np

from . import _validation as v
from .monitors import checked_indices

__all__ = ["raster", "rates", "stdp_window", "weight_histogram", "weight_trajectories"]


def _axes(ax, figsize=(6.0, 3.5)):
    try:
        import matplotlib.pyplot as plt
    except ImportError as err:
        raise ImportError('canns_stdp.plot needs matplotlib: pip install "canns_stdp[plot]"') from err
    return plt.subplots(figsize=figsize)[1] if ax is None else ax


def _step(dt_ms):
    """``(ms per step or 1, unit)``."""
    return (1.0, "steps") if dt_ms is None else (v.check_positive("dt_ms", dt_ms), "ms")


def _array(name: str, data, min_ndim: int = 1) -> np.ndarray:
    arr = v._to_float_array(name, data)
    if arr.ndim < min_ndim or arr.shape[0] == 0:
        shape = "(T, n)" if min_ndim == 2 else "(T, ...)"
        raise ValueError(f"{name} must have shape {shape} with T >= 1, got shape {arr.shape}")
    v.check_finite(name, arr)
    return arr


def _spike_array(spikes) -> np.ndarray:
    arr = _array("spikes", spikes, 2)
    return v.check_binary("spikes", arr.reshape(arr.shape[0], -1))


def _is_weight_monitor(m) -> bool:
    return hasattr(m, "values") and (hasattr(m, "steps") or hasattr(m, "t"))


def raster(spikes, dt_ms=None, ax=None, **scatter_kw):
    """Spike raster: one mark per spike, time against neuron.

    Args:
        spikes: a ``(T, n)`` array of 0/1 (trailing dimensions are flattened; row ``k`` is
            at time ``k``), a layer ``SpikeMonitor`` (times: its ``steps``) or a network
            ``SpikeMonitor`` (times: its ``t`` in ms).
        dt_ms: the step in ms, to plot ms instead of steps (unused for network monitors).

    Example:
        >>> import numpy as np
        >>> from canns_stdp import plot
        >>> spikes = np.random.default_rng(0).random((500, 20)) < 0.02   # or a SpikeMonitor
        >>> ax = plot.raster(spikes, dt_ms=0.1)
    """
    ax = _axes(ax)
    from matplotlib.ticker import MaxNLocator

    scale, unit = _step(dt_ms)
    if hasattr(spikes, "i"):  # a network SpikeMonitor
        times, neurons, unit, n = np.asarray(spikes.t), np.asarray(spikes.i), "ms", getattr(spikes, "n", None)
    elif hasattr(spikes, "neurons"):  # a layer SpikeMonitor
        times, neurons, n = np.asarray(spikes.steps) * scale, np.asarray(spikes.neurons), None
    else:
        arr = _spike_array(spikes)
        (steps, neurons), n = np.nonzero(arr), arr.shape[1]
        times = steps * scale
    ax.scatter(times, neurons, **{"marker": "|", "s": 12, "color": "k", "linewidths": 0.8, **scatter_kw})
    if n:  # every neuron, the silent ones too
        ax.set_ylim(-0.5, n - 0.5)
    if isinstance(ax.yaxis.get_major_locator(), MaxNLocator):  # whole neurons on the axis
        ax.yaxis.get_major_locator().set_params(integer=True)
    ax.set_xlabel(f"time ({unit})")
    ax.set_ylabel("neuron")
    return ax


def rates(spikes, window, dt_ms=None, *, n_neurons=None, n_steps=None, ax=None, **plot_kw):
    """Population rate: spikes per neuron in a window sliding by one step.

    Each value is the count of spikes in ``window`` consecutive steps over
    ``window · n_neurons``, plotted at the window's centre; in Hz when ``dt_ms`` is given.

    Args:
        spikes: a ``(T, n)`` array of 0/1, a layer ``SpikeMonitor`` or a network one.
        window: the window, in steps, or in ms when ``dt_ms`` is given (rounded to steps).
        dt_ms: the step in ms (required for a network monitor: the network's ``dt``).
        n_neurons: the number of neurons; required for a layer ``SpikeMonitor``, which does
            not know its layer's size.
        n_steps: a monitor's run length in steps (default: up to its last spike).

    Example:
        >>> import numpy as np
        >>> from canns_stdp import plot
        >>> spikes = np.random.default_rng(0).random((1000, 50)) < 0.01   # 10 Hz at 1 ms steps
        >>> ax = plot.rates(spikes, window=50.0, dt_ms=1.0)   # Hz, a 50-step window
    """
    ax = _axes(ax)
    scale, unit = _step(dt_ms)
    if hasattr(spikes, "i"):  # a network SpikeMonitor: its times are (step index) * dt
        if dt_ms is None:
            raise ValueError("dt_ms must be given for a network SpikeMonitor (the network's dt), got None")
        idx, first, n = np.rint(np.asarray(spikes.t) / scale).astype(np.int64), 0, getattr(spikes, "n", n_neurons)
    elif hasattr(spikes, "neurons"):  # a layer SpikeMonitor: its steps count from 1
        idx, first, n = np.asarray(spikes.steps, np.int64) - 1, 1, n_neurons
        if n is None:
            raise ValueError("n_neurons must be given for a layer SpikeMonitor (its layer's output size), got None")
    elif n_neurons is not None or n_steps is not None:
        raise ValueError(f"n_neurons and n_steps are for monitors (an array gives both), got {n_neurons!r}, {n_steps!r}")
    else:
        arr = _spike_array(spikes)
        idx, first, n, n_steps = np.nonzero(arr)[0], 0, arr.shape[1], arr.shape[0]
    n = v.check_positive_int("n_neurons", n)
    T = (int(idx.max()) + 1 if idx.size else 0) if n_steps is None else v.check_positive_int("n_steps", n_steps)
    if T == 0 or (idx.size and idx.max() >= T):
        raise ValueError(f"n_steps must cover the spikes (>= {int(idx.max(initial=0)) + 1} steps), got {n_steps!r}")
    counts = np.bincount(idx, minlength=T).astype(np.float64)
    w = round(v.check_positive("window", window) / scale)
    if dt_ms is None and w != window:
        raise ValueError(f"window must be a whole number of steps without dt_ms, got {window!r}")
    if not 1 <= w <= T:
        raise ValueError(f"window must span 1 to {T} steps (the run), got {window!r} ({w} steps)")
    rate = np.convolve(counts, np.ones(w), mode="valid") / (w * n)
    times = (first + np.arange(rate.size) + (w - 1) / 2) * scale
    ax.plot(times, rate * (1000.0 / scale if dt_ms is not None else 1.0), **plot_kw)
    ax.set_xlabel(f"time ({unit})")
    ax.set_ylabel("population rate (Hz)" if dt_ms is not None else "rate (spikes / neuron / step)")
    return ax


def _weights_of(W) -> np.ndarray:
    if _is_weight_monitor(W):
        values = np.asarray(W.values)
        if values.shape[0] == 0:
            raise ValueError("W is a monitor with no samples yet (train with it first)")
        return values[-1]
    if hasattr(W, "W"):  # a layer
        W = getattr(W.W, "value", W.W)
    return _array("W", W)


def weight_histogram(W, bins: int = 50, *, w_min=None, w_max=None, ax=None, **hist_kw):
    """Histogram of the weights over ``[w_min, w_max]`` (default: their range).

    Args:
        W: an array of weights (any shape), a layer (its ``W``), or a weight monitor (its
            latest sample).
        bins: number of bins.
        w_min, w_max: the range (the trainer's bounds, say); weights outside it are not
            counted.

    Example:
        >>> import numpy as np
        >>> from canns_stdp import plot
        >>> ax = plot.weight_histogram(np.random.default_rng(0).random((10, 50)), bins=20, w_max=1.0)
    """
    ax = _axes(ax)
    flat = _weights_of(W).reshape(-1)
    bins = v.check_positive_int("bins", bins)
    lo = float(flat.min()) if w_min is None else v.check_number("w_min", w_min)
    hi = float(flat.max()) if w_max is None else v.check_number("w_max", w_max)
    if (w_min is not None or w_max is not None) and not lo < hi:
        raise ValueError(f"w_min must be below w_max, got w_min={lo!r}, w_max={hi!r}")
    ax.hist(flat, bins=bins, range=(lo, hi), **{"color": "C0", "edgecolor": "white", "linewidth": 0.3, **hist_kw})
    ax.set_xlabel("weight")
    ax.set_ylabel("synapses")
    return ax


def weight_trajectories(weights, which=None, *, dt_ms=None, ax=None, **plot_kw):
    """Chosen synapses' weights over time, one line each.

    Args:
        weights: a layer ``WeightMonitor`` (times: its ``steps``), a network one (its ``t``
            in ms), or a ``(T, ...)`` array of weights (row ``k`` at time ``k``; trailing
            dimensions flattened).
        which: columns to draw (positions among the monitor's synapses, or flat indices
            into each row of the array); default the first 10.
        dt_ms: the step in ms, to plot ms instead of steps (unused for network monitors).

    Example:
        >>> import numpy as np
        >>> from canns_stdp import plot
        >>> W = np.cumsum(np.random.default_rng(0).normal(size=(100, 3, 4)), axis=0)
        >>> ax = plot.weight_trajectories(W, which=[0, 5])
    """
    ax = _axes(ax)
    scale, unit = _step(dt_ms)
    if _is_weight_monitor(weights):
        values = np.asarray(weights.values)
        if values.shape[0] == 0:
            raise ValueError("weights is a monitor with no samples yet (train with it first)")
        times, unit = (weights.t, "ms") if hasattr(weights, "t") else (weights.steps * scale, unit)
        ids = np.arange(values.shape[1]) if weights.indices is None else np.atleast_1d(np.asarray(weights.indices))
    else:
        arr = _array("weights", weights)
        values = arr.reshape(arr.shape[0], -1)
        times, ids = np.arange(values.shape[0]) * scale, np.arange(values.shape[1])
    cols = np.arange(min(10, values.shape[1])) if which is None else checked_indices("which", which, values.shape[1])
    for j in cols:
        ax.plot(times, values[:, j], label=f"synapse {int(ids[j])}", **plot_kw)
    if 0 < cols.size <= 10:
        ax.legend(fontsize=7, ncol=2)
    ax.set_xlabel(f"time ({unit})")
    ax.set_ylabel("weight")
    return ax


def stdp_window(rule, dw=None, *, layer=None, learning_rate=None, max_lag: int = 20, dt_ms=None,
                ax=None, **plot_kw):
    """The pair STDP window: the weight change of one pre/post pair against their timing.

    From a pair rule: ``lr·A+·a_pre·d_pre^Δt`` for ``Δt = t_post − t_pre > 0``,
    ``−lr·A−·a_post·d_post^|Δt|`` for ``Δt < 0``, and at ``Δt = 0`` what the rule's pairing
    gives (``lr·(A+·a_pre − A−·a_post)``, ``lr·A+·a_pre`` or 0): the additive window (other
    weight dependences scale it by ``f±(W)``).

    Args:
        rule: a pair rule (``rules.pair``), a ``Trainer`` with one (its learning rate and
            layer give the rest), or an array of ``Δt`` (with ``dw``).
        dw: the weight changes at ``rule``'s ``Δt`` (measured ones, say).
        layer: gives ``d_pre``, ``d_post``, ``a_pre``, ``a_post`` (default: a
            ``SpikingLayer``'s: 0.95, 0.95, 1, 1).
        learning_rate: ``lr`` (default: the trainer's, or 1).
        max_lag: the window spans ``Δt`` in ``[-max_lag, max_lag]`` steps.
        dt_ms: the step in ms, to plot ``Δt`` in ms instead of steps.

    Example:
        >>> from canns_stdp import plot, rules
        >>> ax = plot.stdp_window(rules.pair(A_plus=0.01, A_minus=0.0105), max_lag=30)
    """
    from .rules.pair import Pair

    ax = _axes(ax)
    scale, unit = _step(dt_ms)
    if hasattr(rule, "rule") and hasattr(rule, "model"):  # a trainer
        learning_rate = rule.learning_rate if learning_rate is None else learning_rate
        layer, rule = (rule.model if layer is None else layer), rule.rule
    if isinstance(rule, Pair):
        if dw is not None:
            raise ValueError(f"dw must be None with a rule (the rule gives the window), got {type(dw).__name__}")
        lr = 1.0 if learning_rate is None else v.check_nonnegative("learning_rate", learning_rate)
        d_pre, d_post, a_pre, a_post = ((0.95, 0.95, 1.0, 1.0) if layer is None else
                                        (layer.d_pre, layer.d_post, layer.a_pre, layer.a_post))
        lags = np.arange(-v.check_positive_int("max_lag", max_lag), max_lag + 1)
        ltp, ltd = lr * rule.A_plus * a_pre, lr * rule.A_minus * a_post
        at_zero = {"symmetric": ltp - ltd, "causal": ltp, "strict": 0.0}[rule.pairing]
        dw = np.where(lags > 0, ltp * d_pre ** np.abs(lags), -ltd * d_post ** np.abs(lags))
        dw[lags == 0] = at_zero
    elif isinstance(rule, (np.ndarray, list, tuple)) or hasattr(rule, "__array__"):
        if dw is None:
            raise ValueError("dw must be given with an array of Δt (the weight change at each), got None")
        lags, dw = _array("rule", rule), _array("dw", dw)
        if lags.ndim != 1 or dw.shape != lags.shape:
            raise ValueError(f"rule (Δt) and dw must be 1-D of one length, got shapes {lags.shape} and {dw.shape}")
    else:
        raise TypeError(f"rule must be a pair rule (rules.pair), a Trainer with one, or an array of Δt, "
                        f"got {type(rule).__name__}")
    ax.plot(lags * scale, dw, **{"marker": "o", "ms": 3, "ls": "none", **plot_kw})
    ax.axhline(0, color="grey", lw=0.5)
    ax.axvline(0, color="grey", lw=0.5)
    ax.set_xlabel(f"Δt = t_post − t_pre ({unit})")
    ax.set_ylabel("weight change ΔW")
    return ax
