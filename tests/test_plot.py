"""canns_stdp.plot: what each helper draws equals a NumPy computation of the same thing."""

import doctest
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pytest

import canns_stdp
from canns_stdp import plot
from canns_stdp.monitors import SpikeMonitor


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


@pytest.fixture
def spikes():
    return (np.random.default_rng(3).random((300, 8)) < 0.08).astype(np.float32)


def layer_monitor(spikes):
    """A layer SpikeMonitor fed as the trainer feeds it (one call from step 0)."""
    monitor = SpikeMonitor()
    monitor.begin()
    monitor.consume(spikes, 0)
    monitor.commit()
    return monitor


def moving_rate(spikes, w):
    """Spikes per neuron per step in each window of w steps, by a plain loop."""
    return np.array([spikes[k:k + w].sum() / (w * spikes.shape[1]) for k in range(len(spikes) - w + 1)])


# -- raster ------------------------------------------------------------------------------------

def test_raster_marks_every_spike_at_its_time(spikes):
    ax = plot.raster(spikes, dt_ms=0.25)
    steps, neurons = np.nonzero(spikes)
    np.testing.assert_allclose(ax.collections[0].get_offsets(), np.c_[steps * 0.25, neurons])
    assert ax.get_xlabel() == "time (ms)" and ax.get_ylabel() == "neuron"
    assert ax.get_ylim() == (-0.5, 7.5)                                 # every neuron, silent or not
    ax = plot.raster(spikes)
    np.testing.assert_allclose(ax.collections[0].get_offsets(), np.c_[steps, neurons])
    assert ax.get_xlabel() == "time (steps)"


def test_raster_flattens_trailing_dimensions_and_draws_on_the_given_axes(spikes):
    _, given = plt.subplots()
    ax = plot.raster(spikes.reshape(300, 2, 4).astype(bool), ax=given)
    assert ax is given
    np.testing.assert_allclose(ax.collections[0].get_offsets(), np.c_[np.nonzero(spikes)])


def test_raster_of_a_layer_monitor_uses_its_step_count(spikes):
    ax = plot.raster(layer_monitor(spikes), dt_ms=2.0)
    steps, neurons = np.nonzero(spikes)
    np.testing.assert_allclose(ax.collections[0].get_offsets(), np.c_[(steps + 1) * 2.0, neurons])


# -- rates -------------------------------------------------------------------------------------

def test_rates_are_a_moving_count_over_the_window(spikes):
    line = plot.rates(spikes, window=10.0, dt_ms=0.5).lines[0]   # 20 steps
    expected = moving_rate(spikes, 20)
    np.testing.assert_allclose(line.get_ydata(), expected * 2000.0)       # Hz at 0.5 ms steps
    np.testing.assert_allclose(line.get_xdata(), (np.arange(expected.size) + 9.5) * 0.5)
    ax = plot.rates(spikes, window=7)
    np.testing.assert_allclose(ax.lines[0].get_ydata(), moving_rate(spikes, 7))
    assert ax.get_xlabel() == "time (steps)" and "Hz" not in ax.get_ylabel()


def test_rates_of_monitors_equal_the_rates_of_the_array(spikes):
    want = moving_rate(spikes, 5) * 1000.0
    line = plot.rates(layer_monitor(spikes), 5.0, 1.0, n_neurons=8, n_steps=300).lines[0]
    np.testing.assert_allclose(line.get_ydata(), want)
    np.testing.assert_allclose(line.get_xdata(), np.arange(want.size) + 3.0)   # steps count from 1

    from canns_stdp.network.monitors import SpikeMonitor as NetworkSpikeMonitor
    net = NetworkSpikeMonitor("exc")
    net.n = 8   # what binding to a network of 8 neurons sets
    net.begin()
    net.consume(spikes > 0, 0, 0.1)
    net.commit()
    line = plot.rates(net, 0.5, 0.1, n_steps=300).lines[0]
    np.testing.assert_allclose(line.get_ydata(), moving_rate(spikes, 5) * 10000.0)


@pytest.mark.parametrize("call, error, match", [
    (lambda s: plot.rates(s, window=2.5), ValueError, "window must be a whole number of steps"),
    (lambda s: plot.rates(s, window=301), ValueError, r"window must span 1 to 300 steps"),
    (lambda s: plot.rates(s, window=0.1, dt_ms=1.0), ValueError, r"window must span 1 to 300 steps"),
    (lambda s: plot.rates(s, window=-1), ValueError, r"window must be > 0, got -1"),
    (lambda s: plot.rates(s, window=5, dt_ms=0), ValueError, r"dt_ms must be > 0, got 0"),
    (lambda s: plot.rates(s, window=5, n_neurons=8), ValueError, "n_neurons and n_steps are for monitors"),
    (lambda s: plot.rates(layer_monitor(s), window=5), ValueError, "n_neurons must be given for a layer SpikeMonitor"),
    (lambda s: plot.rates(layer_monitor(s), window=5, n_neurons=8, n_steps=10), ValueError, "n_steps must cover the spikes"),
    (lambda s: plot.rates(s * 2, window=5), ValueError, r"spikes must hold spikes \(0 or 1\), got 2.0"),
    (lambda s: plot.raster(s[:, 0]), ValueError, r"spikes must have shape \(T, n\)"),
    (lambda s: plot.raster("spikes"), TypeError, "spikes must be an array"),
])
def test_bad_spikes_and_windows_name_the_parameter(spikes, call, error, match):
    with pytest.raises(error, match=match):
        call(spikes)


# -- weights -----------------------------------------------------------------------------------

def test_weight_histogram_counts_equal_numpy_histogram():
    W = np.random.default_rng(0).random((20, 30)).astype(np.float32) * 0.9
    ax = plot.weight_histogram(W, bins=15, w_max=1.0)
    counts, edges = np.histogram(W, bins=15, range=(W.min(), 1.0))
    np.testing.assert_array_equal([p.get_height() for p in ax.patches], counts)
    np.testing.assert_allclose([p.get_x() for p in ax.patches], edges[:-1], rtol=1e-6)
    assert ax.get_xlabel() == "weight"
    ax = plot.weight_histogram(W, bins=4)                            # default range: the weights'
    np.testing.assert_array_equal([p.get_height() for p in ax.patches], np.histogram(W, 4)[0])


@pytest.mark.parametrize("kwargs, error, match", [
    ({"bins": 0}, ValueError, r"bins must be a positive integer, got 0"),
    ({"w_min": 1.0, "w_max": 0.5}, ValueError, "w_min must be below w_max"),
    ({"w_max": np.inf}, ValueError, "w_max must be finite"),
])
def test_weight_histogram_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        plot.weight_histogram(np.ones((3, 3)), **kwargs)
    with pytest.raises(ValueError, match="W must be finite"):
        plot.weight_histogram(np.array([0.1, np.nan]))


def test_weight_trajectories_draw_the_chosen_columns():
    W = np.cumsum(np.random.default_rng(1).normal(size=(40, 3, 4)), axis=0)
    ax = plot.weight_trajectories(W, which=[0, 5, 11], dt_ms=0.5)
    flat = W.reshape(40, 12)
    assert len(ax.lines) == 3
    for line, j in zip(ax.lines, [0, 5, 11]):
        np.testing.assert_allclose(line.get_ydata(), flat[:, j], rtol=1e-6)
        np.testing.assert_allclose(line.get_xdata(), np.arange(40) * 0.5)
        assert line.get_label() == f"synapse {j}"
    assert len(plot.weight_trajectories(W).lines) == 10                 # the first 10 by default
    with pytest.raises(ValueError, match=r"which must be integers in \[0, 12\), got \[12\]"):
        plot.weight_trajectories(W, which=[12])


# -- from a real run ---------------------------------------------------------------------------

def test_monitors_of_a_trained_layer():
    from canns_stdp import SpikingLayer, Trainer, rules
    from canns_stdp.monitors import WeightMonitor

    layer = SpikingLayer(20, 6, seed=0, threshold=0.3)
    trainer = Trainer(layer, rules.pair(), learning_rate=0.5, chunk_size=50)
    spikes, weights = SpikeMonitor(), WeightMonitor(synapses=[0, 7, 30], every=50)
    every_synapse = WeightMonitor(every=200)
    X = (np.random.default_rng(0).random((400, 20)) < 0.1).astype(np.float32)
    out = np.asarray(trainer.train(X, monitors=[spikes, weights, every_synapse], return_spikes=True))
    assert out.sum() > 10

    from_monitor = plot.raster(spikes, dt_ms=1.0).collections[0].get_offsets()
    from_array = plot.raster(out, dt_ms=1.0).collections[0].get_offsets()
    np.testing.assert_allclose(from_monitor, from_array + [1.0, 0.0])   # the monitor counts steps from 1

    ax = plot.weight_trajectories(weights, which=[2, 0], dt_ms=1.0)
    for line, j in zip(ax.lines, [2, 0]):
        np.testing.assert_array_equal(line.get_xdata(), np.arange(50, 401, 50))
        np.testing.assert_array_equal(line.get_ydata(), weights.values[:, j])
    assert [line.get_label() for line in ax.lines] == ["synapse 30", "synapse 0"]

    heights = [p.get_height() for p in plot.weight_histogram(layer, bins=8).patches]
    np.testing.assert_array_equal(heights, np.histogram(np.asarray(layer.W.value), 8)[0])
    heights = [p.get_height() for p in plot.weight_histogram(every_synapse, bins=8).patches]   # its last sample
    np.testing.assert_array_equal(heights, np.histogram(np.asarray(layer.W.value), 8)[0])
    with pytest.raises(ValueError, match="no samples yet"):
        plot.weight_trajectories(WeightMonitor(every=10))


# -- the STDP window ---------------------------------------------------------------------------

def test_stdp_window_matches_a_measured_window():
    """One neuron, 41 inputs: input i fires dts[i] steps before the imposed post spike."""
    from canns_stdp import SpikingLayer, Trainer, rules

    dts, T, t_post = np.arange(-15, 16), 41, 20
    x = np.zeros((T, dts.size), np.float32)
    x[t_post - dts, np.arange(dts.size)] = 1.0
    post = np.zeros((T, 1), np.float32)
    post[t_post] = 1.0
    for pairing in ("symmetric", "causal"):
        layer = SpikingLayer(dts.size, 1, tau_pre=8.0, tau_post=12.0, a_pre=1.0, a_post=0.7,
                             W_init=np.full((1, dts.size), 0.5, np.float32))
        trainer = Trainer(layer, rules.pair(A_plus=0.1, A_minus=0.12, pairing=pairing), learning_rate=0.5)
        trainer.train(x, post_spikes=post)
        measured = np.asarray(layer.W.value)[0] - 0.5
        line = plot.stdp_window(trainer, max_lag=15, dt_ms=0.5).lines[0]
        np.testing.assert_allclose(line.get_xdata(), dts * 0.5)
        np.testing.assert_allclose(line.get_ydata(), measured, rtol=1e-4, atol=1e-7)
    line = plot.stdp_window(dts, measured).lines[0]                       # a measured window as is
    np.testing.assert_allclose(line.get_ydata(), measured)


def test_stdp_window_of_a_rule_alone_uses_the_layer_defaults():
    from canns_stdp import rules

    ax = plot.stdp_window(rules.pair(A_plus=0.01, A_minus=0.02, pairing="strict"), max_lag=3)
    want = [-0.02 * 0.95 ** 3, -0.02 * 0.95 ** 2, -0.02 * 0.95, 0.0, 0.01 * 0.95, 0.01 * 0.95 ** 2, 0.01 * 0.95 ** 3]
    np.testing.assert_allclose(ax.lines[0].get_ydata(), want)
    assert ax.get_xlabel() == "Δt = t_post − t_pre (steps)"


def test_stdp_window_bad_input():
    from canns_stdp import rules

    with pytest.raises(TypeError, match="rule must be a pair rule .* got Triplet"):
        plot.stdp_window(rules.triplet())
    with pytest.raises(ValueError, match="dw must be given"):
        plot.stdp_window(np.arange(3))
    with pytest.raises(ValueError, match=r"got shapes \(3,\) and \(2,\)"):
        plot.stdp_window(np.arange(3), np.zeros(2))
    with pytest.raises(ValueError, match="max_lag must be a positive integer, got 0"):
        plot.stdp_window(rules.pair(), max_lag=0)


# -- the module --------------------------------------------------------------------------------

def test_missing_matplotlib_says_how_to_install(monkeypatch, spikes):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(ImportError, match=r'pip install "canns_stdp\[plot\]"'):
        plot.raster(spikes)


def test_plot_is_a_public_submodule_and_its_examples_run():
    assert canns_stdp.plot is plot and "plot" in canns_stdp.__all__
    result = doctest.testmod(plot, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
