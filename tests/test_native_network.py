"""The native network kernel computes the network step: against the NumPy reference, and
against the XLA step (``native=False``) on everything it runs (spikes identical, state to
float rounding); what it cannot run falls back, or is refused by name with ``native=True``."""

import numpy as np
import pytest

import network_reference as ref
from canns_stdp import rules
from canns_stdp.kernels import native_network
from canns_stdp.kernels.native_pair import native_available
from canns_stdp.network import (LIF, Izhikevich, LayerLIF, Network, PoissonInput, PopulationRateMonitor, Projection,
                                Sparse, SpikeInput, SpikeMonitor, StateMonitor, fixed_probability)
from test_network import DT, T, build, dense_weights

pytestmark = pytest.mark.skipif(not native_available(warn=False), reason="needs numba")


@pytest.fixture
def counted(monkeypatch):
    """How many runs went through the native kernel."""
    calls = []
    original = native_network.native_network_chunks

    def spy(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)
    monkeypatch.setattr("canns_stdp.network.network.native_network_chunks", spy)
    return calls


@pytest.mark.parametrize("connectivity, delays", [("all", "uniform"), ("sparse", "uniform"),
                                                  ("sparse-events", "uniform"), ("sparse", "per-synapse")])
@pytest.mark.parametrize("neuron", ["layer", "conductance"])
def test_native_kernel_matches_the_numpy_reference(rng, counted, connectivity, delays, neuron):
    net, ref_pops, described, xs, sparse = build(rng, connectivity, delays, neuron)
    net.native = True
    spikes_e, spikes_i = SpikeMonitor("e"), SpikeMonitor("i")
    net.run(inputs={"x": xs}, monitors=[spikes_e, spikes_i])
    assert counted
    out, W_ref, state = ref.run(ref_pops, described, ["x", "i", "e"], {"x": xs}, T, DT)
    for name, mon in (("e", spikes_e), ("i", spikes_i)):
        steps, neurons = np.nonzero(out[name])
        np.testing.assert_array_equal(mon.i, neurons)
        np.testing.assert_allclose(mon.t, steps * DT, atol=1e-9)
    assert 0.03 < out["e"].mean() < 0.8
    for proj, description, W in zip(net.projections, described, W_ref):
        got = dense_weights(net, proj.name, description, sparse)
        np.testing.assert_allclose(got, W, atol=2e-6)
    np.testing.assert_allclose(net.state("e", "v"), state["e"]["v"], rtol=1e-5, atol=1e-5)


def _poisson_song(seed=3, **rule):
    pops = {"in": PoissonInput(200, rates_hz=np.linspace(5.0, 60.0, 200)),
            "out": LIF(3, bias=np.array([18.0, 20.0, 22.0]))}
    return pops, [
        Projection("in", "out", weights=lambda r, s: r.uniform(0.0, 0.01, s), rule=rules.pair(1e-4, 1.05e-4, **rule),
                   w_max=0.01, tau_pre=20.0, tau_post=20.0, seed=seed)]


def _recurrent(plastic_rule, trace_mode="cumulative", drive_delay=0):
    """Excitatory and inhibitory current-based LIF neurons with sparse recurrent
    projections, delays of 1 and 3 steps, an adaptive threshold and a refractory period;
    their Poisson drive arrives after ``drive_delay`` steps (kept in a ring of past spikes)."""
    lif = dict(tau_m=10.0, v_rest=-65.0, v_reset=-65.0, v_threshold=-50.0, refractory=0.5, bias=14.0,
               synapse="current", tau_exc=2.0, tau_inh=5.0, theta_plus=0.5, tau_theta=30.0)
    pops = {"drive": PoissonInput(60, rates_hz=40.0),
            "e": LIF(50, v_init=np.linspace(-65.0, -51.0, 50), **lif), "i": LIF(15, **lif)}
    sparse = dict(connectivity=fixed_probability(0.3, seed=1), event_driven=True)
    projs = [Projection("drive", "e", weights=4.0, delay=drive_delay, **sparse),
             Projection("e", "e", weights=lambda r, s: r.uniform(0, 2.0, s), delay=3, rule=rules.pair(0.05, 0.06),
                        w_max=4.0, trace_mode=trace_mode, **sparse),
             Projection("e", "i", weights=3.0, delay=1, **sparse),
             Projection("i", "e", weights=1.0, delay=1, receptor="inh", rule=plastic_rule, learning_rate=0.05,
                        w_max=10.0, tau_pre=20.0, tau_post=20.0, trace_mode=trace_mode, **sparse)]
    return pops, projs


def _izhikevich():
    pops = {"thal": PoissonInput(40, rates_hz=200.0), "n": Izhikevich(30, a=np.linspace(0.02, 0.1, 30), d=2.0)}
    projs = [Projection("thal", "n", weights=12.0, connectivity=fixed_probability(0.2, seed=2)),
             Projection("n", "n", weights=lambda r, s: r.uniform(0, 5.0, s), delay=2, w_max=8.0,
                        connectivity=fixed_probability(0.2, seed=4), event_driven=True,
                        rule=rules.pair(0.1, 0.12, pairing="strict", dependence="hard"), learning_rate=0.5)]
    return pops, projs, dict(dt=0.5)


def _izhikevich_slow(seed=0):
    """Izhikevich (2006) in small: delays of 0-6 steps per synapse, the slow update every
    40 steps, a pair rule with strict pairing on the inhibitory synapses, also per synapse."""
    rng = np.random.default_rng(seed)
    n_e, n_i = 24, 8
    pre, post = np.nonzero(rng.random((n_e, n_e + n_i)) < 0.3)
    to_e = post < n_e
    delays = (rng.integers(0, 6, pre.size) + to_e).astype(np.int32)  # recurrent ones >= 1
    pre_i, post_i = np.nonzero(rng.random((n_i, n_e)) < 0.4)
    pops = {"thal": PoissonInput(n_e + n_i, rates_hz=150.0),
            "e": Izhikevich(n_e, a=0.02, d=8.0), "i": Izhikevich(n_i, a=0.1, d=2.0)}
    slow = dict(rule=rules.slow_stdp(period=40), w_max=10.0, learning_rate=1.0, tau_pre=20.0, tau_post=20.0)
    projs = [Projection("thal", "e", weights=14.0, connectivity=Sparse(np.arange(n_e), np.arange(n_e))),
             Projection("thal", "i", weights=14.0, connectivity=Sparse(np.arange(n_e, n_e + n_i), np.arange(n_i))),
             Projection("e", "e", connectivity=Sparse(pre[to_e], post[to_e]), weights=6.0, delay=delays[to_e],
                        **slow),
             Projection("e", "i", connectivity=Sparse(pre[~to_e], post[~to_e] - n_e), weights=6.0,
                        delay=delays[~to_e], **slow),
             Projection("i", "e", connectivity=Sparse(pre_i, post_i), weights=5.0, receptor="inh",
                        delay=rng.integers(1, 4, pre_i.size).astype(np.int32), w_max=8.0, trace_mode="nearest",
                        rule=rules.pair(0.05, 0.06, pairing="strict"), learning_rate=0.5)]
    return pops, projs, dict(dt=1.0)


CASES = {
    "poisson-dense-pair": lambda: (*_poisson_song(), {}),
    "poisson-dense-soft-causal": lambda: (*_poisson_song(pairing="causal", dependence="soft"), {}),
    "recurrent-vogels": lambda: (*_recurrent(rules.vogels(5.0, 20.0)), {}),
    "recurrent-vogels-delayed-drive": lambda: (*_recurrent(rules.vogels(5.0, 20.0), drive_delay=2), {}),
    "recurrent-nearest-power": lambda: (*_recurrent(rules.pair(0.1, 0.1, dependence="power", mu=0.5),
                                                    trace_mode="nearest"), {}),
    "izhikevich-delays": _izhikevich,
    "izhikevich-delays-per-synapse-slow": _izhikevich_slow,
}


def _run_both(case, steps, monitors_of, **run):
    nets, records = [], []
    for native in (False, True):
        pops, projs, kw = CASES[case]()
        net = Network(pops, projs, native=native, seed=7, **kw)
        monitors = monitors_of()
        for part in np.array_split(np.arange(steps), 3):  # split calls: the kernel resumes where it stopped
            net.run(len(part), monitors=monitors, **run)
        nets.append(net)
        records.append(monitors)
    return nets, records


@pytest.mark.parametrize("case", sorted(CASES))
def test_native_kernel_equals_the_xla_step(counted, case):
    def monitors():
        pops = CASES[case]()[0]
        return [SpikeMonitor(name) for name in pops] + [PopulationRateMonitor(name) for name in pops]
    steps = 300 if case.startswith("izhikevich") else 1200  # a chaotic network: rounding grows within ~500
    (xla, native), (rec_x, rec_n) = _run_both(case, steps, monitors)
    assert len(counted) == 3
    for a, b in zip(rec_x, rec_n):
        if isinstance(a, SpikeMonitor):
            np.testing.assert_array_equal(b.i, a.i)
            np.testing.assert_array_equal(b.t, a.t)
        else:
            np.testing.assert_allclose(b.rate, a.rate, rtol=1e-6)
    assert sum(len(m.i) for m in rec_x if isinstance(m, SpikeMonitor) and m.population != "drive") > 20
    for proj in xla.projections:
        W = xla.weights(proj.name)
        np.testing.assert_allclose(native.weights(proj.name), W, atol=1e-6 * max(1.0, np.abs(W).max()))
        assert proj.rule is None or not np.array_equal(W, np.asarray(proj.initial_weights(W.shape)))
    for name, pop in xla.populations.items():
        for variable in pop.variables:
            np.testing.assert_allclose(native.state(name, variable), xla.state(name, variable), rtol=2e-6, atol=2e-5)
    assert native.steps_run == xla.steps_run == steps


@pytest.mark.parametrize("case, steps", [("recurrent-vogels", 640), ("izhikevich-delays-per-synapse-slow", 384)])
def test_chunks_of_a_run_and_the_state_read_between_them_equal_the_xla_step(counted, case, steps):
    """A monitor reading the state every 128 steps cuts the run into chunks of 128 steps:
    the native kernel keeps its layout from chunk to chunk, and the state it hands the
    monitor between them is the XLA step's."""
    runs = []
    for native in (False, True):
        pops, projs, kw = CASES[case]()
        net = Network(pops, projs, native=native, seed=7, **kw)
        v, spikes = StateMonitor("e", "v", every=128), SpikeMonitor("e")
        net.run(steps, monitors=[v, spikes])
        runs.append((net, v, spikes))
    assert len(counted) == 1
    (xla, v_x, s_x), (native, v_n, s_n) = runs
    assert v_n.values.shape == (steps // 128, 50 if case.startswith("recurrent") else 24)
    np.testing.assert_array_equal(v_n.t, v_x.t)
    np.testing.assert_allclose(v_n.values, v_x.values, rtol=2e-6, atol=2e-5)
    np.testing.assert_array_equal(s_n.i, s_x.i)
    np.testing.assert_array_equal(s_n.t, s_x.t)
    assert len(s_x.i) > 20
    for proj in xla.projections:
        W = xla.weights(proj.name)
        np.testing.assert_allclose(native.weights(proj.name), W, atol=1e-6 * max(1.0, np.abs(W).max()))


def test_delays_per_synapse_after_a_run_without_learning():
    """Without learning the traces stay and the spikes go on; then learning resumes from
    traces that no longer follow the recent spikes."""
    nets = []
    for native in (False, True):
        pops, projs, kw = _izhikevich_slow(seed=3)
        net = Network(pops, projs, native=native, seed=2, **kw)
        net.run(120)
        net.run(70, learn=False)
        net.run(130)
        nets.append(net)
    xla, native = nets
    for proj in xla.projections:
        np.testing.assert_allclose(native.weights(proj.name), xla.weights(proj.name), atol=1e-5)
    for a, b in zip(xla._state.projs, native._state.projs):
        if a.trace_pre is not None:
            np.testing.assert_allclose(np.asarray(b.trace_pre), np.asarray(a.trace_pre), atol=1e-6)
        if isinstance(a.rule, rules.SlowState):
            np.testing.assert_allclose(np.asarray(b.rule.sd), np.asarray(a.rule.sd), atol=1e-5)
            assert float(b.rule.clock) == float(a.rule.clock) == 250 % 40
    np.testing.assert_array_equal(native.state("e", "spike"), xla.state("e", "spike"))


@pytest.mark.parametrize("native", [False, True])
def test_the_slow_update_with_delays_per_synapse_matches_the_numpy_reference(rng, counted, native):
    """Izhikevich's (2006) slow STDP: the pair change accumulates in ``sd`` at every step and
    moves the weights every ``period`` steps."""
    n_in, n = 25, 10
    xs = (rng.random((T, n_in)) < 0.2).astype(np.float32)
    mask = rng.random((n, n_in)) < 0.5
    D = rng.integers(0, 6, (n, n_in)).astype(np.int32)
    W = rng.uniform(0.0, 0.6, (n, n_in)).astype(np.float32)
    slow = dict(A_plus=0.02, A_minus=0.025, offset=0.001, keep=0.8, period=30, lr=0.5, w_min=0.0, w_max=0.8,
                d_pre=0.9, d_post=0.85)
    post, pre = np.nonzero(mask)
    net = Network({"x": SpikeInput(n_in), "y": LayerLIF(n, leak=0.9, threshold=1.0)},
                  [Projection("x", "y", connectivity=Sparse(pre, post), weights=W[post, pre], delay=D[post, pre],
                              rule=rules.slow_stdp(slow["A_plus"], slow["A_minus"], slow["offset"], slow["keep"],
                                                   slow["period"]),
                              learning_rate=slow["lr"], w_min=0.0, w_max=0.8, d_pre=0.9, d_post=0.85)],
                  dt=DT, native=native, chunk_size=64)
    spikes = SpikeMonitor("y")
    net.run(inputs={"x": xs}, monitors=[spikes])
    assert bool(counted) == native
    out, W_ref, _ = ref.run({"x": ("input", n_in), "y": ("layer", n, 0.9, 1.0, 0.0)},
                            [dict(pre="x", post="y", W=W, mask=mask.astype(np.float32), D=D, receptor="exc",
                                  rule=slow)], ["x", "y"], {"x": xs}, T, DT)
    steps, neurons = np.nonzero(out["y"])
    np.testing.assert_array_equal(spikes.i, neurons)
    np.testing.assert_allclose(spikes.t, steps * DT, atol=1e-9)
    assert 0.05 < out["y"].mean() < 0.7
    np.testing.assert_allclose(net.weights("x->y"), W_ref[0][post, pre], atol=2e-6)
    assert not np.allclose(W_ref[0][mask], W[mask], atol=1e-3)


def test_given_real_valued_input_imposed_spikes_and_no_learning():
    rng = np.random.default_rng(5)
    xs = rng.random((300, 20)).astype(np.float32) * (rng.random((300, 20)) < 0.2)
    imposed = (rng.random((300, 8)) < 0.05).astype(np.float32)
    nets = []
    for native in (False, True):
        net = Network({"x": SpikeInput(20), "y": LayerLIF(8, leak=0.9, threshold=1.5, theta_plus=0.2)},
                      [Projection("x", "y", weights=lambda r, s: r.uniform(0, 0.5, s), seed=1,
                                  rule=rules.pair(0.01, 0.012, pairing="causal"), trace_mode="nearest")],
                      native=native)
        net.run(inputs={"x": xs}, imposed={"y": imposed})
        net.run(inputs={"x": xs}, learn=False)
        nets.append(net)
    np.testing.assert_allclose(nets[1].weights("x->y"), nets[0].weights("x->y"), atol=1e-6)
    for variable in ("v", "spike", "theta"):
        np.testing.assert_allclose(nets[1].state("y", variable), nets[0].state("y", variable), atol=1e-5)


def _per_synapse_delays():
    return Network({"x": PoissonInput(10, rates_hz=50.0), "y": LIF(2)},
                   [Projection("x", "y", weights=0.01, delay=np.arange(20).reshape(2, 10) % 3)])


@pytest.mark.parametrize("make, run, reason", [
    (_per_synapse_delays, {}, "delay per synapse"),
    (lambda: Network({"x": PoissonInput(10, rates_hz=50.0), "y": LIF(2)},
                     [Projection("x", "y", weights=0.01, rule=rules.reward(rules.pair(), "mstdp"))]),
     {"reward": 1.0}, "reward"),
    (lambda: Network({"x": PoissonInput(10, rates_hz=50.0), "y": LIF(2)},
                     [Projection("x", "y", weights=0.01, connectivity=np.eye(2, 10))]), {}, "Masked"),
    (lambda: Network({"x": PoissonInput(10, rates_hz=50.0), "y": LIF(2)},
                     [Projection("x", "y", weights=0.01, rule=rules.triplet())]), {}, "Triplet"),
])
def test_what_the_kernel_cannot_run_falls_back_or_is_refused_by_name(counted, make, run, reason):
    net = make()
    net.run(50, **run)  # native=None: the XLA step runs it
    assert not counted and net.steps_run == 50
    net.native = True
    before = [np.array(p.W) for p in net._state.projs]
    with pytest.raises(ValueError, match=reason):
        net.run(50, **run)
    assert net.steps_run == 50
    for W, p in zip(before, net._state.projs):
        np.testing.assert_array_equal(np.asarray(p.W), W)


def test_a_monitor_sampling_state_every_step_keeps_the_xla_step(counted):
    pops, projs, kw = CASES["poisson-dense-pair"]()
    net = Network(pops, projs, **kw)
    v = StateMonitor("out", "v")
    net.run(100, monitors=[v])
    assert not counted and v.values.shape == (100, 3)
    with pytest.raises(ValueError, match="samples state"):
        Network(pops, projs, native=True, **kw).run(100, monitors=[StateMonitor("out", "v")])
    net.run(1000, monitors=[StateMonitor("out", "v", every=500)])  # read between chunks: native
    assert counted


def test_without_numba_the_xla_step_runs_and_native_true_says_why(monkeypatch, counted):
    monkeypatch.setattr(native_network, "native_available", lambda warn=True: False)
    monkeypatch.setattr("canns_stdp.network.network.native_available", lambda warn=True: False)
    pops, projs, kw = CASES["poisson-dense-pair"]()
    Network(pops, projs, **kw).run(100)
    assert not counted
    with pytest.raises(ValueError, match="numba"):
        Network(pops, projs, native=True, **kw).run(100)
    with pytest.raises(TypeError, match="native"):
        Network(pops, projs, native="yes")
    with pytest.raises(ValueError, match="compiled=True"):
        Network(pops, projs, native=True, compiled=False)


def test_neurons_whose_numbers_are_shared_are_read_as_scalars_whatever_their_initial_values():
    """Per-neuron initial values (``v_init``) leave the step's numbers uniform: the
    neurons' loop takes them as scalars (the ``recurrent-*`` cases check its results)."""
    lif = LIF(4, v_init=np.linspace(-65.0, -51.0, 4), tau_m=20.0, refractory=5.0)
    assert native_network._uniform(lif.params())
    assert not native_network._uniform(LIF(4, bias=np.arange(4.0)).params())


def test_a_native_run_builds_no_event_tables_and_the_xla_step_does(counted):
    """The native kernel lays out its own connectivity: the XLA step's fan-out and fan-in
    tables are left unbuilt (about 0.15 s for Vogels et al.'s 2 million synapses)."""
    pops, projs = _recurrent(rules.vogels(5.0, 20.0))
    native = Network(pops, projs, native=True)
    native.run(50)
    assert counted and all(getattr(c, "_fanout", None) is None for c in native._bound)
    pops, projs = _recurrent(rules.vogels(5.0, 20.0))
    xla = Network(pops, projs, native=False)
    xla.run(50)
    assert all(getattr(c, "_fanout", None) is not None for c in xla._bound)
    np.testing.assert_allclose(native.weights("i->e"), xla.weights("i->e"), atol=1e-6)


@pytest.mark.parametrize("case, steps", [("recurrent-vogels", 60), ("izhikevich-delays-per-synapse-slow", 50)])
def test_a_held_state_goes_on_through_reads_writes_and_resets_as_the_xla_step(counted, case, steps):
    """Between runs of the native kernel the state stays in the kernel's layout: reading it,
    writing weights, a run without learning (another layout where the slow rule learns)
    and a reset leave every next run where the XLA step's is."""
    nets = []
    for native in (False, True):
        pops, projs, kw = CASES[case]()
        net = Network(pops, projs, native=native, seed=7, **kw)
        plastic = next(p.name for p in projs if p.rule is not None)
        net.run(steps)
        read = net.weights(plastic), net.state("e", "v")
        net.run(steps)
        net.set_weights(plastic, read[0] * 0.5)
        net.run(steps, learn=False)
        net.run(steps)
        middle = net.weights(plastic)
        net.reset_state()
        net.run(steps)
        nets.append((net, read, middle))
    assert len(counted) == 5
    (xla, read_x, middle_x), (native, read_n, middle_n) = nets
    np.testing.assert_allclose(read_n[0], read_x[0], atol=1e-6 * max(1.0, np.abs(read_x[0]).max()))
    np.testing.assert_allclose(read_n[1], read_x[1], rtol=2e-6, atol=2e-5)
    np.testing.assert_allclose(middle_n, middle_x, atol=1e-6 * max(1.0, np.abs(middle_x).max()))
    for proj in xla.projections:
        W = xla.weights(proj.name)
        np.testing.assert_allclose(native.weights(proj.name), W, atol=1e-6 * max(1.0, np.abs(W).max()))
    for name, pop in xla.populations.items():
        for variable in pop.variables:
            np.testing.assert_allclose(native.state(name, variable), xla.state(name, variable), rtol=2e-6, atol=2e-5)
    assert native.steps_run == xla.steps_run == 5 * steps


def test_a_failed_run_after_a_native_run_leaves_its_held_state_as_it_was(rng, counted):
    def make():
        return Network({"x": SpikeInput(40), "y": LayerLIF(30, threshold=2.0)},
                       [Projection("x", "y", weights=0.05, rule=rules.pair(), w_max=1.0)], native=True)
    drive = (rng.random((50, 40)) < 0.2).astype(np.float32)
    net, twin = make(), make()
    for n in (net, twin):
        n.run(inputs={"x": drive})
    assert len(counted) == 2
    before = net.weights("x->y"), net.state("y", "v"), net.steps_run
    with pytest.raises(FloatingPointError, match=r"non-finite values in \['y.v'"):
        net.run(inputs={"x": np.full((10, 40), 1e38, np.float32)})
    np.testing.assert_array_equal(net.weights("x->y"), before[0])
    np.testing.assert_array_equal(net.state("y", "v"), before[1])
    assert net.steps_run == before[2]
    for n in (net, twin):  # and it goes on as a network that never saw the failed run
        n.run(inputs={"x": drive})
    np.testing.assert_array_equal(net.weights("x->y"), twin.weights("x->y"))
    np.testing.assert_array_equal(net.state("y", "v"), twin.state("y", "v"))
    assert not np.array_equal(net.weights("x->y"), before[0])


def test_numbers_changed_between_runs_reach_the_kernel(counted):
    """The kernel's numbers are kept on the device between runs while they stay the same:
    a learning rate changed between runs is the one the next run learns with."""
    nets = []
    for native in (False, True):
        pops, projs, kw = CASES["recurrent-vogels"]()
        net = Network(pops, projs, native=native, seed=7, **kw)
        net.run(80)
        net.projections[3].learning_rate = 0.5
        net.run(80)
        nets.append(net)
    assert len(counted) == 2
    xla, native = nets
    W = xla.weights("i->e")
    np.testing.assert_allclose(native.weights("i->e"), W, atol=1e-6 * max(1.0, np.abs(W).max()))
    pops, projs, kw = CASES["recurrent-vogels"]()
    unchanged = Network(pops, projs, seed=7, **kw)
    unchanged.run(160)
    assert not np.allclose(unchanged.weights("i->e"), W, atol=1e-4)
