"""Ensemble: K models in one call; each member ends where it would have ended alone."""

import numpy as np
import pytest

import reference
from canns_stdp import ConvSpikingLayer, Ensemble, SpikingLayer, STDPTrainer, Trainer, rules

N_IN, N_OUT, T = 16, 4, 120


def inputs(rng, K=None, T=T, shape=(N_IN,), p=0.3):
    size = (T,) + tuple(shape) if K is None else (K, T) + tuple(shape)
    return (rng.random(size) < p).astype(np.float32)


@pytest.mark.parametrize("compiled", [True, False])
def test_pair_members_match_the_numpy_reference(rng, compiled):
    lrs, thresholds, A_plus = [0.2, 0.5, 1.0], [1.0, 1.5, 2.0], [0.02, 0.05, 0.08]
    W0 = [rng.uniform(0.1, 0.5, (N_OUT, N_IN)).astype(np.float32) for _ in lrs]
    xs = inputs(rng, K=3)  # one sequence per member
    members = [STDPTrainer(SpikingLayer(N_IN, N_OUT, W_init=W, threshold=th), learning_rate=lr, A_plus=a,
                           A_minus=0.06, compiled=compiled)
               for W, th, lr, a in zip(W0, thresholds, lrs, A_plus)]
    spikes = Ensemble(members).train(list(xs), return_spikes=True)
    assert spikes.shape == (3, T, N_OUT)
    for k, t in enumerate(members):
        W_ref, v_ref, pre_ref, post_ref, s_ref = reference.run(W0[k], xs[k], threshold=thresholds[k], lr=lrs[k],
                                                               A_plus=A_plus[k], A_minus=0.06)
        assert 0.02 < s_ref.mean() < 0.9
        np.testing.assert_array_equal(spikes[k], s_ref)
        np.testing.assert_allclose(t.model.W.value, W_ref, atol=2e-5)
        np.testing.assert_allclose(t.model.v.value, v_ref, atol=2e-5)
        np.testing.assert_allclose(t.model.trace_post.value, post_ref, atol=1e-5)


def rule_of(kind, a):
    return {"triplet": rules.triplet(A2_plus=a, A3_plus=0.02, tau_x=20.0, tau_y=30.0),
            "rstdp": rules.reward(rules.pair(A_plus=a, A_minus=0.04), "rstdp", tau_c=15.0, tau_d=10.0),
            "restricted": rules.restricted(A_plus=a, A_minus=0.04, tau_pre=8.0, tau_post=12.0)}[kind]


@pytest.mark.parametrize("kind", ["triplet", "rstdp", "restricted"])
@pytest.mark.parametrize("compiled", [True, False])
def test_members_end_where_they_end_alone(rng, kind, compiled):
    amps, lrs = [0.01, 0.03, 0.06, 0.1], [0.3, 0.6, 0.9, 1.2]
    W0 = [rng.uniform(0.1, 0.5, (N_OUT, N_IN)).astype(np.float32) for _ in amps]
    xs = inputs(rng)  # one sequence for all
    reward = [np.sin(np.arange(T) / (k + 3.0)).astype(np.float32) for k in range(4)]  # one per member

    def make(k):
        return Trainer(SpikingLayer(N_IN, N_OUT, W_init=W0[k], threshold=1.5), rule_of(kind, amps[k]),
                       learning_rate=lrs[k], compiled=compiled)

    members, alone = [make(k) for k in range(4)], [make(k) for k in range(4)]
    given = dict(reward=reward) if kind == "rstdp" else {}
    spikes = Ensemble(members).train(xs, return_spikes=True, **given)
    for k in range(4):
        s = alone[k].train(xs, return_spikes=True, **({"reward": reward[k]} if given else {}))
        np.testing.assert_array_equal(spikes[k], s)
        np.testing.assert_allclose(members[k].model.W.value, alone[k].model.W.value, atol=1e-6)
        for name in members[k]._rule_state.names():
            np.testing.assert_allclose(getattr(members[k], name).value, getattr(alone[k], name).value, atol=1e-6)
    assert np.abs(np.asarray(members[3].model.W.value) - W0[3]).max() > 0.01


def test_conv_members_with_batches(rng):
    xs = inputs(rng, T=40, shape=(2, 1, 6, 6))  # (T, B, C, H, W)
    def make(k):
        layer = ConvSpikingLayer(1, 2, 3, input_shape=(6, 6), padding=1, seed=k, threshold=0.5)
        return STDPTrainer(layer, learning_rate=0.05 * (k + 1), batch_reduction="mean")
    members, alone = [make(k) for k in range(3)], [make(k) for k in range(3)]
    spikes = Ensemble(members).train(xs, return_spikes=True)
    for k in range(3):
        np.testing.assert_array_equal(spikes[k], alone[k].train(xs, return_spikes=True))
        np.testing.assert_allclose(members[k].model.W.value, alone[k].model.W.value, atol=1e-6)


def test_mixed_configurations_are_refused_naming_the_difference():
    a = Trainer(SpikingLayer(N_IN, N_OUT, seed=0), rules.pair())
    with pytest.raises(ValueError, match=r"member 1 differs from member 0 in rule.pairing \('causal' against "
                                         r"'symmetric'\)"):
        Ensemble([a, Trainer(SpikingLayer(N_IN, N_OUT, seed=1), rules.pair(pairing="causal"))])
    with pytest.raises(ValueError, match=r"input shape \(\(12,\) against \(16,\)\)"):
        Ensemble([a, Trainer(SpikingLayer(12, N_OUT, seed=1), rules.pair())])
    with pytest.raises(ValueError, match=r"rule \('Triplet' against 'Pair'\)"):
        Ensemble([a, Trainer(SpikingLayer(N_IN, N_OUT, seed=1), rules.triplet())])
    with pytest.raises(ValueError, match="share one"):
        Ensemble([a, Trainer(a.model, rules.pair())])
    Ensemble([a, Trainer(SpikingLayer(N_IN, N_OUT, seed=1), rules.pair(A_plus=0.5), learning_rate=0.3)])


def test_a_failed_call_changes_no_member(rng):
    xs = inputs(rng)
    members = [STDPTrainer(SpikingLayer(N_IN, N_OUT, seed=k), learning_rate=lr, hardbound=False)
               for k, lr in enumerate([0.01, 1e38])]  # the second overflows
    before = [np.array(t.model.W.value) for t in members]
    with pytest.raises(FloatingPointError, match="non-finite"):
        Ensemble(members).train(xs * 50.0)
    with pytest.raises(ValueError, match="one shape"):
        Ensemble(members).train([xs, xs[:50]])
    for t, W in zip(members, before):
        np.testing.assert_array_equal(t.model.W.value, W)
        assert not np.asarray(t.model.v.value).any()


def test_predict_batch_runs_every_member_without_plasticity(rng):
    xs = inputs(rng, T=60)
    members = [Trainer(SpikingLayer(N_IN, N_OUT, seed=k), rules.triplet(tau_x=10.0), learning_rate=0.5)
               for k in range(3)]
    before = [np.array(t.model.W.value) for t in members]
    spikes = Ensemble(members).predict_batch(xs)
    for k, t in enumerate(members):
        *_, s_ref = reference.run(before[k], xs, plastic=False)
        np.testing.assert_array_equal(spikes[k], s_ref)
        np.testing.assert_array_equal(t.model.W.value, before[k])
        assert np.asarray(t.r2.value).any()  # the rule's traces moved


def test_a_list_of_rows_is_one_input_for_all_even_when_it_has_K_rows(rng):
    rows = [list(r) for r in inputs(rng, T=3)]  # 3 steps, 3 members: still one sequence
    members = [STDPTrainer(SpikingLayer(N_IN, N_OUT, seed=k), learning_rate=0.5) for k in range(3)]
    alone = [STDPTrainer(SpikingLayer(N_IN, N_OUT, seed=k), learning_rate=0.5) for k in range(3)]
    spikes = Ensemble(members).train(rows, return_spikes=True)
    assert spikes.shape == (3, 3, N_OUT)
    for k in range(3):
        np.testing.assert_array_equal(spikes[k], alone[k].train(rows, return_spikes=True))
        np.testing.assert_allclose(members[k].model.W.value, alone[k].model.W.value, atol=1e-6)


def test_a_sequence_split_across_calls_ends_where_one_call_ends_alone(rng):
    xs = inputs(rng, K=3, T=90, shape=(2, N_IN))  # per member, with a batch of 2
    reward = np.cos(np.arange(90) / 7.0).astype(np.float32)  # one for all

    def make(k):
        return Trainer(SpikingLayer(N_IN, N_OUT, seed=k, threshold=1.2), rule_of("rstdp", 0.02 * (k + 1)),
                       learning_rate=0.5)
    members, alone = [make(k) for k in range(3)], [make(k) for k in range(3)]
    ensemble = Ensemble(members)
    first = ensemble.train([x[:35] for x in xs], reward=reward[:35], return_spikes=True)
    second = ensemble.train([x[35:] for x in xs], reward=reward[35:], return_spikes=True)
    for k in range(3):
        s = alone[k].train(xs[k], reward=reward, return_spikes=True)
        np.testing.assert_array_equal(np.concatenate([first[k], second[k]]), s)
        np.testing.assert_allclose(members[k].model.W.value, alone[k].model.W.value, atol=1e-6)
        np.testing.assert_allclose(members[k].eligibility.value, alone[k].eligibility.value, atol=1e-6)
        assert members[k].steps_trained == 90
    with pytest.raises(ValueError, match=r"batch of shape \(2,\), the input a batch of shape \(3,\)"):
        ensemble.train(inputs(rng, T=5, shape=(3, N_IN)), reward=1.0)


def test_one_input_for_all_with_imposed_spikes_for_each(rng):
    xs = inputs(rng, T=70)  # shared
    posts = [(rng.random((70, N_OUT)) < 0.1).astype(np.float32) for _ in range(3)]  # one per member
    make = lambda k: Trainer(SpikingLayer(N_IN, N_OUT, seed=k), rules.pair(A_plus=0.02 * (k + 1)), learning_rate=0.4)
    members, alone = [make(k) for k in range(3)], [make(k) for k in range(3)]
    spikes = Ensemble(members).train(xs, posts, return_spikes=True)
    for k in range(3):
        np.testing.assert_array_equal(spikes[k], alone[k].train(xs, posts[k], return_spikes=True))
        np.testing.assert_allclose(members[k].model.W.value, alone[k].model.W.value, atol=1e-6)
        np.testing.assert_array_equal(members[k].model.x.value, xs[-1])
    assert not np.allclose(members[0].model.W.value, members[2].model.W.value)


def test_settings_changed_between_calls_are_used_and_checked_again(rng):
    W0 = rng.uniform(0.1, 0.5, (N_OUT, N_IN)).astype(np.float32)
    xs = inputs(rng)

    def make():
        return STDPTrainer(SpikingLayer(N_IN, N_OUT, W_init=W0, threshold=1.5), learning_rate=0.3, A_minus=0.06)
    members, alone = [make(), make()], make()
    ensemble = Ensemble(members)
    ensemble.train(xs[:60])
    alone.train(xs[:60])
    members[1].learning_rate = alone.learning_rate = 0.9  # a new number: the next call trains with it
    members[1].model.threshold = alone.model.threshold = 1.2
    spikes = ensemble.train(xs[60:], return_spikes=True)
    np.testing.assert_array_equal(spikes[1], alone.train(xs[60:], return_spikes=True))
    np.testing.assert_array_equal(members[1].model.W.value, alone.model.W.value)
    members[0].hardbound = False  # a new static choice: refused as at construction
    W = np.asarray(members[0].model.W.value)
    with pytest.raises(ValueError, match="member 1 differs from member 0 in hardbound"):
        ensemble.train(xs)
    np.testing.assert_array_equal(members[0].model.W.value, W)
