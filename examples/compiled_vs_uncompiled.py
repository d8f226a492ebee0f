"""Train the same layer on the same spikes with the compiled loop and the Python
loop, and print the largest weight difference and the speed-up.

Both loops call one step function, so the difference is float rounding at most.
Each loop first trains an identical layer on the same sequence (same T, chunks and
shapes), untimed, so that the timed calls run programs already compiled; the script
prints how many programs the timed calls compiled (0 when the warm-up did its job).

Run:  python examples/compiled_vs_uncompiled.py [--steps 2000] [--inputs 784] [--neurons 100]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from canns_stdp import SpikingLayer, STDPTrainer, compilation_count


def train_fresh(compiled: bool, W0: np.ndarray, xs: np.ndarray):
    """A new layer from ``W0`` trained on ``xs``; returns (W, spikes, seconds)."""
    layer = SpikingLayer(W0.shape[1], W0.shape[0], W_init=W0)
    trainer = STDPTrainer(layer, compiled=compiled)
    start = time.perf_counter()
    spikes = trainer.train(xs, return_spikes=True)
    W = np.asarray(layer.W.value)  # waits for the result
    return W, np.asarray(spikes), time.perf_counter() - start


def timed(compiled: bool, W0: np.ndarray, xs: np.ndarray, repeats: int):
    """Warm up with the very call that is timed, then time ``repeats`` calls; median seconds."""
    first = train_fresh(compiled, W0, xs)[2]
    before = compilation_count()
    runs = [train_fresh(compiled, W0, xs) for _ in range(repeats)]
    W, spikes, _ = runs[-1]
    return W, spikes, first, statistics.median(r[2] for r in runs), compilation_count() - before


def main(argv=None) -> float:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--inputs", type=int, default=784)
    parser.add_argument("--neurons", type=int, default=100)
    parser.add_argument("--rate", type=float, default=0.05, help="input spike probability per step")
    parser.add_argument("--repeats", type=int, default=3, help="timed calls per loop (median)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    rng = np.random.default_rng(args.seed)
    W0 = rng.uniform(0.0, 0.05, (args.neurons, args.inputs)).astype(np.float32)
    xs = (rng.random((args.steps, args.inputs)) < args.rate).astype(np.float32)

    W_c, s_c, first_c, t_c, new_c = timed(True, W0, xs, args.repeats)
    W_u, s_u, first_u, t_u, new_u = timed(False, W0, xs, args.repeats)
    diff = float(np.abs(W_c - W_u).max())
    print(f"{args.inputs}x{args.neurons}, {args.steps} steps, {s_c.mean():.1%} of neurons firing per step")
    print(f"compiled:   {t_c:7.3f} s  ({args.steps / t_c:9.0f} steps/s; first call {first_c:.2f} s)")
    print(f"uncompiled: {t_u:7.3f} s  ({args.steps / t_u:9.0f} steps/s; first call {first_u:.2f} s)")
    print(f"programs compiled during the timed calls: {new_c + new_u}")
    print(f"speed-up: {t_u / t_c:.1f}x (median of {args.repeats} calls each, after a warm-up)")
    print(f"identical output spikes: {bool(np.array_equal(s_c, s_u))}")
    print(f"max |W_compiled - W_uncompiled|: {diff:.3g}")
    return diff


if __name__ == "__main__":
    main()
