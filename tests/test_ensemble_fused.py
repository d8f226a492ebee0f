"""An ensemble whose members would each run the fused kernel runs it batched over the
members (one launch; here in Pallas' interpret mode), each member against the NumPy
reference of its own numbers."""

import numpy as np
import pytest

import reference
from canns_stdp import Ensemble, SpikingLayer, STDPTrainer
from canns_stdp.kernels import fused_ensemble

N_IN, N_OUT, T = 24, 10, 40
RATES = (0.5, 1.0, 1.6)


@pytest.fixture
def launches(monkeypatch):
    """How many chunk functions of the batched fused kernel the calls built."""
    built = []
    original = fused_ensemble.fused_member_chunks

    def spy(*args):
        built.append(args)
        return original(*args)
    monkeypatch.setattr(fused_ensemble, "fused_member_chunks", spy)
    return built


def members(fused=True, chunk_size=None, rates=RATES):
    rng = np.random.default_rng(7)
    W0 = [rng.uniform(0.0, 0.3, (N_OUT, N_IN)).astype(np.float32) for _ in rates]
    trainers = [STDPTrainer(SpikingLayer(N_IN, N_OUT, W_init=W), learning_rate=lr, A_plus=0.05, A_minus=0.0525,
                            fused=fused, chunk_size=chunk_size) for W, lr in zip(W0, rates)]
    return trainers, W0


def inputs(seed, K=None):
    rng = np.random.default_rng(seed)
    shape = (T, N_IN) if K is None else (K, T, N_IN)
    return (rng.random(shape) < 0.4).astype(np.float32)


def check(trainers, W0, xs_of, posts_of, spikes):
    for k, (t, W) in enumerate(zip(trainers, W0)):
        W_ref, v_ref, pre_ref, post_ref, s_ref = reference.run(W, xs_of(k), posts_of(k), lr=RATES[k], A_plus=0.05,
                                                               A_minus=0.0525)
        assert s_ref.mean() > 0.05
        np.testing.assert_array_equal(spikes[k], s_ref)
        np.testing.assert_allclose(t.model.W.value, W_ref, atol=2e-5)
        np.testing.assert_allclose(t.model.v.value, v_ref, atol=2e-5)
        np.testing.assert_allclose(t.model.trace_pre.value, pre_ref, atol=1e-5)
        np.testing.assert_allclose(t.model.trace_post.value, post_ref, atol=1e-5)
        assert t.steps_trained == T


@pytest.mark.parametrize("chunk_size", [None, 16], ids=["one-chunk", "chunks-padded"])
def test_members_sharing_an_input_train_as_each_alone(launches, chunk_size):
    trainers, W0 = members(chunk_size=chunk_size)
    xs = inputs(0)
    spikes = Ensemble(trainers).train(xs, return_spikes=True)
    assert len(launches) == 1
    check(trainers, W0, lambda k: xs, lambda k: None, spikes)


def test_members_with_inputs_and_imposed_spikes_of_their_own(launches):
    trainers, W0 = members(chunk_size=16)
    xs = inputs(1, K=3)
    posts = (np.random.default_rng(5).random((3, T, N_OUT)) < 0.2).astype(np.float32)  # every output imposed
    spikes = Ensemble(trainers).train(list(xs), post_spikes=list(posts), return_spikes=True)
    assert len(launches) == 1
    check(trainers, W0, lambda k: xs[k], lambda k: posts[k], spikes)


def test_one_member_without_the_fused_kernel_keeps_the_plain_step(launches):
    trainers, W0 = members()
    trainers[1].fused = False
    xs = inputs(2)
    spikes = Ensemble(trainers).train(xs, return_spikes=True)
    assert launches == []
    check(trainers, W0, lambda k: xs, lambda k: None, spikes)


def test_predicting_runs_the_plain_step(launches):
    trainers, _ = members()
    Ensemble(trainers).predict_batch(inputs(3))
    assert launches == []
