"""Every rule on every synaptic map, in both loops and every pair kernel, equals an
independent NumPy reference (tests/composition_reference.py) written from the equations
of step.py and the rule modules; plus the compositions' invariants."""

import functools
from typing import Callable, NamedTuple, Optional

import numpy as np
import pytest

import composition_reference as ref
import canns_stdp
from canns_stdp import ConvSpikingLayer, SpikingLayer, Trainer, rules

f32 = np.float32
TAU_PRE, TAU_POST, LEAK = 10.0, 15.0, 0.9
D_PRE, D_POST = np.exp(-1.0 / TAU_PRE), np.exp(-1.0 / TAU_POST)
T = 40
MASK = (np.random.default_rng(7).random((5, 12)) < 0.5).astype(f32)  # one mask: shared compiled code

# -- rules: (library rule, reference rule, learning rate, takes a reward) ------------------------------
PAIR = dict(A_plus=0.05, A_minus=0.06)
TRIPLET = dict(A2_plus=0.02, A3_plus=0.02, A2_minus=0.03, A3_minus=0.01)
TAUS = dict(tau_x=20.0, tau_y=30.0)


class RuleCase(NamedTuple):
    lib: Callable
    ref: Callable
    lr: float
    rewarded: bool = False


RULES = {
    "pair": RuleCase(lambda: rules.pair(**PAIR), lambda: ref.pair(**PAIR), 0.1),
    "pair_causal_soft": RuleCase(lambda: rules.pair(**PAIR, pairing="causal", dependence="soft"),
                                 lambda: ref.pair(**PAIR, pairing="causal", dependence="soft"), 0.5),
    "triplet": RuleCase(lambda: rules.triplet(**TRIPLET, **TAUS), lambda: ref.triplet(**TRIPLET, **TAUS), 0.05),
    "mstdp": RuleCase(lambda: rules.reward(rules.pair(**PAIR), "mstdp"),
                      lambda: ref.reward(ref.pair(**PAIR), "mstdp"), 0.3, True),
    "mstdpet": RuleCase(lambda: rules.reward(rules.pair(**PAIR), "mstdpet", tau_z=5.0),
                        lambda: ref.reward(ref.pair(**PAIR), "mstdpet", tau_z=5.0), 0.5, True),
    "rstdp": RuleCase(lambda: rules.reward(rules.pair(**PAIR), "rstdp", tau_c=20.0, tau_d=5.0),
                      lambda: ref.reward(ref.pair(**PAIR), "rstdp", tau_c=20.0, tau_d=5.0), 0.01, True),
    "mstdpet_triplet": RuleCase(lambda: rules.reward(rules.triplet(**TRIPLET, **TAUS), "mstdpet", tau_z=5.0),
                                lambda: ref.reward(ref.triplet(**TRIPLET, **TAUS), "mstdpet", tau_z=5.0),
                                0.4, True),
}


# -- maps: the layer, its reference map, inputs and rewards ---------------------------------------------
class Problem(NamedTuple):
    make_layer: Callable
    map: ref.Map
    W0: np.ndarray
    xs: np.ndarray
    rewards: np.ndarray
    threshold: float
    lr_scale: float = 1.0  # the conv maps' Hebbian terms sum over positions, a batch's over samples
    batched: bool = False
    reduction: str = "sum"

    def layer(self, W0=None, **kw):
        kw = dict(dict(threshold=self.threshold, leak=LEAK, tau_pre=TAU_PRE, tau_post=TAU_POST), **kw)
        return self.make_layer(W_init=self.W0 if W0 is None else W0, **kw)

    def reference(self, rule, lr, rewards=None, **kw):
        """The reference run; ``lr`` is scaled by ``lr_scale`` (as ``trainer`` scales it)."""
        kw = dict(dict(leak=LEAK, threshold=self.threshold, d_pre=D_PRE, d_post=D_POST), **kw)
        return ref.run(self.map, rule, self.W0, self.xs, rewards, batched=self.batched,
                       reduction=self.reduction, lr=lr * self.lr_scale, **kw)

    def trainer(self, layer, rule, lr, compiled, **kw):
        return Trainer(layer, rule, learning_rate=lr * self.lr_scale, compiled=compiled,
                       batch_reduction=self.reduction, chunk_size=16, **kw)


def problem(name: str, rng, T: int = T) -> Problem:
    rewards = lambda *shape: rng.normal(0.2, 1.0, (T,) + shape).astype(f32)  # noqa: E731
    spikes = lambda *shape: (rng.random((T,) + shape) < 0.3).astype(f32)  # noqa: E731
    weights = lambda *shape: rng.uniform(0.1, 0.6, shape).astype(f32)  # noqa: E731
    if name in ("dense", "masked"):
        mask = MASK if name == "masked" else None
        return Problem(lambda **kw: SpikingLayer(12, 5, mask=mask, **kw),
                       ref.dense_map() if mask is None else ref.masked_map(mask),
                       weights(5, 12), spikes(12), rewards(), 1.5)
    if name.startswith("batch_"):
        return Problem(lambda **kw: SpikingLayer(12, 5, **kw), ref.dense_map(), weights(5, 12),
                       spikes(2, 12), rewards(2), 1.5, 0.5 if name == "batch_sum" else 1.0, batched=True,
                       reduction=name[len("batch_"):])
    if name == "conv2d":
        return Problem(lambda **kw: ConvSpikingLayer(1, 2, 3, input_shape=(5, 5), padding=1, **kw),
                       ref.conv_map((2, 1, 3, 3), 1), weights(2, 1, 3, 3), spikes(1, 5, 5), rewards(), 2.0, 0.1)
    if name == "conv3d":
        return Problem(lambda **kw: ConvSpikingLayer(1, 2, 2, input_shape=(3, 4, 4), **kw),
                       ref.conv_map((2, 1, 2, 2, 2), 0), weights(2, 1, 2, 2, 2), spikes(1, 3, 4, 4), rewards(), 1.5,
                       0.1)
    assert name == "conv1d"
    return Problem(lambda **kw: ConvSpikingLayer(2, 2, 3, input_shape=(9,), padding=1, **kw),
                   ref.conv_map((2, 2, 3), 1), weights(2, 2, 3), spikes(2, 9), rewards(), 1.5, 0.15)


MAPS = ["dense", "masked", "conv2d", "conv1d", "conv3d", "batch_sum", "batch_mean"]
KERNELS = {"default": {}, "dense": dict(event_driven=False), "event": dict(event_driven=True), "fused": dict(fused=True)}


def cases():
    for rule in RULES:
        for map_name in MAPS:
            pair_dense = rule.startswith("pair") and map_name == "dense"
            for kernel in (KERNELS if pair_dense else ["default"]):
                for compiled in (True, False):
                    yield pytest.param(rule, map_name, kernel, compiled,
                                       id=f"{rule}-{map_name}-{kernel}-{'compiled' if compiled else 'python'}")


def train(trainer, problem: Problem, rewarded: bool, split: Optional[int] = None, **kw):
    """Train in two calls (the state carries over); the output spikes of both."""
    split = len(problem.xs) // 2 if split is None else split
    out = []
    for part in (slice(None, split), slice(split, None)):
        reward = problem.rewards[part] if rewarded else None
        out.append(np.asarray(trainer.train(problem.xs[part], reward=reward, return_spikes=True, **kw)))
    return np.concatenate(out)


def assert_layer_matches(layer, W_ref, state, spikes, s_ref, batched):
    np.testing.assert_array_equal(spikes, s_ref)
    np.testing.assert_allclose(layer.W.value, W_ref, atol=2e-5)
    squeeze = (lambda a: a) if batched else (lambda a: a[0])
    for name in ("v", "trace_pre", "trace_post"):
        np.testing.assert_allclose(getattr(layer, name).value, squeeze(state[name]), atol=2e-5, err_msg=name)
    np.testing.assert_array_equal(layer.spike.value, s_ref[-1])


def moved(W_ref, W0, by=0.05):
    return np.abs(W_ref - W0).max() > by


@functools.lru_cache(maxsize=None)
def expected(rule_name: str, map_name: str, T: int):
    """``(problem, W, state, spikes)`` of the reference (shared by the loops and kernels)."""
    case = RULES[rule_name]
    prob = problem(map_name, np.random.default_rng(12345), T)
    return (prob, *prob.reference(case.ref(), case.lr, prob.rewards if case.rewarded else None))


@pytest.mark.parametrize("rule_name, map_name, kernel, compiled", list(cases()))
def test_rule_on_map_matches_reference(rule_name, map_name, kernel, compiled):
    case = RULES[rule_name]
    prob, W_ref, state, s_ref = expected(rule_name, map_name, 20 if kernel == "fused" else T)
    assert 0.02 < s_ref.mean() < 0.8, "the test needs spikes and silences"
    assert moved(W_ref, prob.W0), "the weights must really move"

    layer = prob.layer()
    trainer = prob.trainer(layer, case.lib(), case.lr, compiled, **KERNELS[kernel])
    spikes = train(trainer, prob, case.rewarded, split=13)
    assert_layer_matches(layer, W_ref, state, spikes, s_ref, prob.batched)
    ref_rule = ref.stacked_rule_state(state, prob.batched)
    for name, value in ref_rule.items():
        np.testing.assert_allclose(getattr(trainer, name).value, value, atol=2e-5, err_msg=name)
    if case.rewarded:
        assert np.abs(ref_rule["eligibility"]).max() > 1e-3  # the eligibility check is not of zeros


def pair_and_mstdp(prob, compiled, pair_kw, lr, **layer_kw):
    """Spikes and weights after pair STDP, and after MSTDP of the same pair rule with reward 1."""
    results = []
    for rule, reward in ((rules.pair(**pair_kw), None), (rules.reward(rules.pair(**pair_kw), "mstdp"), 1.0)):
        layer = prob.layer(**layer_kw)
        # the XLA kernels (the native one rounds W + lr·ΔW without XLA's fused multiply-add)
        trainer = Trainer(layer, rule, learning_rate=lr, compiled=compiled, batch_reduction=prob.reduction,
                          chunk_size=16, fused=False)
        spikes = trainer.train(prob.xs, reward=reward, return_spikes=True)
        results.append((np.asarray(spikes), np.asarray(layer.W.value)))
    return results


@pytest.mark.parametrize("compiled", [True, False])
@pytest.mark.parametrize("map_name", [m for m in MAPS if not m.startswith("batch")])
def test_mstdp_with_reward_one_is_pair_stdp(rng, map_name, compiled):
    # e' = 0·e + 1·ζ, D' = 0·D + 1 and dW = D'·e' are exact: MSTDP must round as pair STDP
    # does, on the dense map's kernels as on the plain step
    prob = problem(map_name, rng, T=40)
    lr = {"conv2d": 0.3, "conv1d": 0.5, "conv3d": 0.3}.get(map_name, 1.5)
    (s_pair, W_pair), (s_mstdp, W_mstdp) = pair_and_mstdp(prob, compiled, dict(A_plus=0.05, A_minus=0.06), lr)
    assert 0.02 < s_pair.mean() < 0.8 and moved(W_pair, prob.W0)
    np.testing.assert_array_equal(s_mstdp, s_pair)
    np.testing.assert_array_equal(W_mstdp, W_pair)


@pytest.mark.parametrize("compiled", [True, False])
@pytest.mark.parametrize("map_name", [m for m in MAPS if m.startswith("batch")])
def test_mstdp_with_reward_one_is_pair_stdp_on_a_batch(rng, map_name, compiled):
    # On a batch the pair rule reduces each Hebbian term over the samples before LTP − LTD,
    # the reward wrapper reduces per-sample changes after: equal up to the order of a sum.
    # Powers of two (lr, amplitudes, trace decay, a batch of 2) and T <= 20 make every such
    # sum exact in float32, so there the result must be bitwise.
    prob = problem(map_name, rng, T=20)
    lr = 1.0 if map_name == "batch_sum" else 2.0
    (s_pair, W_pair), (s_mstdp, W_mstdp) = pair_and_mstdp(
        prob, compiled, dict(A_plus=2.0 ** -4, A_minus=2.0 ** -4), lr, trace_decay=0.5, tau_pre=None,
        tau_post=None)
    assert 0.02 < s_pair.mean() < 0.8 and moved(W_pair, prob.W0)
    np.testing.assert_array_equal(s_mstdp, s_pair)
    np.testing.assert_array_equal(W_mstdp, W_pair)


@pytest.mark.parametrize("compiled", [True, False])
@pytest.mark.parametrize("rule_name", list(RULES))
def test_absent_synapses_of_a_masked_layer_never_change(rng, rule_name, compiled):
    case = RULES[rule_name]
    prob = problem("masked", rng)
    W0 = rng.uniform(0.2, 0.8, MASK.shape).astype(f32)  # strictly inside (w_min, w_max) = (0, 1)
    layer = prob.layer(W0)
    trainer = prob.trainer(layer, case.lib(), 10 * case.lr, compiled)
    train(trainer, prob, case.rewarded)
    W = np.asarray(layer.W.value)
    absent, present = MASK == 0, MASK == 1
    assert absent.any() and present.any()
    assert np.abs(W - W0)[present].max() > 0.1, "the present synapses must move"
    np.testing.assert_array_equal(W[absent], W0[absent])


class Hebb(rules.Rule):
    """A user rule: Hebbian LTP from the pre trace, LTD from the decayed post trace."""

    rate: float = 0.05
    beta: float = 1.2

    def init(self, pre_shape, post_shape):
        return ()

    def update(self, state, pre, post, W, hebbian):
        return self.rate * (hebbian(post.spikes, pre.trace) - self.beta * hebbian(post.decayed, pre.spikes)), state


@pytest.mark.parametrize("compiled", [True, False])
@pytest.mark.parametrize("map_name", ["dense", "masked", "conv2d"])
def test_user_rule_trains_every_map(rng, map_name, compiled):
    prob = problem(map_name, rng)
    rule = Hebb(rate=0.04, beta=1.5)
    W_ref, state, s_ref = prob.reference(ref.pair(0.04, 0.04 * 1.5, pairing="causal"), 1.0)
    assert 0.02 < s_ref.mean() < 0.8 and moved(W_ref, prob.W0)
    layer = prob.layer()
    trainer = prob.trainer(layer, rule, 1.0, compiled)
    spikes = train(trainer, prob, False)
    assert_layer_matches(layer, W_ref, state, spikes, s_ref, False)


COUNTED = {  # (library rule, reference rule) of the amplitude A; the learning rates of the two calls
    "triplet": (lambda A: rules.triplet(A2_plus=A, A3_plus=0.02, A2_minus=0.03, A3_minus=0.01, **TAUS),
                lambda A: ref.triplet(A, 0.02, 0.03, 0.01, **TAUS), (0.01, 0.02)),
    "mstdpet": (lambda A: rules.reward(rules.pair(A, 0.06), "mstdpet", tau_z=5.0),
                lambda A: ref.reward(ref.pair(A, 0.06), "mstdpet", tau_z=5.0), (0.1, 0.3)),
}


@pytest.mark.parametrize("compiled", [True, False])
@pytest.mark.parametrize("rule_name", list(COUNTED))
def test_new_length_and_numbers_do_not_recompile(rng, rule_name, compiled):
    lib, reference, (lr1, lr2) = COUNTED[rule_name]
    prob = problem("dense", rng, T=60)
    rewarded = rule_name == "mstdpet"
    xs, rewards = prob.xs, prob.rewards if rewarded else None
    layer = prob.layer()
    trainer = prob.trainer(layer, lib(0.02), lr1, compiled)
    first = trainer.train(xs[:35], reward=None if rewards is None else rewards[:35], return_spikes=True)
    count = canns_stdp.compilation_count()
    assert count > 0  # the counter sees the loops' programs (this one's, compiled now or before)
    # new T (25 steps), new learning rate, rule amplitude and threshold
    trainer.learning_rate, trainer.rule, layer.threshold = lr2, lib(0.05), 1.8
    second = trainer.train(xs[35:], reward=None if rewards is None else rewards[35:], return_spikes=True)
    assert canns_stdp.compilation_count() == count

    # the new numbers were used: the reference continued with them
    kw = dict(leak=LEAK, d_pre=D_PRE, d_post=D_POST)
    W1, state, s1 = ref.run(prob.map, reference(0.02), prob.W0, xs[:35], None if rewards is None else rewards[:35],
                            threshold=1.5, lr=lr1, **kw)
    W2, state, s2 = ref.run(prob.map, reference(0.05), W1, xs[35:], None if rewards is None else rewards[35:],
                            threshold=1.8, lr=lr2, state=state, **kw)
    s_ref = np.concatenate([s1, s2])
    assert 0.02 < s_ref.mean() < 0.8 and moved(W2, W1)
    assert_layer_matches(layer, W2, state, np.concatenate([first, second]), s_ref, False)
    for name, value in ref.stacked_rule_state(state, False).items():
        np.testing.assert_allclose(getattr(trainer, name).value, value, atol=2e-5, err_msg=name)
