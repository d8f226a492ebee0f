"""Side-by-side speed table: canns_stdp and, when available, its peers, in one run.

    python benchmarks/run.py                       # canns_stdp only
    python benchmarks/run.py --peers-python /path/to/peer-env/bin/python [--peers-python OTHER]

The peer environment (CANNs 1.5, Norse, SpikingJelly, installed in a virtual environment of
its own: see docs/peers.md) can also be named by the environment variable
CANNS_STDP_PEERS_PYTHON. Peers that need environments of their own (CANNs in one, the
PyTorch peers in another) take one --peers-python each: every environment runs the peers
it has. Peers are never dependencies of canns_stdp.

Each job is timed ours and then the peers' on the same loop, seconds apart: the peer
environments stay up between jobs (peers.py --serve), so the machine's drift from minute
to minute lands on both sides of a ratio alike.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile

from canns_stdp.bench import first_call_rows, job_row, machine_line, print_row

HERE = pathlib.Path(__file__).resolve().parent


class Peers:
    """A peer environment's ``peers.py``, kept running (``--serve``): it measures the jobs
    it is sent while this process waits, so that a job's figures, ours and the peers',
    are taken seconds apart."""

    def __init__(self, python: str, first_call: bool):
        self.log = tempfile.TemporaryFile(mode="w+")
        cmd = [python, str(HERE / "peers.py"), "--steps", "10000", "--serve"] + ["--first-call"] * first_call
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log, text=True)
        self.alive = True
        self.first = self._rows()  # (its first call, timed while nothing else runs)

    def measure(self, layer: str, p: float, regime: str, systems: str) -> list:
        """The rows of ``systems`` (comma-separated) on one job; none once the process died."""
        if not self.alive:
            return []
        self.proc.stdin.write(json.dumps(dict(layer=layer, p=p, regime=regime, systems=systems)) + "\n")
        self.proc.stdin.flush()
        return self._rows()

    def _rows(self) -> list:
        rows = []
        for line in iter(self.proc.stdout.readline, ""):
            if line.startswith("{"):
                row = json.loads(line)
                if row.get("done") or row.get("ready"):
                    return rows
                rows.append(row)
        self.alive = False
        self.log.seek(0)
        print(f"a peer environment stopped (exit {self.proc.wait()}):\n{self.log.read()[-2000:]}", file=sys.stderr)
        return rows

    def close(self) -> None:
        if self.alive:
            self.proc.stdin.close()
            self.proc.wait()


def paired_round(args, peers: list) -> tuple:
    """One round: every job, ours then the peers' on the same loop, back to back.
    ``(our rows, the peers' rows)``."""
    mine, others = [], []
    for size in args.sizes.split(","):
        for p in map(float, args.rates.split(",")):
            for regime in args.regimes.split(","):
                for loop, systems in (("compiled", "canns,norse,spikingjelly"), ("uncompiled", "canns_uncompiled"),
                                      ("xla", None)):
                    row = job_row(size, p, regime, loop, args.steps)
                    print_row(row)
                    mine.append(row)
                    for each in peers if systems else ():
                        rows = each.measure(size, p, regime, systems)
                        for r in rows:
                            if "steps_per_s" in r:
                                print(f"{'':>10} {'':>5} {'':>9} {r['system']:>10} {'':>7} {r['steps_per_s']:>10.0f}",
                                      flush=True)
                        others += rows
    return mine, others


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="784x100,784x400,4096x4096")
    parser.add_argument("--rates", default="0.01,0.05,0.2")
    parser.add_argument("--regimes", default="saturated,sparse")
    parser.add_argument("--peers-python", action="append",
                        help="a Python with peers installed (repeat for several environments)")
    parser.add_argument("--no-first-call", action="store_true",
                        help="skip the first-call timings (CANNs' takes minutes)")
    parser.add_argument("--steps", type=int, help="steps per measurement of ours (default: about a second's work)")
    parser.add_argument("--rounds", type=int, default=1,
                        help="measure every job this many times over (the first-call timings once)")
    args = parser.parse_args(argv)

    pythons = args.peers_python or ([os.environ["CANNS_STDP_PEERS_PYTHON"]]
                                    if os.environ.get("CANNS_STDP_PEERS_PYTHON") else [])
    first_call = not args.no_first_call
    print(machine_line(), flush=True)
    peers = [Peers(python, first_call) for python in pythons]  # (one at a time: each first call alone)
    mine, others = [], []
    try:
        for _ in range(args.rounds):
            ours_rows, peer_rows = paired_round(args, peers)
            mine.append(ours_rows)
            others.append(peer_rows)
    finally:
        for each in peers:
            each.close()
    others[0] += [row for each in peers for row in each.first]
    if first_call:  # ours last: the warm cache is the one these rounds filled
        mine[0] += first_call_rows()
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
