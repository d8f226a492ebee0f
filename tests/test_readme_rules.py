"""The README's sections on rules, the Trainer and ensembles run as written."""

import pathlib
import re

import numpy as np

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def section(title: str) -> str:
    text = README.read_text()
    start = text.index(f"## {title}")
    end = text.find("\n## ", start + 1)
    return text[start:end]


def test_rules_section_snippets_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    blocks = re.findall(r"```python\n(.*?)```", section("Any rule on any layer"), re.S)
    assert len(blocks) == 2
    namespace = {"__name__": "__main__"}
    for block in blocks:
        exec(compile(block, "README.md", "exec"), namespace)
    assert namespace["trainer"].eligibility.value.shape == (4, 1, 3, 3)
    assert namespace["trainer"].r2.value.shape == (1, 8, 8)
    from canns_stdp import SpikingLayer

    mask = namespace["mask"]
    W0 = np.asarray(SpikingLayer(40, 8, mask=mask, seed=0).W.value)  # the snippet's starting weights
    W = np.asarray(namespace["layer"].W.value)
    np.testing.assert_array_equal(W[mask == 0], W0[mask == 0])   # absent synapses never changed
    assert np.abs(W - W0)[mask == 1].max() > 1e-3                # present ones learned


def test_ensemble_section_snippet_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    blocks = re.findall(r"```python\n(.*?)```", section("Ensembles: many models in one call"), re.S)
    assert len(blocks) == 1
    namespace = {"__name__": "__main__"}
    exec(compile(blocks[0], "README.md", "exec"), namespace)
    assert namespace["spikes"].shape == (12, 1000, 5) and namespace["rates"].shape == (12,)
    assert np.ptp(namespace["rates"]) > 0  # the members learned differently
