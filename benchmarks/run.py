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
import statistics
import subprocess
import sys

HERE = pathlib.Path(__file__).resolve().parent


def ours(args, first_call: bool):
    out = HERE / ".ours.json"
    cmd = [sys.executable, "-m", "canns_stdp.bench", "--sizes", args.sizes, "--rates", args.rates,
           "--json", str(out), "--uncompiled", "--xla"] + (["--first-call"] if first_call else [])
    subprocess.run(cmd, check=True)
    rows = json.loads(out.read_text())
    out.unlink()
    return rows


def peers(args, python, first_call: bool):
    cmd = [python, str(HERE / "peers.py"), "--sizes", args.sizes, "--rates", args.rates, "--steps", "10000"]
    cmd += ["--first-call"] if first_call else []
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
    parser.add_argument("--rounds", type=int, default=1,
                        help="measure ours then the peers' this many times over (the first-call timings once)")
    args = parser.parse_args(argv)

    pythons = args.peers_python or ([os.environ["CANNS_STDP_PEERS_PYTHON"]]
                                    if os.environ.get("CANNS_STDP_PEERS_PYTHON") else [])
    mine, others = [], []
    for k in range(args.rounds):  # ours, then the peers', back to back: a round's ratios share its minutes
        first_call = k == 0 and not args.no_first_call
        mine.append(ours(args, first_call))
        others.append([row for python in pythons for row in peers(args, python, first_call)])
    measured = {r["system"] for r in others[0] if "error" not in r}
    errors = {r["system"]: r for r in others[0] if "error" in r and r["system"] not in measured}  # (or found elsewhere)
    rates = [[r for r in round_rows if "steps_per_s" in r] for round_rows in others]
    n = args.rounds
    print()
    if n > 1:
        print(f"{n} rounds; steps/s: their median; ratios: the median of the rounds' own ratios (lowest-highest)")
    print("| layer | p | regime | loop | firing | steps/s | synapse-updates/s | vs CANNs 1.5 (same loop) |")
    print("|---|---|---|---|---|---|---|---|")
    ours_rates = _by_job(mine, lambda r: r.get("loop"))
    peer_rates = _by_job(rates, lambda r: "canns_compiled" if r["system"] == "canns" else r["system"])
    for r in mine[0]:
        if "steps_per_s" not in r:
            continue
        job = (r["layer"], r["p"], r["regime"])
        own = ours_rates[job + (r["loop"],)]
        ref = peer_rates.get(job + ("canns_uncompiled" if r["loop"] == "uncompiled" else "canns_compiled",))
        print(f"| {r['layer']} | {r['p']} | {r['regime']} | {r['loop']} | {r['firing']:.1%} | "
              f"{statistics.median(own):,.0f} | {statistics.median(own) * _synapses(r['layer']):.3g} | "
              f"{_ratio(own, ref)} |")
    for key, values in peer_rates.items():
        print(f"| {key[0]} | {key[1]} | {key[2]} | {key[3]} | | {statistics.median(values):,.0f} | | |")
    for key, values in peer_rates.items():  # every peer against the compiled loop (the PyTorch peers have one loop)
        own = ours_rates.get(key[:3] + ("compiled",))
        if own and key[3] != "canns_uncompiled":
            print(f"{key[0]} p={key[1]} {key[2]}: {_ratio(own, values)} {key[3].replace('_compiled', '')}")
    first = [r for r in mine[0] if "seconds" in r]
    canns_first = [r for r in others[0] if "first_call_T10000_s" in r]
    for row in first:  # the whole (imports included) and the call alone
        line = (f"{row['loop']}, 784x100: canns_stdp {row['seconds']:.2f} s, of which the call "
                f"{row['call_s']:.2f} s")
        if canns_first:
            c = canns_first[0]
            line += (f"; CANNs 1.5 {c['first_call_T10000_s']:.1f} s, of which the call {c['call_s']:.1f} s "
                     f"({c['first_call_T10000_s'] / row['seconds']:.0f}x whole, {c['call_s'] / row['call_s']:.0f}x "
                     "the call)")
        print(line)
    for r in errors.values():
        print(f"{r['system']}: not measured ({r['error']})")


def _by_job(rounds, loop) -> dict:
    """``(layer, p, regime, loop) -> [steps/s of each round]`` from each round's rows."""
    found: dict = {}
    for rows in rounds:
        for r in rows:
            if "steps_per_s" in r:
                found.setdefault((r["layer"], r["p"], r["regime"], loop(r)), []).append(r["steps_per_s"])
    return found


def _ratio(own, ref) -> str:
    """The median of the rounds' ratios ``own / ref`` (and their range, over several rounds)."""
    if not ref or len(ref) != len(own):
        return "-"
    ratios = sorted(a / b for a, b in zip(own, ref))
    text = f"{statistics.median(ratios):.1f}x"
    return text if len(ratios) == 1 else f"{text} ({ratios[0]:.1f}-{ratios[-1]:.1f})"


def _synapses(layer: str) -> int:
    n_in, n_out = layer.split("x")
    return int(n_in) * int(n_out)


if __name__ == "__main__":
    main()
