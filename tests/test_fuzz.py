"""Fuzzing every public entry point with hostile input (hypothesis, derandomized: the same
examples on every run). Each bad input must give the library's own error naming what is
wrong (``ValueError``/``TypeError`` and their subclasses ``CheckpointError``, ``IDXError``;
a usage error of ``canns-stdp``) and change nothing. Corrupted checkpoints (bit flips,
truncations, forged ``.npy`` headers and metadata) must raise ``CheckpointError`` naming
the file, or load exactly the state that was saved."""

import contextlib
import gzip
import io
import json
import math
import struct
import zipfile
from unittest import mock

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, assume, event, given, settings, strategies as st  # noqa: E402

from canns_stdp import SpikingLayer, STDPTrainer, encoders, readout  # noqa: E402
from canns_stdp.checkpoint import CheckpointError  # noqa: E402
from canns_stdp.competitive import CompetitiveNetwork  # noqa: E402
from canns_stdp.datasets import IDXError, load_idx  # noqa: E402
from checkpoint_forgery import npy_header, read_parts, replace_entry, write_parts  # noqa: E402


def fuzz(examples):
    return settings(derandomize=True, database=None, deadline=None, max_examples=examples,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


N_IN, N_OUT = 6, 3


# -- checkpoints ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A trained trainer's checkpoint: its path, bytes, and its parts as read by numpy."""
    folder = tmp_path_factory.mktemp("fuzz")
    rng = np.random.default_rng(3)
    layer = SpikingLayer(N_IN, N_OUT, W_init=rng.uniform(0.2, 0.6, (N_OUT, N_IN)), tau_pre=10.0)
    trainer = STDPTrainer(layer, chunk_size=8)
    trainer.train((rng.random((13, N_IN)) < 0.5).astype(np.float32))  # leaves a chunk open: run.* entries
    path = trainer.save(folder / "good.npz")
    meta, arrays = read_parts(path)
    assert any(name.startswith("trainer/run.") for name in arrays)
    return folder, path, path.read_bytes(), meta, arrays


def structure_offsets(data: bytes):
    """Byte offsets of the zip headers, the central directory and each .npy header."""
    offsets = set()
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        for info in z.infolist():
            start = info.header_offset
            name_len, extra_len = struct.unpack("<HH", data[start + 26:start + 30])
            body = start + 30 + name_len + extra_len
            offsets.update(range(start, body + 128))  # local header and the .npy header after it
    end = data.rfind(b"PK\x05\x06")
    directory = struct.unpack("<I", data[end + 16:end + 20])[0]
    offsets.update(range(directory, len(data)))
    return sorted(o for o in offsets if o < len(data))


def load_or_refuse(path, original_arrays, **kwargs):
    """Load ``path``: a CheckpointError naming it, or exactly the saved state."""
    try:
        trainer = STDPTrainer.load(path, **kwargs)
    except CheckpointError as err:
        assert str(path) in str(err)
        event(f"refused: {str(err)[len(str(path)) + 16:][:40]}")
        return None
    event("loaded the saved state")
    again = trainer.save(path.with_name("reloaded.npz"))
    _, arrays = read_parts(again)
    assert arrays.keys() == original_arrays.keys()
    for name, value in original_arrays.items():
        np.testing.assert_array_equal(arrays[name], value, err_msg=name)
    return trainer


@fuzz(250)
@given(data=st.data())
def test_bit_flips_load_the_saved_state_or_raise_checkpoint_error(saved, data):
    folder, _, good, _, arrays = saved
    structural = structure_offsets(good)
    byte = data.draw(st.one_of(st.sampled_from(structural), st.integers(0, len(good) - 1)))
    bit = data.draw(st.integers(0, 7))
    flipped = bytearray(good)
    flipped[byte] ^= 1 << bit
    path = folder / "flipped.npz"
    path.write_bytes(bytes(flipped))
    load_or_refuse(path, arrays)


@fuzz(60)
@given(length=st.integers(0, 10**6))
def test_truncations_raise_checkpoint_error(saved, length):
    folder, _, good, _, _ = saved
    path = folder / "truncated.npz"
    path.write_bytes(good[:length % len(good)])
    with pytest.raises(CheckpointError, match="truncated.npz"):
        STDPTrainer.load(path)


@fuzz(80)
@given(entry=st.sampled_from(["model/W", "model/v", "trainer/run.steps", "__meta__"]),
       shape=st.lists(st.integers(0, 2**40), max_size=4).map(tuple),
       descr=st.sampled_from(["<f4", "<f8", "|u1", "<i8", ">f4", "|O", "<U3", "|V4", "<c8"]))
def test_forged_npy_headers_raise_checkpoint_error(saved, entry, shape, descr):
    folder, path, _, _, arrays = saved
    original = arrays[entry] if entry != "__meta__" else np.zeros(0, np.uint8)
    assume(entry == "__meta__" or (shape, descr) != (original.shape, original.dtype.str))
    assume(entry != "__meta__" or descr != "|u1")
    with zipfile.ZipFile(path) as z:
        raw = z.read(f"{entry}.npy")
    data = raw[len(npy_header(original.shape, original.dtype.str)):] if entry != "__meta__" else raw[128:]
    forged = replace_entry(path, folder / "header.npz", f"{entry}.npy", npy_header(shape, descr) + data)
    with pytest.raises(CheckpointError, match="header.npz"):
        STDPTrainer.load(forged)


def meta_paths(tree, prefix=()):
    """Every path to a value in the metadata (dict keys and list indices)."""
    yield prefix
    items = tree.items() if isinstance(tree, dict) else enumerate(tree) if isinstance(tree, list) else ()
    for key, value in items:
        yield from meta_paths(value, prefix + (key,))


DELETE = object()
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.text(max_size=8)
    | st.sampled_from([0.0, -1.0, 1e40, math.nan, math.inf, -math.inf, 20000, 2**31, "canns_stdp-checkpoint"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=6)


@fuzz(250)
@given(data=st.data(), value=st.one_of(st.just(DELETE), json_values), into_model=st.booleans())
def test_forged_metadata_raises_checkpoint_error_or_loads_the_saved_state(saved, data, value, into_model):
    folder, path, _, meta, arrays = saved
    where = data.draw(st.sampled_from([p for p in meta_paths(meta) if p]))
    forged_meta = json.loads(json.dumps(meta))
    target = forged_meta
    for key in where[:-1]:
        target = target[key]
    if value is DELETE:
        del target[where[-1]]
    else:
        target[where[-1]] = value
    forged = write_parts(folder / "meta.npz", forged_meta, dict(arrays), fix_digests=False)
    layer = SpikingLayer.load(path) if into_model else None
    before = {k: np.asarray(v) for k, v in layer.checkpoint_state().items()} if layer else None
    loaded = load_or_refuse(forged, arrays, **({"model": layer} if into_model else {}))
    if loaded is None and layer is not None:
        for name, held in before.items():
            np.testing.assert_array_equal(np.asarray(getattr(layer, name).value), held, err_msg=name)


# -- CompetitiveNetwork ----------------------------------------------------------------------
def not_a(kind):
    """Values that are not of ``kind``: the wrong type, or out of range."""
    junk = st.one_of(st.text(max_size=3), st.none(), st.lists(st.integers(), max_size=2))
    nonfinite = st.sampled_from([math.nan, math.inf, -math.inf, 1e39])
    return {
        "bool": st.one_of(junk, st.integers(), st.floats()),
        "positive_int": st.one_of(junk, st.booleans(), st.integers(max_value=0), st.floats()),
        "nonnegative_int": st.one_of(junk, st.booleans(), st.integers(max_value=-1),
                                     st.floats().filter(lambda x: not float(x).is_integer())),
        "seed": st.one_of(junk, st.booleans(), st.integers(max_value=-1), st.floats()),
        "positive": st.one_of(junk, st.booleans(), nonfinite, st.floats(max_value=0.0)),
        "nonnegative": st.one_of(junk, st.booleans(), nonfinite, st.floats(max_value=0.0, exclude_max=True)),
        "number": st.one_of(junk, st.booleans(), nonfinite),
        "floor": st.one_of(junk, st.booleans(), st.sampled_from([math.nan, math.inf, 1e39])),
    }[kind]


COMPETITIVE_KINDS = {
    "compiled": "bool", "normalize": "bool", "steps_per_sample": "positive_int", "block": "positive_int",
    "batch": "positive_int", "refractory": "nonnegative_int", "seed": "seed", "tau_m": "positive",
    "tau_theta": "positive", "tau_pre": "positive", "tau_post": "positive", "norm": "positive",
    "threshold": "positive", "w_inh": "nonnegative", "theta_plus": "nonnegative", "nu_pre": "nonnegative",
    "nu_post": "nonnegative", "w_init": "nonnegative", "v_reset": "number", "v_min": "floor",
}


@fuzz(200)
@given(data=st.data(), name=st.sampled_from(sorted(COMPETITIVE_KINDS)))
def test_competitive_network_refuses_bad_arguments_naming_them(data, name):
    value = data.draw(not_a(COMPETITIVE_KINDS[name]))
    with pytest.raises((ValueError, TypeError), match=name):
        CompetitiveNetwork(4, 2, steps_per_sample=5, **{name: value})


bad_probabilities = st.one_of(
    st.lists(st.floats(allow_nan=True, allow_infinity=True), min_size=1, max_size=8).map(
        lambda xs: np.array(xs + [math.nan if all(0 <= x <= 1 for x in xs) else xs[0]], np.float64)[None]),
    st.sampled_from([(4,), (0, 4), (2, 0), (1, 2, 4)]).map(lambda shape: np.full(shape, 0.5)),  # wrong shapes
    st.text(max_size=3), st.none())


@pytest.fixture(scope="module")
def network():
    return CompetitiveNetwork(4, 2, steps_per_sample=5, seed=0)


@fuzz(80)
@given(probabilities=bad_probabilities, learn=st.one_of(st.booleans(), not_a("bool")),
       seed=st.one_of(st.integers(0, 10), not_a("seed")))
def test_present_refuses_bad_input_and_changes_nothing(network, probabilities, learn, seed):
    before = [np.asarray(x).copy() for x in network.state]
    with pytest.raises((ValueError, TypeError), match="probabilities|learn|seed"):
        network.present(probabilities, learn=learn, seed=seed)
    for x, y in zip(before, network.state):
        np.testing.assert_array_equal(x, np.asarray(y))


# -- encoders, readout, IDX files ----------------------------------------------------------
@fuzz(100)
@given(probabilities=bad_probabilities, n_steps=st.one_of(st.integers(1, 4), not_a("positive_int")),
       rng=st.one_of(st.just("generator"), st.integers(), st.text(max_size=2), st.lists(st.integers(), max_size=2)))
def test_poisson_events_refuses_bad_input(probabilities, n_steps, rng):
    generator = np.random.default_rng(0) if rng == "generator" else rng
    with pytest.raises((ValueError, TypeError), match="probabilities|n_steps|rng"):
        encoders.poisson_events(probabilities, n_steps, generator)


@fuzz(100)
@given(counts=st.one_of(st.lists(st.floats(allow_nan=True, allow_infinity=True), min_size=1, max_size=6),
                        st.text(max_size=2)),
       labels=st.lists(st.one_of(st.integers(-3, 5), st.floats(0, 2)), max_size=4),
       n_classes=st.one_of(st.integers(-2, 3), st.floats(0, 3), st.text(max_size=1)))
def test_readout_refuses_what_it_cannot_label(counts, labels, n_classes):
    counts_arr = np.asarray(counts, np.float64).reshape(1, -1) if isinstance(counts, list) else counts
    valid = (isinstance(counts, list) and all(math.isfinite(c) and c >= 0 for c in counts)
             and type(n_classes) is int and n_classes > 0 and len(labels) == 1
             and all(type(label) is int and 0 <= label < n_classes for label in labels))
    if valid:  # the reference: each neuron's rate for the one labelled sample
        rates = readout.class_rates(counts_arr, labels, n_classes)
        np.testing.assert_allclose(rates[:, labels[0]], counts_arr[0])
        return
    with pytest.raises((ValueError, TypeError), match="counts|labels|n_classes"):
        readout.assign_labels(counts_arr, labels, n_classes)


@fuzz(150)
@given(header=st.tuples(st.integers(0, 1), st.integers(0, 1), st.sampled_from([0x08, 0x09, 0x0B, 0x0C, 0x0D, 0x0E, 7]),
                        st.integers(0, 5)),
       dims=st.lists(st.sampled_from([0, 1, 2, 3, 65536, 2**31, 2**32 - 1]), max_size=5),
       body=st.binary(max_size=40), compress=st.booleans(), cut=st.integers(0, 3))
def test_idx_files_parse_to_their_declared_size_or_raise_idx_error(tmp_path_factory, header, dims, body,
                                                                   compress, cut):
    raw = bytes(header) + b"".join(struct.pack(">I", d) for d in dims) + body
    stored = gzip.compress(raw) if compress else raw
    path = tmp_path_factory.getbasetemp() / "fuzz.idx"
    path.write_bytes(stored[:len(stored) - cut])
    try:
        arr = load_idx(path)
    except IDXError as err:
        assert "fuzz.idx" in str(err)
        return
    # the reference: a parse is exactly the header's shape, filling the rest of the file
    assert raw[:2] == b"\x00\x00" and cut == 0
    itemsize = {0x08: 1, 0x09: 1, 0x0B: 2, 0x0C: 4, 0x0D: 4, 0x0E: 8}[raw[2]]
    shape = struct.unpack(f">{raw[3]}I", raw[4:4 + 4 * raw[3]])
    assert arr.shape == shape and 4 + 4 * len(shape) + math.prod(shape) * itemsize == len(raw)


# -- the canns-stdp command ----------------------------------------------------------------
GOOD_OPTIONS = {"--task": ["digits", "masquelier", "mnist"], "--neurons": ["3"], "--epochs": ["1"],
                "--seed": ["0", "7"], "--steps": ["5"], "--no-figures": [None], "--no-progress": [None]}
BAD_OPTIONS = {"--task": ["bogus", ""], "--neurons": ["0", "-3", "x", "2.5", ""], "--epochs": ["0", "1e3"],
               "--seed": ["-1", "abc", "1.5", str(2**32)], "--seeds": ["0", "-2", "many"],
               "--train-size": ["0", "ten"], "--test-size": ["-1"], "--steps": ["0", "3.5"]}


@fuzz(120)
@given(good=st.dictionaries(st.sampled_from(sorted(GOOD_OPTIONS)), st.integers(0, 2), max_size=4),
       bad=st.dictionaries(st.sampled_from(sorted(BAD_OPTIONS)), st.integers(0, 4), min_size=1, max_size=2))
def test_cli_refuses_bad_arguments_before_any_work_without_a_traceback(good, bad):
    from canns_stdp import cli
    from canns_stdp.tasks import digits, masquelier

    argv = ["demo"]
    for option, pick in good.items():
        if option not in bad:
            value = GOOD_OPTIONS[option][pick % len(GOOD_OPTIONS[option])]
            argv += [option] if value is None else [option, value]
    for option, pick in bad.items():
        argv += [option, BAD_OPTIONS[option][pick % len(BAD_OPTIONS[option])]]
    stderr = io.StringIO()
    ran = mock.Mock(side_effect=AssertionError(f"a task ran for {argv}"))
    with mock.patch.object(digits, "run", ran), mock.patch.object(digits, "run_seeds", ran), \
            mock.patch.object(masquelier, "run", ran), contextlib.redirect_stderr(stderr):
        with pytest.raises(SystemExit) as exit_:
            cli.main(argv)
    assert exit_.value.code == 2 and not ran.called
    assert "error:" in stderr.getvalue() and "Traceback" not in stderr.getvalue()


# -- networks ------------------------------------------------------------------------------------
LIF_KINDS = {"tau_m": "positive", "tau_exc": "positive", "tau_inh": "positive", "tau_theta": "positive",
             "v_rest": "number", "v_threshold": "number", "bias": "number", "refractory": "nonnegative"}
PROJECTION_KINDS = {"learning_rate": "nonnegative", "tau_pre": "positive", "tau_post": "positive",
                    "a_pre": "number", "w_min": "number", "hardbound": "bool"}


@fuzz(120)
@given(data=st.data(), name=st.sampled_from(sorted(LIF_KINDS)))
def test_network_populations_refuse_bad_numbers_naming_them(data, name):
    from canns_stdp.network import LIF

    value = data.draw(not_a(LIF_KINDS[name]))
    with pytest.raises((ValueError, TypeError), match=name):
        LIF(3, **{name: value})


@fuzz(120)
@given(data=st.data(), name=st.sampled_from(sorted(PROJECTION_KINDS)))
def test_projections_refuse_bad_settings_naming_them(data, name):
    from canns_stdp.network import Projection

    value = data.draw(not_a(PROJECTION_KINDS[name]))
    with pytest.raises((ValueError, TypeError), match=name):
        Projection("a", "b", **{name: value})


@pytest.fixture(scope="module")
def plastic_network():
    from canns_stdp import rules
    from canns_stdp.network import LayerLIF, Network, Projection, SpikeInput

    return Network({"x": SpikeInput(4), "y": LayerLIF(3)},
                   [Projection("x", "y", weights=0.3, rule=rules.pair(), delay=2)])


@fuzz(80)
@given(inputs=st.one_of(st.none(), st.text(max_size=2), st.sampled_from([(5, 3), (5, 4, 1), (0, 4)]).map(np.ones),
                        st.lists(st.floats(allow_nan=True, allow_infinity=True), min_size=4, max_size=4).map(
                            lambda xs: np.array([xs + [math.nan] * 0]) if not all(map(math.isfinite, xs))
                            else np.array([[math.nan] * 4]))),
       steps=st.one_of(st.none(), st.integers(-2, 0), st.floats(0.5, 2.5), st.text(max_size=1)))
def test_a_network_run_refuses_bad_input_and_changes_nothing(plastic_network, inputs, steps):
    before = (plastic_network.weights("x->y"), plastic_network.state("y", "v"), plastic_network.steps_run)
    given = None if inputs is None else {"x": inputs}
    with pytest.raises((ValueError, TypeError), match="inputs|steps|missing"):
        plastic_network.run(steps, inputs=given)
    np.testing.assert_array_equal(plastic_network.weights("x->y"), before[0])
    np.testing.assert_array_equal(plastic_network.state("y", "v"), before[1])
    assert plastic_network.steps_run == before[2]
