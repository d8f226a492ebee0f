"""Convolutional, masked and batched STDP against explicit NumPy loops (tests/conv_reference.py)."""

import jax.numpy as jnp
import numpy as np
import pytest

import conv_reference as ref
from canns_stdp import ConvSpikingLayer, SpikingLayer, STDPTrainer
from canns_stdp.functional.synapses import Conv, Dense, LinearMap, MaskedDense

FAST = dict(learning_rate=1.0, A_plus=0.05, A_minus=0.0525)
REF_FAST = dict(lr=1.0, A_plus=0.05, A_minus=0.0525)

# (C_in, C_out, input_shape, kernel, stride, padding (lo, hi) per axis, dilation, groups)
GEOMETRIES = [
    (2, 3, (6, 6), (3, 3), (1, 1), ((0, 0), (0, 0)), (1, 1), 1),
    (2, 4, (7, 6), (3, 2), (2, 1), ((1, 1), (0, 2)), (1, 1), 2),
    (3, 3, (7, 7), (2, 3), (1, 2), ((2, 1), (1, 1)), (2, 1), 3),
    (2, 2, (9,), (3,), (2,), ((1, 2),), (2,), 1),                  # conv1d
]
IDS = ["plain", "stride-pad-groups2", "dilation-depthwise", "conv1d"]


def conv_layer(geom, W0, **kw):
    C_in, C_out, shape, k, s, p, d, g = geom
    return ConvSpikingLayer(C_in, C_out, k, input_shape=shape, stride=s, padding=p, dilation=d,
                            groups=g, W_init=W0, **kw)


def conv_data(rng, geom, T, B, p_in=0.4):
    C_in, C_out, shape, k, s, p, d, g = geom
    W0 = rng.uniform(0.0, 0.4, (C_out, C_in // g) + k).astype(np.float32)
    xs = (rng.random((T, B, C_in) + shape) < p_in).astype(np.float32)
    return W0, xs


@pytest.mark.parametrize("geom", GEOMETRIES, ids=IDS)
@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_conv_stdp_equals_explicit_loops(rng, geom, reduction):
    C_in, C_out, shape, k, s, p, d, g = geom
    W0, xs = conv_data(rng, geom, T=6, B=2)
    layer = conv_layer(geom, W0)
    out_shape = layer.sample_shapes()[1]
    posts = (rng.random((6, 2) + out_shape) < 0.3).astype(np.float32)
    W_ref, v_ref, pre_ref, post_ref, _ = ref.run(ref.conv_maps(s, p, d, g), W0, xs, posts,
                                                 reduction=reduction, **REF_FAST)
    assert np.abs(W_ref - W0).max() > 0.01, "the test needs weight changes"
    for compiled in ((True, False) if reduction == "sum" else (True,)):
        layer = conv_layer(geom, W0)
        STDPTrainer(layer, compiled=compiled, batch_reduction=reduction, **FAST).train(xs, post_spikes=posts)
        np.testing.assert_allclose(layer.W.value, W_ref, atol=2e-5)
        np.testing.assert_allclose(layer.v.value, v_ref, atol=2e-5)
        np.testing.assert_allclose(layer.trace_pre.value, pre_ref, atol=1e-5)
        np.testing.assert_allclose(layer.trace_post.value, post_ref, atol=1e-5)


@pytest.mark.parametrize("pairing", ["symmetric", "causal", "strict"])
def test_conv_free_spiking_equals_loops(rng, pairing):
    geom = GEOMETRIES[1]
    W0, xs = conv_data(rng, geom, T=12, B=3, p_in=0.5)
    W0 = W0 + 0.2
    W_ref, v_ref, _, _, s_ref = ref.run(ref.conv_maps(*geom[4:]), W0, xs, pairing=pairing, **REF_FAST)
    assert 0.05 < s_ref.mean() < 0.95, "the test needs output spikes"
    layer = conv_layer(geom, W0)
    trainer = STDPTrainer(layer, pairing=pairing, **FAST)
    spikes = trainer.train(xs, return_spikes=True)
    np.testing.assert_array_equal(spikes, s_ref)
    np.testing.assert_allclose(layer.W.value, W_ref, atol=2e-5)
    np.testing.assert_allclose(layer.v.value, v_ref, atol=2e-5)


def test_conv_soft_weight_dependence(rng):
    geom = GEOMETRIES[2]
    W0, xs = conv_data(rng, geom, T=6, B=2)
    layer = conv_layer(geom, W0)
    posts = (rng.random((6, 2) + layer.sample_shapes()[1]) < 0.4).astype(np.float32)
    W_ref, v_ref, _, _, _ = ref.run(ref.conv_maps(*geom[4:]), W0, xs, posts, soft=True, w_min=-0.2,
                                    w_max=0.7, **REF_FAST)
    STDPTrainer(layer, weight_dependence="soft", w_min=-0.2, w_max=0.7, **FAST).train(xs, post_spikes=posts)
    np.testing.assert_allclose(layer.W.value, W_ref, atol=2e-5)
    np.testing.assert_allclose(layer.v.value, v_ref, atol=2e-5)


def test_conv_map_matches_loops_single_step(rng):
    """The map's current and vjp-Hebbian against loops, with a batch axis summed."""
    conv = Conv.create((4, 6, 5), (3, 2), stride=(2, 1), padding=((1, 0), (2, 1)), dilation=(1, 2), groups=2)
    current, hebbian = ref.conv_maps(conv.stride, conv.padding, conv.dilation, 2)
    W = rng.normal(size=conv.weight_shape(6)).astype(np.float32)
    x = rng.normal(size=(3, 4, 6, 5)).astype(np.float32)
    I = np.asarray(conv.current(jnp.asarray(W), jnp.asarray(x)))
    np.testing.assert_allclose(I, [current(W, xb) for xb in x], atol=1e-4)
    post = rng.normal(size=I.shape).astype(np.float32)
    H = np.asarray(conv.hebbian(jnp.asarray(W), jnp.asarray(post), jnp.asarray(x)))
    np.testing.assert_allclose(H, sum(hebbian(W.shape, pb, xb) for pb, xb in zip(post, x)), atol=1e-4)


def test_dense_hebbian_equals_generic_vjp(rng):
    W = jnp.asarray(rng.normal(size=(5, 7)), jnp.float32)
    post, pre = jnp.asarray(rng.normal(size=(3, 5)), jnp.float32), jnp.asarray(rng.normal(size=(3, 7)), jnp.float32)
    for p, q in ((post[0], pre[0]), (post, pre)):
        np.testing.assert_allclose(Dense().hebbian(W, p, q), LinearMap.hebbian(Dense(), W, p, q), atol=1e-5)
    np.testing.assert_allclose(Dense().hebbian(W, post, pre), np.einsum("bi,bj->ij", post, pre), atol=1e-5)


def test_dense_is_conv_with_1x1_map_over_1x1_image(rng):
    xs, W0 = (rng.random((40, 30)) < 0.3).astype(np.float32), rng.uniform(0, 0.3, (8, 30)).astype(np.float32)
    dense = SpikingLayer(30, 8, W_init=W0)
    s_dense = STDPTrainer(dense, **FAST).train(xs, return_spikes=True)
    conv = ConvSpikingLayer(30, 8, 1, input_shape=(1, 1), W_init=W0[:, :, None, None])
    s_conv = STDPTrainer(conv, **FAST).train(xs[:, :, None, None], return_spikes=True)
    assert s_dense.mean() > 0.05
    np.testing.assert_array_equal(s_conv[:, :, 0, 0], s_dense)
    np.testing.assert_allclose(conv.W.value[:, :, 0, 0], dense.W.value, atol=1e-6)
    np.testing.assert_allclose(conv.trace_pre.value[:, 0, 0], dense.trace_pre.value, atol=1e-6)


@pytest.mark.parametrize("reduction", ["sum", "mean"])
@pytest.mark.parametrize("compiled", [True, False])
def test_dense_batches_equal_reference(rng, reduction, compiled):
    xs = (rng.random((40, 4, 25)) < 0.3).astype(np.float32)
    W0 = rng.uniform(0, 0.3, (7, 25)).astype(np.float32)
    W_ref, v_ref, pre_ref, post_ref, s_ref = ref.run(ref.dense_maps(), W0, xs, reduction=reduction, **REF_FAST)
    assert s_ref.mean() > 0.05
    layer = SpikingLayer(25, 7, W_init=W0)
    spikes = STDPTrainer(layer, compiled=compiled, batch_reduction=reduction, **FAST).train(xs, return_spikes=True)
    np.testing.assert_array_equal(spikes, s_ref)
    np.testing.assert_allclose(layer.W.value, W_ref, atol=2e-5)
    np.testing.assert_allclose(layer.v.value, v_ref, atol=2e-5)
    np.testing.assert_allclose(layer.trace_pre.value, pre_ref, atol=1e-5)
    np.testing.assert_allclose(layer.trace_post.value, post_ref, atol=1e-5)
    assert layer.x.value.shape == (4, 25)


def test_batch_of_one_equals_unbatched(rng):
    xs, W0 = (rng.random((60, 20)) < 0.3).astype(np.float32), rng.uniform(0, 0.3, (6, 20)).astype(np.float32)
    a, b = SpikingLayer(20, 6, W_init=W0), SpikingLayer(20, 6, W_init=W0)
    sa = STDPTrainer(a, **FAST).train(xs, return_spikes=True)
    sb = STDPTrainer(b, batch_reduction="mean", **FAST).train(xs[:, None], return_spikes=True)
    np.testing.assert_array_equal(sb[:, 0], sa)
    np.testing.assert_allclose(b.W.value, a.W.value, atol=1e-6)


def test_masked_dense_equals_reference(rng):
    xs = (rng.random((50, 2, 16)) < 0.4).astype(np.float32)
    W0 = rng.uniform(0, 0.5, (6, 16)).astype(np.float32)
    mask = (rng.random((6, 16)) < 0.5).astype(np.float32)
    W_ref, v_ref, _, _, s_ref = ref.run(ref.dense_maps(mask), W0, xs, **REF_FAST)
    assert s_ref.mean() > 0.05
    layer = SpikingLayer(16, 6, W_init=W0, mask=mask)
    spikes = STDPTrainer(layer, **FAST).train(xs, return_spikes=True)
    np.testing.assert_array_equal(spikes, s_ref)
    np.testing.assert_allclose(layer.W.value, W_ref, atol=2e-5)
    np.testing.assert_array_equal(np.asarray(layer.W.value)[mask == 0], W0[mask == 0])  # absent: unchanged
    assert MaskedDense(mask) == MaskedDense(mask.copy()) and hash(MaskedDense(mask)) == hash(MaskedDense(mask.copy()))


def test_unbatched_conv_and_forward(rng):
    geom = GEOMETRIES[0]
    W0, xs = conv_data(rng, geom, T=8, B=1)
    layer = conv_layer(geom, W0 + 0.3)
    spikes = STDPTrainer(layer, **FAST).train(xs[:, 0], return_spikes=True)   # (T, C, H, W): unbatched
    W_ref, v_ref, _, _, s_ref = ref.run(ref.conv_maps(*geom[4:]), W0 + 0.3, xs, **REF_FAST)
    np.testing.assert_array_equal(spikes, s_ref[:, 0])
    np.testing.assert_allclose(layer.W.value, W_ref, atol=2e-5)
    assert layer.v.value.shape == (3, 4, 4)
    W_before = np.array(layer.W.value)
    out = layer.forward(xs[0])        # a batch of one through forward: no plasticity
    assert out.shape == (1, 3, 4, 4)
    np.testing.assert_array_equal(layer.W.value, W_before)


def test_no_recompilation_for_new_length_or_learning_rate(rng):
    from canns_stdp.loops import _run_chunk
    geom = GEOMETRIES[0]
    W0, xs = conv_data(rng, geom, T=40, B=2)
    layer = conv_layer(geom, W0)
    trainer = STDPTrainer(layer, chunk_size=16)
    trainer.train(xs[:20])
    size = _run_chunk._cache_size()
    trainer.learning_rate = 0.5
    trainer.train(xs[:37])
    assert _run_chunk._cache_size() == size


def snapshot(layer):
    return {k: np.array(getattr(layer, k).value) for k in ("W", "x", "v", "spike", "trace_pre", "trace_post")}


@pytest.fixture
def trained_conv(rng):
    geom = GEOMETRIES[1]
    W0, xs = conv_data(rng, geom, T=5, B=2)
    layer = conv_layer(geom, W0)
    trainer = STDPTrainer(layer)
    trainer.train(xs)
    return layer, trainer


BAD_CONV_CALLS = [
    ("wrong channels", dict(train_data=np.zeros((3, 2, 3, 7, 6))), r"patterns must have shape \(T, 2, 7, 6\) or \(T, B, 2, 7, 6\), got shape \(3, 2, 3, 7, 6\)"),
    ("wrong image", dict(train_data=np.zeros((3, 2, 2, 6, 6))), r"got shape \(3, 2, 2, 6, 6\)"),
    ("missing time axis", dict(train_data=np.zeros((2, 7, 6))), r"must have shape \(T, 2, 7, 6\)"),
    ("empty", dict(train_data=np.zeros((0, 2, 2, 7, 6))), "patterns is empty"),
    ("empty batch", dict(train_data=np.zeros((3, 0, 2, 7, 6))), "empty batch"),
    ("NaN", dict(train_data=np.full((3, 2, 2, 7, 6), np.nan)), "patterns must be finite"),
    ("other batch size", dict(train_data=np.zeros((3, 5, 2, 7, 6))), r"layer.v holds a batch of shape \(2,\).*\(5,\); call layer.reset_state"),
    ("unbatched after batched", dict(train_data=np.zeros((3, 2, 7, 6))), r"layer.v must have shape \(4, 4, 7\).*reset_state"),
    ("post wrong shape", dict(train_data=np.zeros((3, 2, 2, 7, 6)), post_spikes=np.zeros((3, 2, 4, 4, 6))), r"post_spikes must have shape \(T, 4, 4, 7\)"),
    ("post wrong batch", dict(train_data=np.zeros((3, 2, 2, 7, 6)), post_spikes=np.zeros((3, 3, 4, 4, 7))), r"batch shape of patterns \(2,\), got batch shape \(3,\)"),
    ("post unbatched", dict(train_data=np.zeros((3, 2, 2, 7, 6)), post_spikes=np.zeros((3, 4, 4, 7))), r"got batch shape \(\)"),
    ("post length", dict(train_data=np.zeros((3, 2, 2, 7, 6)), post_spikes=np.zeros((4, 2, 4, 4, 7))), "one row per pattern: got 4 rows for 3"),
    ("post not binary", dict(train_data=np.zeros((3, 2, 2, 7, 6)), post_spikes=np.full((3, 2, 4, 4, 7), 0.5)), "post_spikes must hold spikes"),
]


@pytest.mark.parametrize("case, kwargs, message", BAD_CONV_CALLS, ids=[c[0] for c in BAD_CONV_CALLS])
def test_bad_conv_input_leaves_state_unchanged(trained_conv, case, kwargs, message):
    layer, trainer = trained_conv
    before = snapshot(layer)
    with pytest.raises(ValueError, match=message):
        trainer.train(**kwargs)
    for k, value in snapshot(layer).items():
        np.testing.assert_array_equal(value, before[k], err_msg=k)


def test_bad_batch_reduction_and_dense_batch_shapes(rng):
    layer = SpikingLayer(6, 3, W_init=np.full((3, 6), 0.3))
    with pytest.raises(ValueError, match=r"batch_reduction must be one of \('sum', 'mean'\), got 'max'"):
        STDPTrainer(layer, batch_reduction="max")
    trainer = STDPTrainer(layer)
    trainer.train(np.ones((4, 2, 6)))
    before = snapshot(layer)
    with pytest.raises(ValueError, match=r"patterns must have shape \(T, 6\) or \(T, B, 6\), got shape \(4, 2, 5\)"):
        trainer.train(np.ones((4, 2, 5)))
    with pytest.raises(ValueError, match=r"layer.v must have shape \(3,\), got shape \(2, 3\).*reset_state"):
        trainer.train(np.ones((4, 6)))
    for k, value in snapshot(layer).items():
        np.testing.assert_array_equal(value, before[k], err_msg=k)
    layer.reset_state()
    trainer.train(np.ones((4, 6)))          # unbatched again after a reset
    assert layer.v.value.shape == (3,)


BAD_CONV_LAYERS = [
    (dict(input_shape=None), "input_shape must be the spatial shape"),
    (dict(input_shape=(4, 4, 4, 4)), "input_shape must be the spatial shape"),
    (dict(groups=3), "groups must divide in_channels=2 and out_channels=4, got groups=3"),
    (dict(kernel_size=9), r"does not fit input_shape=\(8, 8\)"),
    (dict(stride=0), "stride must be an int >= 1"),
    (dict(padding=-1), "padding must be an int >= 0"),
    (dict(dilation=(1, 2, 3)), "dilation must be an int >= 1 or 2 such ints"),
    (dict(W_init=np.zeros((4, 2, 3))), r"W_init must have shape \(4, 2, 3, 3\), got shape \(4, 2, 3\)"),
    (dict(tau_pre=-1.0), "tau_pre must be > 0"),
]


@pytest.mark.parametrize("kwargs, message", BAD_CONV_LAYERS)
def test_bad_conv_layer_arguments(kwargs, message):
    args = dict(in_channels=2, out_channels=4, kernel_size=3, input_shape=(8, 8))
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        ConvSpikingLayer(**args)
