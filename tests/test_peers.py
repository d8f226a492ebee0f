"""docs/peers.md: for each peer, the canns_stdp parameters that compute the same weight
change on the same spikes, checked against an independent NumPy transcription of that
peer's published update equations (the peers themselves are never imported).

The output spikes are imposed (``post_spikes``) so that only the plasticity rule is
compared, except for CANNs, whose neuron is ours."""

import jax.numpy as jnp
import numpy as np
import pytest

from canns_stdp import SpikingLayer, STDPTrainer

N_IN, N_OUT, T = 12, 5, 250


@pytest.fixture
def spikes(rng):
    xs = (rng.random((T, N_IN)) < 0.2).astype(np.float32)
    posts = (rng.random((T, N_OUT)) < 0.2).astype(np.float32)
    W0 = rng.uniform(0.3, 0.7, (N_OUT, N_IN)).astype(np.float32)
    return xs, posts, W0


def ours(W0, xs, posts, layer_kw, trainer_kw, compiled=True):
    layer = SpikingLayer(N_IN, N_OUT, W_init=W0, **layer_kw)
    STDPTrainer(layer, compiled=compiled, **trainer_kw).train(xs, post_spikes=posts)
    return np.asarray(layer.W.value)


# -- SpikingJelly: learning.stdp_linear_step + STDPLearner.step(on_grad=True) + SGD ------------
def spikingjelly(W, xs, posts, tau_pre, tau_post, lr, f_pre=lambda w: w, f_post=lambda w: w):
    W = W.astype(np.float64)
    tr_pre, tr_post = 0.0, 0.0
    for x, s in zip(xs, posts):
        tr_pre = tr_pre - tr_pre / tau_pre + x
        tr_post = tr_post - tr_post / tau_post + s
        delta_w = f_post(W) * np.outer(s, tr_pre) - f_pre(W) * np.outer(tr_post, x)
        grad = -delta_w  # on_grad=True writes -delta_w into weight.grad
        W = W - lr * grad  # torch.optim.SGD(lr, momentum=0).step()
    return W


@pytest.mark.parametrize("f", ["identity", "clamp"])
def test_spikingjelly(spikes, f):
    xs, posts, W0 = spikes
    fp = (lambda w: w) if f == "identity" else (lambda w: np.clip(1.0 - w, 0, 1))
    fq = (lambda w: w) if f == "identity" else (lambda w: np.clip(w, 0, 1))
    want = spikingjelly(W0, xs, posts, tau_pre=2.0, tau_post=10.0, lr=0.05, f_pre=fq, f_post=fp)
    jp = (lambda w: w) if f == "identity" else (lambda w: jnp.clip(1.0 - w, 0, 1))
    jq = (lambda w: w) if f == "identity" else (lambda w: jnp.clip(w, 0, 1))
    got = ours(W0, xs, posts,
               dict(tau_pre=2.0, tau_post=10.0, decay="euler", dt=1.0),
               dict(learning_rate=0.05, A_plus=1.0, A_minus=1.0, weight_dependence=(jp, jq),
                    hardbound=False))
    np.testing.assert_allclose(got, want, atol=2e-5)
    assert np.abs(want - W0).max() > 0.1


# -- Norse: functional.stdp.stdp_step_linear with STDPParameters ------------------------
def norse(W, xs, posts, a_pre=1.0, a_post=1.0, tau_pre_inv=1 / 50e-3, tau_post_inv=1 / 50e-3,
          w_min=0.0, w_max=1.0, eta_plus=1e-3, eta_minus=1e-3, algorithm="additive", mu=0.0,
          hardbound=True, dt=0.001):
    heaviside = lambda u: np.where(u <= 0, 0.0, 1.0)  # noqa: E731
    A = {
        "additive": (lambda w: eta_plus, lambda w: eta_minus),
        "additive_step": (lambda w: eta_plus * heaviside(w_max - w), lambda w: eta_minus * heaviside(w - w_min)),
        "multiplicative_pow": (lambda w: eta_plus * np.power(w_max - w, mu),
                               lambda w: eta_minus * np.power(w - w_min, mu)),
        "multiplicative_relu": (lambda w: eta_plus * np.maximum(w_max - w, 0),
                                lambda w: eta_minus * np.maximum(w - w_min, 0)),
    }[algorithm]
    W = W.astype(np.float64)
    t_pre, t_post = np.zeros(W.shape[1]), np.zeros(W.shape[0])
    for z_pre, z_post in zip(xs, posts):
        t_pre = t_pre + dt * tau_pre_inv * (-t_pre + a_pre * z_pre)
        t_post = t_post + dt * tau_post_inv * (-t_post + a_post * z_post)
        W = W + (A[0](W) * np.outer(z_post, t_pre) - A[1](W) * np.outer(t_post, z_pre))
        if hardbound:
            W = np.clip(W, w_min, w_max)
    return W


NORSE_DEPENDENCE = {"additive": "additive", "additive_step": "hard",
                    "multiplicative_pow": "power", "multiplicative_relu": "soft"}


@pytest.mark.parametrize("algorithm, hardbound", [
    ("additive", True), ("additive", False), ("additive_step", True),
    ("multiplicative_pow", True), ("multiplicative_relu", False)])
def test_norse(spikes, algorithm, hardbound):
    xs, posts, W0 = spikes
    p = dict(a_pre=1.5, a_post=0.8, tau_pre_inv=1 / 20e-3, tau_post_inv=1 / 40e-3, w_min=0.1,
             w_max=0.8, eta_plus=0.4, eta_minus=0.45, mu=0.5, dt=1e-3)
    want = norse(W0, xs, posts, algorithm=algorithm, hardbound=hardbound, **p)
    dt = p["dt"]
    got = ours(W0, xs, posts,
               dict(dt=dt, tau_pre=1 / p["tau_pre_inv"], tau_post=1 / p["tau_post_inv"], decay="euler",
                    a_pre=p["a_pre"] * dt * p["tau_pre_inv"], a_post=p["a_post"] * dt * p["tau_post_inv"]),
               dict(learning_rate=1.0, A_plus=p["eta_plus"], A_minus=p["eta_minus"],
                    weight_dependence=NORSE_DEPENDENCE[algorithm], mu=p["mu"],
                    w_min=p["w_min"], w_max=p["w_max"], hardbound=hardbound))
    np.testing.assert_allclose(got, want, atol=2e-5)
    assert np.abs(want - W0).max() > 0.05


# -- Brian2: the classic STDP synapse (Song, Miller & Abbott 2000), event-driven ----------
def brian2(W, xs, posts, taupre, taupost, Apre, Apost, wmax, dt):
    """on_pre: apre += Apre; w = clip(w + apost, 0, wmax)
    on_post: apost += Apost; w = clip(w + apre, 0, wmax)
    event-driven exponential decay; on_pre runs before on_post in a time step."""
    W = W.astype(np.float64).copy()
    clipped = 0
    for i in range(W.shape[0]):
        for j in range(W.shape[1]):
            apre = apost = 0.0
            last = 0.0
            for t in range(len(xs)):
                pre, post = xs[t, j] > 0, posts[t, i] > 0
                if not (pre or post):
                    continue
                now = t * dt
                apre *= np.exp(-(now - last) / taupre)
                apost *= np.exp(-(now - last) / taupost)
                last = now
                if pre:
                    apre += Apre
                    clipped += not 0 <= W[i, j] + apost <= wmax
                    W[i, j] = np.clip(W[i, j] + apost, 0, wmax)
                if post:
                    apost += Apost
                    clipped += not 0 <= W[i, j] + apre <= wmax
                    W[i, j] = np.clip(W[i, j] + apre, 0, wmax)
    return W, clipped


def test_brian2(spikes):
    xs, posts, W0 = spikes
    wmax, taupre, taupost, dt = 2.0, 20e-3, 25e-3, 1e-3
    Apre = 0.01 * wmax
    Apost = -Apre * taupre / taupost * 1.05
    W0 = 2 * W0  # in [0.6, 1.4], away from the bounds
    want, clipped = brian2(W0, xs, posts, taupre, taupost, Apre, Apost, wmax, dt)
    assert clipped == 0  # Brian2 clips after each pathway, we once per step: see docs/peers.md
    got = ours(W0, xs, posts, dict(dt=dt, tau_pre=taupre, tau_post=taupost, decay="exact"),
               dict(learning_rate=1.0, A_plus=Apre, A_minus=-Apost, w_min=0.0, w_max=wmax,
                    pairing="causal"))
    np.testing.assert_allclose(got, want, atol=2e-5)
    assert np.abs(want - W0).max() > 0.02
    assert (xs.astype(bool)[:, None, :] & posts.astype(bool)[:, :, None]).any()  # coincidences occur


# -- Inferno: learn.STDP (trace amplitudes |lr|, signed learning rates, four modes) --------
def inferno(W, xs, posts, lr_post, lr_pre, tc_post, tc_pre, step_time, trace_mode):
    W = W.astype(np.float64)
    x_pre, x_post = np.zeros(W.shape[1]), np.zeros(W.shape[0])

    def trace(x, spikes, tc, amp):
        decayed = x * np.exp(-step_time / tc)
        if trace_mode == "cumulative":
            return decayed + amp * spikes
        return np.where(spikes > 0, amp, decayed)

    for z_pre, z_post in zip(xs, posts):
        x_pre = trace(x_pre, z_pre, tc_pre, abs(lr_post))
        x_post = trace(x_post, z_post, tc_post, abs(lr_pre))
        dpost = np.outer(z_post, x_pre)  # batch of one: mean over the batch is the identity
        dpre = np.outer(x_post, z_pre)
        pos, neg = {(False, False): (0, dpost + dpre), (False, True): (dpre, dpost),
                    (True, False): (dpost, dpre), (True, True): (dpost + dpre, 0)}[(lr_post >= 0, lr_pre >= 0)]
        W = W + pos - neg
    return W


@pytest.mark.parametrize("mode, lr_post, lr_pre", [
    ("hebbian", 0.02, -0.025), ("anti-hebbian", -0.02, 0.025),
    ("potentiative", 0.01, 0.005), ("depressive", -0.01, -0.005)])
@pytest.mark.parametrize("trace_mode", ["cumulative", "nearest"])
def test_inferno(spikes, mode, lr_post, lr_pre, trace_mode):
    xs, posts, W0 = spikes
    p = dict(tc_post=30.0, tc_pre=20.0, step_time=1.0)
    want = inferno(W0, xs, posts, lr_post, lr_pre, trace_mode=trace_mode, **p)
    got = ours(W0, xs, posts,
               dict(dt=p["step_time"], tau_pre=p["tc_pre"], tau_post=p["tc_post"], decay="exact",
                    trace_mode=trace_mode),
               dict(learning_rate=1.0, A_plus=lr_post, A_minus=-lr_pre, hardbound=False,
                    signed_amplitudes=mode != "hebbian"))
    np.testing.assert_allclose(got, want, atol=2e-5)
    assert np.abs(want - W0).max() > 0.05


def test_signed_amplitudes_must_be_asked_for(spikes):
    xs, _, W0 = spikes
    layer = SpikingLayer(N_IN, N_OUT, W_init=W0)
    with pytest.raises(ValueError, match="A_plus must be >= 0, got -0.02"):
        STDPTrainer(layer, A_plus=-0.02)
    with pytest.raises(TypeError, match="signed_amplitudes must be True or False, got 'yes'"):
        STDPTrainer(layer, signed_amplitudes="yes")
    with pytest.raises(ValueError, match="A_minus must be finite"):
        STDPTrainer(layer, A_minus=float("inf"), signed_amplitudes=True)


# -- CANNs 1.5: STDPTrainer(compiled=True), neuron included ---------------------------------
def canns_compiled(W, patterns, learning_rate=0.01, A_plus=0.005, A_minus=0.00525, w_min=0.0,
                   w_max=1.0, trace_decay=0.95, threshold=1.0, v_reset=0.0, leak=0.9):
    """One call of CANNs 1.5's compiled train(): starts from zero traces and membrane."""
    W = W.astype(np.float32)
    tr_pre = np.zeros(W.shape[1], np.float32)
    tr_post = np.zeros(W.shape[0], np.float32)
    v = np.zeros(W.shape[0], np.float32)
    for x in patterns:
        tr_pre = trace_decay * tr_pre + x
        v = leak * v + W @ x
        s = (v >= threshold).astype(np.float32)
        v = np.where(s > 0, v_reset, v)
        tr_post = trace_decay * tr_post + s
        W = np.clip(W + learning_rate * (A_plus * np.outer(s, tr_pre) - A_minus * np.outer(tr_post, x)),
                    w_min, w_max)
    return W


@pytest.mark.parametrize("compiled", [True, False])
def test_canns(spikes, compiled):
    xs, _, W0 = spikes
    W0 = W0 * 0.6
    kw = dict(learning_rate=0.5, A_plus=0.05, A_minus=0.0525)
    want = canns_compiled(canns_compiled(W0, xs[:100], **kw), xs[100:], **kw)  # two train() calls
    layer = SpikingLayer(N_IN, N_OUT, W_init=W0)
    trainer = STDPTrainer(layer, compiled=compiled, **kw)
    for part in (xs[:100], xs[100:]):
        layer.reset_state()  # CANNs' compiled train() starts from zero traces and membrane
        trainer.train(part)
    np.testing.assert_allclose(np.asarray(layer.W.value), want, atol=2e-5)
    assert np.abs(want - W0).max() > 0.05
