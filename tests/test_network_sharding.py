"""One network whose neurons are split over a mesh of 8 (host) devices computes what it
computes on one device.

JAX fixes its devices when it starts, and this process started with one: the runs on a
mesh are made in one fresh interpreter with ``--xla_force_host_platform_device_count=8``
that reports back as JSON; each is compared there with the same network run unsharded
(whose step tests/test_network.py checks against a NumPy reference).
"""

import textwrap

import jax
import numpy as np
import pytest
from jax.sharding import Mesh

import background
from canns_stdp import rules
from canns_stdp.network import LIF, Network, PoissonInput, Projection

SCRIPT = textwrap.dedent(r'''
    import json
    import numpy as np
    import jax
    from jax.sharding import Mesh
    from canns_stdp import rules
    from canns_stdp.network import (LIF, Network, PoissonInput, PopulationRateMonitor, Projection, SpikeMonitor,
                                    StateMonitor, WeightMonitor, fixed_probability)
    from canns_stdp.network import sharded

    report = {"devices": len(jax.devices())}
    line = Mesh(np.array(jax.devices()), ("neurons",))
    grid = Mesh(np.array(jax.devices()).reshape(4, 2), ("rows", "cols"))

    layouts = []  # where the state was at the end of each split run, before it came back to one device
    from_mesh = sharded.NeuronLayout.from_mesh
    def spy(self, state):
        layouts.append({"W": [str(p.W.sharding) for p in state.projs],
                        "v": [str(s.v.sharding) for s in state.pops if hasattr(s, "v")]})
        return from_mesh(self, state)
    sharded.NeuronLayout.from_mesh = spy

    def recurrent(mesh=None, axis=None, compiled=True):
        """E/I: a sparse E->E projection with delays per synapse learning with pair STDP and a
        sparse, event-driven I->E projection learning with Vogels' rule."""
        ee = fixed_probability(0.2, seed=2, allow_self=False).bind(32, 32)
        delays = np.random.default_rng(0).integers(1, 5, ee.pre.size)
        return Network(
            {"in": PoissonInput(64, rates_hz=20.0), "e": LIF(32, synapse="current", bias=17.0, refractory=2.0),
             "i": LIF(8, synapse="current", bias=17.0)},
            [Projection("in", "e", weights=0.9, delay=2),
             Projection("e", "e", weights=1.0, connectivity=ee, rule=rules.pair(0.01, 0.0105), w_max=2.0,
                        delay=delays),
             Projection("e", "i", weights=1.5, delay=1),
             Projection("i", "e", weights=0.5, receptor="inh", connectivity=fixed_probability(0.5, seed=3), delay=1,
                        rule=rules.vogels(5.0, 20.0), tau_pre=20.0, tau_post=20.0, learning_rate=0.05, w_max=5.0,
                        event_driven=True)],
            dt=0.5, seed=3, mesh=mesh, neuron_axis=axis, compiled=compiled)

    def feedforward(mesh=None, axis=None, compiled=True):
        """Poisson inputs onto LIF neurons through a dense projection learning with the triplet rule."""
        return Network(
            {"in": PoissonInput(48, rates_hz=np.linspace(5.0, 40.0, 48)),
             "out": LIF(16, bias=np.linspace(8.0, 22.0, 16), refractory=1.0)},
            [Projection("in", "out", weights=np.random.default_rng(1).uniform(0.0, 0.1, (16, 48)), delay=3,
                        rule=rules.triplet(A2_plus=0.005, A3_plus=0.006, A2_minus=0.007), w_max=0.1)],
            dt=0.5, seed=5, mesh=mesh, neuron_axis=axis, compiled=compiled)

    def monitors(net):
        first = net.projections[-1].name
        out = [SpikeMonitor(n) for n, p in net.populations.items() if not p.is_input]
        out += [StateMonitor(list(net.populations)[1], "v", [0, 5, 15]), WeightMonitor(first, [0, 7, 20], every=2),
                PopulationRateMonitor(list(net.populations)[1])]
        return out

    def records(ms):
        return [[m.t, m.i] if isinstance(m, SpikeMonitor) else [m.t, m.rate] if isinstance(m, PopulationRateMonitor)
                else [m.t, m.values] for m in ms]

    def compare(one, many, m_one, m_many):
        r_one, r_many = records(m_one), records(m_many)
        spikes = [m for m in m_one if isinstance(m, SpikeMonitor)]
        leaves = zip(jax.tree_util.tree_leaves(one._state), jax.tree_util.tree_leaves(many._state))
        return {
            "spikes_equal": all(np.array_equal(a, b) for (a, b) in [(x[0], y[0]) for x, y in zip(r_one, r_many)]
                                + [(x[1], y[1]) for x, y in zip(r_one[:len(spikes)], r_many[:len(spikes)])]),
            "records": max(float(np.abs(np.asarray(x[1], float) - np.asarray(y[1], float)).max(initial=0.0))
                           for x, y in zip(r_one, r_many)),
            "fired": min(float((m.count > 0).mean()) for m in spikes),
            "rate": min(float(m.i.size / m.n / one.steps_run) for m in spikes),
            "W": max(float(np.abs(one.weights(p.name) - many.weights(p.name)).max()) for p in one.projections),
            "W_changed": max(float(np.abs(one.weights(p.name) - w0).max()) for p, w0 in zip(one.projections, one._w0)),
            "state": max(float(np.abs(np.asarray(a, float) - np.asarray(b, float)).max(initial=0.0))
                         for a, b in leaves),
            "state_relative": max(float((np.abs(np.asarray(a, float) - np.asarray(b, float))
                                         / np.maximum(1.0, np.abs(np.asarray(a, float)))).max(initial=0.0))
                                  for a, b in zip(jax.tree_util.tree_leaves(one._state),
                                                  jax.tree_util.tree_leaves(many._state))),
            "steps": many.steps_run,
            "layout": layouts[-1],
        }

    T = 300
    for name, build in (("recurrent", recurrent), ("feedforward", feedforward)):
        one = build()
        one._w0 = [one.weights(p.name) for p in one.projections]
        m_one = monitors(one)
        one.run(T, monitors=m_one)
        for mesh_name, mesh, axis in (("8", line, "neurons"), ("4x2", grid, "rows")):
            many = build(mesh, axis)
            m_many = monitors(many)
            many.run(T // 2, monitors=m_many)  # two calls: the split state goes back and forth
            many.run(T - T // 2, monitors=m_many)
            report[f"{name}-{mesh_name}"] = compare(one, many, m_one, m_many)

    # the Python loop on the mesh: the same step, one dispatch per step
    one, many = feedforward(), feedforward(line, compiled=False)
    one._w0 = [one.weights(p.name) for p in one.projections]
    m_one, m_many = monitors(one), monitors(many)
    one.run(60, monitors=m_one)
    many.run(60, monitors=m_many)
    report["python-loop"] = compare(one, many, m_one, m_many)

    # a checkpoint of a split network goes on from where it stood on 4 of the devices, or on one
    import os
    import tempfile
    one = recurrent()
    one.run(T)
    many = recurrent(line, "neurons")
    many.run(T // 2)
    path = os.path.join(tempfile.mkdtemp(), "net.npz")
    many.save(path)
    for label, mesh in (("4", Mesh(np.array(jax.devices()[:4]), ("neurons",))), ("1", None)):
        back = Network.load(path, mesh=mesh, neuron_axis=None if mesh is None else "neurons")
        back.run(T - T // 2)
        report[f"checkpoint-8-to-{label}"] = {
            "split": back.neuron_axis is not None, "steps": back.steps_run,
            "W": max(float(np.abs(one.weights(p.name) - back.weights(p.name)).max()) for p in one.projections),
            "spikes": [float(np.abs(np.asarray(a.spike) - np.asarray(b.spike)).max())
                       for a, b in zip(one._state.pops, back._state.pops)]}

    report["errors"] = {
        "uneven": refused(lambda: Network({"in": PoissonInput(5), "out": LIF(12)}, [Projection("in", "out")],
                                          mesh=line)),
    }
    print("REPORT " + json.dumps(report))
''')


def start_in_background(tmp_path_factory):
    """The checks' interpreter, started beside the other tests (see ``background.py``)."""
    return background.on_eight_devices("network-sharding", SCRIPT)


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    return background.report(start_in_background(tmp_path_factory))


def test_the_checks_ran_on_eight_devices(report):
    assert report["devices"] == 8


@pytest.mark.parametrize("case", ["recurrent-8", "recurrent-4x2", "feedforward-8", "feedforward-4x2", "python-loop"])
def test_a_network_split_over_its_neurons_computes_what_one_device_computes(report, case):
    r = report[case]
    assert r["spikes_equal"], r
    # weights within 1e-6; states (conductances of ~10 included) within 1e-6 of their size: a few float32
    # units of the last place, where XLA fuses a multiply-add in one program and not in the other
    assert r["W"] <= 1e-6 and r["state_relative"] <= 1e-6 and r["records"] <= 1e-6, r
    assert r["fired"] >= 0.5 and r["rate"] >= 0.01, r   # the neurons fire: the check means something
    assert r["W_changed"] > 1e-3, r                     # and the weights learned


@pytest.mark.parametrize("case", ["recurrent-8", "recurrent-4x2"])
def test_the_recurrent_network_kept_its_neurons_and_synapses_split(report, case):
    axis = "neurons" if case.endswith("-8") else "rows"
    layout = report[case]["layout"]
    split = f"P('{axis}',)"   # split along the first dimension: dense rows, sparse synapses by target, neurons
    assert len(layout["W"]) == 4 and all("NamedSharding" in s and split in s for s in layout["W"])
    assert len(layout["v"]) == 2 and all(split in s for s in layout["v"])


@pytest.mark.parametrize("devices", ["4", "1"])
def test_a_checkpoint_of_a_split_network_goes_on_on_another_device_count(report, devices):
    r = report[f"checkpoint-8-to-{devices}"]
    assert r["split"] == (devices == "4") and r["steps"] == 300, r
    assert r["W"] <= 1e-6 and max(r["spikes"]) == 0.0, r


def test_a_population_that_does_not_split_evenly_is_refused(report):
    assert report["errors"]["uneven"] == ("population 'out' has 12 neurons, which do not split evenly over "
                                          "neuron_axis='neurons' of size 8: use a multiple of 8 neurons")


def _small(**kwargs):
    return Network({"in": PoissonInput(4), "out": LIF(2)}, [Projection("in", "out", rule=rules.pair())], **kwargs)


def test_what_a_split_network_cannot_take_is_refused_by_name():
    mesh = Mesh(np.array(jax.devices()[:1]), ("neurons",))
    with pytest.raises(ValueError, match=r"neuron_axis must be one of the mesh's axes \('neurons',\), got 'rows'"):
        _small(mesh=mesh, neuron_axis="rows")
    with pytest.raises(ValueError, match=r"native=True .* cannot run a network split over a mesh"):
        _small(mesh=mesh, native=True)
    with pytest.raises(ValueError, match=r"neuron_axis='neurons' needs a mesh="):
        _small(neuron_axis="neurons")
    with pytest.raises(TypeError, match=r"mesh must be a jax.sharding.Mesh, got \[0, 1\]"):
        _small(mesh=[0, 1])


def test_a_mesh_picks_the_xla_step_and_a_failed_run_leaves_the_network_as_it_was(monkeypatch):
    import canns_stdp.network.network as network_module

    def no_native(*args, **kwargs):
        raise AssertionError("the native kernel was asked to run a network split over a mesh")
    monkeypatch.setattr(network_module, "native_network_chunks", no_native)
    mesh = Mesh(np.array(jax.devices()[:1]), ("neurons",))
    net = _small(mesh=mesh)
    assert net.native is None and net.neuron_axis == "neurons"
    net.run(20)
    before = jax.tree_util.tree_map(np.array, net._state)
    with pytest.raises(ValueError, match="inputs: no population 'out'"):
        net.run(5, inputs={"out": np.zeros((5, 2))})
    for a, b in zip(jax.tree_util.tree_leaves(before), jax.tree_util.tree_leaves(net._state)):
        np.testing.assert_array_equal(a, np.asarray(b))
    assert net.steps_run == 20


def test_an_ensemble_of_networks_whose_neurons_are_split_is_refused():
    from canns_stdp.network import NetworkEnsemble

    mesh = Mesh(np.array(jax.devices()[:1]), ("neurons",))
    with pytest.raises(ValueError, match=r"network 1 has its neurons split over a mesh \(Network\(mesh=\)\): a "
                                         r"NetworkEnsemble splits its members, not their neurons"):
        NetworkEnsemble([_small(), _small(mesh=mesh)])
