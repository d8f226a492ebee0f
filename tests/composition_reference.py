"""Independent NumPy reference of one plastic layer: a synaptic map, a rule and a batch.

Written from the equations in the docstrings of ``canns_stdp/step.py`` (steps 1-7 of docs/step.md)
and ``canns_stdp/rules/{pair,triplet,reward}.py``; shares no code with canns_stdp.
Float64, explicit loop over the samples of a batch (each sample its own membrane,
traces and rule state; ``W`` shared and fixed within a step).

A map is a pair of NumPy functions of one sample, ``current(W, x)`` and
``hebbian(post, pre)``. A rule is ``init(in_shape, out_shape, w_shape) -> state`` and
``update(state, pre, post, W, H, r, bounds) -> (dW per unit rate, state')`` where
``pre = (x, tr_pre', d_pre·tr_pre)`` and ``post = (s, tr_post', d_post·tr_post)``.
"""

import math
from typing import Callable, NamedTuple

import numpy as np

import conv_reference

f64 = np.float64


class Map(NamedTuple):
    current: Callable
    hebbian: Callable


def dense_map():
    return Map(lambda W, x: W @ x, lambda post, pre: np.outer(post, pre))


def masked_map(mask):
    m = np.asarray(mask, f64)
    return Map(lambda W, x: (m * W) @ x, lambda post, pre: m * np.outer(post, pre))


def conv_map(weight_shape, padding, stride=None):
    n = len(weight_shape) - 2
    stride = stride or (1,) * n
    current, hebbian = conv_reference.conv_maps(stride, [(padding, padding)] * n, (1,) * n, 1)
    return Map(current, lambda post, pre: hebbian(weight_shape, post, pre))


# -- weight dependences f±(W) --------------------------------------------------------
def _dependence(name):
    if name == "additive":
        return lambda W, lo, hi: (1.0, 1.0)
    if name == "soft":
        return lambda W, lo, hi: (np.maximum(hi - W, 0.0), np.maximum(W - lo, 0.0))
    raise ValueError(name)


def _pairing(pairing, pre, post):
    """(P, Q): pre trace paired with post spikes, post trace with pre spikes."""
    (_, tr_pre, pre_dec), (_, tr_post, post_dec) = pre, post
    return {"symmetric": (tr_pre, tr_post), "causal": (tr_pre, post_dec),
            "strict": (pre_dec, post_dec)}[pairing]


class Rule(NamedTuple):
    init: Callable
    update: Callable


def pair(A_plus, A_minus, pairing="symmetric", dependence="additive"):
    """dW = A+ f+(W) ⊙ H(s, P) − A− f−(W) ⊙ H(Q, x)."""
    dep = _dependence(dependence)

    def update(state, pre, post, W, H, r, bounds):
        P, Q = _pairing(pairing, pre, post)
        fp, fm = dep(W, *bounds)
        return A_plus * fp * H(post[0], P) - A_minus * fm * H(Q, pre[0]), state

    return Rule(lambda i, o, w: {}, update)


def triplet(A2_plus, A3_plus, A2_minus, A3_minus, tau_x, tau_y, pairing="symmetric", a_pre=1.0, a_post=1.0):
    """Pfister & Gerstner with slow traces r2 (input), o2 (output), cumulative."""
    d_x, d_y = math.exp(-1.0 / tau_x), math.exp(-1.0 / tau_y)

    def update(state, pre, post, W, H, r, bounds):
        x, s = pre[0], post[0]
        r2_dec, o2_dec = d_x * state["r2"], d_y * state["o2"]
        P, Q = _pairing(pairing, pre, post)
        dW = H(s * (A2_plus + A3_plus * o2_dec), P) - H(Q, x * (A2_minus + A3_minus * r2_dec))
        return dW, {"r2": r2_dec + a_pre * x, "o2": o2_dec + a_post * s}

    return Rule(lambda i, o, w: {"r2": np.zeros(i), "o2": np.zeros(o)}, update)


def reward(inner, kind, tau_z=25.0, tau_c=1000.0, tau_d=None):
    """e' = d_e e + g ζ,  D' = d_D D + r,  dW = D' e' (constants from the table)."""
    if kind == "mstdp":
        d_e, g, d_D = 0.0, 1.0, 0.0
    elif kind == "mstdpet":
        d_e, g, d_D = math.exp(-1.0 / tau_z), 1.0 / tau_z, 0.0
    else:
        d_e, g, d_D = math.exp(-1.0 / tau_c), 1.0, 0.0 if tau_d is None else math.exp(-1.0 / tau_d)

    def init(i, o, w):
        return {"inner": inner.init(i, o, w), "eligibility": np.zeros(w), "dopamine": 0.0}

    def update(state, pre, post, W, H, r, bounds):
        zeta, inner_state = inner.update(state["inner"], pre, post, W, H, r, bounds)
        e = d_e * state["eligibility"] + g * zeta
        D = d_D * state["dopamine"] + r
        return D * e, {"inner": inner_state, "eligibility": e, "dopamine": D}

    return Rule(init, update)


def flat_state(state):
    """A rule state as ``{leaf name: value}`` (the names the trainer gives its variables)."""
    out = {}
    for name, value in state.items():
        out.update(flat_state(value) if isinstance(value, dict) else {name: value})
    return out


def run(map_, rule, W, xs, rewards=None, posts=None, *, batched=False, reduction="sum", leak=0.9,
        threshold=1.0, v_reset=0.0, d_pre=0.9, d_post=0.9, a_pre=1.0, a_post=1.0, lr=0.01, w_min=0.0,
        w_max=1.0, hardbound=True, state=None):
    """steps 1-7 of docs/step.md over ``xs`` ``(T,) + in_shape`` (``(T, B) + in_shape`` when ``batched``).

    Returns ``(W, state, spikes)``; ``state`` has ``v``, ``trace_pre``, ``trace_post`` and
    ``rule`` (one rule state per sample) with the batch axis in front, and can be passed
    back to continue (with other numbers).
    """
    W = np.array(W, f64)
    xs = np.asarray(xs, f64)
    if not batched:
        xs = xs[:, None]
        rewards = None if rewards is None else np.asarray(rewards, f64)[:, None]
        posts = None if posts is None else np.asarray(posts, f64)[:, None]
    T, B = xs.shape[:2]
    if state is None:
        out_shape = map_.current(W, xs[0, 0]).shape
        state = {"v": np.zeros((B,) + out_shape), "trace_pre": np.zeros(xs.shape[1:]),
                 "trace_post": np.zeros((B,) + out_shape),
                 "rule": [rule.init(xs.shape[2:], out_shape, W.shape) for _ in range(B)]}
    else:
        state = {k: (list(v) if k == "rule" else np.array(v, f64)) for k, v in state.items()}
    v, tr_pre, tr_post, rule_state = state["v"], state["trace_pre"], state["trace_post"], state["rule"]
    spikes = []
    for t in range(T):
        dW = np.zeros_like(W)
        s_t = []
        for b in range(B):
            x = xs[t, b]
            pre_dec = d_pre * tr_pre[b]                                   # 1
            tr_pre[b] = pre_dec + a_pre * x
            v[b] = leak * v[b] + map_.current(W, x)                       # 2
            s = (v[b] >= threshold).astype(f64) if posts is None else posts[t, b]   # 3
            v[b] = np.where(s == 1, v_reset, v[b])                        # 4
            post_dec = d_post * tr_post[b]                                # 5
            tr_post[b] = post_dec + a_post * s
            r = 0.0 if rewards is None else rewards[t, b]
            dW_b, rule_state[b] = rule.update(rule_state[b], (x, tr_pre[b].copy(), pre_dec),
                                              (s, tr_post[b].copy(), post_dec), W, map_.hebbian, r,
                                              (w_min, w_max))                 # 6
            dW += dW_b
            s_t.append(s)
        if reduction == "mean":
            dW /= B
        W = W + lr * dW                                                   # 7
        if hardbound:
            W = np.clip(W, w_min, w_max)
        spikes.append(s_t)
    spikes = np.array(spikes)
    return W, state, (spikes if batched else spikes[:, 0])


def stacked_rule_state(state, batched):
    """The rule's state leaves by name, stacked over the batch (unbatched: sample 0)."""
    per_sample = [flat_state(s) for s in state["rule"]]
    names = per_sample[0].keys()
    stacked = {n: np.stack([np.asarray(s[n], f64) for s in per_sample]) for n in names}
    return stacked if batched else {n: a[0] for n, a in stacked.items()}
