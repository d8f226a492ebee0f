"""Independent NumPy transcription of docs/step.md, one line per line of that page.

Written from the docs/step.md text only; it shares no code with canns_stdp.
"""

import numpy as np

f32 = np.float32


def additive(W, w_min, w_max, mu):
    return f32(1.0), f32(1.0)


def hard(W, w_min, w_max, mu):
    return (w_max - W > 0).astype(f32), (W - w_min > 0).astype(f32)


def soft(W, w_min, w_max, mu):
    return np.maximum(w_max - W, 0).astype(f32), np.maximum(W - w_min, 0).astype(f32)


def power(W, w_min, w_max, mu):
    return (np.maximum(w_max - W, 0) ** mu).astype(f32), (np.maximum(W - w_min, 0) ** mu).astype(f32)


DEPENDENCE = {"additive": additive, "hard": hard, "soft": soft, "power": power}


def run(W, xs, posts=None, *, leak=0.9, threshold=1.0, v_reset=0.0, d_pre=0.95, d_post=0.95,
        a_pre=1.0, a_post=1.0, lr=0.01, A_plus=0.005, A_minus=0.00525, w_min=0.0, w_max=1.0,
        mu=1.0, pairing="symmetric", trace_mode="cumulative", dependence="additive",
        hardbound=True, plastic=True, state=None, refractory=0, left=None, return_left=False):
    """Run steps 1-7 of docs/step.md over ``xs``; returns (W, v, tr_pre, tr_post, spikes (T, n_out)).

    ``refractory`` (steps): a neuron that spikes keeps its membrane and cannot fire (unless
    its spike is imposed) for that many steps; ``left`` is the initial count of steps left,
    returned after the spikes when ``return_left``."""
    W = np.array(W, f32)
    n_out, n_in = W.shape
    if state is None:
        v, tr_pre, tr_post = np.zeros(n_out, f32), np.zeros(n_in, f32), np.zeros(n_out, f32)
    else:
        v, tr_pre, tr_post = (np.array(a, f32) for a in state)
    leak, threshold, v_reset, d_pre, d_post, a_pre, a_post, lr, A_plus, A_minus, w_min, w_max, mu = (
        f32(p) for p in (leak, threshold, v_reset, d_pre, d_post, a_pre, a_post, lr, A_plus, A_minus,
                         w_min, w_max, mu))
    f = DEPENDENCE[dependence] if isinstance(dependence, str) else dependence
    left = np.zeros(n_out, f32) if left is None else np.array(left, f32)
    out = []
    for t, x in enumerate(np.asarray(xs, f32)):
        # 1. pre trace
        pre_decayed = d_pre * tr_pre
        if trace_mode == "cumulative":
            tr_pre = pre_decayed + a_pre * x
        else:
            tr_pre = np.where(x > 0, a_pre, pre_decayed).astype(f32)
        # 2. membrane (held while refractory)
        resting = left > 0
        v = np.where(resting, v, leak * v + W @ x).astype(f32)
        # 3. spikes (none while refractory)
        s = ((v >= threshold) & ~resting).astype(f32) if posts is None else np.asarray(posts[t], f32)
        # 4. reset, and the refractory count
        v = np.where(s == 1, v_reset, v).astype(f32)
        left = np.where(s == 1, f32(refractory), np.maximum(left - 1, 0)).astype(f32)
        # 5. post trace
        post_decayed = d_post * tr_post
        if trace_mode == "cumulative":
            tr_post = post_decayed + a_post * s
        else:
            tr_post = np.where(s > 0, a_post, post_decayed).astype(f32)
        out.append(s)
        if not plastic:
            continue
        # 6. weight change with the pairing convention
        P, Q = {
            "symmetric": (tr_pre, tr_post),
            "causal": (tr_pre, post_decayed),
            "strict": (pre_decayed, post_decayed),
        }[pairing]
        fp, fm = f(W, w_min, w_max, mu)
        dW = lr * (A_plus * fp * np.outer(s, P) - A_minus * fm * np.outer(Q, x))
        # 7. bounds
        W = W + dW
        if hardbound:
            W = np.clip(W, w_min, w_max)
    if return_left:
        return W, v, tr_pre, tr_post, np.array(out), left
    return W, v, tr_pre, tr_post, np.array(out)


def assert_layer_matches(state, spikes, ref, W_atol, v_atol, trace_atol=1e-5):
    """A kernel's ``(state, spikes)`` against this reference's ``run`` output ``ref``:
    the spikes exactly, the state within the tolerances."""
    W_ref, v_ref, pre_ref, post_ref, s_ref = ref
    np.testing.assert_array_equal(spikes[:len(s_ref)], s_ref)
    np.testing.assert_allclose(state.W, W_ref, atol=W_atol)
    np.testing.assert_allclose(state.v, v_ref, atol=v_atol)
    np.testing.assert_allclose(state.trace_pre, pre_ref, atol=trace_atol)
    np.testing.assert_allclose(state.trace_post, post_ref, atol=trace_atol)
