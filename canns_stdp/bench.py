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
    the firing fraction of the last call; ``trainer_kw`` go to the trainer (e.g. ``fused``)
    or to :func:`measure_rates` (``on_device``, ``record``)."""
    return measure_rates(n_in, n_out, T, [p], threshold, compiled, event_driven, **trainer_kw)[0]


def measure_rates(n_in, n_out, T, ps, threshold, compiled=True, event_driven="auto", on_device=False, record=True,
                  **trainer_kw):
    """:func:`measure` at each input probability of ``ps``, their calls taking turns: the
    machine's drift from minute to minute then weighs on each alike, and their ratios
    compare steps that shared the same minutes. ``on_device``: the input is a JAX array
    placed on the default device beforehand (as a GPU user keeps it); ``record=False``:
    the timed calls return no spikes (the firing then comes from one more call)."""
    import jax

    from canns_stdp import SpikingLayer, STDPTrainer

    runs = []
    for p in ps:
        xs, W0 = job(n_in, n_out, T, p)
        if on_device:
            xs = jax.device_put(xs)
        layer = SpikingLayer(n_in, n_out, threshold=threshold, W_init=W0)
        trainer = STDPTrainer(layer, compiled=compiled, event_driven=event_driven, **trainer_kw)
        for _ in range(2):  # compiles every kernel the run will use (the first chunk of a fresh
            trainer.train(xs, return_spikes=record)  # layer runs dense: its activity is unknown)
        runs.append(dict(trainer=trainer, layer=layer, xs=xs, seconds=[]))
    for _ in range(3):  # the first calls of a process can run slower: a median is steadier
        for run in runs:
            start = time.perf_counter()
            spikes = run["trainer"].train(run["xs"], return_spikes=record)
            jax.block_until_ready(run["layer"].W.value)
            run["seconds"].append(time.perf_counter() - start)
            if record:
                run["firing"] = float(np.mean(spikes))
    if not record:  # (one more call, untimed, for the firing)
        for run in runs:
            run["firing"] = float(np.mean(run["trainer"].train(run["xs"], return_spikes=True)))
    return [(T / float(np.median(run["seconds"])), run["firing"]) for run in runs]


LOOPS = {"compiled": dict(compiled=True), "xla": dict(compiled=True, fused=False), "uncompiled": dict(compiled=False)}


def job_row(size: str, p: float, regime: str, loop: str, steps=None) -> dict:
    """One measured row of the table: ``size`` (a key of ``SIZES``) at input probability
    ``p`` in ``regime`` (a key of ``REGIMES``), in ``loop`` (a key of ``LOOPS``: the
    compiled loop, the compiled loop on the XLA kernels only, or the Python loop, which
    runs a tenth of the steps)."""
    return job_rows(size, [p], regime, loop, steps)[0]


def job_rows(size: str, ps, regime: str, loop: str, steps=None) -> list:
    """:func:`job_row` at each input probability of ``ps``, timed in turns (:func:`measure_rates`)."""
    n_in, n_out = SIZES[size]
    kw = LOOPS[loop]
    T = steps or steps_for(n_in, n_out)
    measured = measure_rates(n_in, n_out, T if kw["compiled"] else max(20, T // 10), ps, REGIMES[regime], **kw)
    return [dict(layer=size, p=p, regime=regime, loop=loop, firing=firing, steps_per_s=rate,
                 synapse_updates_per_s=rate * n_in * n_out) for p, (rate, firing) in zip(ps, measured)]


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
    print(machine_line())
    if device.platform == "gpu":
        print(f"copy bandwidth (read + write): {copy_bandwidth() / 1e12:.2f} TB/s")
    print(f"{'layer':>10} {'p':>5} {'regime':>9} {'loop':>10} {'firing':>7} {'steps/s':>10} {'syn-upd/s':>10}")
    loops = ["compiled"] + ["xla"] * args.xla + ["uncompiled"] * args.uncompiled
    for size in args.sizes:
        for regime in args.regimes:
            for loop in loops:
                measured = job_rows(size, args.rates, regime, loop, args.steps)  # (the rates in turns)
                for row in measured:
                    rows.append(row)
                    print_row(row)
                print_rate_costs(measured)
    if args.first_call:
        rows += first_call_rows()
    if args.json:
        write_rows(args.json, rows)
    return rows


def machine_line() -> str:
    import jax

    return (f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
            f"python {platform.python_version()}; jax {jax.__version__} on {jax.devices()[0].device_kind}")


def print_rate_costs(rows) -> None:
    """What a step at each input probability costs against one at the largest, from
    rows timed in turns."""
    top = max(rows, key=lambda r: r["p"])
    for row in rows:
        if row is not top:
            print(f"{'':>10} a step at p = {row['p']} costs {top['steps_per_s'] / row['steps_per_s']:.2f} of one "
                  f"at p = {top['p']}", flush=True)


def print_row(row) -> None:
    print(f"{row['layer']:>10} {row['p']:>5} {row['regime']:>9} {row['loop']:>10} {row['firing']:>7.1%} "
          f"{row['steps_per_s']:>10.0f} {row['synapse_updates_per_s']:>10.3g}", flush=True)


def first_call_rows() -> list:
    """The first call's rows, with an empty kernel cache and with the package's own (which
    earlier runs filled)."""
    rows = []
    for cache in ("cold", "warm"):
        imports, call = first_call(784, 100, 10_000, 0.05, 1.0, cold=cache == "cold")
        rows.append(dict(layer="784x100", p=0.05, regime="saturated", loop=f"first call T=10000 ({cache})",
                         seconds=imports + call, imports_s=imports, call_s=call))
        print(f"first call, T = 10,000, 784x100, compilation included, {cache} kernel cache: "
              f"{imports + call:.2f} s ({imports:.2f} s imports, {call:.2f} s the call)", flush=True)
    return rows


if __name__ == "__main__":
    main()
