"""CompetitiveNetwork: compiled == Python loop, seeded, and bad input changes nothing."""

import numpy as np
import pytest

from canns_stdp.competitive import CompetitiveNetwork


def _net(compiled):
    return CompetitiveNetwork(16, 6, steps_per_sample=30, compiled=compiled, seed=1, block=3, batch=4,
                              norm=3.0, threshold=1.0, v_reset=0.2, tau_m=20.0, w_inh=0.5,
                              refractory=2, theta_plus=0.1, nu_post=0.2, nu_pre=0.05, w_init=0.4)


def test_compiled_and_python_give_identical_counts_and_weights(rng):
    probs = (0.3 * rng.random((7, 16))).astype(np.float32)  # 7 = 2 full blocks + a partial one
    a, b = _net(True), _net(False)
    ca = a.present(probs, learn=True, seed=5)
    cb = b.present(probs, learn=True, seed=5)
    assert ca.sum() > 10
    np.testing.assert_array_equal(ca, cb)
    np.testing.assert_allclose(a.W, b.W, atol=1e-6)
    np.testing.assert_allclose(a.theta, b.theta, atol=1e-6)
    assert np.abs(a.W - _net(True).W).max() > 0.01  # learning moved the weights
    # testing runs the samples side by side (compiled) or one by one (Python): same counts
    np.testing.assert_array_equal(a.present(probs, learn=False, seed=2),
                                  b.present(probs, learn=False, seed=2))
    # the spike counts follow the seed, and learning off leaves W and theta alone
    W, theta = a.W.copy(), a.theta.copy()
    t1 = a.present(probs, learn=False, seed=9)
    t2 = a.present(probs, learn=False, seed=9)
    np.testing.assert_array_equal(t1, t2)
    np.testing.assert_array_equal(a.W, W)
    np.testing.assert_array_equal(a.theta, theta)


@pytest.mark.parametrize("bad,match", [
    (np.full((2, 15), 0.1), r"shape \(N, 16\)"),
    (np.full((2, 16), 1.5), r"in \[0, 1\]"),
    (np.full((2, 16), np.nan), "finite"),
])
def test_bad_input_raises_and_changes_nothing(bad, match):
    net = _net(True)
    before = [np.asarray(x).copy() for x in net.state]
    with pytest.raises(ValueError, match=match):
        net.present(bad, learn=True)
    for x, y in zip(before, net.state):
        np.testing.assert_array_equal(x, np.asarray(y))


def test_constructor_errors_name_the_parameter():
    with pytest.raises(ValueError, match="n_neurons"):
        CompetitiveNetwork(4, 0)
    with pytest.raises(ValueError, match="tau_m"):
        CompetitiveNetwork(4, 2, tau_m=-1.0)
    with pytest.raises(ValueError, match="W_init"):
        CompetitiveNetwork(4, 2, W_init=np.zeros((3, 4)))


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(v_reset=np.nan), ValueError, r"v_reset must be finite, got nan"),
    (dict(v_min=np.nan), ValueError, r"v_min must be a finite number or -inf \(no floor\), got nan"),
    (dict(v_min=np.inf), ValueError, r"v_min must be a finite number or -inf"),
    (dict(W_init=np.full((2, 4), np.nan)), ValueError, r"W_init must be finite, got nan at index \(0, 0\)"),
    (dict(W_init="abc"), TypeError, r"W_init must be an array or a sequence of rows, got str"),
    (dict(compiled="no"), TypeError, r"compiled must be True or False, got 'no'"),
    (dict(normalize="no"), TypeError, r"normalize must be True or False, got 'no'"),
    (dict(refractory=2.5), ValueError, r"refractory must be an integer >= 0, got 2.5"),
    (dict(seed="a"), TypeError, r"seed must be an integer >= 0, got 'a'"),
    (dict(seed=1.5), TypeError, r"seed must be an integer >= 0, got 1.5"),
    (dict(seed=-1), ValueError, r"seed must be an integer >= 0, got -1"),
])
def test_constructor_refuses_bad_arguments_naming_them(kwargs, error, match):
    with pytest.raises(error, match=match):
        CompetitiveNetwork(4, 2, **kwargs)


def test_a_floor_of_minus_infinity_and_integer_refractory_steps_are_accepted():
    net = CompetitiveNetwork(4, 2, v_min=-np.inf, refractory=np.int64(3), seed=np.int64(2))
    assert net.params.v_min == -np.inf and net.params.refractory == 3.0


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(learn="False"), TypeError, r"learn must be True or False, got 'False'"),
    (dict(learn=True, seed="a"), TypeError, r"seed must be an integer >= 0, got 'a'"),
    (dict(learn=True, seed=-2), ValueError, r"seed must be an integer >= 0, got -2"),
    (dict(learn=True, progress="yes"), TypeError, r"progress must be True or False, got 'yes'"),
    (dict(learn=True, desc=3), TypeError, r"desc must be a string or None, got 3"),
])
def test_present_refuses_bad_arguments_and_changes_nothing(kwargs, error, match):
    net = _net(True)
    before = [np.asarray(x).copy() for x in net.state]
    with pytest.raises(error, match=match):
        net.present(np.full((2, 16), 0.1), **kwargs)
    with pytest.raises(TypeError, match="probabilities must be an array"):
        net.present("abc", learn=True)
    for x, y in zip(before, net.state):
        np.testing.assert_array_equal(x, np.asarray(y))


@pytest.mark.parametrize("kwargs, match", [
    (dict(inhibition_delay=True), r"inhibition_delay must be 1 or 2 \(steps\), got True"),
    (dict(inhibition_delay=2.0), r"inhibition_delay must be 1 or 2 \(steps\), got 2.0"),
    (dict(input_delay=1.0), r"input_delay must be 0 or 1 \(steps\), got 1.0"),
    (dict(k=True), r"k must be an integer >= 0, got True"),
])
def test_step_counts_are_integers_not_bools_or_floats(kwargs, match):
    with pytest.raises(ValueError, match=match):
        CompetitiveNetwork(4, 2, **kwargs)


def test_numpy_integers_are_integers():
    net = CompetitiveNetwork(4, 2, k=np.int64(1), inhibition_delay=np.int32(1), input_delay=np.int8(0))
    assert (net.k, net._config.inhibition_delay, net._config.input_delay) == (1, 1, 0)
