"""Encoders and the Diehl & Cook readout against independent references."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from canns_stdp import readout
from canns_stdp.encoders import latency_encode, poisson_encode, poisson_events, rate_to_probability


def test_rate_to_probability_formula():
    p = np.asarray(rate_to_probability(np.array([0.0, 127.5, 255.0, 300.0]), 255.0, 128.0, 1.0))
    np.testing.assert_allclose(p, [0.0, 0.064, 0.128, 0.128 * 300 / 255], rtol=1e-6)
    assert float(rate_to_probability(np.array([10.0]), 1.0, 1e6)[0]) == 1.0  # clipped


def test_poisson_rates_match_probability_and_key_reproduces():
    p = np.array([0.0, 0.02, 0.1, 0.5, 1.0], np.float32)
    T = 20000
    s = np.asarray(poisson_encode(jax.random.PRNGKey(3), p, T))
    assert s.shape == (T, 5) and set(np.unique(s)) <= {0.0, 1.0}
    # binomial standard error sqrt(p(1-p)/T); allow 5 of them
    tol = 5 * np.sqrt(p * (1 - p) / T) + 1e-9
    assert np.all(np.abs(s.mean(0) - p) <= tol)
    again = np.asarray(poisson_encode(jax.random.PRNGKey(3), p, T))
    other = np.asarray(poisson_encode(jax.random.PRNGKey(4), p, T))
    np.testing.assert_array_equal(s, again)
    assert (s != other).any()
    # independent across steps: lag-1 correlation of the p = 0.5 train is ~0
    x = s[:, 3] - s[:, 3].mean()
    assert abs((x[1:] * x[:-1]).mean() / x.var()) < 5 / np.sqrt(T)


def test_poisson_events_rates_layout_and_seeding():
    n_in, T = 6, 4000
    p = np.array([[0.0, 0.02, 0.1, 0.3, 1.0, 0.0], [0.5, 0.0, 0.0, 0.05, 0.0, 0.2]], np.float32)
    ev = poisson_events(p, T, np.random.default_rng(3))
    width = ev.shape[2]
    assert ev.shape[:2] == (2, T) and width >= 8 and width & (width - 1) == 0
    for b in range(2):
        dense = np.zeros((T, n_in + 1))
        np.add.at(dense, (np.repeat(np.arange(T), width), ev[b].ravel()), 1)
        assert dense[:, :n_in].max() == 1                      # an input at most once per step
        rows = ev[b]
        real = rows < n_in
        assert (np.diff(np.where(real, rows, n_in + 1), axis=1) > 0)[real[:, 1:]].all()  # sorted
        assert not (real[:, 1:] & ~real[:, :-1]).any()        # padding only at the end
        rate = dense[:, :n_in].mean(0)
        sd = np.sqrt(p[b] * (1 - p[b]) / T)
        assert np.all(np.abs(rate - p[b]) <= 5 * sd + 1e-12), (rate, p[b])
    # one generator per sample: a sample's spikes do not depend on the other samples
    one = poisson_events(p[1:], 50, [np.random.default_rng(7)])
    two = poisson_events(p, 50, [np.random.default_rng(1), np.random.default_rng(7)])
    np.testing.assert_array_equal(one[0][:, :3], two[1][:, :3])  # sample 1 has 3 live inputs
    with pytest.raises(ValueError, match="rng"):
        poisson_events(p, 5, [np.random.default_rng(0)])


def test_latency_encode_fires_once_at_the_formula_time():
    values = np.array([1.0, 0.75, 0.5, 0.1, 0.0])
    T = 21
    s = np.asarray(latency_encode(values, T))
    assert s.shape == (T, 5)
    for j, v in enumerate(values):
        if v == 0:
            assert s[:, j].sum() == 0
        else:
            assert s[:, j].sum() == 1 and np.argmax(s[:, j]) == round((1 - v) * (T - 1))


def _brute_force(counts, labels, C):
    """Per-neuron, per-class loops written directly from Diehl & Cook's description."""
    S, N = counts.shape
    rates = np.zeros((N, C))
    for i in range(N):
        for c in range(C):
            members = [k for k in range(S) if labels[k] == c]
            rates[i, c] = np.mean([counts[k, i] for k in members]) if members else 0.0
    assign = np.array([int(np.argmax(rates[i])) if rates[i].sum() > 0 else -1 for i in range(N)])
    prop = np.array([rates[i] / rates[i].sum() if rates[i].sum() > 0 else np.zeros(C) for i in range(N)])
    return rates, assign, prop


def _vote(counts, assign, weights, C):
    preds = []
    for n in counts:
        scores = []
        for c in range(C):
            members = [i for i in range(len(assign)) if assign[i] == c]
            scores.append(np.mean([n[i] * weights[i] for i in members]) if members else -np.inf)
        preds.append(int(np.argmax(scores)))
    return np.array(preds)


def test_readout_matches_brute_force(rng):
    C, N, S = 4, 12, 60
    labels = rng.integers(0, C, S)
    counts = rng.poisson(2.0, (S, N)).astype(float)
    counts[:, 5] = 0  # a silent neuron
    rates, assign, prop = _brute_force(counts, labels, C)
    a, p, r = readout.assign_labels(counts, labels, C)
    np.testing.assert_allclose(r, rates)
    np.testing.assert_array_equal(a, assign)
    np.testing.assert_allclose(p, prop)
    test = rng.poisson(2.0, (25, N)).astype(float)
    np.testing.assert_array_equal(readout.predict_all_activity(test, a, C),
                                  _vote(test, assign, np.ones(N), C))
    w = np.array([prop[i, assign[i]] if assign[i] >= 0 else 0 for i in range(N)])
    np.testing.assert_array_equal(readout.predict_proportion(test, a, p, C), _vote(test, assign, w, C))


def test_readout_small_hand_example():
    counts = np.array([[3, 0, 1], [0, 2, 1], [4, 0, 0]])
    labels = np.array([0, 1, 0])
    a, p, r = readout.assign_labels(counts, labels, 2)
    np.testing.assert_allclose(r, [[3.5, 0], [0, 2], [0.5, 1]])
    np.testing.assert_array_equal(a, [0, 1, 1])
    # class 0: neuron 0 -> 5; class 1: mean of neurons 1, 2 -> (0 + 4)/2 = 2
    assert readout.predict_all_activity(np.array([[5, 0, 4]]), a, 2).tolist() == [0]
    m = readout.confusion_matrix(np.array([0, 1, 1]), np.array([0, 1, 0]), 2)
    np.testing.assert_array_equal(m, [[1, 1], [0, 1]])


def test_readout_rejects_bad_labels():
    with pytest.raises(ValueError, match="labels must be in"):
        readout.assign_labels(np.ones((2, 3)), np.array([0, 5]), 3)
    with pytest.raises(ValueError, match="labels must have shape"):
        readout.assign_labels(np.ones((2, 3)), np.array([0]), 3)


@pytest.mark.parametrize("call, error, match", [
    (lambda r: poisson_events(np.full((2, 3), 1.5), 5, r), ValueError, r"probabilities must be in \[0, 1\], got values in \[1.5, 1.5\]"),
    (lambda r: poisson_events(np.full((2, 3), -0.5), 5, r), ValueError, r"probabilities must be in \[0, 1\]"),
    (lambda r: poisson_events(np.full((2, 3), np.nan), 5, r), ValueError, r"probabilities must be finite"),
    (lambda r: poisson_events(np.full(3, 0.5), 5, r), ValueError, r"shape \(N, n_in\) with N, n_in >= 1, got shape \(3,\)"),
    (lambda r: poisson_events(np.zeros((0, 3)), 5, r), ValueError, r"got shape \(0, 3\)"),
    (lambda r: poisson_events(np.full((2, 3), 0.5), 0, r), ValueError, r"n_steps must be a positive integer, got 0"),
    (lambda r: poisson_events(np.full((2, 3), 0.5), 2.5, r), ValueError, r"n_steps must be a positive integer, got 2.5"),
    (lambda r: poisson_events(np.full((2, 3), 0.5), 5, 3), TypeError, r"rng must be a numpy.random.Generator"),
    (lambda r: poisson_events(np.full((2, 3), 0.5), 5, [1, 2]), TypeError, r"rng must be a numpy.random.Generator"),
    (lambda r: poisson_events(np.full((2, 3), 0.5), 5, [r]), ValueError, r"rng must be a Generator or 2 generators, got 1"),
    (lambda r: poisson_encode(jax.random.PRNGKey(0), np.full(3, 2.0), 3), ValueError, r"probability must be in \[0, 1\]"),
    (lambda r: poisson_encode(jax.random.PRNGKey(0), np.full(3, 0.5), -1), ValueError, r"n_steps must be a positive integer, got -1"),
    (lambda r: poisson_encode("k", np.full(3, 0.5), 3), TypeError, r"key must be a jax.random key"),
    (lambda r: rate_to_probability([1.0], 0.0), ValueError, r"value_max must be > 0, got 0.0"),
    (lambda r: rate_to_probability([np.nan], 1.0), ValueError, r"values must be finite, got nan at index \(0,\)"),
    (lambda r: rate_to_probability([1.0], 1.0, max_rate_hz=-1), ValueError, r"max_rate_hz must be >= 0, got -1"),
    (lambda r: latency_encode([1.0], 0), ValueError, r"n_steps must be a positive integer, got 0"),
    (lambda r: latency_encode([1.0], 3, 0.0), ValueError, r"value_max must be > 0, got 0.0"),
    (lambda r: latency_encode([np.inf], 3), ValueError, r"values must be finite, got inf"),
])
def test_encoders_refuse_bad_arguments_naming_them(call, error, match):
    with pytest.raises(error, match=match):
        call(np.random.default_rng(0))


def test_poisson_encode_still_runs_inside_jit():
    encode = jax.jit(lambda key, p: poisson_encode(key, p, 4))
    spikes = encode(jax.random.PRNGKey(1), jnp.full(3, 1.0))
    np.testing.assert_array_equal(spikes, np.ones((4, 3)))  # probability 1 fires at every step


@pytest.mark.parametrize("call, error, match", [
    (lambda: readout.assign_labels(np.full((2, 3), np.nan), [0, 1], 2), ValueError, r"counts must be finite"),
    (lambda: readout.assign_labels(-np.ones((2, 3)), [0, 1], 2), ValueError, r"counts must be >= 0, got -1.0"),
    (lambda: readout.assign_labels("abc", [0, 1], 2), TypeError, r"counts must be an array"),
    (lambda: readout.assign_labels(np.ones((2, 3)), [0.5, 1.0], 2), TypeError, r"labels must hold integers"),
    (lambda: readout.assign_labels(np.ones((2, 3)), [0, 1], 0), ValueError, r"n_classes must be a positive integer, got 0"),
    (lambda: readout.class_rates(np.ones((2, 3)), [0, 1], 1.5), ValueError, r"n_classes must be a positive integer, got 1.5"),
    (lambda: readout.predict_all_activity(np.ones((2, 3)), np.zeros(5, int), 2), ValueError, r"assignments must have shape \(3,\), got shape \(5,\)"),
    (lambda: readout.predict_all_activity(np.ones((2, 3)), [0, 7, 1], 2), ValueError, r"assignments must be in \[-1, 2\), got values in \[0, 7\]"),
    (lambda: readout.predict_proportion(np.ones((2, 3)), [0, 0, 1], np.ones((2, 2)), 2), ValueError, r"proportions must have shape \(3, 2\)"),
    (lambda: readout.predict_proportion(np.ones((2, 3)), [0, 0, 1], np.full((3, 2), np.nan), 2), ValueError, r"proportions must be finite"),
    (lambda: readout.accuracy([1, 2, 3], [1, 2]), ValueError, r"predicted must have shape \(2,\), got shape \(3,\)"),
    (lambda: readout.accuracy([], []), ValueError, r"labels must be a non-empty 1-D array"),
    (lambda: readout.confusion_matrix([5], [0], 2), ValueError, r"predicted must be in \[0, 2\), got values in \[5, 5\]"),
    (lambda: readout.confusion_matrix([0], [-1], 2), ValueError, r"labels must be in \[0, 2\)"),
])
def test_readout_refuses_bad_arguments_naming_them(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_poisson_spikes_fire_at_their_rates_in_hz():
    from canns_stdp.encoders import poisson_spikes

    rates = np.array([0.0, 5.0, 40.0, 200.0])
    spikes = poisson_spikes(rates, n_steps=20_000, dt_ms=0.5, seed=3)
    assert spikes.shape == (20_000, 4) and set(np.unique(spikes)) <= {0.0, 1.0}
    p = rates * 0.5 / 1000
    expected, sd = p * 20_000, np.sqrt(20_000 * p * (1 - p))
    assert np.all(np.abs(spikes.sum(axis=0) - expected) <= 5 * sd)   # binomial counts
    assert np.array_equal(poisson_spikes(rates, 100, 0.5, seed=3), poisson_spikes(rates, 100, 0.5, seed=3))
    with pytest.raises(ValueError, match=r"rates_hz must be in \[0, 2000\] Hz for dt_ms=0.5"):
        poisson_spikes([2500.0], 10, dt_ms=0.5)
    with pytest.raises(ValueError, match=r"got values in \[-1, -1\]"):
        poisson_spikes([-1.0], 10)
