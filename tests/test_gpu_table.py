"""benchmarks/gpu.py: every row of the GPU table runs (tiny, here on the CPU), each is
written as it is measured, a failing or late row costs none of the others, and the
tables' ratios are worked out from the rows."""

import json

import pytest

from examples_loader import load_benchmark


@pytest.fixture(scope="module")
def gpu():
    return load_benchmark("gpu")


def test_every_section_of_the_smoke_run_measures_its_rows(gpu, tmp_path):
    rows = gpu.main(["--smoke", "--out", str(tmp_path), "--stem", "run", "--no-canns",
                     "--sections", ",".join(gpu.SECTIONS)])
    assert [r for r in rows if "error" in r or "skipped" in r] == []
    labels = [r.get("label") for r in rows[1:]]
    assert labels[:2] == ["layer 16x8 saturated", "layer 16x8 sparse"]
    assert {r["section"] for r in rows} == {"device", "layers", "agreement", "ensembles", "networks", "streaming",
                                            "event"}
    assert sum(label.startswith("sweep") for label in labels) == 2
    written = [json.loads(line) for line in (tmp_path / "run.jsonl").read_text().splitlines()]
    assert written == json.loads(json.dumps(rows))
    for r in rows[1:]:
        if r["section"] == "agreement":  # the fused kernel (interpreted here) and the plain step, to float rounding
            assert r["fused_max_dW"] < 1e-5 and r["xla_max_dW"] < 1e-5 and r["fused_spike_flips"] == 0, r
            continue
        rate = r.get("trainer") or r.get("steps_per_s") or r.get("ensemble_member_steps_per_s")
        assert rate > 0, r
    table = (tmp_path / "run.md").read_text()
    for title in ("Layers", "host CPU", "streaming W", "Ensembles", "Plastic networks", "event-driven XLA"):
        assert title in table
    members = next(r for r in rows if r["section"] == "ensembles")
    assert members["member_0_max_dW"] < 1e-6  # the same numbers and inputs as the trainer alone
    net = next(r for r in rows if r.get("network") == "delayed")
    assert (net["neurons"], net["backend"]) == (500, "cpu")
    assert 0.5 * 500 * 20 < net["synapses"] < 1.5 * 500 * 20 + 500  # ~20 outgoing per neuron, thalamus 500


def test_a_failing_row_is_recorded_and_the_budget_skips_the_rest(gpu, tmp_path, monkeypatch):
    def broken(*args):
        raise RuntimeError("no such kernel")

    monkeypatch.setattr(gpu.gpu_rows, "ensemble_row", broken)
    rows = gpu.main(["--smoke", "--out", str(tmp_path), "--stem", "run", "--sections", "ensembles"])
    assert rows[1]["error"] == "RuntimeError: no such kernel"
    assert "- ensemble 4 x 16x8: RuntimeError: no such kernel" in (tmp_path / "run.md").read_text()
    rows = gpu.main(["--smoke", "--out", str(tmp_path), "--stem", "late", "--budget", "0",
                     "--sections", "layers,networks"])
    assert [r.get("skipped") for r in rows[1:]] == ["budget of 0 s spent"] * 4
    for wrong in (["--sections", "layers,kernels"], ["--layers", "784x400,100x100"]):
        with pytest.raises(SystemExit):
            gpu.main(["--smoke", "--out", str(tmp_path)] + wrong)


def test_the_tables_ratios_come_from_the_rows():
    table = load_benchmark("gpu_table")
    head = dict(section="device", device="GPU X", backend="gpu", jax="0.1", brainpy="2.8", date="d",
                copy_bandwidth=2.0e12)
    layer = dict(section="layers", layer="784x400", regime="sparse", firing=0.012, trainer=600_000.0,
                 trainer_from_host=400_000.0,
                 kernel=1_000_000.0, roofline_steps_per_s=2.0e12 / (8 * 784 * 400), xla=30_000.0, canns=15_000.0)
    net = dict(section="networks", network="delayed", neurons=100_000, synapses=10_000_000, backend="gpu",
               steps_per_s=3_000.0, check_steps=50, spikes=1000, spikes_differing=2, max_dW=1e-6)
    cpu = [dict(section="networks", network="delayed", neurons=100_000, synapses=10_000_000, steps_per_s=200.0),
           dict(section="networks", network="delayed", neurons=500, synapses=10_509, steps_per_s=1.0)]
    text = table.tables([head, layer, net], cpu)
    assert "copy bandwidth 2.00 TB/s" in text
    # trainer / CANNs 600000 / 15000 = 40; the kernel at 1e6 of a roofline of 2e12 / 2508800 = 797194 steps/s
    assert "| 784x400 | sparse | 1.2% | 600,000 | 400,000 | 1,000,000 | 125% | 30,000 | 15,000 | 40.0x |" in text
    assert "| delayed | 100,000 | 10,000,000 | gpu | 3,000 | 200 | 15.0x | 2 of 1000 spikes" in text
