"""Save/load of the trainers that carry state of their own, and periodic checkpoints
while the event-driven kernel (which holds W transposed) runs."""

import numpy as np
import pytest

import reference
from canns_stdp import (PeriodicCheckpoint, RewardSTDPTrainer, SpikingLayer, STDPTrainer,
                        TripletSTDPTrainer)


def spikes(rng, T, n, p=0.3):
    return (rng.random((T, n)) < p).astype(np.float32)


@pytest.mark.parametrize("make", [
    lambda layer: RewardSTDPTrainer(layer, rule="rstdp", learning_rate=0.5, tau_c=40.0, tau_d=20.0),
    lambda layer: TripletSTDPTrainer(layer, learning_rate=5.0),
])
def test_trainer_state_round_trip_and_exact_continuation(tmp_path, rng, make):
    xs = spikes(rng, 120, 12)
    W0 = rng.uniform(0.1, 0.5, (5, 12)).astype(np.float32)
    kwargs = lambda T: {"reward": np.linspace(-1, 1, T)} if "Reward" in type(trainer).__name__ else {}  # noqa: E731

    layer = SpikingLayer(12, 5, W_init=W0, threshold=0.8)
    trainer = make(layer)
    trainer.train(xs, **kwargs(120))
    trainer.save(tmp_path / "t.npz")
    loaded = type(trainer).load(tmp_path / "t.npz")
    assert loaded.checkpoint_config() == trainer.checkpoint_config()
    for name in ("eligibility", "dopamine", "r2", "o2"):
        if hasattr(trainer, name):
            np.testing.assert_array_equal(getattr(loaded, name).value, getattr(trainer, name).value)
    more = spikes(rng, 60, 12)
    trainer.train(more, **kwargs(60))
    loaded.train(more, **kwargs(60))
    np.testing.assert_array_equal(loaded.model.W.value, trainer.model.W.value)


def test_periodic_checkpoint_stores_W_not_its_transpose(tmp_path, rng):
    xs = (rng.random((300, 40)) < 0.04).astype(np.float32)
    W0 = rng.uniform(0.0, 0.3, (7, 40)).astype(np.float32)
    layer = SpikingLayer(40, 7, W_init=W0, threshold=0.6)
    trainer = STDPTrainer(layer, learning_rate=0.5, event_driven=True, chunk_size=100)
    ckpt = PeriodicCheckpoint(tmp_path, every=100, keep_last=5)
    trainer.train(xs, checkpoint=ckpt)
    W_ref, *_ = reference.run(W0, xs[:200], lr=0.5, threshold=0.6)
    saved = STDPTrainer.load(tmp_path / "checkpoint-0000000200.npz")
    assert saved.model.W.value.shape == (7, 40)
    np.testing.assert_allclose(saved.model.W.value, W_ref, atol=1e-5)


def test_conv_and_masked_layers_round_trip(tmp_path, rng):
    from canns_stdp import ConvSpikingLayer

    conv = ConvSpikingLayer(2, 4, 3, input_shape=(6, 6), padding=1, groups=2, stride=2, seed=0)
    STDPTrainer(conv).train((rng.random((5, 1, 2, 6, 6)) < 0.5).astype(np.float32))
    conv.save(tmp_path / "conv.npz")
    loaded = ConvSpikingLayer.load(tmp_path / "conv.npz")
    assert loaded.synapse == conv.synapse and loaded.output_shape == conv.output_shape
    for name in ("W", "v", "trace_pre", "trace_post"):
        np.testing.assert_array_equal(getattr(loaded, name).value, getattr(conv, name).value)

    mask = (rng.random((3, 8)) < 0.5).astype(np.float32)
    masked = SpikingLayer(8, 3, mask=mask, seed=1)
    masked.save(tmp_path / "masked.npz")
    again = SpikingLayer.load(tmp_path / "masked.npz")
    np.testing.assert_array_equal(np.asarray(again.synapse.mask), mask)
    np.testing.assert_array_equal(again.W.value, masked.W.value)
