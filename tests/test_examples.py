"""The examples run and show what they claim."""

import importlib.util

from examples_loader import load_example as load



def test_temporal_sequence_potentiates_early_and_depresses_late(tmp_path):
    result = load("temporal_sequence").main(["--trials", "150", "--out", str(tmp_path)])
    assert result["early"] > 0.15 and result["late"] < 0.02 and result["middle"] < result["early"]
    assert result["latency_last"] < result["latency_first"] - 3
    if importlib.util.find_spec("matplotlib"):
        assert (tmp_path / "temporal_sequence.png").stat().st_size > 10_000


def test_compiled_vs_uncompiled_agree(capsys):
    diff = load("compiled_vs_uncompiled").main(["--steps", "300", "--inputs", "100", "--neurons", "20"])
    assert diff <= 1e-5
    assert "identical output spikes: True" in capsys.readouterr().out
