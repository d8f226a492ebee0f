"""Bad input gives a clear error naming the problem, and leaves the state unchanged."""

import re

import jax.numpy as jnp
import numpy as np
import pytest

from canns_stdp import SpikingLayer, STDPTrainer

N_IN, N_OUT = 6, 3


@pytest.fixture
def trained():
    """A layer with non-trivial state, and its trainer."""
    rng = np.random.default_rng(0)
    layer = SpikingLayer(N_IN, N_OUT, W_init=rng.uniform(0.2, 0.6, (N_OUT, N_IN)))
    trainer = STDPTrainer(layer)
    trainer.train((rng.random((30, N_IN)) < 0.5).astype(np.float32))
    return layer, trainer


def snapshot(layer):
    return {k: np.array(getattr(layer, k).value) for k in ("W", "x", "v", "spike", "trace_pre", "trace_post")}


def assert_unchanged(layer, before):
    for k, value in snapshot(layer).items():
        np.testing.assert_array_equal(value, before[k], err_msg=k)


GOOD = np.zeros((5, N_IN), np.float32)

BAD_TRAIN_CALLS = [
    ("1-D patterns", dict(train_data=np.zeros(N_IN)), ValueError, r"shape \(T, 6\).*patterns\[None\]"),
    ("wrong width", dict(train_data=np.zeros((5, N_IN + 1))), ValueError, r"patterns must have shape \(T, 6\), got shape \(5, 7\)"),
    ("3-D patterns", dict(train_data=np.zeros((5, N_IN, 1))), ValueError, r"got shape \(5, 6, 1\)"),
    ("empty list", dict(train_data=[]), ValueError, "patterns is empty"),
    ("empty array", dict(train_data=np.zeros((0, N_IN))), ValueError, "patterns is empty"),
    ("NaN", dict(train_data=np.where(np.eye(5, N_IN) > 0, np.nan, 0.0)), ValueError, "patterns must be finite, got nan at index"),
    ("Inf", dict(train_data=np.full((2, N_IN), np.inf)), ValueError, "patterns must be finite, got inf"),
    ("ragged rows", dict(train_data=[[0.0] * N_IN, [0.0] * 2]), ValueError, "could not be read as one array"),
    ("strings", dict(train_data=np.array([["a"] * N_IN])), TypeError, "patterns must hold numbers"),
    ("None", dict(train_data=None), TypeError, "patterns must be an array"),
    ("post wrong width", dict(train_data=GOOD, post_spikes=np.zeros((5, N_OUT + 1))), ValueError, r"post_spikes must have shape \(T, 3\)"),
    ("post wrong length", dict(train_data=GOOD, post_spikes=np.zeros((4, N_OUT))), ValueError, "one row per pattern: got 4 rows for 5"),
    ("post not binary", dict(train_data=GOOD, post_spikes=np.full((5, N_OUT), 0.5)), ValueError, r"post_spikes must hold spikes \(0 or 1\), got 0.5"),
    ("post NaN", dict(train_data=GOOD, post_spikes=np.full((5, N_OUT), np.nan)), ValueError, "post_spikes must be finite"),
]


@pytest.mark.parametrize("case, kwargs, error, message", BAD_TRAIN_CALLS, ids=[c[0] for c in BAD_TRAIN_CALLS])
@pytest.mark.parametrize("compiled", [True, False])
def test_bad_train_input(trained, case, kwargs, error, message, compiled):
    layer, trainer = trained
    trainer.compiled = compiled
    before = snapshot(layer)
    with pytest.raises(error, match=message):
        trainer.train(**kwargs)
    assert_unchanged(layer, before)


BAD_TRAINER_PARAMS = [
    (dict(w_min=1.0, w_max=1.0), "w_min must be < w_max, got w_min=1.0, w_max=1.0"),
    (dict(w_min=2.0, w_max=1.0), "w_min must be < w_max"),
    (dict(learning_rate=-0.1), "learning_rate must be >= 0, got -0.1"),
    (dict(learning_rate=float("nan")), "learning_rate must be finite, got nan"),
    (dict(A_plus=-1.0), "A_plus must be >= 0, got -1.0"),
    (dict(A_minus=-1.0), "A_minus must be >= 0, got -1.0"),
    (dict(pairing="acausal"), r"pairing must be one of \('symmetric', 'causal', 'strict'\), got 'acausal'"),
    (dict(weight_dependence="multiplicative"), "weight_dependence must be one of .* got 'multiplicative'"),
    (dict(weight_dependence=(lambda W: W,)), r"weight_dependence as a pair must be \(f_plus, f_minus\)"),
    (dict(weight_dependence=(lambda W: W[0], lambda W: W)), r"f_plus must return a scalar or shape \(3, 6\), got shape \(6,\)"),
    (dict(weight_dependence="power", mu=-1.0), "mu must be >= 0, got -1.0"),
    (dict(chunk_size=0), "chunk_size must be a positive integer, got 0"),
]


@pytest.mark.parametrize("kwargs, message", BAD_TRAINER_PARAMS)
def test_bad_trainer_parameters(trained, kwargs, message):
    layer, _ = trained
    before = snapshot(layer)
    with pytest.raises((ValueError, TypeError), match=message):
        STDPTrainer(layer, **kwargs)
    # the same values set on an existing trainer are caught by train(), state untouched
    trainer = STDPTrainer(layer)
    for name, value in kwargs.items():
        setattr(trainer, name, value)
    with pytest.raises((ValueError, TypeError), match=message):
        trainer.train(GOOD)
    assert_unchanged(layer, before)


BAD_LAYER_PARAMS = [
    (dict(trace_decay=0.0), r"trace_decay must be in \(0, 1\], got 0.0"),
    (dict(trace_decay=1.5), r"trace_decay must be in \(0, 1\], got 1.5"),
    (dict(tau_pre=-5.0), "tau_pre must be > 0, got -5.0"),
    (dict(tau_post=0.0), "tau_post must be > 0, got 0.0"),
    (dict(tau_pre=0.5, decay="euler"), r"Euler decay 1 - dt/tau = -1.0 is outside \(0, 1\]"),
    (dict(decay="rk4"), r"decay must be one of \('exact', 'euler'\), got 'rk4'"),
    (dict(trace_mode="all"), r"trace_mode must be one of \('cumulative', 'nearest'\), got 'all'"),
    (dict(leak=1.5), r"leak must be in \[0, 1\], got 1.5"),
    (dict(dt=0.0), "dt must be > 0, got 0.0"),
    (dict(a_pre=-1.0), "a_pre must be >= 0, got -1.0"),
    (dict(threshold=float("inf")), "threshold must be finite, got inf"),
    (dict(v_reset="low"), "v_reset must be a real number, got 'low'"),
]


@pytest.mark.parametrize("kwargs, message", BAD_LAYER_PARAMS)
def test_bad_layer_parameters(trained, kwargs, message):
    with pytest.raises((ValueError, TypeError), match=message):
        SpikingLayer(N_IN, N_OUT, **kwargs)
    layer, trainer = trained
    before = snapshot(layer)
    for name, value in kwargs.items():
        setattr(layer, name, value)
    with pytest.raises((ValueError, TypeError), match=message):
        trainer.train(GOOD)
    with pytest.raises((ValueError, TypeError), match=message):
        trainer.predict(GOOD[0])
    assert_unchanged(layer, before)


@pytest.mark.parametrize("size", [0, -3, 2.5, True])
def test_bad_sizes(size):
    with pytest.raises(ValueError, match=re.escape(f"input_size must be a positive integer, got {size!r}")):
        SpikingLayer(size, 2)
    with pytest.raises(ValueError, match="output_size must be a positive integer"):
        SpikingLayer(2, size)


def test_bad_initial_weights():
    with pytest.raises(ValueError, match=r"W_init must have shape \(3, 6\), got shape \(6, 3\)"):
        SpikingLayer(N_IN, N_OUT, W_init=np.zeros((N_IN, N_OUT)))
    with pytest.raises(ValueError, match="W_init must be finite"):
        SpikingLayer(N_IN, N_OUT, W_init=np.full((N_OUT, N_IN), np.nan))


def test_model_without_expected_state():
    class NotALayer:
        W = type("V", (), {"value": jnp.zeros((2, 2))})()
        v = spike = trace_post = W

    with pytest.raises(AttributeError, match="no state variable 'trace_pre'"):
        STDPTrainer(NotALayer())


def test_bad_predict_input(trained):
    layer, trainer = trained
    before = snapshot(layer)
    with pytest.raises(ValueError, match=r"x must have shape \(6,\), got shape \(5,\)"):
        trainer.predict(np.zeros(N_IN - 1))
    with pytest.raises(ValueError, match="x must be finite"):
        trainer.predict(np.full(N_IN, np.nan))
    with pytest.raises(ValueError, match=r"patterns must have shape \(T, 6\)"):
        trainer.predict_batch(np.zeros((4, N_IN + 2)))
    assert_unchanged(layer, before)


def test_non_finite_result_leaves_layer_unchanged(trained):
    layer, trainer = trained
    before = snapshot(layer)
    trainer.hardbound = False
    trainer.weight_dependence = (lambda W: jnp.exp(W * 1e3), lambda W: jnp.ones_like(W))
    trainer.learning_rate = 1e3
    with pytest.raises(FloatingPointError, match="non-finite values in .*W.*left unchanged"):
        trainer.train(np.ones((50, N_IN), np.float32))
    assert_unchanged(layer, before)


def test_the_range_a_check_found_is_read_once_for_that_array_only():
    from canns_stdp._validation import check_finite, checked_range

    a = np.array([[0.5, -2.0], [3.0, 1.0]], np.float32)
    check_finite("a", a)
    assert checked_range(a) == (-2.0, 3.0)
    a[0, 0] = 7.0  # changed after its check: the next reading is computed afresh
    assert checked_range(a) == (-2.0, 7.0)
    check_finite("a", a)
    assert checked_range(np.array([4.0, 5.0], np.float32)) == (4.0, 5.0)  # another array: its own range
    for bad in (np.nan, np.inf, -np.inf):
        b = np.array([1.0, bad, 2.0], np.float32)
        with pytest.raises(ValueError, match=r"b must be finite, got (nan|-?inf) at index \(1,\)"):
            check_finite("b", b)



def test_all_finite_finds_any_nan_or_infinity_in_arrays_of_every_size():
    from canns_stdp._validation import _FINITE_BLOCK, all_finite

    n = 3 * _FINITE_BLOCK + 17  # blocks and a partial one
    for at in (0, _FINITE_BLOCK - 1, _FINITE_BLOCK, 2 * _FINITE_BLOCK + 5, n - 1):
        for bad in (np.nan, np.inf, -np.inf):
            a = np.ones(n, np.float32)
            a[at] = bad
            assert not all_finite(a) and not all_finite(a.reshape(1, -1)) and not all_finite(jnp.asarray(a))
    a = np.ones((n, 2), np.float32)
    assert all_finite(a) and all_finite(a[:, 1]) and all_finite(np.zeros(0)) and all_finite(np.arange(n))
    a[n - 1, 0] = np.nan
    assert all_finite(a[:, 1]) and not all_finite(a[:, 0]) and not all_finite(a[::-3].T)  # (strided views)
    a = np.ones(_FINITE_BLOCK // 2, np.float32)  # (one block: checked at once)
    a[-1] = np.inf
    assert not all_finite(a)
