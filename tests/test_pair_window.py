"""The pair-protocol STDP window (docs/step.md, "Pair protocol") for every pairing."""

import numpy as np
import pytest

from canns_stdp import SpikingLayer, STDPTrainer

LR, A_PLUS, A_MINUS, W0 = 1.0, 0.1, 0.12, 0.5
D_PRE, D_POST, A_PRE, A_POST = 0.9, 0.8, 1.0, 0.7


def expected(dt, pairing):
    if dt > 0:
        return LR * A_PLUS * A_PRE * D_PRE ** dt
    if dt < 0:
        return -LR * A_MINUS * A_POST * D_POST ** (-dt)
    return {"symmetric": LR * (A_PLUS * A_PRE - A_MINUS * A_POST),
            "causal": LR * A_PLUS * A_PRE, "strict": 0.0}[pairing]


def train_pair(dt, pairing, compiled):
    """One pre spike at t_pre, one imposed post spike at t_pre + dt; returns the weight change."""
    T, t_pre = 45, 22
    xs = np.zeros((T, 1), np.float32)
    posts = np.zeros((T, 1), np.float32)
    xs[t_pre, 0] = 1.0
    posts[t_pre + dt, 0] = 1.0
    # separate pre/post decays given as time constants: d = exp(-dt/tau)
    layer = SpikingLayer(1, 1, tau_pre=-1 / np.log(D_PRE), tau_post=-1 / np.log(D_POST),
                         a_pre=A_PRE, a_post=A_POST, W_init=np.full((1, 1), W0))
    trainer = STDPTrainer(layer, learning_rate=LR, A_plus=A_PLUS, A_minus=A_MINUS,
                          compiled=compiled, pairing=pairing)
    trainer.train(xs, post_spikes=posts)
    return float(layer.W.value[0, 0]) - W0


@pytest.mark.parametrize("pairing", ["symmetric", "causal", "strict"])
@pytest.mark.parametrize("compiled", [True, False])
def test_pair_window_matches_formula(pairing, compiled):
    got = [train_pair(dt, pairing, compiled) for dt in range(-20, 21)]
    want = [expected(dt, pairing) for dt in range(-20, 21)]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_window_shape_with_shared_trace_decay():
    # CANNs-style single trace_decay: the classic asymmetric window, LTP for dt > 0
    for dt, sign in ((-5, -1), (5, 1)):
        layer = SpikingLayer(1, 1, trace_decay=0.9, W_init=np.full((1, 1), W0))
        trainer = STDPTrainer(layer, learning_rate=LR, A_plus=A_PLUS, A_minus=A_MINUS)
        xs = np.zeros((30, 1), np.float32)
        posts = np.zeros((30, 1), np.float32)
        xs[10, 0] = posts[10 + dt, 0] = 1.0
        trainer.train(xs, post_spikes=posts)
        dW = float(layer.W.value[0, 0]) - W0
        amp = A_PLUS if sign > 0 else A_MINUS
        assert dW == pytest.approx(sign * LR * amp * 0.9 ** abs(dt), rel=1e-5)
