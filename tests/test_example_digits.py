"""The STDP + Adam digits example runs, learns above chance, and STDP moves the conv weights."""

import importlib.util
import pathlib

import pytest

EXAMPLE = pathlib.Path(__file__).resolve().parents[1] / "examples" / "stdp_conv_digits.py"


def test_stdp_conv_digits_short_run(tmp_path):
    pytest.importorskip("optax")
    pytest.importorskip("sklearn")
    found = importlib.util.spec_from_file_location("stdp_conv_digits", EXAMPLE)
    module = importlib.util.module_from_spec(found)
    found.loader.exec_module(module)
    result = module.main(["--epochs", "1", "--no-baseline", "--out", str(tmp_path)])["stdp"]
    assert result["test_accuracy"] > 0.25          # ten classes: chance is 0.1
    assert result["W2_change"] > 1e-3              # the STDP layers did learn
    if importlib.util.find_spec("matplotlib"):
        assert (tmp_path / "stdp_conv_digits.png").stat().st_size > 10_000
