"""The ``canns-stdp`` command: ``canns-stdp demo [--task ...]``.

The last line printed states the result for scripts: ``accuracy: 0.912`` (digits,
mnist; with ``--seeds N``: ``accuracy: MEAN std: S min: A max: B seeds: N``),
``hit_rate: 0.97 false_alarm_rate: 0.01`` (masquelier), ``low_fraction: F high_fraction: F
rate_hz: F`` (song), ``exc_rate_hz: F inh_rate_hz: F`` (vogels) or ``gamma_peak_hz: F
high_fraction: F`` (izhikevich).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import os
import pathlib
import sys

__all__ = ["main", "console", "build_parser"]

TASKS = ("digits", "izhikevich", "masquelier", "mnist", "song", "vogels")
NETWORK_TASKS = ("izhikevich", "song", "vogels")  # simulated networks: --duration, no data, neurons or epochs
DEFAULT_TASK = "digits"


def positive_int(text: str) -> int:
    """An argparse type (also ``canns-stdp bench``'s): an integer > 0."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not (value > 0 and value < float("inf")):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


_MAX_SEED = 2**32 - 1


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value <= _MAX_SEED:
        raise argparse.ArgumentTypeError(f"expected an integer in [0, {_MAX_SEED}], got {text!r}")
    return value


def _check_out(parser, text: str) -> pathlib.Path:
    """``--out`` as a folder, created now (before any work) if it does not exist."""
    out = pathlib.Path(text).resolve()
    if out.exists() and not out.is_dir():
        parser.error(f"--out must be a folder for the figures, got the file {text!r}")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        parser.error(f"--out {text!r} cannot be created: {err.strerror or err}")
    return out


def _check_demo_args(parser, args) -> None:
    """Options that do not fit the task, checked before any work."""
    if args.data is not None and args.task != "mnist":
        parser.error(f"--data is only used by --task mnist, got --task {args.task}")
    if args.task == "masquelier":
        for option in ("seeds", "train_size", "test_size", "steps"):
            if getattr(args, option) is not None:
                parser.error(f"--{option.replace('_', '-')} is only used by --task digits and mnist, "
                             "got --task masquelier")
    if args.task in NETWORK_TASKS:
        for option in ("neurons", "epochs", "seeds", "train_size", "test_size", "steps"):
            if getattr(args, option) is not None:
                parser.error(f"--{option.replace('_', '-')} is not used by --task {args.task}")
    elif args.duration is not None:
        parser.error(f"--duration is only used by --task {', '.join(NETWORK_TASKS)}, got --task {args.task}")
    if args.seeds is not None and args.seed + args.seeds - 1 > _MAX_SEED:
        parser.error(f"--seed {args.seed} with --seeds {args.seeds} goes past the largest seed {_MAX_SEED}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="canns-stdp", description="Spiking networks trained with STDP (canns_stdp).")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    demo = sub.add_parser(
        "demo", help="train and evaluate a classic STDP task; print results, write figures",
        description="Train and evaluate a classic STDP task, print the results and write PNG "
                    "figures. digits: scikit-learn's 8x8 digits with a Diehl & Cook (2015) "
                    "network (needs the 'digits' extra). masquelier: Masquelier, Guyonneau & "
                    "Thorpe (2008) pattern detection by one neuron (no extra). mnist: the Diehl "
                    "& Cook network on MNIST IDX files from --data. song: Song, Miller & Abbott "
                    "(2000), 1,000 Poisson inputs onto one neuron, weights going bimodal. vogels: "
                    "Vogels et al. (2011), 10,000 neurons balanced by inhibitory plasticity. izhikevich: "
                    "Izhikevich (2006), 1,000 neurons with axonal delays, polychronization. The last "
                    "line printed is 'accuracy: X', 'hit_rate: X false_alarm_rate: Y', 'low_fraction: "
                    "X high_fraction: Y rate_hz: Z', 'exc_rate_hz: X inh_rate_hz: Y' or 'gamma_peak_hz: X "
                    "high_fraction: Y'.")
    demo.add_argument("--task", choices=TASKS, default=DEFAULT_TASK,
                      help=f"which task to run (default: {DEFAULT_TASK})")
    demo.add_argument("--data", metavar="PATH",
                      help="mnist only: folder with t10k-images-idx3-ubyte[.gz] and "
                           "t10k-labels-idx1-ubyte[.gz]")
    demo.add_argument("--neurons", type=positive_int, metavar="N",
                      help="excitatory neurons (digits: 100, mnist: 100; masquelier uses 1)")
    demo.add_argument("--epochs", type=positive_int, metavar="E",
                      help="passes over the training data (digits: 3, mnist: 1; "
                           "masquelier: training length in units of 50 s)")
    demo.add_argument("--duration", type=_positive_float, metavar="S",
                      help="izhikevich, song, vogels: simulated seconds (60, 100, 10)")
    demo.add_argument("--seed", type=_seed, default=0, metavar="S", help="random seed (default 0)")
    demo.add_argument("--seeds", type=positive_int, metavar="N",
                      help="digits, mnist: train N seeds (--seed, --seed + 1, ...) together, each as it trains alone; "
                           "print each seed's accuracy, then 'accuracy: MEAN std: S min: A max: B seeds: N' "
                           "(figures of the first seed)")
    demo.add_argument("--out", default="canns_stdp_demo", metavar="DIR",
                      help="folder for the PNG figures (default: ./canns_stdp_demo)")
    demo.add_argument("--no-figures", action="store_true", help="do not write figures")
    demo.add_argument("--no-progress", action="store_true", help="no progress bars")
    demo.add_argument("--train-size", type=positive_int, metavar="N", help=argparse.SUPPRESS)
    demo.add_argument("--test-size", type=positive_int, metavar="N", help=argparse.SUPPRESS)
    demo.add_argument("--steps", type=positive_int, metavar="T", help=argparse.SUPPRESS)
    sub.add_parser("bench", add_help=False,
                   help="speed of the STDP trainer on the standard job (steps/s, synapse-updates/s); "
                        "'canns-stdp bench --help' lists its options")
    return parser


def main(argv=None) -> int:
    """Entry point of the ``canns-stdp`` console script; returns the exit status."""
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["bench"]:  # its own options: canns_stdp.bench
        from . import bench
        bench.main(argv[1:])
        return 0
    args = parser.parse_args(argv)
    if args.command != "demo":
        parser.print_help()
        return 2
    _check_demo_args(parser, args)
    figures = not args.no_figures
    out = _check_out(parser, args.out) if figures else None
    if args.task == "mnist" and args.data is not None and not pathlib.Path(args.data).is_dir():
        print(f"canns-stdp: error: --data: MNIST folder not found: {args.data!r}", file=sys.stderr)
        return 1
    try:
        if args.task in NETWORK_TASKS:
            import importlib
            with _loading_a_task():
                task = importlib.import_module(f".tasks.{args.task}", __package__)
            duration = args.duration or {"izhikevich": 60.0, "song": 100.0, "vogels": 10.0}[args.task]
            res = task.run(duration, seed=args.seed, out=out if figures else None, progress=not args.no_progress)
            if args.task == "song":
                print(f"low_fraction: {res['low_fraction']:.3f} high_fraction: {res['high_fraction']:.3f} "
                      f"rate_hz: {res['rate_hz']:.2f}")
            elif args.task == "vogels":
                print(f"exc_rate_hz: {res['exc_rate_hz']:.2f} inh_rate_hz: {res['inh_rate_hz']:.2f}")
            else:
                print(f"gamma_peak_hz: {res['gamma_peak_hz']:.1f} high_fraction: {res['high_fraction']:.3f}")
        elif args.task == "masquelier":
            with _loading_a_task():
                from .tasks import masquelier
            res = masquelier.run(epochs=args.epochs, seed=args.seed, out=out if figures else None,
                                 progress=not args.no_progress, neurons=args.neurons)
            print(f"hit_rate: {res['hit_rate']:.2f} false_alarm_rate: {res['false_alarm_rate']:.2f}")
        else:
            with _loading_a_task():
                from .tasks import digits
            if args.seeds is not None:
                res = digits.run_seeds(args.task, range(args.seed, args.seed + args.seeds), data=args.data,
                                       neurons=args.neurons, epochs=args.epochs, out=out if figures else None,
                                       progress=not args.no_progress, n_train=args.train_size,
                                       n_test=args.test_size, steps=args.steps)
                print(f"accuracy: {res['mean']:.3f} std: {res['std']:.3f} min: {res['min']:.3f} "
                      f"max: {res['max']:.3f} seeds: {len(res['seeds'])}")
                return 0
            res = digits.run(args.task, data=args.data, neurons=args.neurons, epochs=args.epochs,
                             seed=args.seed, out=out if figures else None,
                             progress=not args.no_progress, n_train=args.train_size,
                             n_test=args.test_size, steps=args.steps)
            print(f"accuracy: {res['accuracy']:.3f}")
    except (ImportError, OSError, ValueError, TypeError, FloatingPointError, MemoryError) as err:
        print(f"canns-stdp: error: {err}", file=sys.stderr)
        return 1
    return 0


@contextlib.contextmanager
def _loading_a_task():
    """No cyclic garbage collection while a task's module loads JAX and the rest (their
    imports create objects by the hundred thousand, traversed again and again: 0.2-0.4 s),
    then, in the command's process, those objects set aside for good; and the command's
    compilation cache in place before anything compiles."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        _persistent_compilation_cache()
        yield
        if _AS_COMMAND:  # what the imports made lives to the process's end: later collections skip it
            gc.freeze()
    finally:
        if enabled:
            gc.enable()


_AS_COMMAND = False  # set by the command's process, not by calls of main() inside a program


def _persistent_compilation_cache() -> None:
    """Compiled XLA programs kept on disk between runs of the command (under
    ``$XDG_CACHE_HOME/canns_stdp/xla``, or ``~/.cache/...``), as the native kernels are:
    a second run loads what the first compiled. A cache folder the user gave JAX
    (``JAX_COMPILATION_CACHE_DIR``) is used as it is."""
    if not _AS_COMMAND or os.environ.get("JAX_COMPILATION_CACHE_DIR"):
        return
    root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    import jax
    jax.config.update("jax_compilation_cache_dir", os.path.join(root, "canns_stdp", "xla"))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)  # ours take 10-300 ms each


def console() -> None:
    """The ``canns-stdp`` command itself: :func:`main` with the compilation cache on, then
    the process ends once its output is flushed, without tearing down JAX, numba and the
    rest of its imports object by object (about 0.6 s)."""
    global _AS_COMMAND
    _AS_COMMAND = True
    status = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


if __name__ == "__main__":
    console()
