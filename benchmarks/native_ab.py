"""The native layer kernel of two checkouts, timed in one process with their calls interleaved.

On a shared machine a kernel's speed drifts by tens of percent from minute to minute, so
two versions timed in turn, each in its own process, can differ by more than any change
between them. Here each checkout's kernel modules (``canns_stdp/kernels/native_pair.py``
and the modules beside it that it imports) are loaded side by side under their own names,
both are checked to give the same weights and spikes bit for bit, and their calls
alternate: whatever slows the machine slows both.

    python benchmarks/native_ab.py OLD_CHECKOUT NEW_CHECKOUT [--out 400] [--inputs 784]
        [--p 0.05] [--threshold 10] [--steps 2000] [--rounds 40] [--threads] [--rounding]

Prints, for each checkout, the fastest call and the first quartile (ms per call of
``--steps`` steps, one kernel call each: the benchmark job of ``canns_stdp.bench``,
additive pair STDP with its deferred LTP over the span the trainer chooses) and the
ratio of the quartiles.
"""

from __future__ import annotations

import argparse
import importlib
import pathlib
import sys
import tempfile
import time
import warnings

import numpy as np

_MODULES = ("native_pair.py", "prefetch.py", "distinct.py", "policy.py", "tiles.py", "nonzero.py", "handover.py")


def load_kernel(checkout: pathlib.Path, name: str, into: pathlib.Path):
    """``checkout``'s native_pair module, imported as ``name.native_pair`` (its imports of
    the rest of the library go to the installed ``canns_stdp``)."""
    package = into / name
    package.mkdir()
    (package / "__init__.py").write_text("")
    for module in _MODULES:
        source = checkout / "canns_stdp" / "kernels" / module
        if source.exists():
            text = source.read_text().replace("from ..", "from canns_stdp.")
            (package / module).write_text(text)
    with warnings.catch_warnings():  # (each copy registers its JAX operation under the same name)
        warnings.filterwarnings("ignore", message="A primitive named")
        return importlib.import_module(f"{name}.native_pair")


def job(n_out: int, steps: int, p: float, threshold: float, n_in: int = 784):
    """The kernel's arguments for the benchmark job of :mod:`canns_stdp.bench` (its inputs,
    weights and numbers), with the span of deferred LTP the trainer would choose."""
    from canns_stdp.bench import job as bench_job
    from canns_stdp.functional.dependence import DEPENDENCES, WeightBounds
    from canns_stdp.functional.layer_step import LayerConfig, LayerParams, LayerState, train_step
    from canns_stdp.functional.neurons import LIFParams
    from canns_stdp.functional.stdp import STDPParams, TraceParams
    from canns_stdp.functional.traces import TRACE_MODES
    from canns_stdp.kernels.native_pair import kernel_flags, layer_numbers, stretch_for
    from canns_stdp.kernels.pair_layer import native_deferral_span

    xs, W0 = bench_job(n_in, n_out, steps, p)
    config = LayerConfig(trace_add=TRACE_MODES["cumulative"], dependence=DEPENDENCES["additive"],
                         pairing="symmetric", hardbound=True)
    params = LayerParams(LIFParams(0.9, threshold, 0.0), TraceParams(0.95, 0.95, 1.0, 1.0),
                         STDPParams(0.01, 0.005, 0.00525, WeightBounds(0.0, 1.0, 1.0)))
    span = native_deferral_span(train_step, config, params, float(xs.max(initial=1.0)),
                                LayerState.zeros(n_in, n_out, W=W0))
    coef, lif = layer_numbers(params, n_out)
    flags = kernel_flags(config, True, False, steps, [span, 0, 1, 0], stretch_for(n_out, n_in))  # (step 0, closes)
    return flags, coef, lif, xs, W0, (config, params, span)


def run_threads(kernel, flags, coef, lif, xs, W0, layer):
    """One call of a checkout's kernel on ``W0`` through its host function, which runs the
    groups of blocks on the process's threads (``CANNS_STDP_THREADS``): ``(W, spikes)``."""
    from canns_stdp.functional.layer_step import LayerState

    config, params, span = layer
    n_out, n_in = W0.shape
    state, spikes = kernel.native_chunk(config, params, LayerState.zeros(n_in, n_out, W=W0), (xs, None), xs.shape[0],
                                        True, span, 0, True)
    return kernel.out_of_layout(state.W, n_out), spikes


def run(kernel, flags, coef, lif, xs, W0, layer=None):
    """One call of a checkout's kernel on ``W0``: ``(W, spikes)``. A kernel that takes the
    weights in its own layout (``kernel_weights``) is timed with the copies into it and
    back, as a run of one chunk makes them."""
    n_out, n_in = W0.shape
    zeros_out, zeros_in = np.zeros(n_out, np.float32), np.zeros(n_in, np.float32)
    neurons = [np.empty(n, np.float32) for n in (n_out, n_out, n_in, n_out, n_out, n_in)]
    spikes = np.empty((xs.shape[0], n_out), np.float32)
    no_posts = np.zeros((1, 1, 1), np.float32)
    # (every block, on this thread, where the kernel takes a range of blocks)
    arguments = kernel._chunk.py_func.__code__.co_varnames
    blocks = (0, lif.shape[1]) if "b_lo" in arguments else ()
    room = ()  # (the room for its pre terms, kept from call to call, where it takes one)
    if "room" in arguments:
        room = (kernel._room(flags[11], n_in, flags[7] if flags[1] else 0, coef[0]),)
    if "regions" in arguments:  # (one group, which shares its terms with none)
        room = (*room, np.zeros(1, np.int64), 0, 1, 1)
    if not hasattr(kernel, "kernel_weights"):  # (weights in and out as (n_out, n_in))
        W = np.empty_like(W0)
        kernel._chunk(flags, coef, lif, xs, no_posts, W0, zeros_out, zeros_out, zeros_in, zeros_out, zeros_out,
                      zeros_in, W, *neurons, spikes, *blocks)
        return W, spikes
    blocked = kernel.kernel_weights(W0)
    source = (np.zeros((0,) + blocked.shape[1:], np.float32),) if "source" in arguments else ()  # (none to copy in)
    ledger_in, ledger_out = (zeros_out, zeros_in), neurons[4:]
    if "bases_in" in arguments:  # (a ledger with a base for each span of a settling period)
        owed = np.zeros((kernel.LEDGER_BASES, n_out), np.float32)
        ledger_in = (owed, zeros_in, np.zeros(n_in, np.int32))
        ledger_out = (np.empty_like(owed), neurons[5], np.empty(n_in, np.int32))
    kernel._chunk(flags, coef, lif, xs, no_posts, blocked, *source, zeros_out, zeros_out, zeros_in, zeros_out,
                  *ledger_in, *neurons[:4], *ledger_out, spikes, *room, *blocks)
    W = np.empty_like(W0)
    kernel._from_blocks(blocked, W, *blocks)
    return W, spikes


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("old", type=pathlib.Path)
    parser.add_argument("new", type=pathlib.Path)
    parser.add_argument("--out", type=int, default=400, help="neurons")
    parser.add_argument("--inputs", type=int, default=784, help="inputs")
    parser.add_argument("--p", type=float, default=0.05, help="input spike probability per step")
    parser.add_argument("--threshold", type=float, default=10.0, help="10: sparse firing, 1: saturated")
    parser.add_argument("--steps", type=int, default=2000, help="steps per call")
    parser.add_argument("--rounds", type=int, default=40, help="calls of each checkout")
    parser.add_argument("--threads", action="store_true",
                        help="call the host function, on the process's threads (else the kernel on this thread)")
    parser.add_argument("--rounding", action="store_true",
                        help="for a change that reorders the arithmetic: report how far the results differ (a "
                             "rounding may carry a membrane across its threshold) instead of requiring them equal")
    args = parser.parse_args(argv)
    arguments = job(args.out, args.steps, args.p, args.threshold, args.inputs)
    with tempfile.TemporaryDirectory() as into:
        sys.path.insert(0, into)
        kernels = {label: load_kernel(path.resolve(), f"kernel_{label}", pathlib.Path(into))
                   for label, path in (("old", args.old), ("new", args.new))}
        call = run_threads if args.threads else run
        results = {label: call(kernel, *arguments) for label, kernel in kernels.items()}  # (compiles, or loads)
        (W_new, spikes_new), (W_old, spikes_old) = results["new"], results["old"]
        if args.rounding:
            print(f"spikes that differ: {int((spikes_new != spikes_old).sum())} of {int(spikes_old.sum())} fired; "
                  f"weights differ by up to {float(np.abs(W_new - W_old).max()):.1e}")
        elif not (np.array_equal(W_new, W_old) and np.array_equal(spikes_new, spikes_old)):
            raise SystemExit("the two kernels give different weights or spikes")
        seconds = {label: [] for label in kernels}
        for _ in range(args.rounds):
            for label, kernel in kernels.items():
                start = time.perf_counter()
                call(kernel, *arguments)
                seconds[label].append(time.perf_counter() - start)
    firing = float(results["new"][1].mean())
    print(f"{args.inputs}x{args.out}, p = {args.p}, threshold {args.threshold} ({firing:.1%} firing), "
          f"{args.steps} steps a call, {args.rounds} calls each, interleaved")
    quartiles = {}
    for label, times in seconds.items():
        quartiles[label] = float(np.percentile(times, 25))
        print(f"  {label}: fastest {min(times) * 1e3:.2f} ms, first quartile {quartiles[label] * 1e3:.2f} ms "
              f"({args.steps / quartiles[label]:,.0f} steps/s)")
    print(f"  old / new (first quartiles): {quartiles['old'] / quartiles['new']:.2f}")


if __name__ == "__main__":
    main()
