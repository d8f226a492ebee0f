"""Inputs kept on their device: a JAX array on an accelerator is checked there and fed to
the kernels as it is (no copy to the host and back). Here, on a CPU, JAX arrays are made
to take that path, and every loop it feeds must train as the NumPy reference does."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import reference
from canns_stdp import SpikingLayer, STDPTrainer
from canns_stdp import _validation as v

N_IN, N_OUT = 40, 12
FAST = dict(learning_rate=1.0, A_plus=0.05, A_minus=0.0525)
REF_FAST = dict(lr=1.0, A_plus=0.05, A_minus=0.0525)


@pytest.fixture
def kept(monkeypatch):
    """Every JAX array counts as being on an accelerator; ``seen`` lists what the
    trainer's validation kept there."""
    seen = []
    to_float = v._to_float_array

    def spy(name, data, keep_device=False):
        arr = to_float(name, data, keep_device)
        if isinstance(arr, jax.Array):
            seen.append(name)
        return arr
    monkeypatch.setattr(v, "kept_on_device", lambda data: isinstance(data, jax.Array))
    monkeypatch.setattr(v, "_to_float_array", spy)
    return seen


def data(seed=0, T=150):
    rng = np.random.default_rng(seed)
    xs = (rng.random((T, N_IN)) < 0.3).astype(np.float32)
    W0 = rng.uniform(0.0, 0.3, (N_OUT, N_IN)).astype(np.float32)
    return xs, W0


def test_a_cpu_array_is_read_in_place_not_kept():
    xs = jnp.ones((3, 4))
    assert not v.kept_on_device(xs) and not v.kept_on_device(np.ones((3, 4)))
    assert isinstance(v.as_time_series("patterns", xs, 4, keep_device=True), np.ndarray)


@pytest.mark.parametrize("trainer_kw", [dict(fused=False, event_driven=False), dict(fused=False, event_driven=True),
                                        dict(fused=False, compiled=False), dict(fused=True),
                                        dict(fused=False, chunk_size=64)],
                         ids=["compiled", "event-driven", "python-loop", "fused", "chunks-padded"])
def test_every_loop_trains_from_an_input_kept_on_its_device_as_the_reference(kept, trainer_kw):
    xs, W0 = data()
    posts = np.zeros((xs.shape[0], N_OUT), np.float32)
    posts[::7, 3] = 1.0
    W_ref, v_ref, pre_ref, post_ref, s_ref = reference.run(W0, xs, posts, **REF_FAST)
    layer = SpikingLayer(N_IN, N_OUT, W_init=W0)
    spikes = STDPTrainer(layer, **FAST, **trainer_kw).train(jnp.asarray(xs), post_spikes=jnp.asarray(posts),
                                                            return_spikes=True)
    assert set(kept) == {"patterns", "post_spikes"}
    np.testing.assert_array_equal(np.asarray(spikes), s_ref)
    np.testing.assert_allclose(layer.W.value, W_ref, atol=2e-5)
    np.testing.assert_allclose(layer.v.value, v_ref, atol=2e-5)
    np.testing.assert_allclose(layer.trace_pre.value, pre_ref, atol=1e-5)
    np.testing.assert_allclose(layer.trace_post.value, post_ref, atol=1e-5)
    np.testing.assert_array_equal(layer.x.value, xs[-1])


def test_split_calls_from_the_device_go_on_as_one(kept):
    xs, W0 = data(1, 300)
    W_ref, *_, s_ref = reference.run(W0, xs, **REF_FAST)
    layer = SpikingLayer(N_IN, N_OUT, W_init=W0)
    trainer = STDPTrainer(layer, **FAST, fused=False, chunk_size=64)
    first = trainer.train(jnp.asarray(xs[:100]), return_spikes=True)
    second = trainer.train(jnp.asarray(xs[100:]), return_spikes=True)
    np.testing.assert_array_equal(np.concatenate([first, second]), s_ref)
    np.testing.assert_allclose(layer.W.value, W_ref, atol=2e-5)
    assert trainer.steps_trained == 300


def test_integer_and_boolean_inputs_are_converted_where_they_are(kept):
    xs, W0 = data(2, 60)
    W_ref, *_, s_ref = reference.run(W0, xs, **REF_FAST)
    for given in (jnp.asarray(xs, jnp.int32), jnp.asarray(xs, bool)):
        layer = SpikingLayer(N_IN, N_OUT, W_init=W0)
        spikes = STDPTrainer(layer, **FAST, fused=False).train(given, return_spikes=True)
        np.testing.assert_array_equal(np.asarray(spikes), s_ref)
        np.testing.assert_allclose(layer.W.value, W_ref, atol=2e-5)


def _held(layer, trainer):
    return [np.array(a) for a in (layer.W.value, layer.v.value, layer.trace_pre.value, layer.trace_post.value,
                                  layer.x.value)] + [trainer.steps_trained]


@pytest.mark.parametrize("bad, error, message", [
    ("nan", ValueError, "patterns must be finite, got nan at index (5, 3)"),
    ("inf", ValueError, "patterns must be finite, got inf at index (5, 3)"),
    ("posts", ValueError, "post_spikes must hold spikes (0 or 1), got 0.5"),
    ("complex", TypeError, "patterns must hold real numbers, got dtype complex64"),
    ("shape", ValueError, "patterns must have shape (T, 40), got shape (20, 39)"),
])
def test_bad_input_on_the_device_is_named_and_changes_nothing(kept, bad, error, message):
    xs, W0 = data(3, 20)
    layer = SpikingLayer(N_IN, N_OUT, W_init=W0)
    trainer = STDPTrainer(layer, **FAST, fused=False)
    trainer.train(jnp.asarray(xs))
    before = _held(layer, trainer)
    given, posts = jnp.asarray(xs), None
    if bad in ("nan", "inf"):
        given = given.at[5, 3].set(float(bad))
    elif bad == "posts":
        posts = jnp.zeros((20, N_OUT)).at[4, 2].set(0.5)
    elif bad == "complex":
        given = given.astype(jnp.complex64)
    else:
        given = given[:, :39]
    with pytest.raises(error) as raised:
        trainer.train(given, post_spikes=posts)
    assert str(raised.value) == message
    after = _held(layer, trainer)
    for a, b in zip(before, after):
        np.testing.assert_array_equal(a, b)


def test_non_finite_weights_on_the_device_are_found_there(kept):
    assert v.all_finite(jnp.ones((3, 3)))
    assert not v.all_finite(jnp.ones((3, 3)).at[1, 2].set(jnp.nan))
    assert not v.all_finite(jnp.ones((3, 3)).at[0, 0].set(-jnp.inf))
    fine, nan = jnp.ones(4), jnp.ones((2, 2)).at[1, 1].set(jnp.nan)
    assert v.all_finite_together([fine, np.ones(3), jnp.zeros((2, 5))])
    assert not v.all_finite_together([fine, nan, np.ones(3)])
    assert not v.all_finite_together([fine, np.array([1.0, np.inf])])


def test_training_into_non_finite_weights_on_the_device_changes_nothing(kept):
    xs, W0 = data(4, 30)
    layer = SpikingLayer(N_IN, N_OUT, W_init=W0)
    trainer = STDPTrainer(layer, learning_rate=1e38, A_plus=1e38, hardbound=False, fused=False)
    before = _held(layer, trainer)
    with pytest.raises(FloatingPointError, match=r"non-finite values in \['W'"):
        trainer.train(jnp.asarray(xs))
    for a, b in zip(before, _held(layer, trainer)):
        np.testing.assert_array_equal(a, b)


def _both(run):
    """``run(to_input)`` once from NumPy and once from inputs kept on the device."""
    return run(lambda a: a), run(jnp.asarray)


def _same(a, b):
    for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_predicting_batches_convolutions_checkpoints_and_monitors_read_it_as_from_numpy(kept, tmp_path):
    from canns_stdp import ConvSpikingLayer, Ensemble, PeriodicCheckpoint, Trainer, rules
    from canns_stdp.monitors import SpikeMonitor, StateMonitor

    xs, W0 = data(5, 100)
    rng = np.random.default_rng(6)
    batch = (rng.random((60, 3, N_IN)) < 0.3).astype(np.float32)
    images = (rng.random((30, 1, 8, 8)) < 0.3).astype(np.float32)

    def run(to_input):
        out = {}
        layer = SpikingLayer(N_IN, N_OUT, W_init=W0)
        trainer = STDPTrainer(layer, **FAST, fused=False, chunk_size=32)
        folder = tmp_path / str(len(list(tmp_path.iterdir())))
        spikes, v_mon = SpikeMonitor(), StateMonitor("v", indices=[2, 5], every=25)
        trainer.train(to_input(xs), checkpoint=PeriodicCheckpoint(folder, every=32), monitors=[spikes, v_mon])
        out["trained"] = (layer.W.value, spikes.steps, spikes.neurons, v_mon.values)
        out["checkpoint"] = SpikingLayer.load(PeriodicCheckpoint(folder, every=32).latest()).W.value
        out["predicted"] = trainer.predict_batch(to_input(xs[:20]))
        batched = SpikingLayer(N_IN, N_OUT, W_init=W0)
        out["batch"] = (STDPTrainer(batched, **FAST, fused=False).train(to_input(batch), return_spikes=True),
                        batched.W.value)
        conv = ConvSpikingLayer(1, 2, 3, input_shape=(8, 8), seed=0, threshold=0.5)
        out["conv"] = (Trainer(conv, rules.pair(), learning_rate=0.5).train(to_input(images), return_spikes=True),
                       conv.W.value)
        members = [STDPTrainer(SpikingLayer(N_IN, N_OUT, W_init=W0 * (1 + k / 4)), **FAST, fused=False)
                   for k in range(3)]
        out["ensemble"] = Ensemble(members).train(to_input(xs), return_spikes=True)
        out["own inputs"] = Ensemble(members).train([to_input(xs[k::2][:40]) for k in range(3)], return_spikes=True)
        return out

    from_numpy, from_device = _both(run)
    assert set(kept) == {"patterns"}
    for key in from_numpy:
        _same(from_numpy[key], from_device[key])
    assert np.asarray(from_numpy["trained"][1]).size and np.asarray(from_numpy["conv"][0]).any()
