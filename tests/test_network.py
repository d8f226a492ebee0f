"""Networks: the step against a NumPy transcription of its equations (delays, recurrence,
masked and sparse connectivity, inhibition, conductances), compiled == Python loop, runs
split across calls, a layer == its one-projection network (bitwise), monitors, bad input."""

import numpy as np
import pytest

import network_reference as ref
from canns_stdp import SpikingLayer, Trainer, rules
from canns_stdp.network import (LIF, LayerLIF, Network, PoissonInput, PopulationRateMonitor, Projection, Sparse,
                                SpikeInput, SpikeMonitor, StateMonitor, WeightMonitor, fixed_probability)

T, DT = 160, 0.1
RULE = dict(A_plus=0.02, A_minus=0.021, lr=1.0, w_min=0.0, w_max=1.0, d_pre=0.9, d_post=0.85)


def projection(pre, post, W, mask, D, receptor="exc", plastic=True, sparse=False, events=False):
    """A library Projection and the reference's dict for the same synapses."""
    uniform = D.min() == D.max()
    kw = dict(receptor=receptor, delay=int(D.min()) if uniform else D, learning_rate=RULE["lr"],
              w_min=RULE["w_min"], w_max=RULE["w_max"], d_pre=RULE["d_pre"], d_post=RULE["d_post"])
    if plastic:
        kw["rule"] = rules.pair(RULE["A_plus"], RULE["A_minus"])
    if sparse:
        post_i, pre_j = np.nonzero(mask)
        conn = Sparse(pre_j, post_i)
        kw.update(weights=W[post_i, pre_j], connectivity=conn, event_driven=events,
                  delay=int(D.min()) if uniform else D[post_i, pre_j].astype(np.int32))
    else:
        kw.update(weights=W, connectivity="all" if mask.all() else mask)
    description = dict(pre=pre, post=post, W=W, mask=mask.astype(np.float32), D=D, receptor=receptor,
                rule=RULE if plastic else None)
    return Projection(pre, post, **kw), description


def dense_weights(net, name, description, sparse):
    W = net.weights(name)
    if not sparse:
        return W
    pre, post = net.connectivity(name).indices()
    full = np.array(description["W"], np.float32)
    full[post, pre] = W
    return full


def build(rng, connectivity, delays, neuron, compiled=True):
    """An input of 30 onto 12 excitatory and 6 inhibitory neurons, E→E recurrent (delay >= 1),
    I→E inhibitory, plastic E projections."""
    n_in, n_e, n_i = 30, 12, 6
    xs = (rng.random((T, n_in)) < 0.15).astype(np.float32)
    sparse = connectivity.startswith("sparse")
    events = connectivity == "sparse-events"  # input from the fan-out of the spiking neurons
    if neuron == "layer":
        pops = {"x": SpikeInput(n_in), "e": LayerLIF(n_e, leak=0.9, threshold=1.0),
                "i": LayerLIF(n_i, leak=0.8, threshold=1.0)}
        ref_pops = {"x": ("input", n_in), "e": ("layer", n_e, 0.9, 1.0, 0.0), "i": ("layer", n_i, 0.8, 1.0, 0.0)}
        scale = (0.15, 0.1, 0.2, 0.3)
    else:
        q = dict(tau_m=10.0, v_rest=-70.0, v_reset=-65.0, v_threshold=-55.0, refractory=0.3, tau_exc=2.0,
                 tau_inh=4.0, E_exc=0.0, E_inh=-80.0, v_init=-60.0, bias=2.0, synapse="conductance")
        pops = {"x": SpikeInput(n_in), "e": LIF(n_e, **q), "i": LIF(n_i, **q)}
        ref_pops = {"x": ("input", n_in), "e": ("lif", n_e, q), "i": ("lif", n_i, q)}
        scale = (0.5, 0.3, 0.5, 0.6)

    def masked(shape, p=1.0):
        return (rng.random(shape) < p) if connectivity != "all" else np.ones(shape, bool)

    def delay(shape, lowest):
        if delays == "uniform":
            return np.full(shape, max(lowest, 2), np.int32)
        return rng.integers(lowest, 5, shape).astype(np.int32)

    parts = [
        projection("x", "e", rng.uniform(0, scale[0], (n_e, n_in)), masked((n_e, n_in), 0.6),
                   delay((n_e, n_in), 0), sparse=sparse, events=events),
        projection("e", "e", rng.uniform(0, scale[1], (n_e, n_e)), masked((n_e, n_e), 0.4),
                   delay((n_e, n_e), 1), sparse=sparse, events=events),
        projection("x", "i", rng.uniform(0, scale[2], (n_i, n_in)), masked((n_i, n_in), 0.7),
                   np.zeros((n_i, n_in), np.int32), plastic=False, sparse=sparse, events=events),
        projection("i", "e", rng.uniform(0, scale[3], (n_e, n_i)), masked((n_e, n_i), 0.8),
                   delay((n_e, n_i), 1), receptor="inh", plastic=False, sparse=sparse, events=events),
    ]
    net = Network(pops, [p for p, _ in parts], dt=DT, compiled=compiled, chunk_size=64)
    return net, ref_pops, [s for _, s in parts], xs, sparse


@pytest.mark.parametrize("connectivity", ["all", "masked", "sparse", "sparse-events"])
@pytest.mark.parametrize("delays", ["uniform", "per-synapse"])
@pytest.mark.parametrize("neuron", ["layer", "conductance"])
def test_network_step_matches_the_numpy_reference(rng, connectivity, delays, neuron):
    net, ref_pops, described, xs, sparse = build(rng, connectivity, delays, neuron)
    spikes_e, spikes_i = SpikeMonitor("e"), SpikeMonitor("i")
    net.run(inputs={"x": xs}, monitors=[spikes_e, spikes_i])
    out, W_ref, state = ref.run(ref_pops, described, ["x", "i", "e"] if neuron else None, {"x": xs}, T, DT)
    for name, mon in (("e", spikes_e), ("i", spikes_i)):
        steps, neurons = np.nonzero(out[name])
        np.testing.assert_allclose(mon.t, steps * DT, atol=1e-9)
        np.testing.assert_array_equal(mon.i, neurons)
    assert 0.03 < out["e"].mean() < 0.8 and 0.03 < out["i"].mean() < 0.9
    for proj, description, W in zip(net.projections, described, W_ref):
        np.testing.assert_allclose(dense_weights(net, proj.name, description, sparse), W, atol=2e-5, err_msg=proj.name)
    assert np.abs(W_ref[0] - described[0]["W"] * described[0]["mask"]).max() > 0.02  # plasticity did something
    np.testing.assert_allclose(net.state("e", "v"), state["e"]["v"], atol=1e-4)


def test_compiled_and_python_loops_agree_and_split_runs_equal_one(rng):
    net_c, _, _, xs, _ = build(rng, "sparse", "per-synapse", "conductance")
    net_p, *_ = build(np.random.default_rng(12345), "sparse", "per-synapse", "conductance", compiled=False)
    net_s, *_ = build(np.random.default_rng(12345), "sparse", "per-synapse", "conductance")
    net_c.run(inputs={"x": xs})
    net_p.run(inputs={"x": xs})
    for a, b in ((0, 37), (37, 101), (101, T)):
        net_s.run(inputs={"x": xs[a:b]})
    for proj in net_c.projections:
        np.testing.assert_allclose(net_p.weights(proj.name), net_c.weights(proj.name), atol=1e-6)
        np.testing.assert_array_equal(net_s.weights(proj.name), net_c.weights(proj.name))
    np.testing.assert_array_equal(net_s.state("e", "v"), net_c.state("e", "v"))
    assert net_s.steps_run == T and net_s.t == pytest.approx(T * DT)


@pytest.mark.parametrize("rule", [
    rules.pair(0.01, 0.0105),
    rules.pair(0.01, 0.012, pairing="causal", dependence="soft"),
    rules.triplet(tau_x=30.0, tau_y=40.0),
    rules.reward(rules.pair(0.02, 0.021), "mstdpet", tau_c=15.0),
], ids=["pair", "pair-soft-causal", "triplet", "mstdpet"])
@pytest.mark.parametrize("imposed", [False, True])
def test_a_layer_is_a_one_projection_network_bitwise(rng, rule, imposed):
    n_in, n_out, steps = 40, 9, 300
    xs = (rng.random((steps, n_in)) < 0.1).astype(np.float32)
    posts = (rng.random((steps, n_out)) < 0.1).astype(np.float32) if imposed else None
    reward = np.sin(np.arange(steps) / 20.0).astype(np.float32)
    W0 = rng.uniform(0.1, 0.4, (n_out, n_in)).astype(np.float32)
    layer = SpikingLayer(n_in, n_out, W_init=W0, threshold=4.0, leak=0.85, trace_decay=0.93)
    trainer = Trainer(layer, rule, learning_rate=0.5, event_driven=False, fused=False)
    given = {"reward": reward} if "reward" in rule.extras() else {}
    spikes = trainer.train(xs, posts, return_spikes=True, **given)
    net = Network({"x": SpikeInput(n_in), "y": LayerLIF(n_out, leak=0.85, threshold=4.0)},
                  [Projection("x", "y", weights=W0, rule=rule, learning_rate=0.5, d_pre=layer.d_pre,
                              d_post=layer.d_post)], native=False)  # the XLA step, as the trainer's
    monitor = SpikeMonitor("y")
    net.run(inputs={"x": xs}, imposed=None if posts is None else {"y": posts}, monitors=[monitor], **given)
    steps_, neurons = np.nonzero(spikes)
    assert 0.02 < spikes.mean() < 0.95
    np.testing.assert_array_equal(monitor.i, neurons)
    np.testing.assert_allclose(monitor.t, steps_ * 0.1)
    np.testing.assert_array_equal(net.weights("x->y"), layer.W.value)
    np.testing.assert_array_equal(net.state("y", "v"), layer.v.value)


def test_poisson_inputs_fire_at_their_rates_independently():
    n, steps, dt = 400, 5000, 0.5
    rates = np.linspace(0.0, 80.0, n)
    net = Network({"p": PoissonInput(n, rates_hz=rates)}, dt=dt, seed=3)
    monitor = SpikeMonitor("p")
    net.run(steps, monitors=[monitor])
    counts = monitor.count
    expected = rates * dt / 1000.0 * steps
    # binomial counts: within 5 standard deviations each, and unbiased on the whole
    sd = np.sqrt(expected * (1 - rates * dt / 1000.0)) + 1e-9
    assert np.all(np.abs(counts - expected) <= 5 * sd + 1)
    assert abs(counts.sum() - expected.sum()) < 4 * np.sqrt(expected.sum())
    train = np.zeros((steps, n), bool)
    train[np.round(monitor.t / dt).astype(int), monitor.i] = True
    busy = train[:, -100:].astype(float)  # neighbouring neurons and steps are uncorrelated
    assert abs(np.corrcoef(busy[:, :-1].ravel(), busy[:, 1:].ravel())[0, 1]) < 0.02
    assert abs(np.corrcoef(busy[:-1].ravel(), busy[1:].ravel())[0, 1]) < 0.02
    other = Network({"p": PoissonInput(n, rates_hz=rates)}, dt=dt, seed=4)
    other_monitor = SpikeMonitor("p")
    other.run(steps, monitors=[other_monitor])
    assert not np.array_equal(other_monitor.count, counts)  # another seed, other spikes


def test_state_and_weight_monitors_sample_every_k_steps(rng):
    net, _, described, xs, _ = build(rng, "all", "uniform", "conductance")
    v_mon = StateMonitor("e", "v", indices=[0, 3], every=10)
    w_mon = WeightMonitor("x->e", synapses=[5, 17, 40], every=16)
    rate = PopulationRateMonitor("i")
    net.run(100, inputs={"x": xs[:100]}, monitors=[v_mon, w_mon, rate])
    net.run(60, inputs={"x": xs[100:]}, monitors=[v_mon, w_mon, rate])
    np.testing.assert_allclose(v_mon.t, np.arange(1, 17) * 10 * DT)
    assert v_mon.values.shape == (16, 2)
    np.testing.assert_array_equal(v_mon.values[-1], net.state("e", "v")[[0, 3]])
    np.testing.assert_allclose(w_mon.t, np.arange(1, 11) * 16 * DT)
    np.testing.assert_array_equal(w_mon.values[-1], net.weights("x->e").reshape(-1)[[5, 17, 40]])
    assert rate.rate.shape == (T,) and set(np.round(rate.rate * DT / 1000 * 6, 6)) <= set(np.arange(7.0))


def test_bad_networks_are_refused_with_the_parameter_named():
    x, y = SpikeInput(4), LayerLIF(3)
    with pytest.raises(ValueError, match=r"delay must be >= 0 steps, got -1"):
        Network({"x": x, "y": y}, [Projection("x", "y", delay=-1)])
    with pytest.raises(ValueError, match=r"delay 0 form a cycle among populations \['a', 'b'\]"):
        Network({"a": LayerLIF(2), "b": LayerLIF(2)}, [Projection("a", "b"), Projection("b", "a")])
    with pytest.raises(ValueError, match=r"post indices must be in \[0, 3\), got values in \[0, 7\]"):
        Network({"x": x, "y": y}, [Projection("x", "y", connectivity=Sparse([0, 1], [0, 7]), weights=0.1)])
    with pytest.raises(ValueError, match=r"weights must be a number or of shape \(3, 4\), got shape \(4, 3\)"):
        Network({"x": x, "y": y}, [Projection("x", "y", weights=np.zeros((4, 3)))])
    with pytest.raises(ValueError, match=r"no population named 'z'"):
        Network({"x": x, "y": y}, [Projection("x", "z")])
    with pytest.raises(ValueError, match=r"'x' is an input population"):
        Network({"x": x, "y": y}, [Projection("y", "x")])
    with pytest.raises(ValueError, match=r"mask must have shape \(n_post, n_pre\) = \(3, 4\)"):
        Network({"x": x, "y": y}, [Projection("x", "y", connectivity=np.ones((4, 3)))])
    with pytest.raises(ValueError, match=r"LIF.tau_m must be > 0"):
        LIF(3, tau_m=0.0)
    with pytest.raises(ValueError, match=r"rates_hz must be >= 0"):
        PoissonInput(3, rates_hz=-1.0)


def test_a_failed_run_changes_nothing(rng):
    net = Network({"x": SpikeInput(5), "y": LayerLIF(3, threshold=1e30)},
                  [Projection("x", "y", weights=0.5, rule=rules.pair(), w_max=1e38, learning_rate=1e30)])
    monitor = SpikeMonitor("y")
    before = (net.weights("x->y"), net.state("y", "v"), net.steps_run)
    with pytest.raises(ValueError, match=r"inputs\['x'\] must have shape \(T, 5\), got shape \(10, 4\)"):
        net.run(inputs={"x": np.zeros((10, 4))}, monitors=[monitor])
    with pytest.raises(ValueError, match=r"missing \['x'\]"):
        net.run(10)
    with pytest.raises(ValueError, match=r"imposed\['y'\] must hold spikes \(0 or 1\), got 0.5"):
        net.run(inputs={"x": np.ones((10, 5))}, imposed={"y": np.full((10, 3), 0.5)})
    with pytest.raises(FloatingPointError, match=r"non-finite values in \['y.v'"):
        net.run(inputs={"x": np.full((10, 5), 1e38, np.float32)}, monitors=[monitor])
    after = (net.weights("x->y"), net.state("y", "v"), net.steps_run)
    np.testing.assert_array_equal(after[0], before[0])
    np.testing.assert_array_equal(after[1], before[1])
    assert after[2] == before[2] and monitor.t.size == 0


def test_sparse_builders_draw_what_they_promise():
    net = Network({"a": PoissonInput(200), "b": LayerLIF(150)},
                  [Projection("a", "b", connectivity=fixed_probability(0.1, seed=2), weights=0.0)])
    pre, post = net.connectivity("a->b").indices()
    assert abs(pre.size - 0.1 * 200 * 150) < 5 * np.sqrt(0.1 * 0.9 * 200 * 150)
    assert len(set(zip(pre.tolist(), post.tolist()))) == pre.size
    # each possible synapse independently present with probability p: counts per position
    # over many seeds follow Binomial(seeds, p); no self-synapse when they are left out
    seen = np.zeros((12, 30))
    for seed in range(400):
        drawn = fixed_probability(0.25, seed=seed, allow_self=False).bind(30, 12)
        assert not np.any(drawn.pre == drawn.post)
        seen[drawn.post, drawn.pre] += 1
    off = ~np.eye(12, 30, dtype=bool)
    assert np.all(seen[~off] == 0)
    z = (seen[off] - 400 * 0.25) / np.sqrt(400 * 0.25 * 0.75)
    assert np.abs(z).max() < 5 and abs(z.mean()) < 4 / np.sqrt(z.size)
    assert fixed_probability(0.0).bind(5, 5).pre.size == 0 and fixed_probability(1.0).bind(5, 4).pre.size == 20
    from canns_stdp.network import fixed_in_degree
    net = Network({"a": LayerLIF(50), "b": LayerLIF(20)},
                  [Projection("a", "b", connectivity=fixed_in_degree(7, seed=1), weights=0.0, delay=1)])
    pre, post = net.connectivity("a->b").indices()
    np.testing.assert_array_equal(np.bincount(post, minlength=20), np.full(20, 7))


def test_a_saved_network_goes_on_exactly_where_it_stood(rng, tmp_path):
    net, _, _, xs, _ = build(rng, "sparse", "per-synapse", "conductance")
    whole, *_ = build(np.random.default_rng(12345), "sparse", "per-synapse", "conductance")
    whole.run(inputs={"x": xs})
    net.run(inputs={"x": xs[:70]})
    net.save(tmp_path / "net.npz")
    loaded = Network.load(tmp_path / "net.npz")
    assert loaded.steps_run == 70
    loaded.run(inputs={"x": xs[70:]})
    for proj in whole.projections:
        np.testing.assert_array_equal(loaded.weights(proj.name), whole.weights(proj.name))
    np.testing.assert_array_equal(loaded.state("e", "v"), whole.state("e", "v"))


def test_a_saved_network_with_poisson_inputs_and_rule_state_resumes(tmp_path):
    def make():
        return Network({"p": PoissonInput(50, rates_hz=40.0), "y": LIF(5, synapse="current")},
                       [Projection("p", "y", weights=2.0, rule=rules.triplet(tau_x=30.0, tau_y=40.0), w_max=5.0,
                                   delay=3)], dt=0.5, seed=7)
    whole, part = make(), make()
    whole.run(400)
    part.run(150)
    part.save(tmp_path / "p.npz")
    loaded = Network.load(tmp_path / "p.npz")
    loaded.run(250)
    np.testing.assert_array_equal(loaded.weights("p->y"), whole.weights("p->y"))
    assert np.abs(whole.weights("p->y") - 2.0).max() > 0.01


def test_a_network_checkpoint_that_does_not_fit_is_refused(rng, tmp_path):
    from canns_stdp.checkpoint import CheckpointError, read_checkpoint, write_checkpoint

    net, *_ = build(rng, "masked", "uniform", "layer")
    net.save(tmp_path / "net.npz")
    meta, arrays = read_checkpoint(tmp_path / "net.npz")
    arrays["network/state/proj/x->e/W"] = np.zeros((3, 3), np.float32)
    write_checkpoint(tmp_path / "bad.npz", meta["objects"], arrays)
    with pytest.raises(CheckpointError, match=r"projection 'x->e': stored weights of shape \(3, 3\), its "
                                              r"description needs \(12, 30\)"):
        Network.load(tmp_path / "bad.npz")
    arrays.pop("network/state/proj/x->e/W")
    write_checkpoint(tmp_path / "missing.npz", meta["objects"], arrays)
    with pytest.raises(CheckpointError, match=r"projection 'x->e': stored weights of shape None"):
        Network.load(tmp_path / "missing.npz")


def test_periodic_monitors_read_between_chunks_record_the_same_samples(rng):
    net, _, _, xs, _ = build(rng, "all", "uniform", "conductance")
    net.chunk_size = None  # chunks may follow the monitors
    xs = np.tile(xs, (4, 1))
    read = WeightMonitor("x->e", synapses=[1, 2, 3], every=128)
    sampled = WeightMonitor("x->e", synapses=[1, 2, 3], every=1)
    net.run(inputs={"x": xs}, monitors=[read, sampled])
    np.testing.assert_allclose(read.t, np.arange(1, 6) * 128 * DT)
    np.testing.assert_array_equal(read.values, sampled.values[127::128])


def test_song_miller_abbott_weights_compete_and_go_bimodal():
    from canns_stdp.tasks import song

    res = song.run(30.0, progress=False, echo=lambda *a: None)
    # the weights start uniform in [0, gmax]: 10% below 0.1 gmax, 10% above 0.9, 40% in 0.3-0.7
    assert res["low_fraction"] > 0.15 and res["high_fraction"] > 0.11
    assert np.mean((res["weights"] > 0.3) & (res["weights"] < 0.7)) < 0.36
    assert 5.0 < res["rate_hz"] < 60.0


@pytest.mark.parametrize("rule", [rules.triplet(tau_x=30.0, tau_y=40.0),
                                  rules.pair(0.01, 0.011, pairing="strict", dependence="soft")],
                         ids=["triplet", "pair-soft-strict"])
def test_event_driven_sparse_projections_compute_the_full_update(rule):
    """Visiting only the synapses of the neurons that spiked changes exactly what the
    update over every synapse changes (input and plasticity)."""
    monitors = {}
    for events in (True, False):
        net = Network({"p": PoissonInput(300, rates_hz=30.0), "y": LIF(80, synapse="current", tau_exc=3.0)},
                      [Projection("p", "y", connectivity=fixed_probability(0.2, seed=5), weights=4.0, rule=rule,
                                  w_max=8.0, learning_rate=20.0, event_driven=events),
                       Projection("y", "y", connectivity=fixed_probability(0.1, seed=6), weights=0.5, delay=2,
                                  rule=rule, w_max=8.0, learning_rate=20.0, event_driven=events)], dt=0.5, seed=1)
        monitors[events] = SpikeMonitor("y")
        net.run(600, monitors=[monitors[events]])
        monitors[events].weights = (net.weights("p->y"), net.weights("y->y"))
    assert 0.005 < monitors[True].t.size / (600 * 80) < 0.9
    np.testing.assert_array_equal(monitors[True].i, monitors[False].i)
    np.testing.assert_array_equal(monitors[True].t, monitors[False].t)
    for on, off in zip(monitors[True].weights, monitors[False].weights):
        np.testing.assert_allclose(on, off, atol=1e-6)
    assert np.abs(monitors[True].weights[0] - 4.0).max() > 0.05


def test_vogels_inhibitory_rule_matches_its_equations(rng):
    n_in, n_out, steps, lr, d = 12, 5, 400, 0.05, np.float32(np.exp(-1 / 20))
    xs = (rng.random((steps, n_in)) < 0.1).astype(np.float32)
    posts = (rng.random((steps, n_out)) < 0.08).astype(np.float32)
    W0 = rng.uniform(0.2, 0.6, (n_out, n_in)).astype(np.float32)
    layer = SpikingLayer(n_in, n_out, W_init=W0, tau_pre=20.0, tau_post=20.0, dt=1.0)
    Trainer(layer, rules.vogels(target_hz=5.0, tau_ms=20.0), learning_rate=lr, w_max=2.0).train(xs, posts)
    W, x_pre, x_post, alpha = W0.copy(), np.zeros(n_in, np.float32), np.zeros(n_out, np.float32), 2 * 5.0 * 20 / 1000
    for x, s in zip(xs, posts):
        x_pre = d * x_pre + x
        before = d * x_post  # the post trace without this step's spike
        W = np.clip(W + lr * (np.outer(s, x_pre) + np.outer(before - alpha, x)), 0.0, 2.0)
        x_post = before + s
    assert np.abs(W - W0).max() > 0.05
    np.testing.assert_allclose(layer.W.value, W, atol=2e-6)


@pytest.mark.parametrize("n", [1, 63, 64, 65, 1000, 4099])
@pytest.mark.parametrize("p", [0.0, 0.02, 0.5, 1.0])
def test_compact_lists_the_active_neurons_first(rng, n, p):
    from canns_stdp.network.connectivity import compact

    active = rng.random(n) < p
    size = -(-n // 8) * 8
    want = np.full(size, n)
    want[:active.sum()] = np.nonzero(active)[0]
    np.testing.assert_array_equal(compact(active, size), want)


def test_vogels_inhibitory_plasticity_brings_the_excitatory_rate_down_toward_the_target():
    from canns_stdp.tasks import vogels

    res = vogels.run(2.5, n_exc=800, n_inh=200, p=0.2, progress=False, echo=lambda *a: None)
    t, exc_rate, _ = res["rates"]
    before = exc_rate[(t >= 500) & (t < 1000)].mean()  # the last half second without plasticity
    assert before > 20.0
    assert res["exc_rate_hz"] < 0.5 * before
    assert np.all(res["weights_before"] == 0) and res["weights"].mean() > 0.01


def test_a_network_checkpoint_declaring_huge_populations_is_refused_before_building(rng, tmp_path):
    from canns_stdp.checkpoint import CheckpointError, read_checkpoint, write_checkpoint

    net, *_ = build(rng, "all", "uniform", "layer")
    net.save(tmp_path / "net.npz")
    meta, arrays = read_checkpoint(tmp_path / "net.npz")
    meta["objects"]["network"]["config"]["populations"]["e"]["fields"]["n"] = 10 ** 9
    write_checkpoint(tmp_path / "huge.npz", meta["objects"], arrays)
    with pytest.raises(CheckpointError, match=r"population 'e' declares n=1000000000, its stored spikes have shape"):
        Network.load(tmp_path / "huge.npz")


def test_izhikevich_slow_stdp_matches_its_equations(rng):
    from canns_stdp.tasks.izhikevich import SlowSTDP

    n_in, n_out, steps, d = 15, 4, 350, np.float32(np.exp(-1 / 20))
    xs = (rng.random((steps, n_in)) < 0.1).astype(np.float32)
    posts = (rng.random((steps, n_out)) < 0.1).astype(np.float32)
    W0 = rng.uniform(2.0, 8.0, (n_out, n_in)).astype(np.float32)
    layer = SpikingLayer(n_in, n_out, W_init=W0, tau_pre=20.0, tau_post=20.0, dt=1.0)
    Trainer(layer, SlowSTDP(period=100), learning_rate=1.0, w_max=10.0).train(xs, posts)
    W, sd, x_pre, x_post = W0.copy(), np.zeros_like(W0), np.zeros(n_in, np.float32), np.zeros(n_out, np.float32)
    for t, (x, s) in enumerate(zip(xs, posts), start=1):
        x_pre, x_post = d * x_pre + x, d * x_post + s
        sd = sd + 0.1 * np.outer(s, x_pre) - 0.12 * np.outer(x_post, x)
        if t % 100 == 0:  # applied once a period, then partly forgotten
            W, sd = np.clip(W + 0.01 + sd, 0.0, 10.0), 0.9 * sd
    assert np.abs(W - W0).max() > 0.05
    np.testing.assert_allclose(layer.W.value, W, atol=2e-5)


def test_izhikevich_network_fires_and_its_weights_move_once_a_second():
    from canns_stdp.tasks import izhikevich

    net = izhikevich.build(seed=1)
    W0 = net.weights("exc->exc")
    net.run(999)
    np.testing.assert_array_equal(net.weights("exc->exc"), W0)  # no update before the first second ends
    net.run(1)
    assert np.abs(net.weights("exc->exc") - W0).max() > 0.01
    res = izhikevich.run(2.0, seed=1, progress=False, echo=lambda *a: None)
    assert 30.0 <= res["gamma_peak_hz"] <= 100.0 and res["weights"].size == 80_000


@pytest.mark.parametrize("neuron", ["layer", "lif"])
def test_an_adaptive_threshold_rises_with_each_spike_and_decays(rng, neuron):
    n_in, n, steps, dt = 20, 6, 300, 0.5
    xs = (rng.random((steps, n_in)) < 0.3).astype(np.float32)
    W = rng.uniform(0.0, 1.0, (n, n_in)).astype(np.float32)
    if neuron == "layer":
        pop = LayerLIF(n, leak=0.8, threshold=1.0, theta_plus=0.3, tau_theta=20.0)
    else:
        pop = LIF(n, tau_m=5.0, v_rest=-70.0, v_reset=-70.0, v_threshold=-60.0, synapse="current", tau_exc=2.0,
                  v_init=-70.0, theta_plus=1.5, tau_theta=20.0)
    net = Network({"x": SpikeInput(n_in), "y": pop}, [Projection("x", "y", weights=W)], dt=dt)
    theta_mon = StateMonitor("y", "theta", every=1)
    spikes = SpikeMonitor("y")
    net.run(inputs={"x": xs}, monitors=[theta_mon, spikes])
    d = np.float32(np.exp(-dt / 20.0))
    v = np.zeros(n, np.float32) if neuron == "layer" else np.full(n, -70.0, np.float32)
    g, theta, fired = np.zeros(n, np.float32), np.zeros(n, np.float32), np.zeros((steps, n), np.float32)
    for t, x in enumerate(xs):
        drive = W @ x
        if neuron == "layer":
            v = np.float32(0.8) * v + drive
            s = (v >= 1.0 + theta).astype(np.float32)
            v = np.where(s > 0, np.float32(0.0), v)
        else:
            v = v + np.float32(dt / 5.0) * (np.float32(-70.0) - v + g)
            g = g - np.float32(dt / 2.0) * g + drive
            s = (v > -60.0 + theta).astype(np.float32)
            v = np.where(s > 0, np.float32(-70.0), v)
        theta = d * theta + np.float32(0.3 if neuron == "layer" else 1.5) * s
        fired[t] = s
    steps_, neurons = np.nonzero(fired)
    assert 0.02 < fired.mean() < 0.8 and theta.max() > 0.2
    np.testing.assert_array_equal(spikes.i, neurons)
    np.testing.assert_allclose(spikes.t, steps_ * dt)
    np.testing.assert_allclose(theta_mon.values[-1], theta, atol=1e-5)
