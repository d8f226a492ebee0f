"""benchmarks/run.py: every job's figures, ours and the peers', taken back to back, with
the peers' environments kept running between jobs (here one that has none of them)."""

import sys

from examples_loader import load_benchmark


def test_a_round_pairs_each_job_and_names_the_peers_it_could_not_measure(capsys):
    run = load_benchmark("run")
    run.main(["--sizes", "784x100", "--rates", "0.05", "--regimes", "sparse", "--steps", "100", "--rounds", "2",
              "--no-first-call", "--peers-python", sys.executable])
    out = capsys.readouterr().out
    table = [line for line in out.splitlines() if line.startswith("| 784x100 | 0.05 | sparse |")]
    assert [line.split(" | ")[3] for line in table] == ["compiled", "uncompiled", "xla"]
    assert "2 rounds" in out
    for peer in ("canns", "norse", "spikingjelly", "canns_uncompiled"):  # (asked for, job after job)
        assert f"{peer}: not measured (No module named" in out
