"""Time the peers on the benchmark job (``canns_stdp.bench.job``). Runs in a scratch environment that has them
(never a project dependency): ``/path/to/peer-env/bin/python benchmarks/peers.py``.

Prints one JSON object per measurement: {"system", "layer", "p", "regime", "steps_per_s"}.
With ``--serve`` it stays up and measures the jobs its caller sends, so that the caller
can time its own run of a job and the peers' seconds apart (``benchmarks/run.py``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np

SIZES = {"784x100": (784, 100), "784x400": (784, 400), "4096x4096": (4096, 4096)}
REGIMES = {"saturated": 1.0, "sparse": 10.0}
LR, A_PLUS, A_MINUS, DECAY = 0.01, 0.005, 0.00525, 0.95


def job(n_in, n_out, T, p, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.random((T, n_in)) < p).astype(np.float32), rng.uniform(0.0, 0.05, (n_out, n_in)).astype(np.float32)


def canns(n_in, n_out, T, p, threshold, compiled):
    import brainpy.math as bm
    import jax
    from canns.models.brain_inspired import SpikingLayer
    from canns.trainer import STDPTrainer

    xs, W0 = job(n_in, n_out, T, p)
    xs = jax.numpy.asarray(xs)  # a JAX array: its fastest input (NumPy costs it 2x, bm.Array more)
    layer = SpikingLayer(n_in, n_out, threshold=threshold)
    layer.W.value = bm.asarray(W0)
    trainer = STDPTrainer(layer, compiled=compiled)
    trainer.train(xs)  # the same T: its stack of T rows is compiled once (it still recompiles its loop)
    seconds = []
    for _ in range(3):  # the median of three timed calls, as canns_stdp.bench times ours
        start = time.perf_counter()
        trainer.train(xs)
        jax.block_until_ready(layer.W.value)
        seconds.append(time.perf_counter() - start)
    return T / float(np.median(seconds))


def canns_first_call(T=10_000):
    """``(imports, call)``: seconds of CANNs' imports and of its first ``train()``."""
    xs, W0 = job(784, 100, T, 0.05)
    start = time.perf_counter()
    import brainpy.math as bm
    from canns.models.brain_inspired import SpikingLayer
    from canns.trainer import STDPTrainer

    imported = time.perf_counter()
    layer = SpikingLayer(784, 100)
    layer.W.value = bm.asarray(W0)
    STDPTrainer(layer).train(list(xs))
    np.asarray(layer.W.value)
    return imported - start, time.perf_counter() - imported


def norse(n_in, n_out, T, p, threshold):
    import torch
    from norse.torch.functional.stdp import STDPParameters, STDPState, stdp_step_linear

    torch.set_num_threads(2)
    xs, W0 = job(n_in, n_out, T, p)
    xs, w = torch.from_numpy(xs), torch.from_numpy(W0)
    # tau = 1/(1 - 0.95) = 20 steps with dt = 1: Euler traces decay by 0.95 per step
    params = STDPParameters(a_pre=torch.tensor(1.0), a_post=torch.tensor(1.0), tau_pre_inv=torch.tensor(0.05),
                            tau_post_inv=torch.tensor(0.05), w_min=0.0, w_max=1.0,
                            eta_plus=LR * A_PLUS, eta_minus=LR * A_MINUS, stdp_algorithm="additive",
                            hardbound=True, convolutional=False)
    state = STDPState(t_pre=torch.zeros(1, n_in), t_post=torch.zeros(1, n_out))
    v = torch.zeros(1, n_out)

    def run(n):
        nonlocal w, state, v
        for t in range(n):
            x = xs[t:t + 1]
            v = 0.9 * v + x @ w.T
            z = (v >= threshold).float()
            v = torch.where(z > 0, torch.zeros_like(v), v)
            w, state = stdp_step_linear(x, z, w, state, params, dt=1.0)

    run(10)
    start = time.perf_counter()
    run(T)
    return T / (time.perf_counter() - start)


def spikingjelly(n_in, n_out, T, p, threshold):
    import torch
    from spikingjelly.activation_based import layer, learning, neuron

    torch.set_num_threads(2)
    xs, W0 = job(n_in, n_out, T, p)
    fc = layer.Linear(n_in, n_out, bias=False)
    fc.weight.data = torch.from_numpy(W0)
    lif = neuron.SimpleLIFNode(tau=10.0, v_threshold=threshold, v_reset=0.0, decay_input=False)
    net = torch.nn.Sequential(fc, lif)
    learner = learning.STDPLearner(step_mode="s", synapse=fc, sn=lif, tau_pre=20.0, tau_post=20.0)
    opt = torch.optim.SGD(fc.parameters(), lr=LR, momentum=0.0)
    xs = torch.from_numpy(xs)

    def run(n):
        for t in range(n):
            opt.zero_grad()
            net(xs[t:t + 1])
            learner.step(on_grad=True)
            opt.step()
            fc.weight.data.clamp_(0.0, 1.0)

    with torch.no_grad():
        run(10)
        start = time.perf_counter()
        run(T)
    return T / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="784x100,784x400")
    parser.add_argument("--rates", default="0.05")
    parser.add_argument("--regimes", default="saturated,sparse")
    parser.add_argument("--systems", default="canns,canns_uncompiled,norse,spikingjelly")
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--first-call", action="store_true")
    parser.add_argument("--serve", action="store_true",
                        help="after the first call, measure the jobs read from stdin, one JSON object a line "
                             "(layer, p, regime), answering each with its rows and then {\"done\": true}")
    args = parser.parse_args()
    runners = {
        "canns": lambda *a: canns(*a, compiled=True),
        "canns_uncompiled": lambda *a: canns(*a, compiled=False),
        "norse": norse,
        "spikingjelly": spikingjelly,
    }
    if args.first_call:  # first, while the process is fresh: later CANNs' code would be compiled already
        try:
            imports, call = canns_first_call()
        except ImportError as e:  # an environment of other peers
            print(json.dumps(dict(system="canns", error=str(e))), flush=True)
        else:
            print(json.dumps(dict(system="canns", layer="784x100", p=0.05, regime="saturated",
                                  first_call_T10000_s=imports + call, imports_s=imports, call_s=call)), flush=True)
    if args.serve:  # (a caller that alternates these jobs with its own, seconds apart)
        print(json.dumps(dict(ready=True)), flush=True)
        for line in iter(sys.stdin.readline, ""):
            request = json.loads(line)
            measure(runners, request.get("systems", args.systems), args.steps, request["layer"],
                    float(request["p"]), request["regime"])
            print(json.dumps(dict(done=True)), flush=True)
        return
    for size in args.sizes.split(","):
        for p in map(float, args.rates.split(",")):
            for regime in args.regimes.split(","):
                measure(runners, args.systems, args.steps, size, p, regime)


def measure(runners, systems: str, steps: int, size, p, regime):
    """One job with each of ``systems`` (comma-separated): a JSON row each (or the error
    of a system this environment lacks)."""
    n_in, n_out = SIZES[size]
    # the full steps (10,000 from run.py) up to 784x400: a shorter run
    # would charge CANNs its per-call recompilation (~0.2 s) over too few steps
    T = steps if n_in * n_out <= 1_000_000 else max(20, int(2e8 // (n_in * n_out)))
    for system in systems.split(","):
        n_steps = T if system != "canns_uncompiled" else max(20, T // 10)
        try:
            rate = runners[system](n_in, n_out, n_steps, p, REGIMES[regime])
        except ImportError as err:
            print(json.dumps(dict(system=system, error=str(err))), flush=True)
            continue
        print(json.dumps(dict(system=system, layer=size, p=p, regime=regime, steps_per_s=rate)), flush=True)


if __name__ == "__main__":
    main()
