"""Trainer(model, rule): its lifecycle (errors change nothing, checkpoints, predict) for any rule."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import reference
from canns_stdp import SpikingLayer, Trainer, rules

N_IN, N_OUT = 12, 4


class Decay(rules.Rule):
    """A rule of the test's own: LTP from the pre trace, and a weight decay toward zero."""

    rate: float = 1.0
    leak: float = 0.1

    def init(self, pre_shape, post_shape):
        return jnp.zeros(post_shape, jnp.float32)  # a count of post spikes

    def update(self, count, pre, post, W, hebbian):
        return self.rate * hebbian(post.spikes, pre.trace) - self.leak * W, count + post.spikes


class WrongShape(rules.Rule):
    def update(self, state, pre, post, W, hebbian):
        return hebbian(post.spikes, pre.spikes)[:, :3], state


def problem(rng, T=80):
    xs = (rng.random((T, N_IN)) < 0.3).astype(np.float32)
    W0 = rng.uniform(0.2, 0.5, (N_OUT, N_IN)).astype(np.float32)
    return xs, W0


def snapshot(layer, trainer, names=()):
    arrays = {n: np.array(getattr(layer, n).value) for n in ("W", "v", "spike", "trace_pre", "trace_post")}
    arrays.update({n: np.array(getattr(trainer, n).value) for n in names})
    return arrays


def assert_unchanged(before, layer, trainer, names=()):
    after = snapshot(layer, trainer, names)
    for name, value in before.items():
        np.testing.assert_array_equal(after[name], value, err_msg=name)


def decay_reference(W0, xs, rate, leak, lr, threshold, d=0.95):
    """NumPy: steps 1-5,  of docs/step.mdthen dW = rate (s ⊗ tr_pre') - leak W, W' = clip(W + lr dW, 0, 1)."""
    W = np.array(W0, np.float32)
    v, tr_pre, tr_post, count = (np.zeros(n, np.float32) for n in (N_OUT, N_IN, N_OUT, N_OUT))
    spikes = []
    for x in xs:
        tr_pre = np.float32(d) * tr_pre + x
        v = np.float32(0.9) * v + W @ x
        s = (v >= threshold).astype(np.float32)
        v = np.where(s > 0, 0.0, v).astype(np.float32)
        tr_post = np.float32(d) * tr_post + s
        W = np.clip(W + np.float32(lr) * (rate * np.outer(s, tr_pre) - leak * W), 0.0, 1.0)
        count = count + s
        spikes.append(s)
    return W, count, np.array(spikes)


@pytest.mark.parametrize("compiled", [True, False])
def test_a_user_rule_with_state_matches_its_reference(rng, compiled):
    xs, W0 = problem(rng)
    layer = SpikingLayer(N_IN, N_OUT, W_init=W0, threshold=3.0)
    trainer = Trainer(layer, Decay(rate=0.5, leak=0.2), learning_rate=0.05, compiled=compiled)
    spikes = trainer.train(xs, return_spikes=True)
    W_ref, count_ref, s_ref = decay_reference(W0, xs, 0.5, 0.2, 0.05, threshold=3.0)
    assert 0.05 < s_ref.mean() < 0.95
    np.testing.assert_array_equal(spikes, s_ref)
    np.testing.assert_allclose(layer.W.value, W_ref, atol=2e-5)
    np.testing.assert_array_equal(trainer.rule_state.value, count_ref)


def test_a_rule_whose_change_does_not_fit_W_is_refused_and_changes_nothing(rng):
    xs, W0 = problem(rng)
    layer = SpikingLayer(N_IN, N_OUT, W_init=W0)
    trainer = Trainer(layer, WrongShape())
    before = snapshot(layer, trainer)
    with pytest.raises(ValueError, match=r"rule WrongShape .*W of shape \(4, 12\)"):
        trainer.train(xs)
    assert_unchanged(before, layer, trainer)


def test_extra_inputs_are_checked_against_the_rule(rng):
    xs, W0 = problem(rng)
    layer = SpikingLayer(N_IN, N_OUT, W_init=W0)
    pair = Trainer(layer, rules.pair())
    with pytest.raises(TypeError, match=r"Pair takes no reward="):
        pair.train(xs, reward=1.0)
    modulated = Trainer(layer, rules.reward(rules.pair(), "mstdp"))
    before = snapshot(layer, modulated, ("eligibility", "dopamine"))
    with pytest.raises(TypeError, match="reward is required by Reward"):
        modulated.train(xs)
    with pytest.raises(ValueError, match=r"reward must be one number or have shape \(80,\)"):
        modulated.train(xs, reward=np.ones(79))
    assert_unchanged(before, layer, modulated, ("eligibility", "dopamine"))
    with pytest.raises(TypeError, match="rule must be a canns_stdp.rules.Rule, got 'pair'"):
        Trainer(layer, "pair")


def test_rule_factories_name_a_bad_argument():
    with pytest.raises(ValueError, match="A_plus must be >= 0, got -1"):
        rules.pair(A_plus=-1.0)
    with pytest.raises(ValueError, match="kind must be one of"):
        rules.reward(rules.pair(), kind="dopamine")
    with pytest.raises(ValueError, match="tau_x must be > 0"):
        rules.triplet(tau_x=0.0)
    with pytest.raises(TypeError, match="wraps a rule"):
        rules.reward("pair")


def test_checkpoint_round_trip_keeps_rule_and_state_and_resumes_exactly(rng, tmp_path):
    xs, W0 = problem(rng, T=120)
    rule = rules.reward(rules.triplet(A2_plus=0.01, A3_plus=0.02, A2_minus=0.012, A3_minus=0.003,
                                      tau_x=30.0, tau_y=40.0, pairing="causal"), "rstdp", tau_c=50.0, tau_d=20.0)
    reward = np.sin(np.arange(120) / 7.0).astype(np.float32)
    whole = Trainer(SpikingLayer(N_IN, N_OUT, W_init=W0), rule, learning_rate=0.5)
    whole.train(xs, reward=reward)

    first = Trainer(SpikingLayer(N_IN, N_OUT, W_init=W0), rule, learning_rate=0.5)
    first.train(xs[:50], reward=reward[:50])
    first.save(tmp_path / "t.npz")
    loaded = Trainer.load(tmp_path / "t.npz")
    assert loaded.rule == rule
    loaded.train(xs[50:], reward=reward[50:])
    for name in ("eligibility", "dopamine", "r2", "o2"):
        np.testing.assert_array_equal(getattr(loaded, name).value, getattr(whole, name).value, err_msg=name)
    np.testing.assert_array_equal(loaded.model.W.value, whole.model.W.value)


def test_user_rule_checkpoint_round_trip(rng, tmp_path):
    xs, W0 = problem(rng)
    trainer = Trainer(SpikingLayer(N_IN, N_OUT, W_init=W0), Decay(rate=0.3, leak=0.05), learning_rate=0.1)
    trainer.train(xs)
    trainer.save(tmp_path / "d.npz")
    loaded = Trainer.load(tmp_path / "d.npz")
    assert loaded.rule == Decay(rate=0.3, leak=0.05)
    np.testing.assert_array_equal(loaded.rule_state.value, trainer.rule_state.value)


def test_predict_batch_moves_traces_of_the_rule_but_not_weights(rng):
    xs, W0 = problem(rng)
    layer = SpikingLayer(N_IN, N_OUT, W_init=W0)
    trainer = Trainer(layer, rules.triplet(tau_x=20.0, tau_y=30.0))
    spikes = trainer.predict_batch(xs)
    *_, s_ref = reference.run(W0, xs, plastic=False)
    np.testing.assert_array_equal(spikes, s_ref)
    np.testing.assert_array_equal(layer.W.value, W0)
    d_x = np.float32(np.exp(-1 / 20.0))
    r2 = np.zeros(N_IN, np.float32)
    for x in xs:
        r2 = d_x * r2 + x
    np.testing.assert_allclose(trainer.r2.value, r2, atol=1e-5)


def test_numbers_of_a_rule_are_traced_and_its_strings_are_static():
    leaves, treedef = jax.tree_util.tree_flatten(rules.pair(0.1, 0.2, pairing="causal"))
    assert leaves == [0.1, 0.2, 1.0]  # A_plus, A_minus, mu
    same_code = jax.tree_util.tree_structure(rules.pair(0.3, 0.4, pairing="causal"))
    other_code = jax.tree_util.tree_structure(rules.pair(0.1, 0.2, pairing="strict"))
    assert treedef == same_code and treedef != other_code


def restricted_reference(W0, xs, mask, A_plus, A_minus, d_pre, d_post, lr, threshold):
    """NumPy: LIF steps 1-5, per-synapse restricted nearest-spike pairing, clip; absent synapses fixed."""
    W = np.array(W0, np.float32)
    pre, post = np.zeros_like(W), np.zeros_like(W)
    v = np.zeros(W.shape[0], np.float32)
    spikes = []
    for x in xs:
        v = np.float32(0.9) * v + (mask * W) @ x
        s = (v >= threshold).astype(np.float32)
        v = np.where(s > 0, 0.0, v).astype(np.float32)
        P, Q = np.float32(d_pre) * pre, np.float32(d_post) * post
        dW = A_plus * s[:, None] * P - A_minus * Q * x[None, :]
        pre = np.where(x[None, :] > 0, 1.0, np.where(s[:, None] > 0, 0.0, P)).astype(np.float32)
        post = np.where(s[:, None] > 0, 1.0, np.where(x[None, :] > 0, 0.0, Q)).astype(np.float32)
        W = np.where(mask > 0, np.clip(W + np.float32(lr) * dW, 0.0, 1.0), W).astype(np.float32)
        spikes.append(s)
    return W, pre, post, np.array(spikes)


@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("compiled", [True, False])
def test_restricted_rule_matches_its_reference(rng, masked, compiled):
    xs, W0 = problem(rng, T=100)
    mask = (rng.random(W0.shape) < 0.6).astype(np.float32) if masked else np.ones_like(W0)
    layer = SpikingLayer(N_IN, N_OUT, W_init=W0, threshold=2.0, mask=mask if masked else None)
    rule = rules.restricted(A_plus=0.3, A_minus=0.25, tau_pre=10.0, tau_post=20.0)
    trainer = Trainer(layer, rule, learning_rate=0.5, compiled=compiled)
    spikes = trainer.train(xs, return_spikes=True)
    W_ref, pre_ref, post_ref, s_ref = restricted_reference(W0, xs, mask, 0.3, 0.25, np.exp(-1 / 10.0),
                                                           np.exp(-1 / 20.0), 0.5, 2.0)
    assert 0.05 < s_ref.mean() < 0.95 and np.abs(W_ref - W0).max() > 0.05
    np.testing.assert_array_equal(spikes, s_ref)
    np.testing.assert_allclose(layer.W.value, W_ref, atol=2e-5)
    np.testing.assert_allclose(trainer.pre.value, pre_ref, atol=1e-5)
    np.testing.assert_allclose(trainer.post.value, post_ref, atol=1e-5)


def test_restricted_rule_refuses_a_conv_layer():
    from canns_stdp import ConvSpikingLayer

    with pytest.raises(ValueError, match=r"restricted pairs spikes per synapse.*\(2, 1, 3, 3\)"):
        Trainer(ConvSpikingLayer(1, 2, 3, input_shape=(5, 5)), rules.restricted())


@pytest.mark.parametrize("make", [
    lambda layer: Trainer(layer, rules.triplet(tau_x=30.0, tau_y=40.0), learning_rate=0.5),
    lambda layer: Trainer(layer, rules.reward(rules.pair(), "rstdp", tau_c=50.0), learning_rate=0.5),
    lambda layer: Trainer(layer, rules.pair(), learning_rate=0.2, event_driven=False),
], ids=["triplet", "rstdp", "pair-dense"])
def test_splitting_a_sequence_across_a_checkpoint_is_bitwise_one_call(rng, tmp_path, make):
    xs = (rng.random((700, N_IN)) < 0.25).astype(np.float32)
    reward = np.sin(np.arange(700) / 30.0).astype(np.float32)
    W0 = rng.uniform(0.1, 0.4, (N_OUT, N_IN)).astype(np.float32)

    def given(trainer, part):
        return {"reward": reward[part]} if "reward" in trainer.current_rule().extras() else {}

    whole = make(SpikingLayer(N_IN, N_OUT, W_init=W0, threshold=1.5))
    whole.train(xs, **given(whole, slice(None)))
    first = make(SpikingLayer(N_IN, N_OUT, W_init=W0, threshold=1.5))
    first.train(xs[:283], **given(first, slice(0, 283)))  # not on a chunk boundary
    first.save(tmp_path / "half.npz")
    resumed = Trainer.load(tmp_path / "half.npz")
    resumed.train(xs[283:], **given(resumed, slice(283, None)))
    assert np.abs(np.asarray(whole.model.W.value) - W0).max() > 0.01
    for name in ("W", "v", "trace_pre", "trace_post"):
        np.testing.assert_array_equal(getattr(resumed.model, name).value, getattr(whole.model, name).value)
    for name in whole._rule_state.names():
        np.testing.assert_array_equal(getattr(resumed, name).value, getattr(whole, name).value)


def test_a_batched_rule_state_survives_a_checkpoint(rng, tmp_path):
    xs = (rng.random((60, 3, N_IN)) < 0.3).astype(np.float32)  # (T, B, n_in)
    W0 = rng.uniform(0.1, 0.4, (N_OUT, N_IN)).astype(np.float32)
    trainer = Trainer(SpikingLayer(N_IN, N_OUT, W_init=W0, threshold=1.5), rules.triplet(tau_x=20.0, tau_y=30.0),
                      learning_rate=0.5)
    trainer.train(xs)
    assert trainer.r2.value.shape == (3, N_IN)
    trainer.save(tmp_path / "batched.npz")
    loaded = Trainer.load(tmp_path / "batched.npz")
    np.testing.assert_array_equal(loaded.r2.value, trainer.r2.value)
    np.testing.assert_array_equal(loaded.o2.value, trainer.o2.value)
    trainer.train(xs)
    loaded.train(xs)
    np.testing.assert_array_equal(loaded.model.W.value, trainer.model.W.value)
