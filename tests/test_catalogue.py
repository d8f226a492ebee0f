"""A catalogue of bad inputs across the public API that tests/test_validation.py does
not already cover: each gives a clear error, and the layer, the trainer's settings
and the files on disk are exactly as before."""


import numpy as np
import pytest

from canns_stdp import SpikingLayer, STDPTrainer
from canns_stdp import checkpoint as ck
from canns_stdp.checkpoint import CheckpointError, PeriodicCheckpoint

N_IN, N_OUT = 6, 3
STATE = ("W", "x", "v", "spike", "trace_pre", "trace_post")
X = np.zeros((5, N_IN), np.float32)


class Ctx:
    """A trained layer and trainer, a good checkpoint and a folder of files."""

    def __init__(self, tmp_path):
        rng = np.random.default_rng(0)
        self.layer = SpikingLayer(N_IN, N_OUT, W_init=rng.uniform(0.2, 0.6, (N_OUT, N_IN)))
        self.trainer = STDPTrainer(self.layer, chunk_size=16)
        self.trainer.train((rng.random((30, N_IN)) < 0.5).astype(np.float32))
        self.dir = tmp_path
        self.good = self.trainer.save(tmp_path / "good.npz")
        self.meta, self.arrays = ck.read_checkpoint(self.good)

    def file(self, name, data: bytes):
        (self.dir / name).write_bytes(data)
        return self.dir / name

    def rewrite(self, name, objects=None, drop=(), **arrays):
        """A well-formed checkpoint with some arrays or objects replaced."""
        objects = objects or {r: {"kind": o["kind"], "config": o["config"]}
                              for r, o in self.meta["objects"].items()}
        new = {k: a for k, a in self.arrays.items() if k not in drop}
        new.update({k.replace("__", "/"): a for k, a in arrays.items()})
        return ck.write_checkpoint(self.dir / name, objects, new)

    def load_into_layer(self, path):
        return STDPTrainer.load(path, model=self.layer)

    def snapshot(self):
        files = {p.name: p.read_bytes() for p in self.dir.iterdir()}
        return ({k: np.array(getattr(self.layer, k).value) for k in STATE},
                self.trainer.checkpoint_config(), files)


def _bytes(ctx):
    return ctx.good.read_bytes()


def _flip(data: bytes, at: float) -> bytes:
    i = int(len(data) * at)
    return data[:i] + bytes([data[i] ^ 0xFF]) + data[i + 1:]


def _tampered(ctx):
    """Valid zip (fresh CRCs) whose W differs from the checksum in the metadata."""
    arrays = {k: a for k, a in ctx.arrays.items()}
    arrays["model/W"] = arrays["model/W"] + 0.01
    with open(ctx.dir / "tampered.npz", "wb") as f:
        np.savez(f, __meta__=np.frombuffer(ck.json.dumps(ctx.meta).encode(), np.uint8), **arrays)
    return ctx.dir / "tampered.npz"


def _newer(ctx):
    old = ck.FORMAT_VERSION
    ck.FORMAT_VERSION = old + 1
    try:
        return ctx.trainer.save(ctx.dir / "newer.npz")
    finally:
        ck.FORMAT_VERSION = old


def _other_model(ctx, **config):
    objects = {r: dict(o) for r, o in ctx.meta["objects"].items()}
    objects["model"] = {"kind": objects["model"]["kind"],
                        "config": {**objects["model"]["config"], **config}}
    return objects


def _set(trainer, **values):
    """Change trainer settings (the case's bad input); recorded so that the check
    of unchanged settings skips exactly these."""
    for k, v in values.items():
        setattr(trainer, k, v)
    trainer._catalogue_changed = set(values)
    return trainer


CASES = [
    # predict / predict_batch: ranks, dtypes, non-finite
    ("predict 2-D", lambda c: c.trainer.predict(np.zeros((1, N_IN))), ValueError, r"x must have shape \(6,\), got shape \(1, 6\)"),
    ("predict complex", lambda c: c.trainer.predict(np.zeros(N_IN, complex)), TypeError, "x must be real"),
    ("predict strings", lambda c: c.trainer.predict(["a"] * N_IN), TypeError, "x must hold numbers"),
    ("predict inf", lambda c: c.trainer.predict(np.full(N_IN, -np.inf)), ValueError, "x must be finite, got -inf"),
    ("forward None", lambda c: c.layer.forward(None), TypeError, "x must be an array, got None"),
    ("predict_batch NaN", lambda c: c.trainer.predict_batch(np.full((3, N_IN), np.nan)), ValueError, "patterns must be finite, got nan"),
    ("predict_batch empty", lambda c: c.trainer.predict_batch(np.zeros((0, N_IN))), ValueError, "patterns is empty"),
    ("predict_batch 1-D", lambda c: c.trainer.predict_batch(np.zeros(N_IN)), ValueError, r"patterns\[None\]"),
    # train: dtypes, containers, post_spikes
    ("train complex", lambda c: c.trainer.train(np.zeros((3, N_IN), complex)), TypeError, "patterns must be real"),
    ("train dict", lambda c: c.trainer.train({"x": X}), TypeError, "patterns must be an array or a sequence of rows, got dict"),
    ("train object dtype", lambda c: c.trainer.train(np.array([[object()] * N_IN])), TypeError, "patterns must hold numbers, got dtype object"),
    ("post 1-D", lambda c: c.trainer.train(X, post_spikes=np.zeros(N_OUT)), ValueError, r"post_spikes must have shape \(T, 3\), got shape \(3,\)"),
    ("post -1", lambda c: c.trainer.train(X, post_spikes=-np.ones((5, N_OUT))), ValueError, r"post_spikes must hold spikes \(0 or 1\), got -1.0"),
    ("post 2", lambda c: c.trainer.train(X, post_spikes=np.full((5, N_OUT), 2)), ValueError, r"post_spikes must hold spikes \(0 or 1\), got 2.0"),
    ("post inf", lambda c: c.trainer.train(X, post_spikes=np.full((5, N_OUT), np.inf)), ValueError, "post_spikes must be finite, got inf"),
    ("post complex", lambda c: c.trainer.train(X, post_spikes=np.zeros((5, N_OUT), complex)), TypeError, "post_spikes must be real"),
    ("checkpoint not a PeriodicCheckpoint", lambda c: c.trainer.train(X, checkpoint=str(c.dir)), TypeError, "checkpoint must be a PeriodicCheckpoint"),
    # trainer hyperparameters set after construction (caught at train())
    ("A_plus inf", lambda c: _set(c.trainer, A_plus=np.inf).train(X), ValueError, "A_plus must be finite, got inf"),
    ("w_max nan", lambda c: _set(c.trainer, w_max=np.nan).train(X), ValueError, "w_max must be finite, got nan"),
    ("mu nan", lambda c: _set(c.trainer, mu=np.nan).train(X), ValueError, "mu must be finite, got nan"),
    ("learning_rate string", lambda c: _set(c.trainer, learning_rate="0.1").train(X), TypeError, "learning_rate must be a real number, got '0.1'"),
    ("A_minus array", lambda c: _set(c.trainer, A_minus=np.ones(3)).train(X), TypeError, "A_minus must be a real number"),
    ("hardbound string", lambda c: _set(c.trainer, hardbound="yes").train(X), TypeError, "hardbound must be True or False, got 'yes'"),
    ("compiled 1", lambda c: _set(c.trainer, compiled=1).train(X), TypeError, "compiled must be True or False, got 1"),
    ("chunk_size float", lambda c: _set(c.trainer, chunk_size=2.5).train(X), ValueError, "chunk_size must be a positive integer, got 2.5"),
    ("weight_dependence None", lambda c: _set(c.trainer, weight_dependence=None).train(X), TypeError, "weight_dependence"),
    ("weight_dependence raising", lambda c: _set(c.trainer, weight_dependence=(lambda W: W @ W, lambda W: W)).train(X), ValueError, r"weight_dependence failed on W of shape \(3, 6\)"),
    # layer parameters at construction
    ("leak negative", lambda c: SpikingLayer(N_IN, N_OUT, leak=-0.1), ValueError, r"leak must be in \[0, 1\], got -0.1"),
    ("a_post nan", lambda c: SpikingLayer(N_IN, N_OUT, a_post=np.nan), ValueError, "a_post must be finite, got nan"),
    ("dt inf", lambda c: SpikingLayer(N_IN, N_OUT, dt=np.inf, tau_pre=5.0), ValueError, "dt must be finite, got inf"),
    ("tau_post nan", lambda c: SpikingLayer(N_IN, N_OUT, tau_post=np.nan), ValueError, "tau_post must be finite, got nan"),
    ("trace_decay string", lambda c: SpikingLayer(N_IN, N_OUT, trace_decay="0.9"), TypeError, "trace_decay must be a real number, got '0.9'"),
    ("threshold None", lambda c: SpikingLayer(N_IN, N_OUT, threshold=None), TypeError, "threshold must be a real number, got None"),
    ("W_init inf", lambda c: SpikingLayer(N_IN, N_OUT, W_init=np.full((N_OUT, N_IN), np.inf)), ValueError, "W_init must be finite"),
    ("W_init callable wrong shape", lambda c: SpikingLayer(N_IN, N_OUT, W_init=lambda s: np.zeros(s[::-1])), ValueError, r"W_init must have shape \(3, 6\), got shape \(6, 3\)"),
    # periodic checkpoints
    ("every 0", lambda c: PeriodicCheckpoint(c.dir, every=0), ValueError, "every must be a positive integer, got 0"),
    ("keep_last 0", lambda c: PeriodicCheckpoint(c.dir, every=5, keep_last=0), ValueError, "keep_last must be a positive integer, got 0"),
    ("prefix with a slash", lambda c: PeriodicCheckpoint(c.dir, every=5, prefix="a/b"), ValueError, "prefix must be a plain file name part, got 'a/b'"),
    ("step negative", lambda c: PeriodicCheckpoint(c.dir, every=5, step=-1), ValueError, "step must be an integer >= 0, got -1"),
    # saving
    ("save into a missing folder", lambda c: c.layer.save(c.dir / "nope" / "l.npz"), FileNotFoundError, "folder .*nope' does not exist"),
    ("save onto a folder", lambda c: c.trainer.save(c.dir), IsADirectoryError, "it is a folder"),
    # checkpoint files, loaded into the existing layer (which must stay as it was)
    ("missing file", lambda c: c.load_into_layer(c.dir / "missing.npz"), FileNotFoundError, "no checkpoint at .*missing.npz"),
    ("truncated file", lambda c: c.load_into_layer(c.file("t.npz", _bytes(c)[: len(_bytes(c)) // 2])), CheckpointError, "truncated or corrupted"),
    ("empty file", lambda c: c.load_into_layer(c.file("e.npz", b"")), CheckpointError, "truncated or corrupted"),
    ("text file", lambda c: c.load_into_layer(c.file("t.txt", b"W = 1\n")), CheckpointError, "truncated or corrupted"),
    ("flipped byte", lambda c: c.load_into_layer(c.file("f.npz", _flip(_bytes(c), 0.3))), CheckpointError, "truncated or corrupted|fails its checksum"),
    ("tampered array", lambda c: c.load_into_layer(_tampered(c)), CheckpointError, "array 'model/W' fails its checksum"),
    ("newer format version", lambda c: c.load_into_layer(_newer(c)), CheckpointError, r"format version 2.*reads versions up to 1: upgrade"),
    ("plain npz", lambda c: (np.savez(c.dir / "plain.npz", W=np.zeros(3)), c.load_into_layer(c.dir / "plain.npz")), CheckpointError, "not a canns_stdp checkpoint"),
    ("pickled objects", lambda c: (np.savez(c.dir / "obj.npz", __meta__=np.array([{"a": 1}], object)), c.load_into_layer(c.dir / "obj.npz")), CheckpointError, r"holds pickled Python objects.*\(allow_pickle=False\)"),
    ("W shape vs config", lambda c: c.load_into_layer(c.rewrite("s.npz", model__W=np.zeros((N_OUT, N_IN + 1), np.float32))), CheckpointError, r"model array 'W' has shape \(3, 7\).*needs shape \(3, 6\)"),
    ("W dtype", lambda c: c.load_into_layer(c.rewrite("d.npz", model__W=c.arrays["model/W"].astype(np.float64))), CheckpointError, "'W' has shape .* dtype float64.*dtype float32"),
    ("array missing", lambda c: c.load_into_layer(c.rewrite("m.npz", drop=("model/trace_post",))), CheckpointError, r"does not fit a SpikingLayer .*model arrays missing \['trace_post'\], unexpected \[\]"),
    ("extra array", lambda c: c.load_into_layer(c.rewrite("x.npz", model__u=np.zeros(3))), CheckpointError, r"missing \[\], unexpected \['u'\]"),
    ("layer of another size", lambda c: c.load_into_layer(c.rewrite("o.npz", _other_model(c, input_size=N_IN + 2), model__W=np.zeros((N_OUT, N_IN + 2), np.float32), model__x=np.zeros(N_IN + 2, np.float32), model__trace_pre=np.zeros(N_IN + 2, np.float32))), CheckpointError, r"'W' has shape \(3, 8\)"),
    ("invalid configuration", lambda c: SpikingLayer.load(c.rewrite("c.npz", _other_model(c, leak=3.0))), CheckpointError, r"model configuration is invalid for SpikingLayer: leak must be in \[0, 1\], got 3.0"),
    ("unknown class", lambda c: c.load_into_layer(c.rewrite("u.npz", {**c.meta["objects"], "trainer": {"kind": "elsewhere.Trainer", "config": {}}})), CheckpointError, "holds a elsewhere.Trainer, which is not defined"),
    ("model file as trainer", lambda c: c.load_into_layer(c.layer.save(c.dir / "layer_only.npz")), CheckpointError, r"holds no trainer \(it holds \['model'\]\)"),
    ("bad trainer setting in file", lambda c: c.load_into_layer(c.rewrite("b.npz", {**c.meta["objects"], "trainer": {"kind": c.meta["objects"]["trainer"]["kind"], "config": {**c.meta["objects"]["trainer"]["config"], "w_min": 2.0}}})), CheckpointError, "trainer configuration is invalid for STDPTrainer: w_min must be < w_max"),
]


@pytest.mark.parametrize("case, call, error, message", CASES, ids=[c[0] for c in CASES])
def test_bad_input_gives_a_clear_error_and_changes_nothing(tmp_path, case, call, error, message):
    ctx = Ctx(tmp_path)
    layer_before, config_before, _ = ctx.snapshot()
    with pytest.raises(error, match=message):
        call(ctx)
    layer_after, config_after, files_after = ctx.snapshot()
    for k, a in layer_before.items():
        np.testing.assert_array_equal(layer_after[k], a, err_msg=k)
    changed = getattr(ctx.trainer, "_catalogue_changed", set())
    assert {k: v for k, v in config_after.items() if k not in changed} == \
        {k: v for k, v in config_before.items() if k not in changed}
    assert not [n for n in files_after if n.endswith(".tmp")], "a temporary file was left behind"
    assert (tmp_path / "good.npz").read_bytes() == ctx.good.read_bytes()
    assert ck.read_checkpoint(tmp_path / "good.npz")  # still loadable


def test_catalogue_is_large_and_distinct():
    assert len(CASES) >= 30
    assert len({c[0] for c in CASES}) == len(CASES)
