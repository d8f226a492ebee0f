"""Networks run together: every member of a NetworkEnsemble ends where the same network run
alone ends (its own Network.run, itself checked against the NumPy reference in
test_network.py), and one member against the NumPy reference directly; compiled and Python
loops, Poisson inputs of their own seeds, sparse projections with per-synapse delays and
different random synapses, pair, vogels and reward rules, monitors and inputs per member,
refusals naming the difference, and failed runs that change nothing."""

import numpy as np
import pytest

import network_reference as ref
from canns_stdp import rules
from canns_stdp.network import (LayerLIF, Network, NetworkEnsemble, PoissonInput, PopulationRateMonitor, Projection,
                                Sparse, SpikeInput, SpikeMonitor, StateMonitor, WeightMonitor, fixed_in_degree)

N_X, N_P, N_E, N_I, K = 16, 12, 8, 4, 3


def make(k, compiled=True, reward=False, n_e=N_E, delay_ee=1, events=True):
    """Member ``k``: its own numbers, Poisson seed and random sparse synapses (as many as
    every member's); x→e sparse with per-synapse delays (plastic), p→e all-to-all
    (plastic), e→e recurrent event-driven (plastic), e→i, i→e inhibitory (vogels)."""
    rng = np.random.default_rng(100 + k)
    x_e = fixed_in_degree(6, seed=k)
    n_syn = 6 * n_e
    rule = rules.pair(0.01 + 0.004 * k, 0.0105)
    if reward:
        rule = rules.reward(rules.pair(0.02 + 0.01 * k, 0.021), "mstdpet", tau_c=15.0)
    pops = {"x": SpikeInput(N_X), "p": PoissonInput(N_P, rates_hz=60.0 + 20 * k),
            "e": LayerLIF(n_e, leak=0.85 + 0.02 * k, threshold=rng.uniform(0.9, 1.1, n_e)),
            "i": LayerLIF(N_I, leak=0.8, threshold=0.8)}
    projs = [
        Projection("x", "e", weights=rng.uniform(0.1, 0.4, n_syn), connectivity=x_e,
                   delay=rng.integers(0, 4, n_syn).astype(np.int32), rule=rule, learning_rate=1.0 + 0.5 * k,
                   d_pre=0.9, d_post=0.85),
        Projection("p", "e", weights=rng.uniform(0.0, 0.1, (n_e, N_P)), delay=1, rule=rules.pair(0.005, 0.006),
                   tau_pre=10.0 + k, tau_post=12.0),
        Projection("e", "e", weights=0.1 + 0.02 * k, connectivity=fixed_in_degree(3, seed=10 + k, allow_self=False),
                   delay=delay_ee, rule=rules.pair(0.01, 0.012), event_driven=events),
        Projection("e", "i", weights=0.3, connectivity=fixed_in_degree(4, seed=20 + k), delay=2),
        Projection("i", "e", weights=0.2, receptor="inh", delay=1, rule=rules.vogels(target_hz=5.0 + k),
                   learning_rate=0.01, w_max=2.0),
    ]
    return Network(pops, projs, dt=1.0, seed=7 * k + 1, compiled=compiled, chunk_size=None if k < 0 else 64)


def monitors():
    return [SpikeMonitor("e"), StateMonitor("e", "v", indices=[0, 5]), WeightMonitor("x->e", synapses=[1, 9, 30]),
            PopulationRateMonitor("i")]


def assert_same(together, alone, mons_together=(), mons_alone=()):
    """Spikes identical, states within 1e-6, step counts and monitors the same."""
    assert together.steps_run == alone.steps_run
    for proj in alone.projections:
        np.testing.assert_allclose(together.weights(proj.name), alone.weights(proj.name), atol=1e-6, err_msg=proj.name)
    for name, pop in alone.populations.items():
        for variable in pop.variables:
            a, b = together.state(name, variable), alone.state(name, variable)
            if variable == "spike":
                np.testing.assert_array_equal(a, b)
            else:
                np.testing.assert_allclose(a, b, atol=1e-6, err_msg=f"{name}.{variable}")
    for m, n in zip(mons_together, mons_alone):
        for field in ("t", "i", "values", "rate"):
            if hasattr(n, field):
                np.testing.assert_array_equal(getattr(m, field), getattr(n, field), err_msg=f"{type(n)}.{field}")


@pytest.mark.parametrize("compiled", [True, False], ids=["compiled", "python"])
def test_every_member_ends_where_it_ends_alone(compiled):
    rng = np.random.default_rng(0)
    steps = (90, 70) if compiled else (25,)
    xs = [(rng.random((sum(steps), N_X)) < 0.2).astype(np.float32) for _ in range(K)]
    # event-driven input (tables of different widths) in the compiled loop; from every synapse in the other
    together = [make(k, compiled, events=compiled) for k in range(K)]
    alone = [make(k, compiled, events=compiled) for k in range(K)]
    mons_t, mons_a = [monitors() for _ in range(K)], [monitors() for _ in range(K)]
    ens, done = NetworkEnsemble(together), 0
    for n in steps:  # split across calls: each goes on where it stood
        ens.run(inputs=[{"x": x[done:done + n]} for x in xs], monitors=mons_t)
        for net, x, mons in zip(alone, xs, mons_a):
            net.run(inputs={"x": x[done:done + n]}, monitors=mons)
        done += n
    for k in range(K):
        assert_same(together[k], alone[k], mons_t[k], mons_a[k])
    counts = [m[0].i.size for m in mons_t]
    assert min(counts) > 10 and len(set(counts)) > 1  # the members fired, differently
    w = [net.weights("x->e") for net in together]
    assert np.abs(w[0] - w[1]).max() > 0.01  # and learned differently
    # different random synapses, and event-driven tables of different widths, each its own
    pre = [net.connectivity("x->e").indices()[0] for net in together]
    assert not np.array_equal(pre[0], pre[1])


def test_one_input_for_all_members_a_reward_each_and_periodic_monitors():
    rng = np.random.default_rng(1)
    T = 300
    x = (rng.random((T, N_X)) < 0.2).astype(np.float32)
    rewards = [np.sin(np.arange(T) / (5.0 + k)).astype(np.float32) for k in range(K)]
    # (input from every synapse: the members alone then share two compilations)
    together = [make(k, reward=True, events=False) for k in range(K)]
    alone = [make(k, reward=True, events=False) for k in range(K)]
    for net in together + alone:
        net.chunk_size = None  # periodic monitors then read the state between chunks
    mons_t = [[StateMonitor("e", "v", every=128), SpikeMonitor("i")] for _ in range(K)]
    mons_a = [[StateMonitor("e", "v", every=128), SpikeMonitor("i")] for _ in range(K)]
    NetworkEnsemble(together).run(inputs={"x": x}, reward=rewards, monitors=mons_t)
    for net, r, mons in zip(alone, rewards, mons_a):
        net.run(inputs={"x": x}, reward=r, monitors=mons)
    for k in range(K):
        assert_same(together[k], alone[k], mons_t[k], mons_a[k])
    assert mons_t[0][0].values.shape == (2, N_E)
    # one reward for all
    NetworkEnsemble(together).run(inputs={"x": x[:50]}, reward=0.5)
    for net in alone:
        net.run(inputs={"x": x[:50]}, reward=0.5)
    for k in range(K):
        assert_same(together[k], alone[k])


def test_a_member_matches_the_numpy_reference():
    """Two members of given weights and per-synapse delays; the second against the
    NumPy transcription of the step (tests/network_reference.py)."""
    rng = np.random.default_rng(2)
    n_in, n_e, T = 20, 8, 150
    xs = (rng.random((T, n_in)) < 0.15).astype(np.float32)
    RULE = dict(A_plus=0.02, A_minus=0.021, lr=1.0, w_min=0.0, w_max=1.0, d_pre=0.9, d_post=0.85)
    masks = [rng.random((n_e, n_in)) < 0.6, rng.random((n_e, n_e)) < 0.4]
    nets, described = [], None
    for k, leak in enumerate((0.8, 0.9)):
        W_in, W_ee = rng.uniform(0, 0.3, (n_e, n_in)), rng.uniform(0, 0.15, (n_e, n_e))
        D_in, D_ee = rng.integers(0, 4, (n_e, n_in)), rng.integers(1, 4, (n_e, n_e))
        parts = []
        for pre, W, D, mask in (("x", W_in, D_in, masks[0]), ("e", W_ee, D_ee, masks[1])):
            post_i, pre_j = np.nonzero(mask)
            parts.append(Projection(pre, "e", weights=W[post_i, pre_j], connectivity=Sparse(pre_j, post_i),
                                    delay=D[post_i, pre_j].astype(np.int32), rule=rules.pair(0.02, 0.021),
                                    learning_rate=1.0, d_pre=0.9, d_post=0.85))
        nets.append(Network({"x": SpikeInput(n_in), "e": LayerLIF(n_e, leak=leak, threshold=1.0)}, parts, dt=0.1))
        described = [dict(pre=pre, post="e", W=W, mask=mask.astype(np.float32), D=D, receptor="exc", rule=RULE)
                     for pre, W, D, mask in (("x", W_in, D_in, masks[0]), ("e", W_ee, D_ee, masks[1]))]
    spikes = [SpikeMonitor("e"), SpikeMonitor("e")]
    NetworkEnsemble(nets).run(inputs={"x": xs}, monitors=[[spikes[0]], [spikes[1]]])
    out, W_ref, state = ref.run({"x": ("input", n_in), "e": ("layer", n_e, 0.9, 1.0, 0.0)}, described, ["x", "e"],
                                {"x": xs}, T, 0.1)
    steps, neurons = np.nonzero(out["e"])
    np.testing.assert_array_equal(spikes[1].i, neurons)
    np.testing.assert_allclose(spikes[1].t, steps * 0.1, atol=1e-9)
    assert 0.03 < out["e"].mean() < 0.8
    for proj, d, W in zip(nets[1].projections, described, W_ref):
        pre, post = nets[1].connectivity(proj.name).indices()
        np.testing.assert_allclose(nets[1].weights(proj.name), W[post, pre], atol=2e-5, err_msg=proj.name)
        assert np.abs(W[post, pre] - d["W"][post, pre]).max() > 0.01  # plasticity did something
    np.testing.assert_allclose(nets[1].state("e", "v"), state["e"]["v"], atol=1e-4)
    assert spikes[0].i.size != spikes[1].i.size  # the other member, of another leak, spiked otherwise


def test_structures_that_differ_are_refused_naming_the_difference():
    base = make(0)
    cases = [
        (make(1, n_e=9), r"network 1 differs from network 0: population 'e' has n=9, not 8"),
        (make(1, delay_ee=2), r"projection 'e->e' has delay 2, not 1"),
        (make(1, reward=True), r"projection 'x->e' has rule 'Reward', not 'Pair'"),
        (make(1, compiled=False), r"it has compiled False, not True"),
    ]
    for other, message in cases:
        with pytest.raises(ValueError, match=message):
            NetworkEnsemble([base, other])
    with pytest.raises(ValueError, match=r"projection 'x->e' has a different rule.pairing \('causal' against"):
        other = make(1)
        other.projections[0].rule = rules.pair(0.01, 0.01, pairing="causal")
        NetworkEnsemble([base, other])
    with pytest.raises(ValueError, match="one network is given twice"):
        NetworkEnsemble([base, base])
    with pytest.raises(ValueError, match="member_axis needs a mesh="):
        NetworkEnsemble([base], member_axis="members")
    ens = NetworkEnsemble([base, make(1)])
    with pytest.raises(ValueError, match=r"monitors\[1\] must record what monitors\[0\] records"):
        ens.run(5, inputs={"x": np.zeros((5, N_X))}, monitors=[[SpikeMonitor("e")], [SpikeMonitor("i")]])
    with pytest.raises(ValueError, match=r"monitors must be a list of 2 lists"):
        ens.run(5, inputs={"x": np.zeros((5, N_X))}, monitors=[SpikeMonitor("e")])
    with pytest.raises(ValueError, match=r"inputs must be one for all members or a list of 2"):
        ens.run(5, inputs=[{"x": np.zeros((5, N_X))}] * 3)
    with pytest.raises(ValueError, match=r"one length, got \[4, 5\] steps"):
        ens.run(inputs=[{"x": np.zeros((5, N_X))}, {"x": np.zeros((4, N_X))}])
    with pytest.raises(TypeError, match="reward= is given but no plastic projection's rule takes a reward"):
        ens.run(5, inputs={"x": np.zeros((5, N_X))}, reward=1.0)
    assert base.steps_run == 0


def test_a_failed_run_changes_no_member_and_no_monitor():
    nets = [make(k) for k in range(K)]
    before = [(net.weights("x->e"), net.state("e", "v"), net.steps_run) for net in nets]
    mons = [monitors() for _ in range(K)]
    ens = NetworkEnsemble(nets)
    x = (np.random.default_rng(3).random((40, N_X)) < 0.2).astype(np.float32)
    with pytest.raises(ValueError, match=r"inputs of member 1: inputs\['x'\] must have shape \(T, 16\), got shape"):
        ens.run(inputs=[{"x": x}, {"x": x[:, :5]}, {"x": x}], monitors=mons)
    with pytest.raises(ValueError, match=r"inputs\['x'\] must be finite"):
        ens.run(inputs={"x": np.full((40, N_X), np.nan)}, monitors=mons)
    with pytest.raises(FloatingPointError, match=r"non-finite values in \['e.v'.*\] of network 2; no network was"):
        ens.run(inputs=[{"x": x}, {"x": x}, {"x": x * 3e38}], monitors=mons)
    for net, (W, v, n) in zip(nets, before):
        np.testing.assert_array_equal(net.weights("x->e"), W)
        np.testing.assert_array_equal(net.state("e", "v"), v)
        assert net.steps_run == n
    assert all(m.t.size == 0 for ms in mons for m in ms)
    NetworkEnsemble(nets[:2]).run(inputs={"x": x}, monitors=mons[:2])  # the others run on
    assert mons[0][0].t.size > 0
