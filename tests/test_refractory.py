"""A layer's absolute refractory period: every kernel, loop and layer kind against the
NumPy transcription of the step (tests/reference.py), its state through checkpoints,
split calls and ensembles, and bad values refused."""

import numpy as np
import pytest

import canns_stdp.kernels.pair_layer as pair_layer
import conv_reference
import reference
from canns_stdp import ConvSpikingLayer, Ensemble, SpikingLayer, STDPTrainer, Trainer, rules
from canns_stdp.kernels.native_pair import native_available, native_chunk
from canns_stdp.monitors import StateMonitor

N_IN, N_OUT, T = 120, 24, 400
THRESHOLD, LR = 1.0, 0.2
STATE = ("W", "v", "spike", "trace_pre", "trace_post", "refractory_left")
KERNELS = {  # trainer keywords; which kernel runs the chunks
    "auto": dict(),                                          # deferred LTP where enough neurons fire
    "column": dict(event_driven=True, weight_dependence="soft"),
    "dense": dict(event_driven=False),
    "python": dict(compiled=False, chunk_size=64),
}


@pytest.fixture
def problem(rng):
    xs = (rng.random((T, N_IN)) < 0.08).astype(np.float32)
    W0 = rng.uniform(0.0, 0.4, (N_OUT, N_IN)).astype(np.float32)
    return xs, W0


def expected(W0, xs, period, dependence="additive", **kw):
    return reference.run(W0, xs, threshold=THRESHOLD, lr=LR, dependence=dependence, refractory=period,
                         return_left=True, **kw)


def check_against(layer, ref, spikes):
    W, v, tr_pre, tr_post, s, left = ref
    np.testing.assert_array_equal(np.asarray(spikes), s)
    for name, want in (("W", W), ("v", v), ("trace_pre", tr_pre), ("trace_post", tr_post),
                       ("refractory_left", left)):
        np.testing.assert_allclose(np.asarray(getattr(layer, name).value), want, atol=2e-6, err_msg=name)


@pytest.mark.parametrize("kernel", sorted(KERNELS))
def test_every_kernel_follows_the_reference(problem, kernel, monkeypatch):
    xs, W0 = problem
    kw = dict(KERNELS[kernel])
    dependence = "soft" if kw.get("weight_dependence") == "soft" else "additive"
    layer = SpikingLayer(N_IN, N_OUT, W_init=W0, threshold=THRESHOLD, refractory=3.0)
    trainer = STDPTrainer(layer, learning_rate=LR, **{"chunk_size": 128, "fused": "auto", **kw})
    spikes = trainer.train(xs, return_spikes=True)
    ref = expected(W0, xs, 3, dependence=dependence)
    assert 0.02 < ref[4].mean() < 0.25  # neurons fire, and the period holds them back
    check_against(layer, ref, spikes)


@pytest.mark.skipif(not native_available(warn=False), reason="numba is not installed")
@pytest.mark.parametrize("period", [0.0, 3.0])
def test_the_native_kernel_runs_only_layers_without_a_period(problem, monkeypatch, period):
    xs, W0 = problem
    ran = []

    def spy(*args, **kwargs):
        ran.append(True)
        return native_chunk(*args, **kwargs)
    monkeypatch.setattr(pair_layer, "native_chunk", spy)
    monkeypatch.setattr(pair_layer, "NATIVE_MAX_FIRING", 1.0)  # however many fire,
    monkeypatch.setattr(pair_layer, "NATIVE_MAX_FIRED", N_OUT)
    monkeypatch.setattr(pair_layer, "NATIVE_MIN_SYNAPSES", 0)  # on however small a layer
    layer = SpikingLayer(N_IN, N_OUT, W_init=W0, threshold=THRESHOLD, refractory=period)
    spikes = STDPTrainer(layer, learning_rate=LR, chunk_size=128).train(xs, return_spikes=True)
    assert bool(ran) == (period == 0.0)
    check_against(layer, expected(W0, xs, int(period)), spikes)


def test_the_period_is_in_the_units_of_dt_and_silences_the_neuron(problem):
    xs, W0 = problem
    layer = SpikingLayer(N_IN, N_OUT, W_init=W0, threshold=THRESHOLD, dt=0.5, refractory=2.4)  # 5 steps
    spikes = np.asarray(STDPTrainer(layer, learning_rate=LR).train(xs, return_spikes=True))
    check_against(layer, expected(W0, xs, 5), spikes)
    for i in range(N_OUT):
        times = np.flatnonzero(spikes[:, i])
        assert len(times) < 2 or np.diff(times).min() >= 6


def test_a_zero_period_is_the_layer_without_one(problem):
    xs, W0 = problem
    layer = SpikingLayer(N_IN, N_OUT, W_init=W0, threshold=THRESHOLD, refractory=0.4)  # rounds to 0 steps
    assert not layer.has_refractory and not hasattr(layer.get_state(), "refractory_left")
    spikes = STDPTrainer(layer, learning_rate=LR).train(xs, return_spikes=True)
    W, v, _, _, s = reference.run(W0, xs, threshold=THRESHOLD, lr=LR)
    np.testing.assert_array_equal(np.asarray(spikes), s)
    np.testing.assert_allclose(layer.W.value, W, atol=2e-6)


def test_imposed_spikes_fire_a_refractory_neuron_and_start_its_period_again(problem, rng):
    xs, W0 = problem
    posts = (rng.random((T, N_OUT)) < 0.3).astype(np.float32)
    layer = SpikingLayer(N_IN, N_OUT, W_init=W0, threshold=THRESHOLD, refractory=4.0)
    spikes = STDPTrainer(layer, learning_rate=LR).train(xs, post_spikes=posts, return_spikes=True)
    check_against(layer, expected(W0, xs, 4, posts=posts), spikes)


def test_forward_and_predict_hold_the_neuron(problem):
    xs, W0 = problem
    layer = SpikingLayer(N_IN, N_OUT, W_init=W0, threshold=THRESHOLD, refractory=2.0)
    spikes = np.stack([np.asarray(layer.forward(x)) for x in xs[:60]])
    ref = expected(W0, xs[:60], 2, plastic=False)
    check_against(layer, ref, spikes)


def test_a_batch_holds_one_counter_per_sample(rng):
    n_in, n_out, B = 30, 6, 3
    xs = (rng.random((80, B, n_in)) < 0.2).astype(np.float32)
    W0 = rng.uniform(0.0, 0.5, (n_out, n_in)).astype(np.float32)
    layer = SpikingLayer(n_in, n_out, W_init=W0, threshold=THRESHOLD, refractory=2.0)
    spikes = np.asarray(Trainer(layer, rules.pair(), learning_rate=0.0).train(xs, return_spikes=True))
    for b in range(B):  # without learning, every sample is a layer of its own
        _, v, _, _, s, left = reference.run(W0, xs[:, b], threshold=THRESHOLD, lr=0.0, refractory=2,
                                            return_left=True)
        np.testing.assert_array_equal(spikes[:, b], s)
        np.testing.assert_allclose(np.asarray(layer.refractory_left.value)[b], left)
        np.testing.assert_allclose(np.asarray(layer.v.value)[b], v, atol=2e-6)


def test_a_convolutional_layer_has_the_same_period(rng):
    xs = (rng.random((40, 1, 6, 6)) < 0.3).astype(np.float32)
    W0 = rng.uniform(0.0, 0.6, (2, 1, 3, 3)).astype(np.float32)
    layer = ConvSpikingLayer(1, 2, 3, input_shape=(6, 6), W_init=W0, threshold=THRESHOLD, refractory=2.0)
    spikes = np.asarray(Trainer(layer, rules.pair(), learning_rate=0.0).train(xs, return_spikes=True))
    current, _ = conv_reference.conv_maps((1, 1), [(0, 0)] * 2, (1, 1), 1)
    v, left = np.zeros((2, 4, 4), np.float32), np.zeros((2, 4, 4), np.float32)
    for t, x in enumerate(xs):  # the membrane and the period, from the convolution's definition
        resting = left > 0
        drive = current(W0.astype(np.float64), x.astype(np.float64)).astype(np.float32)
        v = np.where(resting, v, np.float32(0.9) * v + drive).astype(np.float32)
        s = ((v >= THRESHOLD) & ~resting).astype(np.float32)
        v = np.where(s > 0, 0.0, v).astype(np.float32)
        left = np.where(s > 0, 2.0, np.maximum(left - 1, 0)).astype(np.float32)
        np.testing.assert_array_equal(spikes[t], s)
    assert spikes.mean() > 0.05
    np.testing.assert_allclose(np.asarray(layer.refractory_left.value), left)
    np.testing.assert_allclose(np.asarray(layer.v.value), v, atol=1e-5)


def test_a_split_run_with_a_checkpoint_between_equals_one_run(problem, tmp_path):
    xs, W0 = problem
    whole = SpikingLayer(N_IN, N_OUT, W_init=W0, threshold=THRESHOLD, refractory=3.0)
    STDPTrainer(whole, learning_rate=LR, chunk_size=128).train(xs)
    layer = SpikingLayer(N_IN, N_OUT, W_init=W0, threshold=THRESHOLD, refractory=3.0)
    trainer = STDPTrainer(layer, learning_rate=LR, chunk_size=128)
    trainer.train(xs[:201])
    assert np.asarray(layer.refractory_left.value).any()  # the file holds neurons mid-period
    trainer.save(tmp_path / "run.npz")
    resumed = STDPTrainer.load(tmp_path / "run.npz")
    assert resumed.model.refractory == 3.0
    resumed.train(xs[201:])
    for name in STATE:
        np.testing.assert_array_equal(np.asarray(getattr(resumed.model, name).value),
                                      np.asarray(getattr(whole, name).value), err_msg=name)


def test_files_of_layers_without_a_period_are_unchanged(tmp_path):
    layer = SpikingLayer(5, 3, seed=0)
    layer.save(tmp_path / "layer.npz")
    assert "refractory" not in layer.checkpoint_config()
    assert "refractory_left" not in layer.checkpoint_state()
    assert SpikingLayer.load(tmp_path / "layer.npz").refractory == 0.0


def test_an_ensemble_trains_each_member_as_alone(problem):
    xs, W0 = problem
    alone = []
    for period in (1.0, 3.0, 5.0):
        layer = SpikingLayer(N_IN, N_OUT, W_init=W0, threshold=THRESHOLD, refractory=period)
        Trainer(layer, rules.pair(), learning_rate=LR).train(xs)
        alone.append(layer)
    members = [Trainer(SpikingLayer(N_IN, N_OUT, W_init=W0, threshold=THRESHOLD, refractory=p), rules.pair(),
                       learning_rate=LR) for p in (1.0, 3.0, 5.0)]
    Ensemble(members).train(xs)
    for m, layer in zip(members, alone):
        for name in STATE:
            np.testing.assert_allclose(np.asarray(getattr(m.model, name).value),
                                       np.asarray(getattr(layer, name).value), atol=1e-6, err_msg=name)


def test_an_ensemble_refuses_members_with_and_without_a_period():
    members = [Trainer(SpikingLayer(8, 4, seed=0, refractory=p), rules.pair()) for p in (0.0, 2.0)]
    with pytest.raises(ValueError, match="refractory"):
        Ensemble(members)


@pytest.mark.parametrize("bad", [-1.0, float("nan"), "2", None])
def test_a_bad_period_is_refused_naming_it(bad):
    with pytest.raises((ValueError, TypeError), match="refractory"):
        SpikingLayer(4, 2, refractory=bad)


def test_a_bad_period_set_later_changes_nothing(problem):
    xs, W0 = problem
    layer = SpikingLayer(N_IN, N_OUT, W_init=W0, threshold=THRESHOLD, refractory=2.0)
    trainer = STDPTrainer(layer, learning_rate=LR)
    trainer.train(xs[:50])
    before = {name: np.asarray(getattr(layer, name).value) for name in STATE}
    layer.refractory = -3.0
    for call in (lambda: trainer.train(xs[50:]), lambda: layer.forward(xs[0])):
        with pytest.raises(ValueError, match="refractory"):
            call()
    for name in STATE:
        np.testing.assert_array_equal(np.asarray(getattr(layer, name).value), before[name], err_msg=name)


def test_the_fused_kernel_is_refused_with_a_period(problem):
    xs, W0 = problem
    layer = SpikingLayer(N_IN, N_OUT, W_init=W0, refractory=2.0)
    with pytest.raises(ValueError, match="refractory"):
        STDPTrainer(layer, fused=True).train(xs)


def test_a_period_switched_on_later_starts_from_rest(problem):
    xs, W0 = problem
    layer = SpikingLayer(N_IN, N_OUT, W_init=W0, threshold=THRESHOLD)
    trainer = STDPTrainer(layer, learning_rate=LR)
    trainer.train(xs[:100])
    state = [np.asarray(getattr(layer, n).value) for n in ("W", "v", "trace_pre", "trace_post")]
    layer.refractory = 3.0
    spikes = trainer.train(xs[100:], return_spikes=True)
    ref = expected(state[0], xs[100:], 3, state=state[1:])
    check_against(layer, ref, spikes)


def test_a_state_monitor_records_the_counters(problem):
    xs, W0 = problem
    layer = SpikingLayer(N_IN, N_OUT, W_init=W0, threshold=THRESHOLD, refractory=3.0)
    left = StateMonitor("refractory_left", indices=[0, 5, 9], every=40)
    STDPTrainer(layer, learning_rate=LR, chunk_size=40).train(xs, monitors=[left])
    for k, row in zip(left.steps, left.values):
        np.testing.assert_array_equal(row, expected(W0, xs[:k], 3)[5][[0, 5, 9]])
    assert np.asarray(left.values).any()
    plain = STDPTrainer(SpikingLayer(N_IN, N_OUT, W_init=W0))
    with pytest.raises(ValueError, match="no refractory_left"):
        plain.train(xs, monitors=[StateMonitor("refractory_left")])
    np.testing.assert_array_equal(plain.model.W.value, W0)
