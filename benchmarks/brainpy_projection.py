"""Time a PlasticProjection against BrainPy's own ``bp.dyn.STDP_Song2000`` on one network:
Poisson inputs onto LifRef neurons through Expon/COBA synapses, FixedProb connectivity, a
1 ms delay, pair STDP mapped as in ``tests/test_brainpy_projection.py`` (``timing="brainpy"``).

``python benchmarks/brainpy_projection.py [--pre 1000 --post 100 --p 0.1 --steps 5000]``

Prints one JSON object per system, {"system", "steps_per_s", ...}, then the ratio as its last
line. Times are the median of three calls of ``bm.for_loop`` after one untimed call (compiling),
each from the same initial weights.
"""

from __future__ import annotations

import argparse
import json
import time

import brainpy as bp
import brainpy.math as bm
import numpy as np

from canns_stdp import PlasticProjection, rules

TAU_S, TAU_T, A1, A2 = 16.8, 33.7, 0.001, 0.00105


class Net(bp.DynSysGroup):
    def __init__(self, n_pre, n_post, p, ours):
        super().__init__()
        self.pre = bp.dyn.PoissonGroup(n_pre, freqs=15.)
        self.post = bp.dyn.LifRef(n_post, V_rest=-60., V_th=-50., V_reset=-60., tau=20., tau_ref=2.)
        conn = bp.conn.FixedProb(p, seed=0)
        syn, out = bp.dyn.Expon.desc(n_post, tau=5.), bp.dyn.COBA.desc(E=0.)
        if ours:
            rule = rules.pair(A1 / np.exp(-bm.get_dt() / TAU_S), A2, pairing="strict")
            self.proj = PlasticProjection(self.pre, self.post, rule, conn=conn, weight=bp.init.Uniform(0., 0.1),
                                          delay=1., syn=syn, out=out, w_min=0., w_max=0.1, tau_pre=TAU_S,
                                          tau_post=TAU_T, timing="brainpy")
        else:
            comm = bp.dnn.EventCSRLinear(conn(n_pre, n_post), weight=bp.init.Uniform(0., 0.1), mode=bm.TrainingMode())
            self.proj = bp.dyn.STDP_Song2000(pre=self.pre, delay=1., comm=comm, syn=syn, out=out, post=self.post,
                                             tau_s=TAU_S, tau_t=TAU_T, A1=A1, A2=A2, W_min=0., W_max=0.1)

    def weights(self):
        return self.proj.W if isinstance(self.proj, PlasticProjection) else self.proj.comm.weight

    def update(self):
        super().update()
        return self.post.spike.value


def steps_per_s(ours, n_pre, n_post, p, steps):
    bm.random.seed(0)
    net = Net(n_pre, n_post, p, ours)
    W0 = np.array(net.weights().value)
    bm.for_loop(net.step_run, np.arange(steps))   # compiles
    seconds = []
    for _ in range(3):   # each from the same start: the same weights, fresh neurons and traces
        bp.reset_state(net)
        net.weights().value = bm.asarray(W0)
        start = time.perf_counter()
        spikes = bm.for_loop(net.step_run, np.arange(steps))
        np.asarray(spikes)
        seconds.append(time.perf_counter() - start)
    return steps / float(np.median(seconds)), float(np.asarray(spikes).mean() / bm.get_dt() * 1000)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pre", type=int, default=1000)
    parser.add_argument("--post", type=int, default=100)
    parser.add_argument("--p", type=float, default=0.1)
    parser.add_argument("--steps", type=int, default=5000)
    args = parser.parse_args()
    rates = {}
    for system, ours in (("STDP_Song2000", False), ("PlasticProjection", True)):
        rates[system], hz = steps_per_s(ours, args.pre, args.post, args.p, args.steps)
        print(json.dumps({"system": system, "steps_per_s": round(rates[system], 1), "post_rate_hz": round(hz, 1),
                          **vars(args)}))
    print(f"PlasticProjection / STDP_Song2000: {rates['PlasticProjection'] / rates['STDP_Song2000']:.2f}x")


if __name__ == "__main__":
    main()
