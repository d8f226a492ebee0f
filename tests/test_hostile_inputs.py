"""Inputs that used to be accepted silently now raise a clear error and change nothing."""

import re
import zipfile

import numpy as np
import pytest

from canns_stdp import RewardSTDPTrainer, SpikingLayer, STDPTrainer, Trainer, checkpoint, rules
from canns_stdp.checkpoint import CheckpointError
from canns_stdp.conv_layer import ConvSpikingLayer
from checkpoint_forgery import npy_header, read_parts, replace_entry, write_parts

N_IN, N_OUT = 6, 3


def layer_arrays(layer):
    return {n: np.array(getattr(layer, n).value) for n in ("W", "v", "spike", "trace_pre", "trace_post")}


def assert_same(before, layer):
    for name, value in before.items():
        np.testing.assert_array_equal(getattr(layer, name).value, value, err_msg=name)


def trained_layer():
    rng = np.random.default_rng(0)
    layer = SpikingLayer(N_IN, N_OUT, W_init=rng.uniform(0.2, 0.6, (N_OUT, N_IN)))
    STDPTrainer(layer).train((rng.random((20, N_IN)) < 0.5).astype(np.float32))
    return layer


@pytest.mark.parametrize("change, match", [
    (dict(W=np.full((N_OUT, N_IN), np.nan, np.float32)), r"layer.W must be finite"),
    (dict(W=np.zeros((N_IN, N_OUT), np.float32)), r"layer.W must have shape \(3, 6\), got shape \(6, 3\)"),
    (dict(v=np.full(N_OUT, np.inf, np.float32)), r"layer.v must be finite"),
    (dict(trace_pre=np.zeros(N_IN + 1, np.float32)), r"layer.trace_pre must have shape"),
    (dict(v=np.zeros((2, N_OUT), np.float32)), r"layer.spike must have shape \(2, 3\)"),  # batches disagree
])
def test_set_state_checks_shapes_and_finiteness(change, match):
    layer = trained_layer()
    before = layer_arrays(layer)
    with pytest.raises(ValueError, match=match):
        layer.set_state(layer.get_state()._replace(**change))
    assert_same(before, layer)


def test_set_state_accepts_a_consistent_batch():
    layer = trained_layer()
    batched = layer.get_state((2,))
    layer.set_state(batched)
    assert layer.v.value.shape == (2, N_OUT)


def test_forward_keeps_the_non_finite_guarantee():
    layer = SpikingLayer(N_IN, N_OUT, W_init=np.full((N_OUT, N_IN), -1.0, np.float32))
    before = layer_arrays(layer)
    with pytest.raises(FloatingPointError, match="forward produced non-finite values in .*'v'"):
        layer.forward(np.full(N_IN, 3e38, np.float32))  # W x overflows float32 to -inf
    assert_same(before, layer)


@pytest.mark.parametrize("kwargs, match", [
    (dict(tau_post=1e-30), r"decay exp\(-dt/tau\) is 0 in float32"),
    (dict(dt=1e30, tau_pre=20.0), r"decay exp\(-dt/tau\) is 0 in float32"),
    (dict(dt=1e300), r"dt must be finite in float32"),
    (dict(threshold=1e39), r"threshold must be finite in float32"),
])
def test_layer_parameters_are_checked_in_float32(kwargs, match):
    with pytest.raises(ValueError, match=match):
        SpikingLayer(N_IN, N_OUT, seed=0, **kwargs)


@pytest.mark.parametrize("kwargs, match", [
    (dict(learning_rate=1e39), r"learning_rate must be finite in float32"),
    (dict(w_min=0.0, w_max=1e-46), r"w_min must be < w_max in float32"),
])
def test_trainer_parameters_are_checked_in_float32(kwargs, match):
    layer = trained_layer()
    before = layer_arrays(layer)
    with pytest.raises(ValueError, match=match):
        STDPTrainer(layer, **kwargs)
    trainer = Trainer(layer, rules.pair())
    for name, value in kwargs.items():
        setattr(trainer, name, value)
    with pytest.raises(ValueError, match=match):
        trainer.train(np.ones((5, N_IN), np.float32))
    assert_same(before, layer)


def test_amplitudes_beyond_float32_are_refused():
    with pytest.raises(ValueError, match="A_plus must be finite in float32"):
        rules.pair(A_plus=1e39)


# -- checkpoints are untrusted input -------------------------------------------------------
@pytest.fixture(scope="module")
def good_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("ckpt") / "good.npz"
    rng = np.random.default_rng(0)
    layer = SpikingLayer(N_IN, N_OUT, W_init=rng.uniform(0.2, 0.6, (N_OUT, N_IN)))
    STDPTrainer(layer).train((rng.random((20, N_IN)) < 0.5).astype(np.float32))
    STDPTrainer(layer).save(path)
    return path


def forged(good_file, tmp_path, change_meta=None, change_arrays=None):
    meta, arrays = read_parts(good_file)
    if change_meta:
        meta = change_meta(meta)
    if change_arrays:
        change_arrays(meta, arrays)
    return write_parts(tmp_path / "forged.npz", meta, arrays)


def _set(path, value):
    def change(meta):
        target = meta
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
        return meta
    return change


@pytest.mark.parametrize("change, match", [
    (_set(["format_version"], True), r"invalid format version True"),
    (_set(["format_version"], 1.0), r"invalid format version 1.0"),
    (_set(["format_version"], 99), r"format version 99.*upgrade canns_stdp"),
    (_set(["library_version"], 3), r"library_version 3, not a string"),
    (_set(["objects"], ["model"]), r"objects and arrays must be mappings"),
    (_set(["objects", "model"], "abc"), r"describes the model as 'abc'"),
    (_set(["objects", "model"], {"config": {}}), r"describes the model as \{'config': \{\}\}"),
    (_set(["objects", "model", "kind"], 5), r"describes the model as"),
    (_set(["objects", "model", "config"], [1]), r"describes the model as"),
    (_set(["objects", "model", "kind"], "os.system"), r"holds a os.system, which is not defined"),
    (_set(["arrays", "model/W", "shape"], "abc"), r"gives array 'model/W' the shape 'abc'"),
    (_set(["arrays", "model/W", "shape"], [3, True]), r"gives array 'model/W' the shape \[3, True\]"),
    (_set(["arrays", "model/W", "python"], "zzz"), r"tags array 'model/W' .* as a Python 'zzz'"),
    (_set(["arrays", "model/W", "key_impl"], "zzz"), r"tags array 'model/W' of dtype <f4 as a key"),
    (_set(["arrays", "model/W", "extra_field"], 1), r"describes array 'model/W'"),
    (_set(["arrays", "elsewhere/W"], {"shape": [], "dtype": "<f4", "sha256": "0" * 64}),
     r"lists an array 'elsewhere/W' of no object"),
    (_set(["extra"], "zz"), r"has extra 'zz', not a mapping"),
    (_set(["objects", "model", "config", "input_size"], "6"), r"model configuration is invalid .*input_size"),
    (lambda meta: [meta], r"is not a canns_stdp checkpoint"),
])
def test_forged_metadata_is_refused_naming_the_file(good_file, tmp_path, change, match):
    path = forged(good_file, tmp_path, change)
    with pytest.raises(CheckpointError, match=match) as err:
        STDPTrainer.load(path)
    assert str(path) in str(err.value)


def test_a_layer_declared_larger_than_its_arrays_is_not_built(good_file, tmp_path, monkeypatch):
    path = forged(good_file, tmp_path, lambda m: (m["objects"]["model"]["config"].update(
        input_size=20000, output_size=20000), m)[1])
    assert path.stat().st_size < 10_000

    def never(*args, **kwargs):
        raise AssertionError("the layer was built")

    monkeypatch.setattr(SpikingLayer, "_init_dynamics", never)
    for load in (SpikingLayer.load, STDPTrainer.load):
        with pytest.raises(CheckpointError, match=r"'W' has shape \(3, 6\), but its configuration .*"
                                                  r"needs shape \(20000, 20000\); nothing was built"):
            load(path)


def test_a_conv_layer_declared_larger_than_its_arrays_is_not_built(tmp_path, monkeypatch):
    path = ConvSpikingLayer(1, 2, 3, input_shape=(5, 5), seed=0).save(tmp_path / "conv.npz")
    meta, arrays = read_parts(path)
    meta["objects"]["model"]["config"]["input_shape"] = [50000, 50000]
    write_parts(path, meta, arrays)
    monkeypatch.setattr(ConvSpikingLayer, "_init_dynamics", lambda *a, **k: pytest.fail("built"))
    with pytest.raises(CheckpointError, match=r"'x' has shape \(1, 5, 5\), .*needs shape \(1, 50000, 50000\)"):
        ConvSpikingLayer.load(path)


def test_an_npy_header_declaring_a_huge_array_allocates_nothing(good_file, tmp_path):
    W = np.zeros((N_OUT, N_IN), np.float32)
    huge = npy_header((10**6, 10**6)) + W.tobytes()
    path = replace_entry(good_file, tmp_path / "huge.npz", "model/W.npy", huge)
    with pytest.raises(CheckpointError, match=r"'model/W' has shape \(1000000, 1000000\) .* metadata lists \(3, 6\)"):
        STDPTrainer.load(path)
    # metadata forged to agree with the header: the entry is too small for it
    meta, arrays = read_parts(good_file)
    meta["arrays"]["model/W"]["shape"] = [10**6, 10**6]
    write_parts(tmp_path / "meta.npz", meta, arrays, fix_digests=False)
    path = replace_entry(tmp_path / "meta.npz", tmp_path / "both.npz", "model/W.npy", huge)
    with pytest.raises(CheckpointError, match=r"declares shape \(1000000, 1000000\) .* its entry holds 72 bytes"):
        STDPTrainer.load(path)


def test_compressed_and_pickled_entries_are_refused(good_file, tmp_path):
    with zipfile.ZipFile(good_file) as z:
        data = z.read("model/W.npy")
    path = replace_entry(good_file, tmp_path / "deflated.npz", "model/W.npy", data, zipfile.ZIP_DEFLATED)
    with pytest.raises(CheckpointError, match="entry 'model/W.npy' is compressed"):
        STDPTrainer.load(path)
    pickled = npy_header((2,), "|O") + b"\x80\x04N."
    path = replace_entry(good_file, tmp_path / "pickled.npz", "model/W.npy", pickled)
    with pytest.raises(CheckpointError, match="pickled Python objects"):
        STDPTrainer.load(path)


@pytest.mark.parametrize("name, value, match", [
    ("model/W", np.nan, r"array model/W must be finite, got nan at index \(0, 0\)"),
    ("model/v", np.inf, r"array model/v must be finite, got inf at index \(0,\)"),
])
def test_non_finite_state_is_refused(good_file, tmp_path, name, value, match):
    def poison(meta, arrays):
        arrays[name] = arrays[name].copy()
        arrays[name].flat[0] = value
    path = forged(good_file, tmp_path, change_arrays=poison)
    with pytest.raises(CheckpointError, match=match):
        SpikingLayer.load(path)


def test_state_of_disagreeing_batch_sizes_is_refused(tmp_path):
    rng = np.random.default_rng(1)
    layer = SpikingLayer(N_IN, N_OUT, W_init=rng.uniform(0.2, 0.6, (N_OUT, N_IN)))
    trainer = RewardSTDPTrainer(layer)
    trainer.train((rng.random((5, 2, N_IN)) < 0.5).astype(np.float32), reward=1.0)
    good = trainer.save(tmp_path / "batched.npz")
    assert RewardSTDPTrainer.load(good).eligibility.value.shape == (2, N_OUT, N_IN)

    def rebatch(meta, arrays):
        for name in ("model/v", "model/spike", "model/trace_post"):
            arrays[name] = np.zeros((3, N_OUT), np.float32)
            meta["arrays"][name]["shape"] = [3, N_OUT]
    meta, arrays = read_parts(good)
    rebatch(meta, arrays)
    path = write_parts(tmp_path / "mixed.npz", meta, arrays)
    with pytest.raises(CheckpointError, match=r"batches of different or empty sizes: .*model/v 3.*trainer/eligibility 2"):
        RewardSTDPTrainer.load(path)
    meta, arrays = read_parts(good)
    arrays["trainer/dopamine"] = arrays["trainer/dopamine"][0]  # one sample's dopamine, a batch's eligibility
    meta["arrays"]["trainer/dopamine"]["shape"] = []
    path = write_parts(tmp_path / "half.npz", meta, arrays)
    with pytest.raises(CheckpointError, match=r"holds \['trainer/eligibility'\] for a batch but "
                                              r"\['trainer/dopamine'\] without one"):
        RewardSTDPTrainer.load(path)


def test_the_size_limit_is_a_setting_and_a_keyword(good_file, monkeypatch):
    size = good_file.stat().st_size
    with pytest.raises(CheckpointError, match=rf"is {size} bytes, more than the limit of 100: raise "
                                              r"canns_stdp.checkpoint.MAX_CHECKPOINT_BYTES"):
        STDPTrainer.load(good_file, max_bytes=100)
    monkeypatch.setattr(checkpoint, "MAX_CHECKPOINT_BYTES", size - 1)
    with pytest.raises(CheckpointError, match="more than the limit"):
        SpikingLayer.load(good_file)
    assert SpikingLayer.load(good_file, max_bytes=size).W.value.shape == (N_OUT, N_IN)
    with pytest.raises(ValueError, match="max_bytes must be a positive integer, got 0"):
        SpikingLayer.load(good_file, max_bytes=0)


@pytest.mark.parametrize("path", [None, 3, ["a.npz"]])
def test_a_path_that_is_not_one_is_a_type_error(path):
    for load in (Trainer.load, STDPTrainer.load, SpikingLayer.load):
        with pytest.raises(TypeError, match=rf"path must be a path \(str or os.PathLike\), got {re.escape(repr(path))}"):
            load(path)


def test_a_failed_load_into_a_given_model_leaves_it_unchanged(good_file, tmp_path):
    def bad_steps(meta, arrays):
        arrays["trainer/run.steps"] = np.asarray(-1, np.int64)
    path = forged(good_file, tmp_path, change_arrays=bad_steps)
    layer = trained_layer()
    layer.W.value = layer.W.value * 0.5
    before = layer_arrays(layer)
    with pytest.raises(CheckpointError, match=r"run.steps must be an int64 scalar"):
        STDPTrainer.load(path, model=layer)
    assert_same(before, layer)
    assert not np.array_equal(STDPTrainer.load(good_file, model=layer).model.W.value, before["W"])


@pytest.mark.parametrize("name", [None, 3, "", "not a name"])
def test_weight_attr_must_be_a_name(name):
    message = rf"weight_attr must be the name of the model's weight variable .*got {re.escape(repr(name))}"
    with pytest.raises(TypeError, match=message):
        Trainer(trained_layer(), rules.pair(), weight_attr=name)
    with pytest.raises(TypeError, match=message):
        STDPTrainer(trained_layer(), weight_attr=name)
    trainer = STDPTrainer(trained_layer())
    with pytest.raises(TypeError, match=message):
        trainer.weight_attr = name
    assert trainer.weight_attr == "W"


def test_periodic_checkpoint_folder_must_be_a_path():
    with pytest.raises(TypeError, match=r"directory must be a path \(str or os.PathLike\), got None"):
        checkpoint.PeriodicCheckpoint(None, every=10)


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(seed="a"), TypeError, "seed must be an integer >= 0, got 'a'"),
    (dict(seed=1.5), TypeError, "seed must be an integer >= 0, got 1.5"),
    (dict(seed=-1), ValueError, "seed must be an integer >= 0, got -1"),
    (dict(W_init="abc"), TypeError, "W_init must be an array of numbers"),
])
def test_a_layer_refuses_bad_seeds_and_weights_naming_them(kwargs, error, message):
    with pytest.raises(error, match=re.escape(message)):
        SpikingLayer(4, 2, **kwargs)


def test_a_layer_state_batched_only_in_part_is_refused(tmp_path):
    layer = SpikingLayer(6, 3, seed=0)
    STDPTrainer(layer).train(np.ones((5, 4, 6), np.float32))  # a batch of 4: every state array batched
    layer.save(tmp_path / "batched.npz")
    meta, arrays = checkpoint.read_checkpoint(tmp_path / "batched.npz")
    arrays["model/spike"] = np.asarray(arrays["model/spike"])[0]  # one sample's spikes among a batch's
    checkpoint.write_checkpoint(tmp_path / "part.npz", meta["objects"], arrays)
    with pytest.raises(CheckpointError, match=r"\['model/spike'\] without one: they are held per sample"):
        SpikingLayer.load(tmp_path / "part.npz")
    assert SpikingLayer.load(tmp_path / "batched.npz").v.value.shape == (4, 3)
