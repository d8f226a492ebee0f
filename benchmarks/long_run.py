"""Long run: 10^6 STDP steps on a 784x100 layer, with periodic checkpoints.

Checks, every 10^5 steps, that the weights are finite and within [w_min, w_max],
and records the process's resident memory (VmRSS). Passes when the resident
memory after the last step is within 5% of that after the first 10^5 steps.
Writes ``out/long_run.json``; exits with status 1 on failure.

    python benchmarks/long_run.py                 # 10^6 steps (tens of minutes on 2 cores)
    python benchmarks/long_run.py --steps 200000  # shorter
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import tempfile
import time

import numpy as np


def rss_mib() -> float:
    """Resident set size of this process, in MiB (Linux /proc; else peak RSS)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=10_000, help="steps per train() call")
    parser.add_argument("--report-every", type=int, default=100_000)
    parser.add_argument("--n-in", type=int, default=784)
    parser.add_argument("--n-out", type=int, default=100)
    parser.add_argument("--rate", type=float, default=0.05, help="input spike probability per step")
    parser.add_argument("--checkpoint-every", type=int, default=100_000)
    parser.add_argument("--out", default="out/long_run.json")
    args = parser.parse_args(argv)
    if args.report_every % args.batch or args.steps % args.report_every:
        parser.error("--report-every must be a multiple of --batch, and --steps of --report-every")

    from canns_stdp import SpikingLayer, STDPTrainer
    from canns_stdp.checkpoint import PeriodicCheckpoint

    layer = SpikingLayer(args.n_in, args.n_out, seed=0)
    trainer = STDPTrainer(layer)  # CANNs 1.5's defaults
    ckpt_dir = tempfile.mkdtemp(prefix="long_run_ckpt_")
    ckpt = PeriodicCheckpoint(ckpt_dir, every=args.checkpoint_every, keep_last=2)
    rng = np.random.default_rng(0)

    rows, steps, spikes, t0 = [], 0, 0.0, time.perf_counter()
    while steps < args.steps:
        xs = (rng.random((args.batch, args.n_in), dtype=np.float32) < args.rate).astype(np.float32)
        out = trainer.train(xs, checkpoint=ckpt, return_spikes=True)
        spikes += float(out.sum())
        steps += args.batch
        if steps % args.report_every == 0:
            del xs, out
            gc.collect()
            W = np.asarray(layer.W.value)
            row = {
                "steps": steps,
                "seconds": round(time.perf_counter() - t0, 1),
                "rss_mib": round(rss_mib(), 1),
                "finite": bool(np.isfinite(W).all()),
                "within_bounds": bool((W >= trainer.w_min).all() and (W <= trainer.w_max).all()),
                "W_mean": float(W.mean()),
                "frac_at_w_min": float((W == trainer.w_min).mean()),
                "frac_at_w_max": float((W == trainer.w_max).mean()),
                "output_rate": spikes / (steps * args.n_out),
                "checkpoints": [p.name for p in ckpt.files()],
            }
            rows.append(row)
            print(json.dumps(row), flush=True)

    first, last = rows[0], rows[-1]
    growth = (last["rss_mib"] - first["rss_mib"]) / first["rss_mib"]
    ok = all(r["finite"] and r["within_bounds"] for r in rows) and abs(growth) <= 0.05
    summary = {
        "steps": args.steps, "n_in": args.n_in, "n_out": args.n_out,
        "us_per_step": 1e6 * last["seconds"] / args.steps,
        "rss_first_mib": first["rss_mib"], "rss_last_mib": last["rss_mib"],
        "rss_growth": growth, "passed": ok, "rows": rows,
    }
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(summary, f, indent=1)
    print(f"{'PASS' if ok else 'FAIL'}: {args.steps} steps, {summary['us_per_step']:.1f} us/step, "
          f"RSS {first['rss_mib']:.1f} -> {last['rss_mib']:.1f} MiB ({100 * growth:+.2f}%)")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
