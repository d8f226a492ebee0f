"""Short calls from Python, as CANNs' own examples make them: canns_stdp against CANNs 1.5.

The client is CANNs' temporal-learning example (``stdp_temporal_learning.py``): a 20x5
``SpikingLayer`` and its ``STDPTrainer``; for each pattern of 50 steps (a list of 50 float64
rows), ``trainer.train(pattern)``, ``model.reset_state()``, then ``model.forward(x)`` on
each row, counting the output spikes. Both libraries run the same client code, each in a
fresh process (CANNs in a scratch environment that has it: never a dependency of ours).
Timed: the whole client per pattern, end to end, and each kind of call alone
(``train`` of 50 rows, ``forward``, ``trainer.predict``, ``reset_state``), as medians
of many repetitions (the machine may be shared: medians, not means).

    python benchmarks/short_calls.py --canns-python /path/to/env-with-canns/bin/python \\
        [--patterns 100] [--canns-patterns 12] [--json benchmarks/results/short-calls-DATE.json]

Prints a table of microseconds per call and the ratios (CANNs / canns_stdp), and with
--json writes one row with the machine described.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import pathlib
import platform
import statistics
import subprocess
import sys
import time

N_IN, N_OUT, T = 20, 5, 50
LAYER = dict(input_size=N_IN, output_size=N_OUT, threshold=0.8, v_reset=0.0, leak=0.95, trace_decay=0.90, dt=1.0)
TRAINER = dict(learning_rate=0.02, A_plus=0.005, A_minus=0.00525, w_min=0.0, w_max=1.0, compiled=True)
CALLS = ("pattern", "train", "forward", "predict", "reset_state")


def patterns(n: int, seed: int = 42):
    """CANNs' temporal patterns: inputs 0-4 active early, 5-9 in the middle, 10-14 late
    (rate 0.3), 15-19 background noise (0.05); each pattern a list of 50 float64 rows."""
    import numpy as np

    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        rows = []
        for t in range(T):
            x = np.zeros(N_IN)
            if t < 10:
                x[0:5] = rng.random(5) < 0.3
            if 10 < t < 20:
                x[5:10] = rng.random(5) < 0.3
            if 20 < t < 30:
                x[10:15] = rng.random(5) < 0.3
            x[15:] = rng.random(5) < 0.05
            rows.append(x)
        out.append(rows)
    return out


def worker(system: str, n_patterns: int, repeats: int) -> dict:
    """Run the client in this process with ``system``'s classes; the timings in µs."""
    import numpy as np

    import brainpy.math as bm
    import jax

    if system == "canns":
        from canns.models.brain_inspired import SpikingLayer
        from canns.trainer import STDPTrainer
    else:
        from canns_stdp import SpikingLayer, STDPTrainer
    bm.random.seed(42)  # as the example: both draw the same initial weights from BrainPy's key

    data = patterns(n_patterns)
    model = SpikingLayer(**LAYER)
    trainer = STDPTrainer(model, **TRAINER)
    times = {name: [] for name in CALLS}

    def timed(name, call, *args):
        start = time.perf_counter()
        out = call(*args)
        times[name].append(time.perf_counter() - start)
        return out

    def one_pattern(rows):  # the example's loop body, each call timed
        start = time.perf_counter()
        timed("train", trainer.train, rows)
        timed("reset_state", model.reset_state)
        spikes = [timed("forward", model.forward, x) for x in rows]
        count = float(np.sum(spikes))
        times["pattern"].append(time.perf_counter() - start)
        return count

    start = time.perf_counter()
    one_pattern(data[0])  # compiles what the calls need
    first_s = time.perf_counter() - start
    for name in CALLS:
        times[name].clear()
    spikes = 0.0
    client = []
    for _ in range(repeats):
        start = time.perf_counter()
        for rows in data:
            spikes += one_pattern(rows)
        jax.block_until_ready(model.W.value)
        client.append((time.perf_counter() - start) / len(data))
    model.reset_state()
    for _ in range(repeats):
        for x in data[0]:
            timed("predict", trainer.predict, x)
    us = {name: 1e6 * statistics.median(values) for name, values in times.items()}
    us["client_per_pattern"] = 1e6 * statistics.median(client)
    return dict(system=system, patterns=len(data), repeats=repeats, first_pattern_s=first_s,
                spikes_per_pattern=spikes / (repeats * len(data)), us=us, versions=_versions(system))


def _versions(system: str) -> dict:
    import jax

    versions = dict(python=platform.python_version(), jax=jax.__version__)
    try:
        import brainpy

        versions["brainpy"] = brainpy.__version__
    except ImportError:
        pass
    if system == "canns":
        from importlib.metadata import version

        versions["canns"] = version("canns")
    else:
        import canns_stdp

        versions["canns_stdp"] = canns_stdp.__version__
    return versions


def run_worker(python: str, system: str, n_patterns: int, repeats: int) -> dict:
    command = [python, str(pathlib.Path(__file__).resolve()), "--worker", system, "--patterns", str(n_patterns),
               "--repeats", str(repeats)]
    env = dict(os.environ)
    if system == "canns":  # its own environment, nothing of ours on its path
        env.pop("PYTHONPATH", None)
    done = subprocess.run(command, capture_output=True, text=True, check=True, env=env)
    return json.loads(done.stdout.strip().splitlines()[-1])


def machine() -> str:
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as info:
            model = next(line.split(":", 1)[1].strip() for line in info if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{model}, {cpus} cores, {platform.system()}, load {os.getloadavg()[0]:.1f} at start (a shared machine)"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--canns-python", help="a Python that has CANNs 1.5 (default: canns_stdp alone)")
    parser.add_argument("--patterns", type=int, default=100, help="patterns per repetition, canns_stdp")
    parser.add_argument("--canns-patterns", type=int, default=12,
                        help="patterns per repetition, CANNs (each of its train() calls compiles anew)")
    parser.add_argument("--repeats", type=int, default=5, help="repetitions of the client")
    parser.add_argument("--json", help="write the row to this file")
    parser.add_argument("--worker", choices=("canns_stdp", "canns"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args.worker, args.patterns, args.repeats)))
        return
    described = machine()
    rows = {"canns_stdp": run_worker(sys.executable, "canns_stdp", args.patterns, args.repeats)}
    if args.canns_python:
        rows["canns"] = run_worker(args.canns_python, "canns", args.canns_patterns, args.repeats)
    print(f"{N_IN}x{N_OUT} layer, patterns of {T} steps; {described}")
    print(f"{'µs per call':>24} " + " ".join(f"{name:>12}" for name in rows) + ("     ratio" if len(rows) > 1 else ""))
    ratios = {}
    for name in ("client_per_pattern",) + CALLS[1:]:
        values = [rows[s]["us"][name] for s in rows]
        line = f"{name:>24} " + " ".join(f"{x:12.1f}" for x in values)
        if len(rows) > 1:
            ratios[name] = values[1] / values[0]
            line += f" {ratios[name]:8.1f}x"
        print(line)
    for s, row in rows.items():
        print(f"{s}: first pattern (compilation included) {row['first_pattern_s']:.2f} s, "
              f"{row['spikes_per_pattern']:.1f} output spikes per pattern")
    if ratios:
        print(f"end to end, CANNs / canns_stdp: {ratios['client_per_pattern']:.1f}x")
    row = dict(date=datetime.date.today().isoformat(), machine=described,
               command="python benchmarks/short_calls.py " + " ".join(argv if argv is not None else sys.argv[1:]),
               client="CANNs' stdp_temporal_learning.py loop: train(50 float64 rows), reset_state(), "
                      "50 x forward(row); 20x5 SpikingLayer",
               **{s: dict(us=r["us"], patterns=r["patterns"], repeats=r["repeats"],
                          first_pattern_s=r["first_pattern_s"], versions=r["versions"]) for s, r in rows.items()},
               ratio_canns_over_canns_stdp=ratios)
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps([row], indent=1) + "\n")


if __name__ == "__main__":
    main()
