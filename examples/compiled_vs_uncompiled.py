"""Train the same layer on the same spikes with the compiled loop and the Python
loop, and print the largest weight difference and the speed-up.

Both loops call one step function, so the difference is float rounding at most.

Run:  python examples/compiled_vs_uncompiled.py [--steps 2000] [--inputs 784] [--neurons 100]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from canns_stdp import SpikingLayer, STDPTrainer


def train_once(compiled: bool, W0: np.ndarray, xs: np.ndarray):
    layer = SpikingLayer(W0.shape[1], W0.shape[0], W_init=W0)
    trainer = STDPTrainer(layer, compiled=compiled)
    trainer.train(xs[:1])  # compile outside the timed call
    layer.W.value = W0
    layer.reset_state()
    start = time.perf_counter()
    spikes = trainer.train(xs, return_spikes=True)
    W = np.asarray(layer.W.value)  # waits for the result
    return W, np.asarray(spikes), time.perf_counter() - start


def main(argv=None) -> float:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--inputs", type=int, default=784)
    parser.add_argument("--neurons", type=int, default=100)
    parser.add_argument("--rate", type=float, default=0.05, help="input spike probability per step")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    rng = np.random.default_rng(args.seed)
    W0 = rng.uniform(0.0, 0.05, (args.neurons, args.inputs)).astype(np.float32)
    xs = (rng.random((args.steps, args.inputs)) < args.rate).astype(np.float32)

    W_c, s_c, t_c = train_once(True, W0, xs)
    W_u, s_u, t_u = train_once(False, W0, xs)
    diff = float(np.abs(W_c - W_u).max())
    print(f"{args.inputs}x{args.neurons}, {args.steps} steps, {s_c.mean():.1%} of neurons firing per step")
    print(f"compiled:   {t_c:7.3f} s  ({args.steps / t_c:9.0f} steps/s)")
    print(f"uncompiled: {t_u:7.3f} s  ({args.steps / t_u:9.0f} steps/s)")
    print(f"speed-up: {t_u / t_c:.1f}x")
    print(f"identical output spikes: {bool(np.array_equal(s_c, s_u))}")
    print(f"max |W_compiled - W_uncompiled|: {diff:.3g}")
    return diff


if __name__ == "__main__":
    main()
