"""Side-by-side speed table: canns_stdp and, when available, its peers, in one run.

    python benchmarks/run.py                       # canns_stdp only
    python benchmarks/run.py --peers-python /path/to/peer-env/bin/python [--peers-python OTHER]

The peer environment (CANNs 1.5, Norse, SpikingJelly, installed in a virtual environment of
its own: see docs/peers.md) can also be named by the environment variable
CANNS_STDP_PEERS_PYTHON. Peers that need environments of their own (CANNs in one, the
PyTorch peers in another) take one --peers-python each: every environment runs the peers
it has. Peers are never dependencies of canns_stdp.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import subprocess
import sys

HERE = pathlib.Path(__file__).resolve().parent


def ours(args):
    out = HERE / ".ours.json"
    cmd = [sys.executable, "-m", "canns_stdp.bench", "--sizes", args.sizes, "--rates", args.rates,
           "--json", str(out), "--uncompiled", "--xla"] + ([] if args.no_first_call else ["--first-call"])
    subprocess.run(cmd, check=True)
    rows = json.loads(out.read_text())
    out.unlink()
    return rows


def peers(args, python):
    cmd = [python, str(HERE / "peers.py"), "--sizes", args.sizes, "--rates", args.rates, "--steps", "10000"]
    cmd += [] if args.no_first_call else ["--first-call"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    rows = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode:
        print(proc.stderr[-2000:], file=sys.stderr)
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="784x100,784x400,4096x4096")
    parser.add_argument("--rates", default="0.01,0.05,0.2")
    parser.add_argument("--peers-python", action="append",
                        help="a Python with peers installed (repeat for several environments)")
    parser.add_argument("--no-first-call", action="store_true",
                        help="skip the first-call timings (CANNs' takes minutes)")
    args = parser.parse_args(argv)

    pythons = args.peers_python or ([os.environ["CANNS_STDP_PEERS_PYTHON"]]
                                    if os.environ.get("CANNS_STDP_PEERS_PYTHON") else [])
    mine = ours(args)
    others = [row for python in pythons for row in peers(args, python)]
    measured = {r["system"] for r in others if "error" not in r}
    others = [r for r in others if "error" not in r or r["system"] not in measured]  # found in another one
    rates = [r for r in others if "steps_per_s" in r]
    canns = {(r["layer"], r["p"], r["regime"]): r["steps_per_s"] for r in rates if r["system"] == "canns"}
    canns_py = {(r["layer"], r["p"], r["regime"]): r["steps_per_s"] for r in rates
                if r["system"] == "canns_uncompiled"}
    print()
    print("| layer | p | regime | loop | firing | steps/s | synapse-updates/s | vs CANNs 1.5 (same loop) |")
    print("|---|---|---|---|---|---|---|---|")
    for r in mine:
        if "steps_per_s" not in r:
            continue
        key = (r["layer"], r["p"], r["regime"])
        ref = (canns_py if r["loop"] == "uncompiled" else canns).get(key)
        ratio = f"{r['steps_per_s'] / ref:.1f}x" if ref else "-"
        print(f"| {r['layer']} | {r['p']} | {r['regime']} | {r['loop']} | {r['firing']:.1%} | "
              f"{r['steps_per_s']:,.0f} | {r['synapse_updates_per_s']:.3g} | {ratio} |")
    for r in rates:
        system = "canns_compiled" if r["system"] == "canns" else r["system"]
        print(f"| {r['layer']} | {r['p']} | {r['regime']} | {system} | | {r['steps_per_s']:,.0f} | | |")
    compiled = {(r["layer"], r["p"], r["regime"]): r["steps_per_s"] for r in mine
                if r.get("loop") == "compiled" and "steps_per_s" in r}
    for r in rates:  # every peer against the compiled loop (the PyTorch peers have one loop)
        ours_rate = compiled.get((r["layer"], r["p"], r["regime"]))
        if ours_rate and r["system"] != "canns_uncompiled":
            print(f"{r['layer']} p={r['p']} {r['regime']}: {ours_rate / r['steps_per_s']:.1f}x {r['system']}")
    first = [r for r in mine if "seconds" in r]
    canns_first = [r for r in others if "first_call_T10000_s" in r]
    for row in first:  # the whole (imports included) and the call alone
        line = (f"{row['loop']}, 784x100: canns_stdp {row['seconds']:.2f} s, of which the call "
                f"{row['call_s']:.2f} s")
        if canns_first:
            c = canns_first[0]
            line += (f"; CANNs 1.5 {c['first_call_T10000_s']:.1f} s, of which the call {c['call_s']:.1f} s "
                     f"({c['first_call_T10000_s'] / row['seconds']:.0f}x whole, {c['call_s'] / row['call_s']:.0f}x "
                     "the call)")
        print(line)
    for r in others:
        if "error" in r:
            print(f"{r['system']}: not measured ({r['error']})")


if __name__ == "__main__":
    main()
