"""A NumPy transcription of a network step (docs/step.md, "Networks"), written from the
equations, independent of the library: every connectivity as a dense matrix with a mask,
every delay per synapse, every trace per synapse, loops over populations and projections.

Populations: ("input", n) given spikes; ("layer", n, leak, threshold, v_reset);
("lif", n, dict(tau_m, v_rest, v_reset, v_threshold, refractory, tau_exc, tau_inh, E_exc,
E_inh, v_init, bias, synapse)). Projections: dict(pre, post, W (n_post, n_pre), mask, D (delays
per synapse), receptor, rule=None | dict(A_plus, A_minus, lr, w_min, w_max, d_pre, d_post)).
Pair STDP: additive, symmetric pairing, cumulative traces of increment 1. A rule dict with
``period`` (and ``offset``, ``keep``) is Izhikevich's (2006) slow update instead: the pair
change accumulates in ``sd`` every step; every ``period`` steps ``W += lr (offset + sd)``
(clipped), then ``sd *= keep``.
"""

import numpy as np

f32 = np.float32


def run(pops, projs, order, inputs, T, dt=0.1):
    """Run ``T`` steps; returns (spikes per population (T, n), final W per projection,
    final state per population)."""
    hist = {name: [] for name in pops}
    state = {}
    for name, population in pops.items():
        kind, n = population[0], population[1]
        if kind == "layer":
            state[name] = dict(v=np.zeros(n, f32))
        elif kind == "lif":
            p = population[2]
            state[name] = dict(v=np.full(n, p["v_init"], f32), ge=np.zeros(n, f32), gi=np.zeros(n, f32),
                               left=np.zeros(n, f32))
    W = [np.array(p["W"], f32) for p in projs]
    sd = [np.zeros_like(w) for w in W]
    tr_pre = [np.zeros_like(w) for w in W]
    tr_post = [np.zeros(w.shape[0], f32) for w in W]
    out = {name: np.zeros((T, population[1]), f32) for name, population in pops.items()}
    for t in range(T):
        spikes, arrived = {}, {}
        for name in order:
            population = pops[name]
            kind, n = population[0], population[1]
            if kind == "input":
                s = np.asarray(inputs[name][t], f32)
            else:
                drive = {"exc": np.zeros(n, f32), "inh": np.zeros(n, f32)}
                for k, p in enumerate(projs):
                    if p["post"] != name:
                        continue
                    A = np.zeros_like(W[k])
                    for i in range(A.shape[0]):
                        for j in range(A.shape[1]):
                            back = t - int(p["D"][i, j])
                            if back >= 0:
                                A[i, j] = hist[p["pre"]][back][j] if back < t else spikes[p["pre"]][j]
                    arrived[k] = A
                    drive[p["receptor"]] += (W[k] * p["mask"] * A).sum(axis=1, dtype=f32)
                st = state[name]
                if kind == "layer":
                    _, _, leak, threshold, v_reset = population
                    vm = f32(leak) * st["v"] + (drive["exc"] - drive["inh"])
                    s = (vm >= f32(threshold)).astype(f32)
                    st["v"] = np.where(s > 0, f32(v_reset), vm).astype(f32)
                else:
                    q = {k: f32(x) for k, x in population[2].items() if k != "synapse"}
                    vm, ge, gi = st["v"], st["ge"], st["gi"]
                    if population[2]["synapse"] == "conductance":
                        dv = q["v_rest"] - vm + ge * (q["E_exc"] - vm) + gi * (q["E_inh"] - vm) + q["bias"]
                    else:
                        dv = q["v_rest"] - vm + ge - gi + q["bias"]
                    resting = st["left"] > 0
                    vm = np.where(resting, vm, vm + f32(dt) / q["tau_m"] * dv).astype(f32)
                    st["ge"] = (ge - f32(dt) / q["tau_exc"] * ge + drive["exc"]).astype(f32)
                    st["gi"] = (gi - f32(dt) / q["tau_inh"] * gi + drive["inh"]).astype(f32)
                    s = ((vm > q["v_threshold"]) & ~resting).astype(f32)
                    steps = np.round(q["refractory"] / f32(dt))
                    st["left"] = np.where(s > 0, steps, np.maximum(st["left"] - 1, 0)).astype(f32)
                    st["v"] = np.where(s > 0, q["v_reset"], vm).astype(f32)
            spikes[name] = s
        for name in pops:
            hist[name].append(spikes[name])
            out[name][t] = spikes[name]
        for k, p in enumerate(projs):
            r = p.get("rule")
            if r is None:
                continue
            A, s_post = arrived[k], spikes[p["post"]]
            tr_pre[k] = (f32(r["d_pre"]) * tr_pre[k] + A).astype(f32)
            tr_post[k] = (f32(r["d_post"]) * tr_post[k] + s_post).astype(f32)
            dW = f32(r["A_plus"]) * s_post[:, None] * tr_pre[k] - f32(r["A_minus"]) * tr_post[k][:, None] * A
            if "period" in r:
                sd[k] = (sd[k] + dW).astype(f32)
                if (t + 1) % r["period"]:
                    continue
                dW = f32(r["offset"]) + sd[k]
                sd[k] = (f32(r["keep"]) * sd[k]).astype(f32)
            new = np.clip(W[k] + f32(r["lr"]) * dW, r["w_min"], r["w_max"]).astype(f32)
            W[k] = np.where(p["mask"] > 0, new, W[k])
    return out, W, state
