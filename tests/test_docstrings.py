"""The examples in the library's docstrings run as written (the plotting ones: tests/test_plot.py)."""

import doctest
import importlib

import pytest

MODULES = [  # every module whose docstrings hold examples
    "canns_stdp.brainpy_projection", "canns_stdp.checkpoint", "canns_stdp.compat", "canns_stdp.competitive",
    "canns_stdp.competitive_together",
    "canns_stdp.conv_layer", "canns_stdp.datasets", "canns_stdp.encoders", "canns_stdp.ensemble", "canns_stdp.layer",
    "canns_stdp.mixed", "canns_stdp.monitors", "canns_stdp.network.ensemble", "canns_stdp.network.network", "canns_stdp.readout", "canns_stdp.step",
    "canns_stdp.sweep", "canns_stdp.trainer", "canns_stdp.rules", "canns_stdp.rules.base", "canns_stdp.rules.pair",
    "canns_stdp.rules.triplet", "canns_stdp.rules.reward", "canns_stdp.rules.restricted",
] + [f"canns_stdp.functional.{name}" for name in (
    "competitive_step", "dependence", "homeostasis", "in_place", "inhibition", "layer_step", "network", "neurons",
    "normalization", "pooling", "psp", "refractory", "stdp", "synapses", "traces", "triplet")]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0, f"{name} has no example"
    assert result.failed == 0


def test_every_module_with_examples_is_listed():
    import pathlib

    root = pathlib.Path(importlib.import_module("canns_stdp").__file__).parent
    with_examples = {".".join(("canns_stdp",) + p.relative_to(root).with_suffix("").parts).removesuffix(".__init__")
                     for p in root.rglob("*.py") if ">>>" in p.read_text()}
    elsewhere = {"canns_stdp.plot", "canns_stdp.tasks.masquelier"}  # tests/test_plot.py; a long run, skipped
    assert with_examples - elsewhere <= set(MODULES), sorted(with_examples - elsewhere - set(MODULES))
