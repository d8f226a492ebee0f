"""The Python loop calls the native kernel one step at a time where the compiled loop runs
it a chunk at a time: the compiled loop's result bit for bit and the NumPy reference's,
in calls split anywhere, with imposed spikes; the plain step op by op inside
``jax.disable_jit()``; the caller's arrays untouched."""

import jax
import numpy as np
import pytest

import reference
from canns_stdp import Ensemble, SpikingLayer, STDPTrainer
from canns_stdp.functional.dependence import DEPENDENCES, WeightBounds
from canns_stdp.functional.layer_step import LayerConfig, LayerParams, LayerState
from canns_stdp.functional.neurons import LIFParams
from canns_stdp.functional.stdp import STDPParams, TraceParams
from canns_stdp.functional.traces import TRACE_MODES
from canns_stdp.kernels import native_pair, native_steps, pair_layer

pytestmark = pytest.mark.skipif(not native_pair.native_available(warn=False), reason="numba is not installed")

N_IN, N_OUT = 200, 90  # 18,000 synapses: the native kernel's size
NUMBERS = dict(threshold=2.0, lr=0.2, A_plus=0.005, A_minus=0.00525)


@pytest.fixture
def job(rng):
    xs = (rng.random((333, N_IN)) < 0.05).astype(np.float32)
    W0 = rng.uniform(0.0, 0.3, (N_OUT, N_IN)).astype(np.float32)
    posts = (rng.random((333, N_OUT)) < 0.1).astype(np.float32)
    return xs, W0, posts


def spy_on(monkeypatch, name):
    """Count the calls of ``pair_layer.<name>``."""
    calls = []
    original = getattr(pair_layer, name)
    monkeypatch.setattr(pair_layer, name, lambda *a, **k: calls.append(a[4]) or original(*a, **k))
    return calls


def trainer(W0, compiled, **kw):
    layer = SpikingLayer(N_IN, N_OUT, W_init=W0, threshold=NUMBERS["threshold"])
    numbers = dict(learning_rate=NUMBERS["lr"], A_plus=NUMBERS["A_plus"], A_minus=NUMBERS["A_minus"])
    return STDPTrainer(layer, compiled=compiled, chunk_size=100, **{**numbers, **kw})


@pytest.mark.parametrize("imposed", [False, True])
@pytest.mark.parametrize("dependence", ["additive", "soft"])
def test_the_python_loop_runs_the_native_kernel_step_by_step_as_the_compiled_loop(monkeypatch, job, imposed,
                                                                                   dependence):
    """Additive LTP (deferred over spans, left open between calls) and soft bounds (not
    deferred; quiet enough for the native kernel after a first chunk of plain steps)."""
    xs, W0, posts = job
    posts = posts if imposed else None
    if dependence == "soft":
        monkeypatch.setattr(pair_layer, "NATIVE_MAX_FIRING", 1.0)  # busy as this layer is
        monkeypatch.setattr(pair_layer, "NATIVE_MAX_FIRED", N_OUT)
    steps = spy_on(monkeypatch, "native_steps_chunk")
    cuts = [0, 37, 150, 201, 333]
    results = {}
    for compiled in (True, False):
        t = trainer(W0, compiled, weight_dependence=dependence)
        spikes = [t.train(xs[a:b], None if posts is None else posts[a:b], return_spikes=True)
                  for a, b in zip(cuts, cuts[1:])]
        results[compiled] = (np.asarray(t.model.W.value), np.concatenate(spikes), np.asarray(t.model.v.value),
                             np.asarray(t.model.trace_pre.value), np.asarray(t.model.trace_post.value))
    assert sum(steps) >= 233  # every step after a first chunk, at least, called step by step
    ref = reference.run(W0, xs, posts, dependence=dependence, **NUMBERS)
    W, spikes, v = results[False][:3]
    assert 0.02 < spikes.mean() < 0.8 and np.abs(W - W0).max() > 0.02
    np.testing.assert_array_equal(spikes, ref[-1])
    np.testing.assert_allclose(W, ref[0], atol=2e-5)
    np.testing.assert_allclose(v, ref[1], atol=2e-5)
    if dependence == "additive":  # (soft: a first chunk of plain steps, compiled or one by one)
        for ours, compiled in zip(results[False], results[True]):
            np.testing.assert_array_equal(ours, compiled)


def test_inside_disable_jit_the_python_loop_runs_the_plain_step(monkeypatch, job):
    xs, W0, _ = job
    steps = spy_on(monkeypatch, "native_steps_chunk")
    t = trainer(W0, False)
    t.train(xs[:20])  # a fresh layer's first chunk: the native kernel, deferring LTP
    assert steps == [20]
    with jax.disable_jit():
        t.train(xs[20:40])
    assert steps == [20]
    t.train(xs[40:130])  # the chunk of steps 0-99 goes on as it went on, the next is native again
    assert steps == [20, 30]
    ref = reference.run(W0, xs[:130], **NUMBERS)
    np.testing.assert_allclose(t.model.W.value, ref[0], atol=2e-5)


@pytest.mark.parametrize("kernel", [native_pair.native_chunk, native_steps.native_steps_chunk])
def test_the_callers_arrays_are_left_alone(job, kernel):
    """A chunk, in one call or step by step, leaves the state, the ledger and the inputs
    it is given unchanged (NumPy arrays the kernel could write to); the ledger it hands on
    is its own."""
    xs, W0, posts = job
    config = LayerConfig(trace_add=TRACE_MODES["cumulative"], dependence=DEPENDENCES["additive"], hardbound=True)
    params = LayerParams(LIFParams(0.9, NUMBERS["threshold"], 0.0), TraceParams(0.95, 0.95, 1.0, 1.0),
                         STDPParams(NUMBERS["lr"], NUMBERS["A_plus"], NUMBERS["A_minus"], WeightBounds(0.0, 1.0, 1.0)))
    state = LayerState(W0.copy(), np.full(N_OUT, 0.5, np.float32), np.zeros(N_OUT, np.float32),
                       np.full(N_IN, 0.3, np.float32), np.full(N_OUT, 0.2, np.float32))
    given = [np.array(a) for a in (*state, xs, posts)]
    opened, _ = kernel(config, params, state, (xs, posts), 40, True, 32, 0, False)
    assert isinstance(opened, native_pair.OpenLedger)  # 40 steps: the second span left open
    ledger = [np.array(a) for a in (opened.owed, opened.rates)]
    kernel(config, params, opened, (xs[40:], posts[40:]), 60, True, 32, 40, True)
    for before, after in zip(given, (*state, xs, posts)):
        np.testing.assert_array_equal(before, after)
    np.testing.assert_array_equal(ledger[0], opened.owed)
    np.testing.assert_array_equal(ledger[1], opened.rates)


def test_an_ensemble_of_python_loop_members_ends_where_each_ends_alone(job):
    """Members of the Python loop run the ensemble's native kernel, a chunk at a time: bit
    for bit what each member's Python loop gives alone, the native kernel step by step."""
    xs, W0, _ = job
    lrs = (0.1, 0.3)
    members, alone = ([trainer(W0, False, learning_rate=lr) for lr in lrs] for _ in range(2))
    spikes = Ensemble(members).train(xs, return_spikes=True)
    W_ref, *_, s_ref = reference.run(W0, xs, **{**NUMBERS, "lr": lrs[1]})
    np.testing.assert_array_equal(spikes[1], s_ref)
    np.testing.assert_allclose(members[1].model.W.value, W_ref, atol=2e-5)
    for k in range(2):
        np.testing.assert_array_equal(spikes[k], alone[k].train(xs, return_spikes=True))
        np.testing.assert_array_equal(members[k].model.W.value, alone[k].model.W.value)
    assert not np.array_equal(members[0].model.W.value, members[1].model.W.value)


def test_both_loops_share_one_compiled_stretch(tmp_path):
    """The Python loop's steps and the compiled loop's chunks call the kernel's stretch
    with the same argument types, so a machine's first run compiles it once (several
    seconds), not once for each loop. (An empty kernel cache: loaded from the cache, the
    stretch is part of its callers and lists no types of its own.)"""
    import os
    import subprocess
    import sys
    code = ("import numpy as np\n"
            "from canns_stdp import SpikingLayer, STDPTrainer\n"
            "from canns_stdp.kernels import native_pair, pair_layer\n"
            "pair_layer.NATIVE_MIN_SYNAPSES = 0\n"
            "xs = (np.random.default_rng(0).random((80, 30)) < 0.1).astype(np.float32)\n"
            "for compiled in (False, True):\n"
            "    STDPTrainer(SpikingLayer(30, 10, threshold=0.5), compiled=compiled, chunk_size=64).train(xs)\n"
            "print(len(native_pair._run_stretch.signatures))\n")
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env).stdout
    assert out.split()[-1] == "1"
