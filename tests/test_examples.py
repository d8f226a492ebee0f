"""The examples run and show what they claim."""

import importlib.util

import numpy as np

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


def test_user_rule_bcm_makes_every_neuron_selective(tmp_path):
    example = load("user_rule_bcm")
    W0, W, theta, history = example.train(steps=5000)
    assert np.abs(example.selectivity(W0)).max() < 0.2       # driven by both groups at first
    assert np.abs(example.selectivity(W)).min() > 0.95       # each ends on one group
    assert (theta > 0.2).all()                               # and still fires during it
    if importlib.util.find_spec("matplotlib"):
        example.plot(history, tmp_path / "bcm.png")
        assert (tmp_path / "bcm.png").stat().st_size > 10_000
