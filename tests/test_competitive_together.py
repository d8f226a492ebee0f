"""Competitive networks trained together end where each one's own present() leaves it."""

import numpy as np
import pytest

from canns_stdp.competitive import CompetitiveNetwork
import canns_stdp.competitive_together as together
from canns_stdp.competitive_together import present_together

N_IN, N_OUT, STEPS = 36, 12, 40


def network(seed, **kw):
    return CompetitiveNetwork(N_IN, N_OUT, seed=seed, **{"norm": 4.0, "steps_per_sample": STEPS, "block": 4, **kw})


@pytest.mark.parametrize("shared", [True, False])
def test_each_network_ends_where_it_ends_alone(rng, shared):
    kw = [dict(theta_plus=0.05, nu_post=0.01), dict(theta_plus=0.1, nu_post=0.02), dict(theta_plus=0.02)]
    images = [(rng.random((10, N_IN)) * 0.4).astype(np.float32) for _ in kw]  # 10 samples: blocks of 4, 4, 2
    given = images[0] if shared else images
    alone = [network(k, **w) for k, w in enumerate(kw)]
    together = [network(k, **w) for k, w in enumerate(kw)]
    expected = [net.present(images[0] if shared else x, learn=True, seed=20 + k)
                for k, (net, x) in enumerate(zip(alone, images))]
    counts = present_together(together, given, learn=True, seeds=[20, 21, 22])
    assert sum(c.sum() for c in expected) > 50  # the networks fire
    for a, b, want, got in zip(alone, together, expected, counts):
        np.testing.assert_array_equal(got, want)
        np.testing.assert_array_equal(b.W, a.W)
        np.testing.assert_array_equal(b.theta, a.theta)
    # learning off: each network's own side-by-side pass, from the states trained together
    test = (rng.random((6, N_IN)) * 0.4).astype(np.float32)
    for want, got in zip([n.present(test, learn=False, seed=9) for n in alone],
                         present_together(together, test, learn=False, seeds=[9, 9, 9])):
        np.testing.assert_array_equal(got, want)


def test_networks_of_other_shapes_or_rules_are_refused_naming_the_difference(rng):
    images = (rng.random((4, N_IN)) * 0.4).astype(np.float32)
    with pytest.raises(ValueError, match=r"network 1 differs from network 0 in n_neurons \(13 against 12\)"):
        present_together([network(0), CompetitiveNetwork(N_IN, 13, steps_per_sample=STEPS, block=4)], images,
                         learn=True, seeds=[0, 1])
    with pytest.raises(ValueError, match=r"network 1 differs from network 0 in inhibition_delay \(1 against 2\)"):
        present_together([network(0), network(1, inhibition_delay=1)], images, learn=True, seeds=[0, 1])
    with pytest.raises(ValueError, match=r"seeds must hold one seed per network \(2\), got 3"):
        present_together([network(0), network(1)], images, learn=True, seeds=[0, 1, 2])
    with pytest.raises(ValueError, match="one network appears twice"):
        net = network(0)
        present_together([net, net], images, learn=True, seeds=[0, 1])
    with pytest.raises(ValueError, match="one shape"):
        present_together([network(0), network(1)], [images, images[:3]], learn=True, seeds=[0, 1])


def test_a_failed_call_changes_no_network(rng, monkeypatch):
    nets = [network(0), network(1, W_init=np.full((N_OUT, N_IN), 0.2))]
    before = [(n.W.copy(), n.theta.copy()) for n in nets]
    bad = (rng.random((4, N_IN)) * 0.4).astype(np.float32)
    bad[2, 3] = 1.5
    with pytest.raises(ValueError, match=r"probabilities must be in \[0, 1\]"):
        present_together(nets, [bad * 0.5, bad], learn=True, seeds=[0, 1])
    # a network's thresholds turned non-finite at the end of the call: none is changed
    broken = together.begin_sample
    monkeypatch.setattr(together, "begin_sample",
                        lambda config, params, state: broken(config, params, state)._replace(theta=state.theta / 0.0))
    with pytest.raises(FloatingPointError, match="no network was changed"):
        present_together(nets, bad * 0.5, learn=True, seeds=[0, 1])
    for n, (W, theta) in zip(nets, before):
        np.testing.assert_array_equal(n.W, W)
        np.testing.assert_array_equal(n.theta, theta)
