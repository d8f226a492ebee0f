"""The GPU table: layers, the streaming kernel, ensembles and plastic networks, in one run.

    python benchmarks/gpu.py                           # on a machine whose JAX sees a GPU
    python benchmarks/gpu.py --budget 420 --out DIR    # stop starting rows after 420 s
    python benchmarks/gpu.py --cpu-rows FILE           # networks' ratio to a CPU run's rows
    python benchmarks/gpu.py --sections networks       # (on a CPU: the CPU path's rows)
    python benchmarks/gpu.py --layers 784x400,16384x16384 --sections layers,streaming
    python benchmarks/gpu.py --smoke                   # every row, tiny, in seconds (any machine)

The layers' job is the benchmark job (``canns_stdp.bench.job``): Poisson inputs with
p = 0.05, LIF neurons, STDP every step, initial weights uniform in [0, 0.05]; "saturated"
is threshold 1, "sparse" 10 * n_in / 784. CANNs 1.5 is timed where it is importable
(``benchmarks/peers.py``); it is never a dependency. The roofline is the measured copy
bandwidth over 8 bytes per synapse (fp32 W read and written once per step). Networks:
Vogels et al. (2011) at 10^4 neurons and Izhikevich's (2006) network with a delay per
synapse at 10^5 neurons (``gpu_rows.delayed_network``). Each row is checked against the
host CPU's plain step where it says so ("agreement", the networks' columns).

Rows run in the order of ``--sections``; each is appended to ``<out>/<stem>.jsonl`` as it
is measured (a run stopped early keeps them), a row that fails records its error, and
once ``--budget`` seconds have passed the rows left are skipped. The tables are printed
and written to ``<out>/<stem>.md``.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import pathlib
import platform
import re
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

import gpu_rows  # noqa: E402
import gpu_table  # noqa: E402

SECTIONS = ("layers", "ensembles", "networks", "streaming", "event", "agreement", "sweep")
DEFAULT = SECTIONS[:-1]
LAYERS = {"784x400": (784, 400, 10_000), "4096x4096": (4096, 4096, 4_000), "16384x16384": (16384, 16384, 1_000)}


def plan(smoke: bool, bandwidth: float, canns: bool, layer_sizes=tuple(LAYERS)) -> dict:
    """Per section, ``(label, thunk)`` for each row, at full size or (``smoke``) tiny."""
    from canns_stdp.functional.fused import FusedTiling
    from canns_stdp.tasks import vogels

    if smoke:
        layers, agree, event = [(16, 8, 20)], [(16, 8, 20)], [(16, 8, 20)]
        streaming = [(64, 10, FusedTiling(4, 32))]
        ensembles = [(4, 16, 8, 20)]
        networks = [("vogels", lambda: vogels.build(80, 20), 50, 20),
                    ("delayed", lambda: gpu_rows.delayed_network(500, 20, 5), 20, 10)]
    else:
        layers = [LAYERS[size] for size in layer_sizes]
        agree = [(784, 400, 500), (4096, 4096, 200)]
        event = [(784, 400, 10_000), (16384, 16384, 500)]
        streaming = [(16384, 1_000, FusedTiling(16, 256, 4, 3)), (32768, 300, FusedTiling(16, 256, 4, 3))]
        ensembles = [(64, 784, 100, 2_000), (8, 784, 100, 2_000)]
        networks = [("vogels", lambda: vogels.build(), 2_000, 200),
                    ("delayed", lambda: gpu_rows.delayed_network(), 1_000, 50)]
    sweep = [FusedTiling(r, c, w, s) for r, c, w, s in ((8, 512, 4, 2), (16, 512, 8, 2), (16, 1024, 8, 3),
                                                        (32, 256, 8, 2), (4, 2048, 8, 2), (1, None, 16, 2))]
    if smoke:
        sweep = [FusedTiling(2, 64), FusedTiling(8, 16)]
    rows = {s: [] for s in SECTIONS}
    for n_in, n_out, T in layers:
        for regime in ("saturated", "sparse"):
            rows["layers"].append((f"layer {n_in}x{n_out} {regime}",
                                   lambda a=(n_in, n_out, regime, T): gpu_rows.layer_row(*a, bandwidth, canns)))
    for n_in, n_out, T in agree:
        for regime in ("saturated", "sparse"):
            rows["agreement"].append((f"agreement {n_in}x{n_out} {regime}",
                                      lambda a=(n_in, n_out, regime, T): gpu_rows.agreement_row(*a)))
    for n_in, n_out, T in event:  # (the sparse regime: the event kernels' case)
        rows["event"].append((f"event {n_in}x{n_out} sparse",
                              lambda a=(n_in, n_out, "sparse", T): gpu_rows.event_row(*a)))
    for n, T, tiling in streaming:
        rows["streaming"].append((f"streaming {n}x{n}",
                                  lambda a=(n, T, bandwidth, tiling): gpu_rows.streaming_row(*a)))
        # other tilings of the same layers (the section "sweep", run when asked for by name)
        rows["sweep"] += [(f"sweep {n}x{n} {t}", lambda a=(n, T, bandwidth, t): gpu_rows.streaming_row(*a))
                          for t in sweep if t != tiling]
    for K, n_in, n_out, T in ensembles:
        rows["ensembles"].append((f"ensemble {K} x {n_in}x{n_out}",
                                  lambda a=(K, n_in, n_out, T): gpu_rows.ensemble_row(*a)))
    for name, build, T, check in networks:
        rows["networks"].append((f"network {name}", lambda a=(name, build, T, check): gpu_rows.network_row(*a)))
    return rows


def cache_jobs() -> None:
    """Draw each benchmark job once: every row of a layer draws it several times (ours,
    the kernel alone, the XLA step, CANNs), and at 16384x16384 a draw takes seconds."""
    import peers
    from canns_stdp import bench

    cached = functools.lru_cache(maxsize=2)(bench.job)  # (peers.job draws the same arrays)
    bench.job = peers.job = cached


def _processor() -> str:
    """The processor's model name (Linux), else what ``platform`` knows."""
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def header(smoke: bool = False) -> dict:
    import jax

    from canns_stdp.bench import copy_bandwidth

    versions = {}
    for module in ("brainpy", "numpy"):
        try:
            versions[module] = __import__(module).__version__
        except ImportError:
            versions[module] = None
    device = jax.devices()[0]
    host = f"{_processor()}, {os.cpu_count()} cores"
    return dict(section="device", device=getattr(device, "device_kind", str(device)), host=host,
                backend=jax.default_backend(),
                jax=jax.__version__, **versions, copy_bandwidth=copy_bandwidth(1 << 24 if smoke else 1 << 30),
                date=time.strftime("%Y-%m-%d"))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sections", default=",".join(DEFAULT), help=f"any of {', '.join(SECTIONS)}")
    parser.add_argument("--budget", type=float, default=None, help="seconds after which no row is started")
    parser.add_argument("--out", default=str(pathlib.Path(__file__).resolve().parent / "results"))
    parser.add_argument("--stem", default=None, help="file name of the results (default gpu-<device>-<date>)")
    parser.add_argument("--cpu-rows", default=None, help="a .jsonl of a CPU run's network rows, for the ratio")
    parser.add_argument("--no-canns", action="store_true")
    parser.add_argument("--layers", default=",".join(LAYERS), help=f"the layers' sizes, of {', '.join(LAYERS)}")
    parser.add_argument("--smoke", action="store_true", help="every row at a tiny size")
    args = parser.parse_args(argv)
    sections = args.sections.split(",")
    unknown = sorted(set(sections) - set(SECTIONS))
    if unknown:
        parser.error(f"unknown sections {unknown}; choose from {', '.join(SECTIONS)}")
    layer_sizes = args.layers.split(",")
    if sorted(set(layer_sizes) - set(LAYERS)):
        parser.error(f"unknown layers {sorted(set(layer_sizes) - set(LAYERS))}; choose from {', '.join(LAYERS)}")
    if not args.smoke:
        cache_jobs()

    begun = time.perf_counter()
    head = header(args.smoke)
    stem = args.stem or f"gpu-{re.sub(r'[^a-z0-9]+', '-', head['device'].lower()).strip('-')}-{head['date']}"
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    raw = out / f"{stem}.jsonl"
    raw.write_text(json.dumps(head) + "\n")
    print(json.dumps(head), flush=True)
    rows = [head]
    planned = plan(args.smoke, head["copy_bandwidth"], not args.no_canns, layer_sizes)
    for section in sections:
        for label, thunk in planned[section]:
            spent = time.perf_counter() - begun
            if args.budget is not None and spent > args.budget:
                row = dict(section=section, label=label, skipped=f"budget of {args.budget:g} s spent")
            else:
                try:
                    row = dict(label=label, **thunk())
                except Exception as err:  # one row's failure must not cost the others
                    row = dict(section=section, label=label, error=f"{type(err).__name__}: {str(err)[:500]}")
                row["seconds"] = time.perf_counter() - begun - spent
            print(json.dumps(row), flush=True)
            with raw.open("a") as f:
                f.write(json.dumps(row) + "\n")
            rows.append(row)
    cpu_rows = gpu_table.read_rows(args.cpu_rows) if args.cpu_rows else []
    text = gpu_table.tables(rows, cpu_rows)
    print(text)
    (out / f"{stem}.md").write_text(text)
    return rows


if __name__ == "__main__":
    main()
