"""Short calls (one step of ``forward``/``predict``, ``train`` on 50 rows) compile once,
keep every check, and change nothing when they fail."""

import jax.numpy as jnp
import numpy as np
import pytest

import canns_stdp
import reference
from canns_stdp import RewardSTDPTrainer, SpikingLayer, STDPTrainer, TripletSTDPTrainer

N_IN, N_OUT = 20, 5
STATE = ("W", "v", "spike", "trace_pre", "trace_post", "x")


def patterns(rng, T, p=0.3):
    return (rng.random((T, N_IN)) < p).astype(np.float32)


def snapshot(layer, trainer=None, names=None):
    """The layer's state, and the trainer's (its rule's variables ``names``, by default
    those of its current rule) and step count."""
    arrays = {n: np.array(getattr(layer, n).value) for n in STATE}
    if trainer is not None:
        names = trainer._rule_state.names() if names is None else names
        arrays.update({f"trainer.{n}": np.array(getattr(trainer, n).value) for n in names})
        arrays["steps_trained"] = np.array(trainer.steps_trained)
    return arrays


def assert_unchanged(before, layer, trainer=None):
    names = [k[len("trainer."):] for k in before if k.startswith("trainer.")]
    after = snapshot(layer, trainer, names)
    assert before.keys() == after.keys()
    for name, value in before.items():
        np.testing.assert_array_equal(after[name], value, err_msg=name)


def warm(rng, **kw):
    """A 20x5 layer and its STDP trainer after a few short calls of each kind."""
    layer = SpikingLayer(N_IN, N_OUT, seed=0, threshold=0.5)
    layer.W.value = layer.W.value + 0.3
    trainer = STDPTrainer(layer, learning_rate=0.05, **kw)
    for _ in range(2):
        trainer.train(patterns(rng, 50))
        trainer.predict(patterns(rng, 1)[0])
        layer.forward(patterns(rng, 1)[0])
    return layer, trainer


def test_repeated_short_calls_do_not_recompile(rng):
    layer, trainer = warm(rng)
    count = canns_stdp.compilation_count()
    for _ in range(30):  # 1,500 steps: the calls cross chunks of the global step count too
        trainer.train(patterns(rng, 50))
        for x in patterns(rng, 5):
            trainer.predict(x)
            layer.forward(list(x))  # any array-like
    trainer.train(patterns(rng, 17))  # another length
    trainer.learning_rate, trainer.A_plus, layer.threshold, layer.leak = 0.02, 0.01, 0.45, 0.8  # numbers
    trainer.train(patterns(rng, 50))
    layer.forward(patterns(rng, 1)[0])
    assert canns_stdp.compilation_count() == count


def test_first_forward_is_counted(rng):
    layer = SpikingLayer(37, 11, seed=0)  # shapes no other test compiles
    count = canns_stdp.compilation_count()
    layer.forward(np.zeros(37, np.float32))
    assert canns_stdp.compilation_count() == count + 1
    layer.forward(np.ones(37, np.float32))
    assert canns_stdp.compilation_count() == count + 1


def test_forward_matches_predict_batch(rng):
    layer, trainer = warm(rng)
    layer.reset_state()
    twin = SpikingLayer(N_IN, N_OUT, threshold=0.5, W_init=np.asarray(layer.W.value))
    xs = patterns(rng, 40, p=0.5)
    spikes = np.stack([np.asarray(layer.forward(x)) for x in xs])
    np.testing.assert_array_equal(spikes, STDPTrainer(twin).predict_batch(xs))
    for name in STATE:
        np.testing.assert_array_equal(getattr(layer, name).value, getattr(twin, name).value, err_msg=name)


@pytest.mark.parametrize("x, error, match", [
    (np.array([np.nan] + [0.0] * (N_IN - 1), np.float32), ValueError, r"x must be finite, got nan at index \(0,\)"),
    (np.zeros(N_IN + 1, np.float32), ValueError, r"x must have shape \(20,\), got shape \(21,\)"),
    (["a"] * N_IN, TypeError, r"x must hold numbers"),
    (np.full(N_IN, 1e38, np.float32), FloatingPointError, r"forward produced non-finite values in \['v'\]"),
])
def test_failed_forward_changes_nothing(rng, x, error, match):
    layer, trainer = warm(rng)
    if error is FloatingPointError:  # finite weights whose current is inf - inf
        layer.W.value = np.where(np.arange(N_IN) % 2, 1e37, -1e37).astype(np.float32)[None].repeat(N_OUT, 0)
    before = snapshot(layer, trainer)
    for call in (layer.forward, trainer.predict):
        with pytest.raises(error, match=match):
            call(x)
        assert_unchanged(before, layer, trainer)


@pytest.mark.parametrize("name, value, error, match", [
    ("threshold", float("nan"), ValueError, r"threshold must be finite, got nan"),
    ("threshold", True, TypeError, r"threshold must be a real number, got True"),  # == 1 but not a number
    ("leak", 1.5, ValueError, r"leak must be in \[0, 1\], got 1.5"),
    ("trace_mode", "latest", ValueError, r"trace_mode must be one of"),
    ("tau_pre", -1.0, ValueError, r"tau_pre must be > 0, got -1.0"),
])
def test_a_parameter_changed_between_short_calls_is_checked(rng, name, value, error, match):
    layer, trainer = warm(rng)
    old = getattr(layer, name)
    setattr(layer, name, value)
    before = snapshot(layer, trainer)
    for call in (lambda: layer.forward(patterns(rng, 1)[0]), lambda: trainer.predict(patterns(rng, 1)[0]),
                 lambda: trainer.train(patterns(rng, 50))):
        with pytest.raises(error, match=match):
            call()
        assert_unchanged(before, layer, trainer)
    setattr(layer, name, old)  # the object it was: valid again
    trainer.train(patterns(rng, 50))
    layer.forward(patterns(rng, 1)[0])


def test_a_number_changed_in_place_is_checked(rng):
    layer, trainer = warm(rng)
    leak = np.array(0.9)  # a 0-d array is a number too, but it can change in place
    layer.leak = leak
    layer.forward(patterns(rng, 1)[0])
    trainer.train(patterns(rng, 50))
    leak[...] = 2.0
    before = snapshot(layer, trainer)
    with pytest.raises(ValueError, match=r"leak must be in \[0, 1\], got 2.0"):
        layer.forward(patterns(rng, 1)[0])
    with pytest.raises(ValueError, match=r"leak must be in \[0, 1\], got 2.0"):
        trainer.train(patterns(rng, 50))
    assert_unchanged(before, layer, trainer)


@pytest.mark.parametrize("change, error, match", [
    (dict(learning_rate=-0.1), ValueError, r"learning_rate must be >= 0, got -0.1"),
    (dict(A_plus=float("inf")), ValueError, r"A_plus must be finite, got inf"),
    (dict(hardbound=1), TypeError, r"hardbound must be True or False, got 1"),
    (dict(w_max=-1.0), ValueError, r"w_min must be < w_max, got w_min=0.0, w_max=-1.0"),
    (dict(pairing="both"), ValueError, r"pairing must be one of"),
])
def test_a_trainer_setting_changed_between_short_calls_is_checked(rng, change, error, match):
    layer, trainer = warm(rng)
    before = snapshot(layer, trainer)
    for name, value in change.items():
        setattr(trainer, name, value)
    with pytest.raises(error, match=match):
        trainer.train(patterns(rng, 50))
    assert_unchanged(before, layer, trainer)


@pytest.mark.parametrize("data, error, match", [
    (lambda X: np.where(np.arange(50)[:, None] == 30, np.nan, X), ValueError,
     r"patterns must be finite, got nan at index \(30, 0\)"),
    (lambda X: X[:, :-1], ValueError, r"patterns must have shape \(T, 20\), got shape \(50, 19\)"),
    (lambda X: X.astype(str), TypeError, r"patterns must hold numbers"),
])
def test_failed_short_train_changes_nothing(rng, data, error, match):
    layer, trainer = warm(rng)
    open_chunk = trainer._open_chunk
    before = snapshot(layer, trainer)
    with pytest.raises(error, match=match):
        trainer.train(data(patterns(rng, 50)))
    assert_unchanged(before, layer, trainer)
    assert trainer._open_chunk is open_chunk


def test_short_train_that_overflows_changes_nothing(rng):
    layer, trainer = warm(rng, hardbound=False)
    trainer.learning_rate = 3e38  # finite, but the weights leave float32 at the first change
    before = snapshot(layer, trainer)
    with pytest.raises(FloatingPointError, match=r"training produced non-finite values in \['W'"):
        trainer.train(patterns(rng, 50, p=0.9))
    assert_unchanged(before, layer, trainer)


def test_reward_and_triplet_short_calls(rng):
    for make, kw in ((RewardSTDPTrainer, dict(reward=1.0)), (TripletSTDPTrainer, {})):
        layer = SpikingLayer(N_IN, N_OUT, seed=1, threshold=0.5)
        trainer = make(layer)
        trainer.train(patterns(rng, 50), **kw)
        trainer.predict(patterns(rng, 1)[0])
        count = canns_stdp.compilation_count()
        for _ in range(3):
            trainer.train(patterns(rng, 50), **kw)
            trainer.predict(patterns(rng, 1)[0])
        assert canns_stdp.compilation_count() == count
        before = snapshot(layer, trainer)
        with pytest.raises(ValueError, match="patterns must be finite"):
            trainer.train(np.full((50, N_IN), np.inf, np.float32), **kw)
        assert_unchanged(before, layer, trainer)


def twins(compiled, event_driven, W0):
    """Two identical layers and trainers."""
    pairs = []
    for _ in range(2):
        layer = SpikingLayer(N_IN, N_OUT, threshold=0.5, W_init=W0)
        pairs.append((layer, STDPTrainer(layer, learning_rate=0.5, compiled=compiled, event_driven=event_driven)))
    return pairs


@pytest.mark.parametrize("compiled", [True, False])
@pytest.mark.parametrize("event_driven", ["auto", False])
def test_calls_that_keep_what_they_decide_equal_fresh_calls_and_the_reference(rng, compiled, event_driven):
    """Short calls that keep their checked settings, plans and device copies from call to call
    give exactly what calls deciding everything anew give (``_forget`` before each), and the
    NumPy step: over consecutive calls, after a setting changes, after ``reset_state``, after
    ``W`` is replaced, with and without the spikes returned."""
    W0 = rng.uniform(0.0, 0.5, (N_OUT, N_IN)).astype(np.float32)
    (kept, kept_trainer), (fresh, fresh_trainer) = twins(compiled, event_driven, W0)
    ref = dict(W=W0, v=np.zeros(N_OUT, np.float32), pre=np.zeros(N_IN, np.float32), post=np.zeros(N_OUT, np.float32))
    numbers = dict(lr=0.5, threshold=0.5)

    def both(change):
        for layer, trainer in ((kept, kept_trainer), (fresh, fresh_trainer)):
            change(layer, trainer)

    def train(T, return_spikes):
        xs = patterns(rng, T)
        fresh_trainer._forget()
        outs = [trainer.train(xs, return_spikes=return_spikes) for trainer in (kept_trainer, fresh_trainer)]
        W, v, pre, post, spikes = reference.run(ref["W"], xs, state=(ref["v"], ref["pre"], ref["post"]), **numbers)
        ref.update(W=W, v=v, pre=pre, post=post)
        if return_spikes:
            np.testing.assert_array_equal(outs[0], outs[1])
            np.testing.assert_array_equal(outs[0], spikes)
        else:
            assert outs == [None, None]
        assert_unchanged(snapshot(fresh, fresh_trainer), kept, kept_trainer)  # bitwise
        np.testing.assert_array_equal(kept.spike.value, spikes[-1])
        np.testing.assert_array_equal(kept.x.value, xs[-1])
        for name, key in (("W", "W"), ("v", "v"), ("trace_pre", "pre"), ("trace_post", "post")):
            np.testing.assert_allclose(getattr(kept, name).value, ref[key], atol=2e-5, err_msg=name)
        return spikes

    fired = sum(train(50, k % 2 == 0).sum() for k in range(3))
    assert fired > 20, "the test needs output spikes"

    def settings(layer, trainer):
        trainer.learning_rate, trainer.A_plus = 0.2, 0.01
    both(settings)
    numbers.update(lr=0.2, A_plus=0.01)
    train(50, True)

    both(lambda layer, trainer: layer.reset_state())
    ref.update(v=0 * ref["v"], pre=0 * ref["pre"], post=0 * ref["post"])
    train(50, False)

    W1 = rng.uniform(0.2, 0.8, (N_OUT, N_IN)).astype(np.float32)

    def replace(layer, trainer):
        layer.W.value = jnp.asarray(W1)
    both(replace)
    ref["W"] = W1
    train(50, True)

    def threshold(layer, trainer):
        layer.threshold = 0.6
    both(threshold)
    numbers["threshold"] = 0.6
    train(17, True)  # another length
    train(50, False)
    assert kept_trainer.steps_trained == fresh_trainer.steps_trained == 7 * 50 + 17
