"""Independent NumPy transcription of docs/step.md for batches and convolutions.

Explicit loops over samples, output positions, channels and kernel offsets; shares no
code with canns_stdp. Maps are given as (current, hebbian) pairs of NumPy functions of
one sample.
"""

import itertools

import numpy as np

f64 = np.float64


def conv_maps(stride, padding, dilation, groups):
    """(current, hebbian) of a channels-first N-d convolution, by loops.

    ``padding`` is one (lo, hi) pair per spatial axis.
    """

    def pad(x):
        return np.pad(x, [(0, 0)] + [tuple(p) for p in padding])

    def out_spatial(x_shape, k_shape):
        return tuple((n + lo + hi - d * (k - 1) - 1) // s + 1
                     for n, k, s, (lo, hi), d in zip(x_shape[1:], k_shape, stride, padding, dilation))

    def current(W, x):
        C_out, C_per, *ks = W.shape
        out_per = C_out // groups
        xp = pad(x)
        outs = out_spatial(x.shape, ks)
        I = np.zeros((C_out,) + outs)
        for o in range(C_out):
            g = o // out_per
            for p in itertools.product(*(range(n) for n in outs)):
                total = 0.0
                for c in range(C_per):
                    for k in itertools.product(*(range(n) for n in ks)):
                        idx = tuple(pi * s + ki * d for pi, ki, s, d in zip(p, k, stride, dilation))
                        total += W[(o, c) + k] * xp[(g * C_per + c,) + idx]
                I[(o,) + p] = total
        return I

    def hebbian(W_shape, post, pre):
        C_out, C_per, *ks = W_shape
        out_per = C_out // groups
        prep = pad(pre)
        H = np.zeros(W_shape)
        for o in range(C_out):
            g = o // out_per
            for c in range(C_per):
                for k in itertools.product(*(range(n) for n in ks)):
                    total = 0.0
                    for p in itertools.product(*(range(n) for n in post.shape[1:])):
                        idx = tuple(pi * s + ki * d for pi, ki, s, d in zip(p, k, stride, dilation))
                        total += post[(o,) + p] * prep[(g * C_per + c,) + idx]
                    H[(o, c) + k] = total
        return H

    return current, hebbian


def dense_maps(mask=None):
    m = 1.0 if mask is None else np.asarray(mask, f64)

    def current(W, x):
        return (m * W) @ x

    def hebbian(W_shape, post, pre):
        return m * np.outer(post, pre)

    return current, hebbian


def run(maps, W, xs, posts=None, *, reduction="sum", leak=0.9, threshold=1.0, v_reset=0.0,
        d_pre=0.95, d_post=0.95, a_pre=1.0, a_post=1.0, lr=0.01, A_plus=0.005, A_minus=0.00525,
        w_min=0.0, w_max=1.0, pairing="symmetric", fixed=False, soft=False):
    """steps 1-7 of docs/step.md on ``xs`` of shape ``(T, B) + in_shape`` (cumulative traces,
    additive, or soft bounds ``f+ = relu(w_max - W)``, ``f- = relu(W - w_min)`` when
    ``soft``). Per-sample dW, reduced over the batch by sum or mean; W shared.

    Returns ``(W, v, tr_pre, tr_post, spikes)``; with ``fixed=True`` the weights stay
    as given during the run and the first value is ``Σ_t ΔW`` (no clipping).
    """
    current, hebbian = maps
    W = np.array(W, f64)
    xs = np.asarray(xs, f64)
    T, B = xs.shape[:2]
    out_shape = current(W, xs[0, 0]).shape
    v = np.zeros((B,) + out_shape)
    tr_pre = np.zeros(xs.shape[1:])
    tr_post = np.zeros((B,) + out_shape)
    spikes = []
    total = np.zeros_like(W)
    for t in range(T):
        dW = np.zeros_like(W)
        s_t = []
        for b in range(B):
            x = xs[t, b]
            pre_decayed = d_pre * tr_pre[b]                       # 1
            tr_pre[b] = pre_decayed + a_pre * x
            v[b] = leak * v[b] + current(W, x)                    # 2
            s = (v[b] >= threshold).astype(f64) if posts is None else np.asarray(posts[t, b], f64)  # 3
            v[b] = np.where(s == 1, v_reset, v[b])                # 4
            post_decayed = d_post * tr_post[b]                    # 5
            tr_post[b] = post_decayed + a_post * s
            P, Q = {"symmetric": (tr_pre[b], tr_post[b]), "causal": (tr_pre[b], post_decayed),
                    "strict": (pre_decayed, post_decayed)}[pairing]
            fp, fm = (np.maximum(w_max - W, 0), np.maximum(W - w_min, 0)) if soft else (1.0, 1.0)
            dW += lr * (A_plus * fp * hebbian(W.shape, s, P) - A_minus * fm * hebbian(W.shape, Q, x))  # 6
            s_t.append(s)
        if reduction == "mean":
            dW /= B
        spikes.append(s_t)
        if fixed:
            total += dW
            continue
        W = np.clip(W + dW, w_min, w_max)                         # 7
    return (total if fixed else W), v, tr_pre, tr_post, np.array(spikes)


def max_pool(x, k):
    """Non-overlapping k×k max pooling of the last two axes, by loops."""
    *lead, H, W = x.shape
    out = np.zeros(tuple(lead) + (H // k, W // k))
    for i in range(H // k):
        for j in range(W // k):
            out[..., i, j] = x[..., i * k:(i + 1) * k, j * k:(j + 1) * k].max(axis=(-2, -1))
    return out
