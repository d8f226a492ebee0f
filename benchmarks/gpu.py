"""GPU speed table: the fused kernel, the plain XLA step and CANNs 1.5, side by side in one run.

    python benchmarks/gpu.py                  # on a machine whose JAX sees a GPU
    python benchmarks/gpu.py --sweep          # also time other tilings of the fused kernel

The job is the benchmark job (``canns_stdp.bench.job``): Poisson inputs with p = 0.05, LIF
neurons, STDP every step, initial weights uniform in [0, 0.05]. "saturated" is threshold
1; "sparse" is threshold 10 * n_in / 784 (10 at 784 inputs, the CPU bench's sparse
regime: the threshold scales with the mean input current). CANNs is timed when it is
importable (``benchmarks/peers.py``); it is never a dependency. The roofline is the
measured copy bandwidth over 8 bytes per synapse (read and write fp32 W once per step).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import pathlib

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

SIZES = {"784x400": (784, 400), "4096x4096": (4096, 4096), "16384x16384": (16384, 16384)}
STEPS = {"784x400": 10_000, "4096x4096": 4_000, "16384x16384": 1_000}


def threshold_of(regime, n_in):
    return 1.0 if regime == "saturated" else 10.0 * n_in / 784


def fused_tiling_rate(n_in, n_out, T, threshold, tiling):
    """Steps/s of :func:`fused_train` alone with a given tiling (one chunk of T steps)."""
    import jax
    import jax.numpy as jnp
    from canns_stdp.bench import job
    from canns_stdp.functional.fused import fused_train
    from canns_stdp.functional.layer_step import LayerConfig, LayerParams, LayerState
    from canns_stdp.functional.neurons import LIFParams

    xs, W0 = job(n_in, n_out, T, 0.05)
    xs = jnp.asarray(xs)
    params = LayerParams(lif=LIFParams(0.9, threshold, 0.0))
    state = LayerState.zeros(n_in, n_out, W=W0)
    run = lambda s: fused_train(LayerConfig(), params, s, xs, tiling=tiling)  # noqa: E731
    state, _ = run(state)
    jax.block_until_ready(state)
    start = time.perf_counter()
    state, _ = run(state)
    jax.block_until_ready(state)
    return T / (time.perf_counter() - start)


def agreement(n_in, n_out, T, threshold):
    """Largest |W difference| and fraction of differing spikes: fused vs plain XLA."""
    from canns_stdp import SpikingLayer, STDPTrainer
    from canns_stdp.bench import job

    xs, W0 = job(n_in, n_out, T, 0.05, seed=1)
    out = {}
    for fused in (True, False):
        layer = SpikingLayer(n_in, n_out, threshold=threshold, W_init=W0)
        spikes = STDPTrainer(layer, fused=fused, event_driven=False).train(xs, return_spikes=True)
        out[fused] = np.asarray(layer.W.value), spikes
    return float(np.abs(out[True][0] - out[False][0]).max()), float(np.mean(out[True][1] != out[False][1]))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default=",".join(SIZES))
    parser.add_argument("--regimes", default="saturated,sparse")
    parser.add_argument("--no-canns", action="store_true")
    parser.add_argument("--sweep", action="store_true", help="time other tilings of the fused kernel")
    parser.add_argument("--json", help="write the rows to this file")
    args = parser.parse_args(argv)

    import jax

    from canns_stdp.bench import copy_bandwidth, measure, write_rows

    rows = []

    bandwidth = copy_bandwidth()
    print(f"device: {jax.devices()[0].device_kind}; jax {jax.__version__}; "
          f"copy bandwidth {bandwidth / 1e12:.2f} TB/s (read + write)", flush=True)
    rows.append(dict(device=jax.devices()[0].device_kind, jax=jax.__version__, copy_bandwidth=bandwidth))
    for size in args.sizes.split(","):
        n_in, n_out = SIZES[size]
        roofline = bandwidth / (8 * n_in * n_out)
        for regime in args.regimes.split(","):
            thr = threshold_of(regime, n_in)
            T = STEPS[size]
            err, flips = agreement(n_in, n_out, min(T, 500), thr)
            print(f"{size} {regime}: fused vs XLA after {min(T, 500)} steps: max|dW| {err:.2e}, "
                  f"differing spikes {flips:.2e}", flush=True)
            row = dict(layer=size, regime=regime, threshold=thr, roofline_steps_per_s=roofline,
                       fused_vs_xla_max_dW=err, fused_vs_xla_spike_flips=flips)
            for name, fused in (("fused", True), ("xla", False)):
                rate, firing = measure(n_in, n_out, T, 0.05, thr, event_driven=False, fused=fused)
                row[name] = rate
                row["firing"] = firing
            if n_in > 4096 and regime == args.regimes.split(",")[0]:
                from canns_stdp.functional.fused import FusedTiling

                row["fused_streaming"] = fused_tiling_rate(n_in, n_out, T, thr, FusedTiling(16, 256, 4, 3))
            if not args.no_canns:
                try:
                    import peers
                    row["canns"] = peers.canns(n_in, n_out, T, 0.05, thr, compiled=True)
                except ImportError as err:
                    print(f"CANNs not timed: {err}")
            print(json.dumps(row), flush=True)
            rows.append(row)
            if args.sweep and regime == args.regimes.split(",")[0]:  # cost does not depend on activity
                from canns_stdp.functional.fused import FusedTiling

                if n_in <= 4096:
                    tilings = [FusedTiling(r, None, w) for r in (1, 2, 4) for w in (2, 4, 8) if r * n_in <= 8192]
                else:
                    tilings = [FusedTiling(r, c, w, s) for r, c, w, s in
                               ((8, 512, 4, 2), (16, 512, 8, 2), (16, 1024, 8, 3), (32, 256, 8, 2),
                                (4, 2048, 8, 2), (16, 256, 4, 3), (1, None, 8, 2), (1, None, 16, 2),
                               (1, None, 16, 3), (2, None, 16, 2))]
                for tiling in tilings:
                    try:
                        rate = fused_tiling_rate(n_in, n_out, T, thr, tiling)
                    except Exception as err:  # a tiling Triton cannot compile
                        print(f"  {tiling}: failed: {str(err)[:200]}")
                        continue
                    print(f"  {tiling}: {rate:.0f} steps/s ({rate / roofline:.0%} of roofline)", flush=True)
                    rows.append(dict(layer=size, regime=regime, tiling=str(tiling), steps_per_s=rate))

    print()
    print("| layer | regime | firing | fused steps/s | % of roofline | one-pass streaming kernel | plain XLA "
          "| CANNs 1.5 | fused / CANNs |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        if "fused" not in r:
            continue
        canns = r.get("canns")
        canns_rate = "-" if canns is None else f"{canns:,.0f}"
        ratio = "-" if canns is None else f"{r['fused'] / canns:.1f}x"
        roof = r["roofline_steps_per_s"]
        streaming = r.get("fused_streaming")
        streaming = "-" if streaming is None else f"{streaming:,.0f} ({streaming / roof:.0%})"
        print(f"| {r['layer']} | {r['regime']} | {r['firing']:.1%} | {r['fused']:,.0f} | "
              f"{r['fused'] / roof:.0%} | {streaming} | {r['xla']:,.0f} | {canns_rate} | {ratio} |")
    if args.json:
        write_rows(args.json, rows)
    return rows


if __name__ == "__main__":
    main()
