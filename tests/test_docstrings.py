"""The examples in the docstrings of the rules, the step and the trainers run as written."""

import doctest
import importlib

import pytest

MODULES = ["canns_stdp.monitors", "canns_stdp.network.network", "canns_stdp.rules", "canns_stdp.rules.base", "canns_stdp.rules.pair", "canns_stdp.rules.triplet",
           "canns_stdp.rules.reward", "canns_stdp.rules.restricted", "canns_stdp.step", "canns_stdp.trainer", "canns_stdp.compat", "canns_stdp.ensemble",
           "canns_stdp.functional.triplet", "canns_stdp.functional.neurons", "canns_stdp.functional.refractory",
           "canns_stdp.competitive_together"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0, f"{name} has no example"
    assert result.failed == 0
