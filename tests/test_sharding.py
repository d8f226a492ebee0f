"""An ensemble on a mesh of 8 (host) devices computes what it computes on one.

JAX fixes its devices when it starts, and this process started with one: the checks run
in a fresh interpreter with ``--xla_force_host_platform_device_count=8`` and report back
as JSON.
"""

import textwrap

import numpy as np
import pytest

import background
from canns_stdp import Ensemble, SpikingLayer, Trainer, rules

SCRIPT = textwrap.dedent(r'''
    import json, os, sys
    import numpy as np
    import jax
    from jax.sharding import Mesh
    import canns_stdp.ensemble as ensemble_module
    from canns_stdp import ConvSpikingLayer, Ensemble, SpikingLayer, STDPTrainer, Trainer, rules

    tmp = sys.argv[1]
    report = {"devices": len(jax.devices())}
    grid = Mesh(np.array(jax.devices()).reshape(4, 2), ("members", "neurons"))
    line = Mesh(np.array(jax.devices()), ("neurons",))
    rng = np.random.default_rng(0)
    N_IN, N_OUT, T, K = 12, 6, 80, 8

    layouts = []  # where the state was at the end of each sharded run, before it was gathered
    gathered = ensemble_module.gathered
    def axes(a):  # the mesh axis of each dimension (None: not split), read from where each device's part lies
        mesh, parts = a.sharding.mesh, a.sharding.devices_indices_map(a.shape)
        where = {device: position for position, device in np.ndenumerate(mesh.devices)}
        def along(d):
            for k, name in enumerate(mesh.axis_names):
                starts = {(where[dev][k], part[d].start or 0) for dev, part in parts.items()}
                size = mesh.devices.shape[k]  # split along axis k: each of its positions holds its own part
                if len({start for _, start in starts}) == size > 1 and len(starts) == size:
                    return name
            return None
        return [along(d) for d in range(a.ndim)]
    def spy(state):
        left = getattr(state.layer, "refractory_left", None)
        layouts.append({"W": axes(state.layer.W), "v": axes(state.layer.v),
                        "left": None if left is None else axes(left),
                        "rule": [axes(a) for a in jax.tree_util.tree_leaves(state.rule)]})
        return gathered(state)
    ensemble_module.gathered = spy

    def rule_of(kind, k):
        if kind == "triplet":
            return rules.triplet(A2_plus=0.01 * (k + 1), A3_plus=0.02, tau_x=15.0, tau_y=25.0)
        return rules.reward(rules.pair(A_plus=0.01 * (k + 1), A_minus=0.03), "rstdp", tau_c=12.0, tau_d=8.0)

    def make(kind, k, compiled=True, n_out=N_OUT):
        return Trainer(SpikingLayer(N_IN, n_out, seed=k, threshold=1.2), rule_of(kind, k),
                       learning_rate=0.3 + 0.1 * k, compiled=compiled)

    def differences(a, b):
        names = [n for n in a[0]._rule_state.names()]
        W = max(float(np.abs(np.asarray(x.model.W.value) - np.asarray(y.model.W.value)).max()) for x, y in zip(a, b))
        v = max(float(np.abs(np.asarray(x.model.v.value) - np.asarray(y.model.v.value)).max()) for x, y in zip(a, b))
        rule = max([0.0] + [float(np.abs(np.asarray(getattr(x, n).value) - np.asarray(getattr(y, n).value)).max())
                            for x, y in zip(a, b) for n in names])
        return {"W": W, "v": v, "rule": rule}

    # members along one axis and neurons along the other; a batch of 2 per member, own inputs each
    for kind, compiled in (("triplet", True), ("rstdp", True), ("triplet", False)):
        xs = (rng.random((K, T, 2, N_IN)) < 0.3).astype(np.float32)
        posts = (rng.random((K, T, 2, N_OUT)) < 0.05).astype(np.float32)
        reward = [np.sin(np.arange(T) / (k + 2.0)).astype(np.float32)[:, None].repeat(2, 1) for k in range(K)]
        given = {"reward": reward} if kind == "rstdp" else {}
        one = [make(kind, k, compiled) for k in range(K)]
        many = [make(kind, k, compiled) for k in range(K)]
        s_one = Ensemble(one).train(list(xs), list(posts), return_spikes=True, **given)
        sharded = Ensemble(many, mesh=grid, member_axis="members", neuron_axis="neurons")
        s_many = sharded.train(list(xs), list(posts), return_spikes=True, **given)
        report[f"{kind}-{compiled}"] = {"spikes_equal": bool((s_one == s_many).all()),
                                        "spikes": float(s_one.mean()), **differences(one, many),
                                        "layout": layouts[-1]}
        # predict_batch on the mesh: a shared input, no plasticity
        x = (rng.random((30, 2, N_IN)) < 0.3).astype(np.float32)
        report[f"{kind}-{compiled}"]["predict_equal"] = bool(
            (Ensemble(one).predict_batch(x) == sharded.predict_batch(x)).all())

    # a single layer: its 16 neurons over 8 devices, against the same trainer alone
    x = (rng.random((T, N_IN)) < 0.3).astype(np.float32)
    single = make("triplet", 0, n_out=16)
    alone = make("triplet", 0, n_out=16)
    s_single = Ensemble([single], mesh=line, neuron_axis="neurons").train(x, return_spikes=True)[0]
    s_alone = alone.train(x, return_spikes=True)
    report["single"] = {"spikes_equal": bool((s_single == s_alone).all()), "spikes": float(s_alone.mean()),
                        **differences([single], [alone]), "layout": layouts[-1]}
    # the same through the trainer's own mesh=, over two calls
    on_mesh = Trainer(SpikingLayer(N_IN, 16, seed=0, threshold=1.2), rule_of("triplet", 0), learning_rate=0.3,
                      mesh=line, neuron_axis="neurons")
    alone = make("triplet", 0, n_out=16)
    s_mesh = np.concatenate([on_mesh.train(x[:30], return_spikes=True), on_mesh.train(x[30:], return_spikes=True)])
    s_alone = alone.train(x, return_spikes=True)
    report["trainer_mesh"] = {"spikes_equal": bool((s_mesh == s_alone).all()), "spikes": float(s_alone.mean()),
                              **differences([on_mesh], [alone]), "layout": layouts[-1],
                              "predict_equal": bool((on_mesh.predict_batch(x[:20])
                                                     == alone.predict_batch(x[:20])).all()),
                              "steps": on_mesh.steps_trained}

    # neurons with a refractory period: their counters split with their membranes
    def make_resting():
        return Trainer(SpikingLayer(N_IN, 16, seed=0, threshold=1.2, refractory=2.0), rule_of("triplet", 0),
                       learning_rate=0.3)
    resting, alone = make_resting(), make_resting()
    s_resting = Ensemble([resting], mesh=line, neuron_axis="neurons").train(x, return_spikes=True)[0]
    s_alone = alone.train(x, return_spikes=True)
    left = float(np.abs(np.asarray(resting.model.refractory_left.value)
                        - np.asarray(alone.model.refractory_left.value)).max())
    report["refractory"] = {"spikes_equal": bool((s_resting == s_alone).all()), "spikes": float(s_alone.mean()),
                            **differences([resting], [alone]), "left": left, "layout": layouts[-1],
                            "counting": bool(np.asarray(alone.model.refractory_left.value).any())}

    # checkpoint round trip: saved after a sharded call, loaded, trained on: as never saved
    xs = (rng.random((K, 2 * T, N_IN)) < 0.3).astype(np.float32)
    reference = [make("triplet", k) for k in range(K)]
    Ensemble(reference).train(list(xs))
    saved = [make("triplet", k) for k in range(K)]
    Ensemble(saved, mesh=grid, member_axis="members", neuron_axis="neurons").train([x[:T] for x in xs])
    for k, t in enumerate(saved):
        t.save(os.path.join(tmp, f"member{k}.npz"))
    loaded = [Trainer.load(os.path.join(tmp, f"member{k}.npz")) for k in range(K)]
    Ensemble(loaded, mesh=grid, member_axis="members", neuron_axis="neurons").train([x[T:] for x in xs])
    report["checkpoint"] = {**differences(reference, loaded), "steps": [t.steps_trained for t in loaded]}

    # conv members split along the members only; a batch of 2 images each, one input for all
    images = (rng.random((40, 2, 1, 6, 6)) < 0.3).astype(np.float32)
    def make_conv(k):
        return STDPTrainer(ConvSpikingLayer(1, 2, 3, input_shape=(6, 6), padding=1, seed=k, threshold=0.5),
                           learning_rate=0.05 * (k + 1), batch_reduction="mean")
    one, many = [make_conv(k) for k in range(4)], [make_conv(k) for k in range(4)]
    s_one = Ensemble(one).train(images, return_spikes=True)
    s_many = Ensemble(many, mesh=grid).train(images, return_spikes=True)
    report["conv"] = {"spikes_equal": bool((s_one == s_many).all()), "spikes": float(s_one.mean()),
                      **differences(one, many), "layout": layouts[-1]}

    # a sweep on the mesh: the same table as on one device
    from canns_stdp.sweep import sweep
    def make_pair(seed, lr, A_plus):
        return STDPTrainer(SpikingLayer(N_IN, N_OUT, seed=seed, threshold=1.2), learning_rate=lr, A_plus=A_plus)
    def score(t):
        return {"w": float(np.asarray(t.model.W.value).sum())}
    values, x = {"lr": [0.2, 0.6], "A_plus": [0.01, 0.05]}, (rng.random((T, N_IN)) < 0.3).astype(np.float32)
    plain = sweep(make_pair, values, x, seeds=[0, 1], score=score)
    meshed = sweep(make_pair, values, x, seeds=[0, 1], score=score, mesh=grid, member_axis="members",
                   neuron_axis="neurons")
    report["sweep"] = {"rows_equal": plain.rows == meshed.rows, "rows": len(meshed.rows)}

    # networks run together, split along the members: what one device computes
    import canns_stdp.network.ensemble as net_ensemble
    from canns_stdp.network import (LayerLIF, Network, NetworkEnsemble, PoissonInput, Projection, SpikeInput,
                                    SpikeMonitor, fixed_in_degree)
    net_layouts, net_gathered = [], net_ensemble.gathered
    def net_spy(state):
        net_layouts.append(axes(state.projs[0].W))
        return net_gathered(state)
    net_ensemble.gathered = net_spy
    def make_net(k):
        return Network({"x": SpikeInput(6), "p": PoissonInput(10, rates_hz=50.0 + 10 * k),
                        "e": LayerLIF(5, leak=0.8 + 0.02 * k, threshold=0.6)},
                       [Projection("p", "e", weights=0.2, rule=rules.pair(0.01 * (k + 1), 0.011), delay=1),
                        Projection("x", "e", weights=0.3, rule=rules.pair(0.01, 0.012)),
                        Projection("e", "e", weights=0.1, connectivity=fixed_in_degree(2, seed=k), delay=2)],
                       dt=1.0, seed=k)
    members = Mesh(np.array(jax.devices()), ("members",))
    nets_one, nets_many = [make_net(k) for k in range(K)], [make_net(k) for k in range(K)]
    xs = [(rng.random((60, 6)) < 0.2).astype(np.float32) for _ in range(K)]
    mons_one, mons_many = [[SpikeMonitor("e")] for _ in range(K)], [[SpikeMonitor("e")] for _ in range(K)]
    NetworkEnsemble(nets_one).run(inputs=[{"x": x} for x in xs], monitors=mons_one)
    NetworkEnsemble(nets_many, mesh=members).run(inputs=[{"x": x} for x in xs], monitors=mons_many)
    report["networks"] = {
        "spikes_equal": all(np.array_equal(a[0].i, b[0].i) and np.array_equal(a[0].t, b[0].t)
                            for a, b in zip(mons_one, mons_many)),
        "spikes": int(sum(m[0].i.size for m in mons_one)),
        "W": max(float(np.abs(a.weights(p.name) - b.weights(p.name)).max())
                 for a, b in zip(nets_one, nets_many) for p in a.projections),
        "v": max(float(np.abs(a.state("e", "v") - b.state("e", "v")).max()) for a, b in zip(nets_one, nets_many)),
        "layout": net_layouts[-1],
    }

    # what does not fit the mesh is refused, naming the numbers
    report["errors"] = {
        "members": refused(lambda: Ensemble([make("triplet", k) for k in range(6)], mesh=grid, member_axis="members")),
        "neurons": refused(lambda: Ensemble([make("triplet", k, n_out=5) for k in range(4)], mesh=grid,
                                            member_axis="members", neuron_axis="neurons")),
        "axis": refused(lambda: Ensemble([make("triplet", 0)], mesh=grid, neuron_axis="rows")),
        "same": refused(lambda: Ensemble([make("triplet", k) for k in range(4)], mesh=grid, member_axis="members",
                                         neuron_axis="members")),
        "conv": refused(lambda: Ensemble([STDPTrainer(ConvSpikingLayer(1, 2, 3, input_shape=(6, 6)))], mesh=line,
                                         neuron_axis="neurons")),
        "networks": refused(lambda: NetworkEnsemble([make_net(k) for k in range(6)], mesh=members)),
    }
    print("REPORT " + json.dumps(report))
''')


def start_in_background(tmp_path_factory):
    """The checks' interpreter, started beside the other tests (see ``background.py``)."""
    return background.on_eight_devices("sharding", SCRIPT, lambda: [tmp_path_factory.mktemp("sharded")])


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    return background.report(start_in_background(tmp_path_factory))


def test_the_checks_ran_on_eight_devices(report):
    assert report["devices"] == 8


@pytest.mark.parametrize("case", ["triplet-True", "rstdp-True", "triplet-False"])
def test_members_and_neurons_split_compute_what_one_device_computes(report, case):
    r = report[case]
    assert r["spikes_equal"] and r["predict_equal"]
    assert 0.02 < r["spikes"] < 0.9
    assert r["W"] <= 1e-6 and r["v"] <= 1e-6 and r["rule"] <= 1e-6
    # the state stayed split along both axes through the run
    assert r["layout"]["W"] == ["members", "neurons", None]
    assert r["layout"]["v"] == ["members", None, "neurons"]
    if case.startswith("triplet"):  # r2 (per input) whole, o2 (per neuron) split
        assert r["layout"]["rule"] == [["members", None, "neurons"], ["members", None, None]] or \
            r["layout"]["rule"] == [["members", None, None], ["members", None, "neurons"]]


def test_refractory_counters_split_with_the_neurons(report):
    r = report["refractory"]
    assert r["spikes_equal"] and 0.005 < r["spikes"] < 0.9 and r["counting"]
    assert r["W"] <= 1e-6 and r["v"] <= 1e-6 and r["left"] == 0.0
    assert r["layout"]["left"] == [None, "neurons"]


def test_rstdp_eligibility_is_split_by_rows_and_its_dopamine_by_members(report):
    assert sorted(report["rstdp-True"]["layout"]["rule"], key=len) == [["members", None],
                                                                       ["members", None, "neurons", None]]


def test_one_layer_split_over_its_neurons_equals_the_trainer_alone(report):
    r = report["single"]
    assert r["spikes_equal"] and 0.02 < r["spikes"] < 0.9
    assert r["W"] <= 1e-6 and r["v"] <= 1e-6 and r["rule"] <= 1e-6
    assert r["layout"]["W"] == [None, "neurons", None]


def test_a_trainer_given_a_mesh_equals_the_trainer_on_one_device(report):
    r = report["trainer_mesh"]
    assert r["spikes_equal"] and r["predict_equal"] and 0.02 < r["spikes"] < 0.98
    assert r["W"] <= 1e-6 and r["v"] <= 1e-6 and r["rule"] <= 1e-6
    assert r["layout"]["W"] == [None, "neurons", None] and r["steps"] == 80  # one member: its rows split


def test_a_trainer_refuses_a_neuron_axis_without_a_mesh():
    with pytest.raises(ValueError, match=r"neuron_axis='neurons' needs a mesh="):
        Trainer(SpikingLayer(4, 2, seed=0), rules.pair(), neuron_axis="neurons")


def test_conv_members_split_along_the_members(report):
    r = report["conv"]
    assert r["spikes_equal"] and 0.02 < r["spikes"] < 0.9
    assert r["W"] <= 1e-6 and r["v"] <= 1e-6
    assert r["layout"]["W"] == ["members", None, None, None, None]


def test_checkpoint_round_trip_between_sharded_calls(report):
    r = report["checkpoint"]
    assert r["W"] <= 1e-6 and r["v"] <= 1e-6 and r["rule"] <= 1e-6
    assert r["steps"] == [160] * 8


def test_what_does_not_fit_the_mesh_is_refused(report):
    e = report["errors"]
    assert e["members"] == ("6 members do not split evenly over mesh axis 'members' of size 4: use a multiple "
                            "of 4 members")
    assert e["neurons"] == "5 output neurons do not split evenly over mesh axis 'neurons' of size 2"
    assert e["axis"] == "neuron_axis must be one of the mesh's axes ('members', 'neurons'), got 'rows'"
    assert e["same"] == "member_axis and neuron_axis must be different mesh axes, both are 'members'"
    assert e["conv"].startswith("neuron_axis splits a dense layer's neurons; this layer has output shape (2, 4, 4)")


def test_a_sweep_on_the_mesh_gives_the_table_of_one_device(report):
    assert report["sweep"] == {"rows_equal": True, "rows": 8}


def test_axes_without_a_mesh_or_a_mesh_that_is_not_one_are_refused():
    members = [Trainer(SpikingLayer(8, 2, seed=k), rules.pair()) for k in range(2)]
    with pytest.raises(ValueError, match="member_axis and neuron_axis need a mesh=, got member_axis='m'"):
        Ensemble(members, member_axis="m")
    with pytest.raises(TypeError, match=r"mesh must be a jax.sharding.Mesh, got \[0, 1\]"):
        Ensemble(members, mesh=[0, 1])
    np.testing.assert_array_equal(members[0].model.W.value, SpikingLayer(8, 2, seed=0).W.value)


def test_networks_split_along_the_members_compute_what_one_device_computes(report):
    r = report["networks"]
    assert r["spikes_equal"] and r["spikes"] > 20
    assert r["W"] <= 1e-6 and r["v"] <= 1e-6
    assert r["layout"] == ["members", None, None]  # each device ran its own member's weights
    assert "6 members do not split evenly over mesh axis 'members' of size 8" in report["errors"]["networks"]
