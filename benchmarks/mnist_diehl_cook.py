"""Diehl & Cook (2015) on MNIST: accuracy and wall time, on a fixed split of the 10k MNIST test set (train 0-7999, test 8000-9999).

Data: the 10k MNIST test set in ``--data`` (default ``../shared/data/mnist``; the 60k
training images are not available offline). Train on images 0-7999 (a seeded
permutation per epoch), label the neurons, and
test on images 8000-9999 with learning off. Network as BindsNET's
``DiehlAndCook2015``: its inhibitory population (exc 22.5 one-to-one, inh 120 to all
others) folded into an inhibition of ``--w-inh`` two steps after a winner's spike,
one winner per step chosen at random among the neurons crossing threshold, a one-step
input delay, theta+ 0.05, norm 78.4, nu = (1e-4, 1e-2), Poisson pixel/255 * 128 Hz,
250 steps of 1 ms per image. Neurons are labelled by a pass over the training
images with learning off (Diehl & Cook) or, with ``--label-with training``, by the
spike counts of the last training epoch.

    python benchmarks/mnist_diehl_cook.py --neurons 100
    python benchmarks/mnist_diehl_cook.py --neurons 400 --epochs 3

Prints one JSON line with accuracy (all-activity and proportion), wall times and
samples/s; never run by the tests.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import sys
import time

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from canns_stdp.datasets import load_mnist  # noqa: E402
from canns_stdp.tasks.classify import train_and_test  # noqa: E402

_ROOT = pathlib.Path(__file__).resolve().parents[1]
# the shared data folder sits next to the repository (or next to its worktree folder)
DEFAULT_DATA = next((p for p in (_ROOT.parent / "shared" / "data" / "mnist",
                                 _ROOT.parent.parent / "shared" / "data" / "mnist") if p.is_dir()),
                    _ROOT.parent / "shared" / "data" / "mnist")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(DEFAULT_DATA))
    ap.add_argument("--neurons", type=int, default=100)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--train", type=int, default=8000, help="training images (0..train-1)")
    ap.add_argument("--test", type=int, default=2000, help="test images (8000..8000+test-1)")
    ap.add_argument("--steps", type=int, default=250, help="steps (ms) per image")
    ap.add_argument("--w-inh", type=float, default=120.0)
    ap.add_argument("--theta-plus", type=float, default=0.05)
    ap.add_argument("--label-with", choices=("pass", "training"), default="pass")
    ap.add_argument("--progress", action="store_true")
    args = ap.parse_args(argv)

    t_start = time.perf_counter()
    images, labels = load_mnist(args.data, split="t10k")
    x = images.reshape(len(images), -1).astype(np.float32) / 255.0
    tr = slice(0, args.train)
    te = slice(8000, 8000 + args.test)
    r = train_and_test(x[tr], labels[tr], x[te], labels[te], n_neurons=args.neurons,
                       epochs=args.epochs, seed=args.seed, progress=args.progress,
                       steps_per_sample=args.steps, w_inh=args.w_inh, theta_plus=args.theta_plus,
                       label_with=args.label_with)
    total = time.perf_counter() - t_start
    out = {
        "neurons": args.neurons, "epochs": args.epochs, "seed": args.seed,
        "train_images": args.train, "test_images": args.test, "steps_per_image": args.steps,
        "label_with": args.label_with,
        "accuracy_all_activity": round(r.accuracy, 4),
        "accuracy_proportion": round(r.accuracy_proportion, 4),
        "train_s": round(r.train_seconds, 1), "label_s": round(r.label_seconds, 1),
        "test_s": round(r.test_seconds, 1),
        "total_wall_s": round(total, 1),
        "train_samples_per_s": round(r.train_samples / r.train_seconds, 1),
        "silent_neurons": int((r.assignments < 0).sum()),
        "machine": f"{platform.machine()} {os.cpu_count()} cpus, load {os.getloadavg()[0]:.1f} at end",
    }
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
