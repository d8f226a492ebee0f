"""Sweeps: every combination of numbers and seeds, each row what its trainer gives alone."""

import numpy as np
import pytest

import reference
from canns_stdp import SpikingLayer, STDPTrainer, Trainer, rules
from canns_stdp.sweep import combinations, sweep

N_IN, N_OUT, T = 16, 4, 150


def data(seed):
    return (np.random.default_rng(100 + seed).random((T, N_IN)) < 0.3).astype(np.float32)


def make(seed, lr, A_plus):
    return STDPTrainer(SpikingLayer(N_IN, N_OUT, seed=seed, threshold=1.5), learning_rate=lr, A_plus=A_plus,
                       A_minus=0.04)


def score(trainer):
    W = np.asarray(trainer.model.W.value)
    return {"mean_w": float(W.mean()), "max_w": float(W.max())}


def test_every_row_is_its_trainer_trained_alone():
    grid = {"lr": [0.2, 0.8], "A_plus": [0.01, 0.05, 0.1]}
    result = sweep(make, grid, data, seeds=[0, 3], score=score, return_spikes=True)
    assert result.columns == ["lr", "A_plus", "seed", "mean_w", "max_w"]
    assert [(r["lr"], r["A_plus"], r["seed"]) for r in result.rows] == [
        (lr, a, s) for lr in grid["lr"] for a in grid["A_plus"] for s in (0, 3)]
    for k, row in enumerate(result.rows):
        alone = make(row["seed"], row["lr"], row["A_plus"])
        W0 = np.array(alone.model.W.value)
        spikes = alone.train(data(row["seed"]), return_spikes=True)
        np.testing.assert_array_equal(result.spikes[k], spikes)
        np.testing.assert_allclose(result.trainers[k].model.W.value, alone.model.W.value, atol=1e-6)
        expected = score(alone)
        assert row["mean_w"] == pytest.approx(expected["mean_w"], abs=1e-6)
        assert row["max_w"] == pytest.approx(expected["max_w"], abs=1e-6)
        # and both against the equations written in NumPy
        W_ref, *_, s_ref = reference.run(W0, data(row["seed"]), threshold=1.5, lr=row["lr"], A_plus=row["A_plus"],
                                         A_minus=0.04)
        np.testing.assert_array_equal(spikes, s_ref)
        np.testing.assert_allclose(alone.model.W.value, W_ref, atol=2e-5)
    assert len(set(np.round(result.column("mean_w"), 6))) > 6  # the members really differ
    assert "A_plus" in result.table().splitlines()[0] and len(result.table().splitlines()) == 13


def test_a_list_of_combinations_and_one_input_for_all():
    X = data(0)
    points = [{"lr": 0.1, "A_plus": 0.02}, {"lr": 0.5, "A_plus": 0.08}]
    result = sweep(make, points, X, score=lambda t: float(np.asarray(t.model.W.value).sum()))
    assert [r["seed"] for r in result.rows] == [0, 0] and result.columns[-1] == "score"
    for row, point in zip(result.rows, points):
        alone = make(0, **point)
        alone.train(X)
        assert row["score"] == pytest.approx(float(np.asarray(alone.model.W.value).sum()), rel=1e-6)


def test_rule_numbers_can_be_swept_through_make():
    def make_triplet(seed, tau_x):
        return Trainer(SpikingLayer(N_IN, N_OUT, seed=seed), rules.triplet(tau_x=tau_x), learning_rate=0.5)
    result = sweep(make_triplet, {"tau_x": [5.0, 20.0]}, data(1), seeds=[1])
    for row, trainer in zip(result.rows, result.trainers):
        alone = make_triplet(1, row["tau_x"])
        alone.train(data(1))
        np.testing.assert_allclose(trainer.model.W.value, alone.model.W.value, atol=1e-6)


@pytest.mark.parametrize("grid, message", [
    ({"lr": [0.1], "pairing": ["causal", "symmetric"]}, r"sweep parameter 'pairing' must take numbers, got 'causal'"),
    ({"hardbound": [True, False]}, r"sweep parameter 'hardbound' must take numbers, got True"),
    ([{"lr": 0.1}, {"lr": np.tanh}], r"sweep parameter 'lr' must take numbers, got <ufunc 'tanh'>"),
    ({"lr": []}, r"sweep grid\['lr'\] must hold at least one number"),
    ({"lr": "0.1"}, r"sweep grid\['lr'\] must be a list of numbers, got '0.1'"),
    ({"lr": [float("nan")]}, r"sweep parameter 'lr' must take finite numbers, got nan"),
])
def test_non_numeric_values_are_refused_naming_them(grid, message):
    built = []
    with pytest.raises((TypeError, ValueError), match=message):
        sweep(lambda **kw: built.append(kw), grid, data(0))
    assert built == []  # refused before any trainer was built


def test_seeds_and_score_are_checked():
    with pytest.raises(TypeError, match=r"seeds must be integers, got 1.5"):
        combinations({"lr": [0.1]}, seeds=[1.5])
    with pytest.raises(ValueError, match="at least one seed"):
        combinations({"lr": [0.1]}, seeds=[])
    with pytest.raises(ValueError, match=r"score's names \['lr'\] are already columns"):
        sweep(make, {"lr": [0.1], "A_plus": [0.01]}, data(0), score=lambda t: {"lr": 1.0})


def test_a_static_difference_made_by_make_is_refused_by_the_ensemble():
    def make_sizes(seed, n_out):
        return STDPTrainer(SpikingLayer(N_IN, int(n_out), seed=seed))
    with pytest.raises(ValueError, match=r"member 1 differs from member 0 in output shape"):
        sweep(make_sizes, {"n_out": [4, 5]}, data(0))
