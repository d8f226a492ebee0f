"""Classic plastic networks here and in Brian2, in one run: wall time of each whole command
(imports, compilation and figures-off included) and the statistics that must agree.

    python benchmarks/networks.py --brian-python /path/to/env-with-brian2/bin/python \
        [--task song|vogels|izhikevich] [--duration S] [--seeds N] [--standalone] [--json FILE]

Brian2 runs benchmarks/brian2/<task>.py (the same model in its equations; code generation
target cython, and cpp_standalone with --standalone); ours runs ``canns-stdp demo --task
<task>``, both with their compilation caches warm (one earlier run of each). Prints a
table and one JSON line per command; with --json, writes the rows.

With ``--task vogels --run-ms MS`` both run the network after its first second in runs of
MS ms each (a script driving a network a little at a time) and the table gives the median
wall time of one run, on Brian2's cython device.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import pathlib
import platform
import re
import subprocess
import sys
import time

HERE = pathlib.Path(__file__).resolve().parent


def timed(command):
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return time.perf_counter() - start, done.stdout


def ours(task: str, duration: float, seed: int):
    seconds, out = timed([sys.executable, "-m", "canns_stdp.cli", "demo", "--task", task, "--duration",
                          str(duration), "--seed", str(seed), "--no-figures", "--no-progress"])
    last = out.strip().splitlines()[-1]
    stats = dict(zip(re.findall(r"(\w+):", last), map(float, re.findall(r": ([-\d.e]+)", last))))
    return dict(system="canns_stdp", target=_our_target(), seed=seed, wall_s=seconds, **stats)


# Vogels et al. run a little at a time, as the Brian2 script with RUN_MS does: the first
# second without plasticity, then runs of run_ms each; the median wall time of one run
_VOGELS_IN_RUNS = """
import json, sys, time
import numpy as np
from canns_stdp.network import SpikeMonitor
from canns_stdp.tasks import vogels
duration, seed, run_ms = float(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
net = vogels.build(seed=seed)
exc, inh = SpikeMonitor("exc"), SpikeMonitor("inh")
net.run(duration=1000.0, learn=False, monitors=[exc, inh])
runs = []
for _ in range(int(round((duration - 1) * 1000 / run_ms))):
    begun = time.perf_counter()
    net.run(duration=run_ms, monitors=[exc, inh])
    runs.append(time.perf_counter() - begun)
last = lambda m, n: float(np.sum(m.t >= duration * 1000 - 1000) / n)
print(json.dumps(dict(exc_rate_hz=last(exc, 8000), inh_rate_hz=last(inh, 2000),
                      run_ms_median=float(np.median(runs) * 1000))))
"""


def ours_in_runs(duration: float, seed: int, run_ms: float):
    seconds, out = timed([sys.executable, "-c", _VOGELS_IN_RUNS, str(duration), str(seed), str(run_ms)])
    return dict(system="canns_stdp", target=_our_target(), seed=seed, wall_s=seconds,
                **json.loads(out.strip().splitlines()[-1]))


def _our_target() -> str:
    return "native-cpu" if importlib.util.find_spec("numba") else "xla-cpu"


def brian2(python: str, task: str, duration: float, seed: int, target: str, run_ms=None):
    extra = [] if run_ms is None else [str(run_ms)]
    seconds, out = timed([python, str(HERE / "brian2" / f"{task}.py"), str(duration), target, str(seed)] + extra)
    return dict(system="brian2", target=target, seed=seed, wall_s=seconds, **json.loads(out.strip().splitlines()[-1]))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--brian-python", required=True, help="a Python that has Brian2")
    parser.add_argument("--task", choices=("song", "vogels", "izhikevich"), default="song")
    parser.add_argument("--duration", type=float, help="simulated seconds (default: song 100, vogels 10, "
                                                        "izhikevich 60)")
    parser.add_argument("--seeds", type=int, default=1, help="seeds per system (default 1)")
    parser.add_argument("--standalone", action="store_true", help="also Brian2's C++ standalone device")
    parser.add_argument("--run-ms", type=float, help="vogels only: after its first second, run the network in "
                                                      "runs of this many ms each and time one run (cython device)")
    parser.add_argument("--json", help="write the rows to this file")
    args = parser.parse_args(argv)
    if args.run_ms is not None:
        return _in_runs(args)
    duration = args.duration or {"song": 100.0, "vogels": 10.0, "izhikevich": 60.0}[args.task]
    targets = ["cython"] + (["cpp_standalone"] if args.standalone else [])
    # both systems' compilation caches warmed, as on a second run: Brian2's generated code, our
    # native kernels and XLA programs (Song's chunk length follows its duration: the same run)
    brian2(args.brian_python, args.task, 0.1 if args.task == "song" else 1.0, 0, "cython")
    ours(args.task, {"song": duration, "vogels": 1.1}.get(args.task, 1.0), 0)  # Vogels: plasticity from 1 s
    rows = []
    for seed in range(args.seeds):
        rows.append(ours(args.task, duration, seed))
        rows += [brian2(args.brian_python, args.task, duration, seed, t) for t in targets]
    stats = {"song": ("low_fraction", "high_fraction", "rate_hz"), "vogels": ("exc_rate_hz", "inh_rate_hz"),
             "izhikevich": ("gamma_peak_hz", "high_fraction")}[args.task]
    print(f"{args.task}, {duration:g} s simulated, {platform.machine()} {platform.processor() or ''}".rstrip())
    print(f"{'system':>11} {'target':>15} {'seed':>4} {'wall s':>8} " + " ".join(f"{k:>13}" for k in stats))
    for r in rows:
        print(f"{r['system']:>11} {r['target']:>15} {r['seed']:>4} {r['wall_s']:8.1f} "
              + " ".join(f"{r[k]:13.3f}" for k in stats))
    for target in targets:
        theirs = [r["wall_s"] for r in rows if r["target"] == target]
        mine = [r["wall_s"] for r in rows if r["system"] == "canns_stdp"]
        print(f"brian2 {target} / canns_stdp wall time: {sum(theirs) / sum(mine):.1f}x")
    _emit(rows, args.json)


def _in_runs(args):
    """Vogels et al. run a little at a time: the median wall time of one run of ``run_ms``."""
    if args.task != "vogels" or args.standalone or args.run_ms <= 0:
        raise SystemExit("--run-ms > 0 times runs of Vogels et al.'s network on Brian2's cython device only")
    duration = args.duration or 10.0
    rows = []
    for seed in range(args.seeds):
        rows.append(ours_in_runs(duration, seed, args.run_ms))
        rows.append(brian2(args.brian_python, "vogels", duration, seed, "cython", args.run_ms))
    print(f"vogels, {duration:g} s simulated, then runs of {args.run_ms:g} ms, "
          f"{platform.machine()} {platform.processor() or ''}".rstrip())
    print(f"{'system':>11} {'seed':>4} {'ms per run':>11} {'exc_rate_hz':>12} {'wall s':>8}")
    for r in rows:
        print(f"{r['system']:>11} {r['seed']:>4} {r['run_ms_median']:11.1f} {r['exc_rate_hz']:12.3f} "
              f"{r['wall_s']:8.1f}")
    mine = [r["run_ms_median"] for r in rows if r["system"] == "canns_stdp"]
    theirs = [r["run_ms_median"] for r in rows if r["system"] == "brian2"]
    print(f"brian2 cython / canns_stdp, one run of {args.run_ms:g} ms: {sum(theirs) / sum(mine):.1f}x")
    _emit(rows, args.json)


def _emit(rows, path=None):
    """One JSON line per row; with ``path``, the rows written there too."""
    for r in rows:
        print(json.dumps(r))
    if path:
        pathlib.Path(path).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
