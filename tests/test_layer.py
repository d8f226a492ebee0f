"""SpikingLayer: forward dynamics, state handling, CANNs-compatible names."""

import brainpy as bp
import brainpy.math as bm
import jax
import numpy as np
import pytest

import reference
from canns_stdp import BrainInspiredModel, SpikingLayer, STDPTrainer, Trainer


def test_is_a_brainpy_model_with_canns_names():
    layer = SpikingLayer(input_size=5, output_size=3)
    assert isinstance(layer, BrainInspiredModel) and isinstance(layer, bp.DynamicalSystem)
    assert layer.weight_attr == "W" and layer.predict_state_attr == "spike"
    for name, shape in (("W", (3, 5)), ("x", (5,)), ("v", (3,)), ("spike", (3,)),
                        ("trace_pre", (5,)), ("trace_post", (3,))):
        assert isinstance(getattr(layer, name), bm.Variable)
        assert getattr(layer, name).value.shape == shape
    assert isinstance(STDPTrainer(layer), Trainer)
    assert (layer.threshold, layer.v_reset, layer.leak, layer.trace_decay, layer.dt) == (1.0, 0.0, 0.9, 0.95, 1.0)


def test_forward_and_predict_follow_spec_steps_1_to_5():
    rng = np.random.default_rng(3)
    W = rng.uniform(0, 0.5, (4, 10)).astype(np.float32)
    xs = (rng.random((60, 10)) < 0.4).astype(np.float32)
    _, v_ref, pre_ref, post_ref, s_ref = reference.run(W, xs, plastic=False, d_pre=0.8, d_post=0.7)
    layer = SpikingLayer(10, 4, W_init=W, tau_pre=-1 / np.log(0.8), tau_post=-1 / np.log(0.7))
    trainer = STDPTrainer(layer)
    spikes = [np.asarray(trainer.predict(x)) for x in xs[:30]] + [np.asarray(layer.forward(x)) for x in xs[30:]]
    np.testing.assert_array_equal(np.array(spikes), s_ref)
    np.testing.assert_allclose(layer.v.value, v_ref, atol=1e-6)
    np.testing.assert_allclose(layer.trace_pre.value, pre_ref, atol=1e-6)
    np.testing.assert_allclose(layer.trace_post.value, post_ref, atol=1e-6)
    np.testing.assert_array_equal(layer.W.value, W)  # no plasticity in forward
    np.testing.assert_array_equal(layer.x.value, xs[-1])


@pytest.mark.parametrize("compiled", [True, False])
def test_predict_batch_equals_sequential_predict(compiled):
    rng = np.random.default_rng(4)
    W = rng.uniform(0, 0.5, (4, 10)).astype(np.float32)
    xs = (rng.random((25, 10)) < 0.4).astype(np.float32)
    a, b = SpikingLayer(10, 4, W_init=W), SpikingLayer(10, 4, W_init=W)
    batch = np.asarray(STDPTrainer(a, compiled=compiled).predict_batch(xs))
    one_by_one = np.array([np.asarray(STDPTrainer(b).predict(x)) for x in xs])
    assert batch.shape == (25, 4) and batch.sum() > 0
    np.testing.assert_array_equal(batch, one_by_one)
    np.testing.assert_allclose(a.v.value, b.v.value, atol=1e-6)


def test_reset_state_zeroes_everything_but_weights():
    layer = SpikingLayer(6, 3, W_init=np.full((3, 6), 0.5))
    STDPTrainer(layer).train(np.ones((5, 6)))
    layer.reset_state()
    for name in ("x", "v", "spike", "trace_pre", "trace_post"):
        assert not np.any(np.asarray(getattr(layer, name).value)), name
    assert np.any(np.asarray(layer.W.value))


def test_default_weights_follow_canns_initialisation():
    bm.random.seed(7)
    import jax

    expected = np.asarray(jax.random.normal(bm.random.get_key(), (3, 8))) * 0.05
    np.testing.assert_allclose(SpikingLayer(8, 3).W.value, expected, rtol=1e-6)
    a, b = SpikingLayer(8, 3, seed=1), SpikingLayer(8, 3, seed=2)
    assert not np.allclose(a.W.value, b.W.value)
    np.testing.assert_array_equal(SpikingLayer(8, 3, seed=1).W.value, a.W.value)
    np.testing.assert_array_equal(SpikingLayer(8, 3, W_init=lambda shape: np.ones(shape)).W.value, np.ones((3, 8)))


def test_decays_from_time_constants():
    layer = SpikingLayer(2, 2, tau_pre=10.0, tau_post=40.0, dt=2.0)
    assert layer.d_pre == pytest.approx(np.exp(-0.2)) and layer.d_post == pytest.approx(np.exp(-0.05))
    layer.decay = "euler"
    assert layer.d_pre == pytest.approx(0.8) and layer.d_post == pytest.approx(0.95)
    assert SpikingLayer(2, 2, trace_decay=0.7).d_pre == pytest.approx(0.7)


def test_state_written_by_user_is_used():
    layer = SpikingLayer(3, 1, W_init=np.zeros((1, 3)))
    layer.v.value = layer.v.value + 0.95
    assert float(layer.forward(np.zeros(3))[0]) == 0.0   # 0.9 * 0.95 < 1
    layer.v.value = layer.v.value * 0 + 1.2
    assert float(layer.forward(np.zeros(3))[0]) == 1.0   # 0.9 * 1.2 >= 1


@pytest.mark.parametrize("decay, leak", [("exact", np.exp(-1.0 / 8.0)), ("euler", 1.0 - 1.0 / 8.0)])
def test_a_membrane_time_constant_sets_the_leak(rng, tmp_path, decay, leak):
    xs = (rng.random((200, 12)) < 0.3).astype(np.float32)
    W0 = rng.uniform(0.1, 0.5, (4, 12)).astype(np.float32)
    layer = SpikingLayer(12, 4, W_init=W0, tau_m=8.0, dt=1.0, decay=decay)
    spikes = STDPTrainer(layer, learning_rate=0.1, event_driven=False).train(xs, return_spikes=True)
    W_ref, v_ref, *_, s_ref = reference.run(W0, xs, leak=np.float32(leak), lr=0.1)
    assert 0.05 < s_ref.mean() < 0.9
    np.testing.assert_array_equal(spikes, s_ref)
    np.testing.assert_allclose(layer.W.value, W_ref, atol=2e-5)
    np.testing.assert_allclose(layer.v.value, v_ref, atol=2e-5)
    layer.save(tmp_path / "tau.npz")
    assert SpikingLayer.load(tmp_path / "tau.npz").membrane_leak == pytest.approx(leak)


def test_a_bad_membrane_time_constant_is_named():
    with pytest.raises(ValueError, match=r"tau_m must be > 0, got -2.0"):
        SpikingLayer(4, 2, tau_m=-2.0)
    with pytest.raises(ValueError, match=r"tau_m"):
        SpikingLayer(4, 2, tau_m=1e-30)  # a decay that rounds to 0


def test_large_aligned_host_arrays_become_jax_arrays_without_a_copy():
    from canns_stdp.host_memory import host_empty
    from canns_stdp.layer import on_device_tree

    big, small = host_empty((600, 700)), np.arange(6, dtype=np.float32)
    assert big.ctypes.data % 64 == 0 and big.flags.c_contiguous and big.flags.writeable
    big[:] = np.arange(big.size, dtype=np.float32).reshape(big.shape)
    got = on_device_tree({"big": big, "small": small})
    assert isinstance(got["big"], jax.Array) and isinstance(got["small"], jax.Array)
    np.testing.assert_array_equal(np.asarray(got["big"]), big)
    np.testing.assert_array_equal(np.asarray(got["small"]), small)
    assert np.shares_memory(np.asarray(got["big"]), big)  # handed over: no copy of a weight matrix
