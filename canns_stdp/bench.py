"""Speed benchmark of the STDP trainer on the benchmark job (``python -m canns_stdp.bench``).

The job: ``n_in`` Poisson inputs (Bernoulli with probability ``p`` per step), ``n_out``
LIF neurons (leak 0.9, reset 0, threshold 1 "saturated" or 10 "sparse"), STDP every
step (A+ 0.005, A- 0.00525, lr 0.01, weights clipped to [0, 1], initial weights
uniform in [0, 0.05]). Reports steps/s and synapse-updates/s (n_in * n_out * steps/s).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

import numpy as np

from .cli import positive_int

SIZES = {"784x100": (784, 100), "784x400": (784, 400), "4096x4096": (4096, 4096)}
REGIMES = {"saturated": 1.0, "sparse": 10.0}


def job(n_in: int, n_out: int, T: int, p: float, seed: int = 0):
    rng = np.random.default_rng(seed)
    xs = (rng.random((T, n_in)) < p).astype(np.float32)
    W0 = rng.uniform(0.0, 0.05, (n_out, n_in)).astype(np.float32)
    return xs, W0


def measure(n_in, n_out, T, p, threshold, compiled=True, event_driven="auto", **trainer_kw):
    """Steady-state steps/s (the median of three timed calls after two untimed ones) and
    the firing fraction of the last call; ``trainer_kw`` go to the trainer (e.g. ``fused``)."""
    import jax

    from canns_stdp import SpikingLayer, STDPTrainer

    xs, W0 = job(n_in, n_out, T, p)
    layer = SpikingLayer(n_in, n_out, threshold=threshold, W_init=W0)
    trainer = STDPTrainer(layer, compiled=compiled, event_driven=event_driven, **trainer_kw)
    for _ in range(2):  # compiles every kernel the run will use (the first chunk of a fresh
        trainer.train(xs, return_spikes=True)  # layer runs dense: its activity is unknown)
    seconds = []
    for _ in range(3):  # the first calls of a process can run slower: a median is steadier
        start = time.perf_counter()
        spikes = trainer.train(xs, return_spikes=True)
        jax.block_until_ready(layer.W.value)
        seconds.append(time.perf_counter() - start)
    return T / float(np.median(seconds)), float(np.mean(spikes))


def copy_bandwidth(n_bytes=1 << 30, repeats=20):
    """Bytes read + written per second by a device-to-device elementwise copy."""
    import jax
    import jax.numpy as jnp

    a = jnp.ones((n_bytes // 4,), jnp.float32)
    f = jax.jit(lambda a: a + 1.0)
    f(a).block_until_ready()
    start = time.perf_counter()
    for _ in range(repeats):
        a = f(a)
    a.block_until_ready()
    return 2 * n_bytes * repeats / (time.perf_counter() - start)


def write_rows(path, rows) -> None:
    """Save benchmark rows as JSON (``--json``)."""
    with open(path, "w") as f:
        json.dump(rows, f, indent=1)


def first_call(n_in, n_out, T, p, threshold, cold: bool = False):
    """``(imports, call)``: seconds of the imports and of a first ``train()`` in a fresh
    process, compilation included; ``cold``: with an empty cache of native kernels (as on a
    machine's first run), else the one earlier processes filled."""
    code = (
        "import time, numpy as np; from canns_stdp.bench import job;"
        f"xs, W0 = job({n_in}, {n_out}, {T}, {p}); t = time.perf_counter();"
        "from canns_stdp import SpikingLayer, STDPTrainer; import canns_stdp.kernels; i = time.perf_counter();"
        f"l = SpikingLayer({n_in}, {n_out}, threshold={threshold}, W_init=W0);"
        "STDPTrainer(l).train(xs); np.asarray(l.W.value); print(i - t, time.perf_counter() - i)"
    )
    with tempfile.TemporaryDirectory() as empty:
        env = dict(os.environ, **({"NUMBA_CACHE_DIR": empty} if cold else {}))
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    imports, call = map(float, out.stdout.strip().splitlines()[-1].split())
    return imports, call


def steps_for(n_in, n_out, budget=5e10):
    """Enough steps for a measurement of about a second or two (at 4096x4096, 2,980: a
    call's own work, such as putting the weights in the native kernel's layout and back,
    then weighs on its steps as on a training run's, not as on a call of 300 steps)."""
    return int(min(5000, max(20, budget // (n_in * n_out))))


def _choices(known):
    """An argparse type: a comma-separated list of names from ``known``."""
    def parse(text: str):
        names = text.split(",")
        unknown = [n for n in names if n not in known]
        if unknown or not text:
            raise argparse.ArgumentTypeError(f"expected names from {', '.join(known)}, got {text!r}")
        return names
    return parse


def _probabilities(text: str):
    """An argparse type: comma-separated input spike probabilities in (0, 1]."""
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        values = []
    if not values or not all(0.0 < p <= 1.0 for p in values):
        raise argparse.ArgumentTypeError(f"expected probabilities in (0, 1], got {text!r}")
    return values


def main(argv=None):
    parser = argparse.ArgumentParser(prog="canns-stdp bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=_choices(SIZES), default=list(SIZES),
                        help="comma-separated, from " + ", ".join(SIZES))
    parser.add_argument("--rates", type=_probabilities, default=[0.01, 0.05, 0.2],
                        help="input spike probabilities per step, comma-separated")
    parser.add_argument("--regimes", type=_choices(REGIMES), default=list(REGIMES),
                        help="comma-separated, from " + ", ".join(REGIMES))
    parser.add_argument("--uncompiled", action="store_true", help="also time the Python loop")
    parser.add_argument("--xla", action="store_true",
                        help="also time the compiled loop with the XLA kernels only (fused=False: no native kernel)")
    parser.add_argument("--first-call", action="store_true", help="also time a first call of T = 10,000 (784x100)")
    parser.add_argument("--steps", type=positive_int, help="steps per measurement (default: about a second's work)")
    parser.add_argument("--json", help="write the rows to this file")
    args = parser.parse_args(argv)
    if args.json and (os.path.isdir(args.json) or not os.path.isdir(os.path.dirname(os.path.abspath(args.json)))):
        parser.error(f"--json must name a file in an existing folder, got {args.json!r}")

    rows = []
    import jax

    device = jax.devices()[0]
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; python {platform.python_version()}; "
          f"jax {jax.__version__} on {device.device_kind}")
    if device.platform == "gpu":
        print(f"copy bandwidth (read + write): {copy_bandwidth() / 1e12:.2f} TB/s")
    print(f"{'layer':>10} {'p':>5} {'regime':>9} {'loop':>10} {'firing':>7} {'steps/s':>10} {'syn-upd/s':>10}")
    for size in args.sizes:
        n_in, n_out = SIZES[size]
        T = args.steps or steps_for(n_in, n_out)
        for p in args.rates:
            for regime in args.regimes:
                loops = [("compiled", dict(compiled=True))]
                loops += [("xla", dict(compiled=True, fused=False))] if args.xla else []
                loops += [("uncompiled", dict(compiled=False))] if args.uncompiled else []
                for name, kw in loops:
                    steps = T if kw["compiled"] else max(20, T // 10)
                    rate, firing = measure(n_in, n_out, steps, p, REGIMES[regime], **kw)
                    row = dict(layer=size, p=p, regime=regime, loop=name, firing=firing,
                               steps_per_s=rate, synapse_updates_per_s=rate * n_in * n_out)
                    rows.append(row)
                    print(f"{size:>10} {p:>5} {regime:>9} {name:>10} {firing:>7.1%} {rate:>10.0f} "
                          f"{row['synapse_updates_per_s']:>10.3g}", flush=True)
    if args.first_call:
        for cache in ("cold", "warm"):  # warm: the package's own cache, which the runs above filled
            imports, call = first_call(784, 100, 10_000, 0.05, 1.0, cold=cache == "cold")
            rows.append(dict(layer="784x100", p=0.05, regime="saturated", loop=f"first call T=10000 ({cache})",
                             seconds=imports + call, imports_s=imports, call_s=call))
            print(f"first call, T = 10,000, 784x100, compilation included, {cache} kernel cache: "
                  f"{imports + call:.2f} s ({imports:.2f} s imports, {call:.2f} s the call)")
    if args.json:
        write_rows(args.json, rows)
    return rows


if __name__ == "__main__":
    main()
