"""Ensembles against sequential trainers: member-steps per second, in one run.

    python benchmarks/ensemble.py                       # 20x5 and 784x100, K = 1, 8, 64
    python benchmarks/ensemble.py --sizes 784x400 --members 1,8,64,256
    python benchmarks/ensemble.py --mesh                # members split over every device
    python benchmarks/ensemble.py --networks 100 --members 8,64   # Song-like networks of 100 inputs

With ``--networks N``: small Song, Miller & Abbott networks (N Poisson inputs onto one LIF
neuron, pair STDP; each member its own seed), one ``NetworkEnsemble.run`` against the
networks' own ``run`` one after the other.

The job is the benchmark job (``canns_stdp.bench.job``): Poisson inputs with p = 0.05, LIF
neurons, pair STDP every step; each member has its own seed and learning rate. A layer of
at least ``NATIVE_MIN_SYNAPSES`` synapses (784x100, 784x400) runs in the native CPU kernel,
alone and in the ensemble (``canns_stdp.kernels.native_ensemble``), where numba is installed. "sequential"
trains the K trainers one after the other (each call compiled once before timing);
"ensemble" trains them in one ``Ensemble.train`` call; the two are timed in turn, five
times each (medians). Prints one JSON line per row.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import jax
from jax.sharding import Mesh

import numpy as np

from canns_stdp import Ensemble, SpikingLayer, STDPTrainer


def members(K: int, n_in: int, n_out: int):
    return [STDPTrainer(SpikingLayer(n_in, n_out, seed=k, threshold=10.0), learning_rate=0.01 * (1 + k / K))
            for k in range(K)]


def timed(fns, repeats: int = 5) -> list:
    """Median seconds of each of ``fns``, run in turn ``repeats`` times (interleaved, so a
    change of load on a shared machine falls on all of them alike)."""
    for fn in fns:
        fn()  # compiled, caches warm
    times = [[] for _ in fns]
    for _ in range(repeats):
        for fn, spent in zip(fns, times):
            start = time.perf_counter()
            fn()
            spent.append(time.perf_counter() - start)
    return [float(np.median(spent)) for spent in times]


def _where() -> dict:
    """The machine and the day of a row."""
    return dict(machine=f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
                        f"jax {jax.default_backend()}", date=time.strftime("%Y-%m-%d"))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="20x5,784x100")
    parser.add_argument("--members", default="1,8,64")
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--mesh", action="store_true",
                        help="split the ensemble's members over every device (K a multiple of the device count)")
    parser.add_argument("--networks", type=int, default=0, help="Song-like networks of this many inputs instead")
    args = parser.parse_args(argv)
    if args.networks:
        return networks(args)
    mesh = Mesh(np.array(jax.devices()), ("members",)) if args.mesh else None
    rng = np.random.default_rng(0)
    for size in args.sizes.split(","):
        n_in, n_out = (int(n) for n in size.split("x"))
        X = (rng.random((args.steps, n_in)) < 0.05).astype(np.float32)
        for K in (int(k) for k in args.members.split(",")):
            sequential = members(K, n_in, n_out)
            ensemble = Ensemble(members(K, n_in, n_out), mesh=mesh)
            seq_s, ens_s = timed([lambda: [t.train(X) for t in sequential], lambda: ensemble.train(X)])
            row = dict(**_where(), devices=len(jax.devices()) if mesh else 1, layer=size, members=K, steps=args.steps,
                       sequential_member_steps_per_s=K * args.steps / seq_s,
                       ensemble_member_steps_per_s=K * args.steps / ens_s, ratio=seq_s / ens_s)
            print(json.dumps(row), flush=True)


def networks(args) -> None:
    """Rows for ensembles of Song-like networks against their sequential runs."""
    from canns_stdp.network import NetworkEnsemble
    from canns_stdp.tasks import song
    for K in (int(k) for k in args.members.split(",")):
        sequential = [song.build(n_inputs=args.networks, seed=k) for k in range(K)]
        ensemble = NetworkEnsemble([song.build(n_inputs=args.networks, seed=k) for k in range(K)])
        seq_s, ens_s = timed([lambda: [net.run(args.steps) for net in sequential], lambda: ensemble.run(args.steps)])
        row = dict(**_where(), network=f"song, {args.networks} inputs", members=K,
                   steps=args.steps, sequential_member_steps_per_s=K * args.steps / seq_s,
                   ensemble_member_steps_per_s=K * args.steps / ens_s, ratio=seq_s / ens_s)
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
