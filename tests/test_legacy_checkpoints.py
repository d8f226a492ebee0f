"""Checkpoints written before the trainers became constructors over Trainer keep loading.

``tests/data/legacy_*.npz`` were saved by the library as it was before (classes then in
``canns_stdp.trainer``, ``reward_trainer`` and ``triplet_trainer``); ``legacy_expected.npz``
holds what those trainers held when they saved.
"""

import pathlib

import numpy as np

import reference
from canns_stdp import RewardSTDPTrainer, STDPTrainer, TripletSTDPTrainer

DATA = pathlib.Path(__file__).resolve().parent / "data"
EXPECTED = np.load(DATA / "legacy_expected.npz")


def test_pair_trainer_loads_and_continues_as_the_reference():
    trainer = STDPTrainer.load(DATA / "legacy_stdp.npz")
    assert type(trainer) is STDPTrainer
    assert (trainer.pairing, trainer.weight_dependence, trainer.learning_rate) == ("causal", "soft", 0.5)
    layer = trainer.model
    np.testing.assert_array_equal(layer.W.value, EXPECTED["stdp_W"])
    np.testing.assert_array_equal(layer.trace_pre.value, EXPECTED["stdp_trace_pre"])
    xs = (np.random.default_rng(3).random((40, 6)) < 0.4).astype(np.float32)
    state = (np.asarray(layer.v.value), np.asarray(layer.trace_pre.value), np.asarray(layer.trace_post.value))
    W_ref, *_, s_ref = reference.run(np.asarray(layer.W.value), xs, d_pre=np.exp(-1 / 10.0), lr=0.5,
                                     pairing="causal", dependence="soft", state=state)
    np.testing.assert_array_equal(trainer.train(xs, return_spikes=True), s_ref)
    np.testing.assert_allclose(layer.W.value, W_ref, atol=2e-5)


def test_reward_trainer_loads_its_batched_state_and_mask():
    trainer = RewardSTDPTrainer.load(DATA / "legacy_reward.npz")
    assert type(trainer) is RewardSTDPTrainer and trainer.rule == "rstdp"
    assert (trainer.tau_c, trainer.tau_d) == (20.0, 10.0)
    np.testing.assert_array_equal(trainer.model.W.value, EXPECTED["reward_W"])
    np.testing.assert_array_equal(trainer.eligibility.value, EXPECTED["reward_eligibility"])
    np.testing.assert_array_equal(trainer.dopamine.value, EXPECTED["reward_dopamine"])
    assert trainer.eligibility.value.shape == (2, 3, 6)  # one per sample of the batch it was saved with
    absent = np.asarray(trainer.model.synapse.mask) == 0
    W_before = np.array(trainer.model.W.value)
    xs = (np.random.default_rng(4).random((30, 2, 6)) < 0.5).astype(np.float32)
    trainer.train(xs, reward=np.ones((30, 2), np.float32))
    W = np.asarray(trainer.model.W.value)
    np.testing.assert_array_equal(W[absent], W_before[absent])
    assert np.abs(W - W_before)[~absent].max() > 1e-4


def test_triplet_trainer_loads_its_slow_traces():
    trainer = TripletSTDPTrainer.load(DATA / "legacy_triplet.npz")
    assert type(trainer) is TripletSTDPTrainer and (trainer.tau_x, trainer.tau_y) == (30.0, 40.0)
    assert trainer.model.trace_mode == "nearest"
    np.testing.assert_array_equal(trainer.model.W.value, EXPECTED["triplet_W"])
    np.testing.assert_array_equal(trainer.r2.value, EXPECTED["triplet_r2"])
    np.testing.assert_array_equal(trainer.o2.value, EXPECTED["triplet_o2"])
