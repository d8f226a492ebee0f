"""Checkpoints: round trips, the generic protocol, atomic writes, exact resume, periodic saves."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import brainpy.math as bm
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import background
import reference
from canns_stdp import SpikingLayer, STDPTrainer
from canns_stdp import checkpoint as ck
from canns_stdp.checkpoint import CheckpointError, PeriodicCheckpoint

N_IN, N_OUT = 7, 4
STATE = ("W", "x", "v", "spike", "trace_pre", "trace_post")
ROOT = Path(__file__).resolve().parents[1]
FAST = dict(learning_rate=1.0, A_plus=0.05, A_minus=0.0525)


def spikes(rng, T, n=N_IN, p=0.4):
    return (rng.random((T, n)) < p).astype(np.float32)


def trained_layer(rng, **layer_kw):
    layer = SpikingLayer(N_IN, N_OUT, W_init=rng.uniform(0.1, 0.5, (N_OUT, N_IN)), **layer_kw)
    STDPTrainer(layer, **FAST).train(spikes(rng, 40))
    return layer


def arrays(obj):
    return {k: np.array(getattr(obj, k).value) for k in STATE}


def test_layer_round_trip_is_exact(rng, tmp_path):
    layer = trained_layer(rng, tau_pre=12.0, tau_post=25.0, decay="euler", trace_mode="nearest",
                          a_pre=0.5, threshold=0.8, leak=0.85, v_reset=-0.1)
    assert np.abs(layer.trace_post.value).sum() > 0 and np.abs(layer.v.value).sum() > 0
    layer.save(tmp_path / "layer.npz")
    loaded = SpikingLayer.load(tmp_path / "layer.npz")
    assert loaded.checkpoint_config() == layer.checkpoint_config()
    for k, a in arrays(layer).items():
        b = np.asarray(getattr(loaded, k).value)
        assert b.dtype == a.dtype and np.array_equal(a, b), k
    x = spikes(rng, 1)[0]
    np.testing.assert_array_equal(loaded.forward(x), layer.forward(x))
    # no pickle anywhere: every member is a plain .npy that loads with allow_pickle=False
    with np.load(tmp_path / "layer.npz", allow_pickle=False) as npz:
        meta = json.loads(npz["__meta__"].tobytes())
    assert meta["format_version"] == ck.FORMAT_VERSION
    assert meta["objects"]["model"]["kind"] == "canns_stdp.layer.SpikingLayer"
    assert oct(os.stat(tmp_path / "layer.npz").st_mode & 0o777) != "0o600"


def test_trainer_round_trip_and_unstorable_arguments(rng, tmp_path):
    layer = trained_layer(rng)
    trainer = STDPTrainer(layer, learning_rate=0.3, A_plus=0.02, pairing="causal", w_min=-0.2,
                          weight_dependence="power", mu=0.7, chunk_size=32, compiled=False)
    trainer.save(tmp_path / "t.npz")
    loaded = STDPTrainer.load(tmp_path / "t.npz")
    assert loaded.checkpoint_config() == trainer.checkpoint_config()
    for k, a in arrays(layer).items():
        assert np.array_equal(a, np.asarray(getattr(loaded.model, k).value)), k
    # the model alone can be read from a trainer's file
    assert np.array_equal(SpikingLayer.load(tmp_path / "t.npz").W.value, layer.W.value)

    deps = (lambda W: 1.0 - W, lambda W: W)
    STDPTrainer(layer, weight_dependence=deps).save(tmp_path / "user.npz")
    with pytest.raises(CheckpointError, match=r"weight_dependence=.*not storable; pass it again"):
        STDPTrainer.load(tmp_path / "user.npz")
    assert STDPTrainer.load(tmp_path / "user.npz", weight_dependence=deps).weight_dependence is deps


class KeyedTrainer(STDPTrainer):
    """A trainer with state of its own, as reward trainers and encoders will have:
    a bm.Variable (eligibility), a typed PRNG key and a step counter."""

    checkpoint_attrs = ("key", "raw_key", "n_calls")

    def __init__(self, model, **kw):
        super().__init__(model, **kw)
        self.eligibility = bm.Variable(jnp.zeros((model.output_size, model.input_size)))
        self.key = jax.random.key(0)
        self.raw_key = jax.random.PRNGKey(1)
        self.n_calls = 0

    def train(self, xs, **kw):
        self.key, sub = jax.random.split(self.key)
        self.eligibility.value = self.eligibility.value + jax.random.uniform(sub, self.eligibility.shape)
        self.n_calls += 1
        return super().train(xs, **kw)


def test_generic_protocol_carries_trainer_state(rng, tmp_path):
    layer = SpikingLayer(N_IN, N_OUT, seed=3)
    trainer = KeyedTrainer(layer)
    xs = spikes(rng, 20)
    trainer.train(xs)
    trainer.save(tmp_path / "k.npz")
    W_saved = np.array(layer.W.value)
    loaded = KeyedTrainer.load(tmp_path / "k.npz")
    assert loaded.n_calls == 1 and isinstance(loaded.n_calls, int)
    assert jax.dtypes.issubdtype(loaded.key.dtype, jax.dtypes.prng_key)
    np.testing.assert_array_equal(jax.random.key_data(loaded.key), jax.random.key_data(trainer.key))
    np.testing.assert_array_equal(loaded.raw_key, trainer.raw_key)
    # continuing both gives the same eligibility (same RNG stream) and weights
    trainer.train(xs), loaded.train(xs)
    np.testing.assert_array_equal(loaded.eligibility.value, trainer.eligibility.value)
    np.testing.assert_array_equal(loaded.model.W.value, trainer.model.W.value)
    # a model can be read from a trainer's file; a trainer must be of the class asked for
    np.testing.assert_array_equal(SpikingLayer.load(tmp_path / "k.npz").W.value, W_saved)
    STDPTrainer(layer).save(tmp_path / "plain.npz")
    with pytest.raises(CheckpointError, match=r"holds a canns_stdp.compat.STDPTrainer, not a .*KeyedTrainer"):
        KeyedTrainer.load(tmp_path / "plain.npz")


# -- atomic writes ------------------------------------------------------------------------------
SAVER = textwrap.dedent("""
    import os, signal, sys
    import numpy as np
    import jax.numpy as jnp
    from canns_stdp import SpikingLayer
    from canns_stdp import checkpoint as ck
    path, mode = sys.argv[1], sys.argv[2]
    layer = SpikingLayer(1000, 500, W_init=np.zeros((500, 1000), np.float32))
    layer.save(path)
    if mode == "self-kill":   # die half-way through writing the temporary file
        real = np.savez
        def half(f, **arrays):
            f.write(b"PK" + b"x" * 100000); f.flush()
            os.kill(os.getpid(), signal.SIGKILL)
        ck.np.savez = half
        layer.W.value = jnp.ones((500, 1000))
        layer.save(path)
    i = 0
    while True:
        i += 1
        layer.W.value = jnp.full((500, 1000), float(i))
        layer.save(path)
        print(i, flush=True)
""")


def _child(tmp_path, mode):
    script = tmp_path / "saver.py"
    script.write_text(SAVER)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "JAX_PLATFORMS": "cpu"}
    return subprocess.Popen([sys.executable, str(script), str(tmp_path / "ck.npz"), mode],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)


def _assert_intact(path):
    W = np.asarray(SpikingLayer.load(path).W.value)
    assert W.shape == (500, 1000) and np.all(W == W.flat[0])
    return float(W.flat[0])


def test_kill_during_save_keeps_previous_checkpoint(tmp_path):
    """One child dies inside a write (deterministically); another is killed from
    outside at a random moment of a save loop. Both leave a loadable, intact file."""
    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir()
    inside, loop = _child(tmp_path / "a", "self-kill"), _child(tmp_path / "b", "loop")
    for _ in range(3):  # a few saves done
        assert loop.stdout.readline(), loop.stderr.read()
    time.sleep(np.random.default_rng(0).uniform(0.0, 0.3))
    loop.send_signal(signal.SIGKILL)
    for proc in (inside, loop):
        proc.wait(timeout=120)
        assert proc.returncode == -signal.SIGKILL, proc.stderr.read()
    assert _assert_intact(tmp_path / "b" / "ck.npz") >= 2.0
    leftovers = [p.name for p in (tmp_path / "a").iterdir() if p.name.endswith(".tmp")]
    assert leftovers, "the child should have died inside the write"
    assert _assert_intact(tmp_path / "a" / "ck.npz") == 0.0  # the previous file, not the half-written one


# -- exact resume and determinism, in fresh processes -------------------------------------------------
RUNNER = textwrap.dedent("""
    import sys
    import numpy as np
    from canns_stdp import SpikingLayer, STDPTrainer
    mode, out, T = sys.argv[1], sys.argv[2], int(sys.argv[3])
    xs = (np.random.default_rng(7).random((2 * T, 30)) < 0.3).astype(np.float32)

    def fresh():
        layer = SpikingLayer(30, 10, seed=11, tau_pre=10.0)
        return STDPTrainer(layer, learning_rate=1.0, A_plus=0.05, A_minus=0.0525, chunk_size=64)

    if mode == "resume":  # from the checkpoint saved after T steps by another process
        trainer = STDPTrainer.load(sys.argv[4])
        trainer.train(xs[T:])
    else:
        half = fresh()
        half.train(xs[:T])
        half.save(out + ".half.npz")
        trainer = fresh()
        trainer.train(xs)
    trainer.save(out + ".npz")
""")


def _command(folder, *args):
    script = folder / "runner.py"
    script.write_text(RUNNER)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "JAX_PLATFORMS": "cpu"}
    return dict(args=[sys.executable, str(script), *map(str, args)], env=env)


RESUME_T = 150  # not a multiple of the chunk (64): the resumed run's chunks are shifted


def start_in_background(tmp_path_factory):
    """Two processes train 2T steps (together), then a third resumes: started beside the
    other tests (see ``background.py``)."""
    if background.scheduled("checkpoint-full"):
        return background.scheduled("checkpoint-full"), background.scheduled("checkpoint-resume")
    folder, T = tmp_path_factory.mktemp("resume"), RESUME_T
    full = background.schedule("checkpoint-full", [_command(folder, "full", folder / f"full{i}", T) for i in range(2)],
                               timeout=300, folder=folder)
    resume = background.schedule("checkpoint-resume", [_command(folder, "resume", folder / "resumed", T,
                                                                folder / "full0.half.npz")], timeout=300, folder=folder)
    return full, resume


def test_resume_in_fresh_process_is_bitwise_exact_and_runs_are_deterministic(tmp_path_factory):
    """Two processes train 2T steps from the same seed (and save a checkpoint after T);
    a third loads that checkpoint and trains T more. All three end bitwise equal."""
    full, resume = start_in_background(tmp_path_factory)
    for returncode, _, stderr in full.outcome() + resume.outcome():
        assert returncode == 0, stderr
    runs = [ck.read_checkpoint(full.folder / name)[1] for name in ("full0.npz", "full1.npz", "resumed.npz")]
    assert np.asarray(runs[0]["model/W"]).std() > 0.01  # the weights did move
    for other in runs[1:]:
        assert set(other) == set(runs[0])
        for name, a in runs[0].items():
            assert np.array_equal(a, other[name]), name


def test_resume_is_exact_with_the_python_loop(rng, tmp_path):
    xs = spikes(rng, 60)
    trainer = STDPTrainer(trained_layer(rng), compiled=False, **FAST)
    trainer.save(tmp_path / "start.npz")
    trainer.train(xs[:30])
    trainer.save(tmp_path / "half.npz")
    trainer.train(xs[30:])
    resumed = STDPTrainer.load(tmp_path / "half.npz")
    assert resumed.compiled is False
    resumed.train(xs[30:])
    for k, a in arrays(trainer.model).items():
        assert np.array_equal(np.asarray(getattr(resumed.model, k).value), a), k


# -- periodic checkpoints ----------------------------------------------------------------------------
def test_periodic_checkpoints_are_the_states_at_those_steps(rng, tmp_path):
    xs = spikes(rng, 250)
    W0 = rng.uniform(0.1, 0.5, (N_OUT, N_IN)).astype(np.float32)
    files = {}
    for compiled in (True, False):
        layer = SpikingLayer(N_IN, N_OUT, W_init=W0)
        trainer = STDPTrainer(layer, chunk_size=32, compiled=compiled, **FAST)
        ckpt = PeriodicCheckpoint(tmp_path / str(compiled), every=50, keep_last=3)
        trainer.train(xs[:100], checkpoint=ckpt)
        trainer.train(xs[100:], checkpoint=ckpt)
        assert ckpt.step == 250
        # chunks end at multiples of 32 of the step count and where calls end (100, 250);
        # saved at the first chunk end at or after 50, 100, 150, 200, 250
        names = [p.name for p in ckpt.files()]
        assert names == ["checkpoint-0000000160.npz", "checkpoint-0000000224.npz",
                         "checkpoint-0000000250.npz"]
        files[compiled] = ckpt.files()
    for step, f_c, f_p in zip((160, 224, 250), files[True], files[False]):
        meta, a = ck.read_checkpoint(f_c)
        assert meta["extra"]["step"] == step
        _, b = ck.read_checkpoint(f_p)
        W_ref = reference.run(W0, xs[:step], lr=1.0, A_plus=0.05, A_minus=0.0525)[0]
        np.testing.assert_allclose(a["model/W"], W_ref, atol=2e-5)
        np.testing.assert_allclose(b["model/W"], a["model/W"], atol=1e-6)
        np.testing.assert_array_equal(a["model/x"], xs[step - 1])
    # resuming from a periodic checkpoint gives the uninterrupted result, bitwise
    resumed = STDPTrainer.load(files[True][0])
    resumed.train(xs[160:])
    layer = SpikingLayer(N_IN, N_OUT, W_init=W0)
    STDPTrainer(layer, chunk_size=32, **FAST).train(xs)
    for k, a in arrays(layer).items():
        assert np.array_equal(np.asarray(getattr(resumed.model, k).value), a), k


def test_periodic_checkpoint_on_failure_writes_nothing_non_finite(rng, tmp_path):
    layer = trained_layer(rng)
    before = arrays(layer)
    trainer = STDPTrainer(layer, hardbound=False, learning_rate=1e3, chunk_size=16,
                          weight_dependence=(lambda W: jnp.exp(W * 1e3), lambda W: jnp.ones_like(W)))
    ckpt = PeriodicCheckpoint(tmp_path, every=16)
    with pytest.raises(FloatingPointError, match="non-finite values"):
        trainer.train(np.ones((200, N_IN), np.float32), checkpoint=ckpt)
    assert ckpt.step == 0
    for p in ckpt.files():
        assert all(np.isfinite(a).all() for a in ck.read_checkpoint(p)[1].values())
    for k, a in arrays(layer).items():
        np.testing.assert_array_equal(a, before[k])


def test_chunk_callback_sees_the_same_states_in_both_loops(rng):
    from canns_stdp.functional.layer_step import train_step
    from canns_stdp.loops import run_compiled, run_python
    from canns_stdp.mixed import stdp_stage

    layer = trained_layer(rng)
    config, params = stdp_stage(layer, **FAST)
    xs = spikes(rng, 70)
    seen = {}
    for name, loop in (("compiled", run_compiled), ("python", run_python)):
        calls = []
        loop(train_step, config, params, layer.get_state(), (xs, None), chunk_size=16,
             callback=lambda done, st: calls.append((done, np.asarray(st.W))))
        seen[name] = calls
    assert [d for d, _ in seen["compiled"]] == [16, 32, 48, 64, 70]
    assert [d for d, _ in seen["python"]] == [16, 32, 48, 64, 70]
    for (_, a), (_, b) in zip(seen["compiled"], seen["python"]):
        np.testing.assert_allclose(a, b, atol=1e-6)
