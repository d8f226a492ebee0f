"""Independent NumPy transcriptions of triplet STDP (Pfister & Gerstner 2006).

Written from the paper's definitions; shares no code with canns_stdp.

* ``event_driven``: continuous time, one synapse, spike times in ms; traces decay
  exactly between events (the paper's equations as written).
* ``run``: the discrete-time layer of steps 1-5 of docs/step.md with the triplet weight change
  in place of step 6, for many synapses and every option.
"""

import numpy as np

import reference

f32 = np.float32


def event_driven(pre_times, post_times, p, nearest=False, w0=0.0):
    """Weight after the spike trains, by the paper's event rules (float64).

    ``p`` has tau_plus, tau_minus, tau_x, tau_y, A2_plus, A3_plus, A2_minus, A3_minus.
    Coincident pre and post spikes are not allowed (they have measure zero in the paper).
    """
    assert not set(pre_times) & set(post_times)
    events = sorted([(t, "pre") for t in pre_times] + [(t, "post") for t in post_times])
    r1 = r2 = o1 = o2 = 0.0
    last, w = 0.0, w0
    for t, kind in events:
        gap, last = t - last, t
        r1 *= np.exp(-gap / p.tau_plus)
        r2 *= np.exp(-gap / p.tau_x)
        o1 *= np.exp(-gap / p.tau_minus)
        o2 *= np.exp(-gap / p.tau_y)
        if kind == "pre":
            w -= o1 * (p.A2_minus + p.A3_minus * r2)  # r2 taken before its own jump
            r1, r2 = (1.0, 1.0) if nearest else (r1 + 1.0, r2 + 1.0)
        else:
            w += r1 * (p.A2_plus + p.A3_plus * o2)  # o2 taken before its own jump
            o1, o2 = (1.0, 1.0) if nearest else (o1 + 1.0, o2 + 1.0)
    return w


def run(W, xs, posts=None, *, leak=0.9, threshold=1.0, v_reset=0.0, d_pre=0.95, d_post=0.95,
        d_x=0.99, d_y=0.99, a_pre=1.0, a_post=1.0, lr=1.0, A2_plus=0.01, A3_plus=0.01,
        A2_minus=0.01, A3_minus=0.01, w_min=0.0, w_max=1.0, mu=1.0, pairing="symmetric",
        trace_mode="cumulative", dependence="additive", hardbound=True, state=None):
    """Discrete-time triplet layer; returns (W, v, r1, o1, r2, o2, spikes)."""
    W = np.array(W, f32)
    n_out, n_in = W.shape
    if state is None:
        v, r1, o1 = np.zeros(n_out, f32), np.zeros(n_in, f32), np.zeros(n_out, f32)
        r2, o2 = np.zeros(n_in, f32), np.zeros(n_out, f32)
    else:
        v, r1, o1, r2, o2 = (np.array(a, f32) for a in state)
    f = reference.DEPENDENCE[dependence] if isinstance(dependence, str) else dependence

    def jump(decayed, spikes, a):
        if trace_mode == "cumulative":
            return (decayed + f32(a) * spikes).astype(f32)
        return np.where(spikes > 0, f32(a), decayed).astype(f32)

    out = []
    for t, x in enumerate(np.asarray(xs, f32)):
        r1_dec, r2_dec = f32(d_pre) * r1, f32(d_x) * r2
        r1, r2 = jump(r1_dec, x, a_pre), jump(r2_dec, x, a_pre)
        v = f32(leak) * v + W @ x
        s = (v >= threshold).astype(f32) if posts is None else np.asarray(posts[t], f32)
        v = np.where(s == 1, f32(v_reset), v).astype(f32)
        o1_dec, o2_dec = f32(d_post) * o1, f32(d_y) * o2
        o1, o2 = jump(o1_dec, s, a_post), jump(o2_dec, s, a_post)
        out.append(s)
        P, Q = {"symmetric": (r1, o1), "causal": (r1, o1_dec), "strict": (r1_dec, o1_dec)}[pairing]
        fp, fm = f(W, f32(w_min), f32(w_max), f32(mu))
        ltp = np.outer(s * (f32(A2_plus) + f32(A3_plus) * o2_dec), P)
        ltd = np.outer(Q, x * (f32(A2_minus) + f32(A3_minus) * r2_dec))
        W = W + f32(lr) * (fp * ltp - fm * ltd)
        if hardbound:
            W = np.clip(W, w_min, w_max)
    return W, v, r1, o1, r2, o2, np.array(out)
