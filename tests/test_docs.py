"""The README and the documentation site: every python block runs as written, pages check what
they claim, and ``mkdocs build --strict`` succeeds.

A python block whose first line is a comment starting with ``# not run:`` is skipped (the
comment says why); the blocks of one page run in order in one namespace, in a scratch folder.
"""

import importlib.util
import pathlib
import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PAGES = [ROOT / "README.md"] + sorted(DOCS.rglob("*.md"))
BLOCK = re.compile(r"^(?P<indent>[ \t]*)```python[^\n]*\n(?P<body>.*?)^(?P=indent)```", re.S | re.M)
SKIP = "# not run:"


def python_blocks(page: pathlib.Path) -> list:
    """The page's python blocks, dedented, in order (skipped ones included)."""
    return [textwrap.dedent(m["body"]) for m in BLOCK.finditer(page.read_text())]


def runnable(page: pathlib.Path) -> list:
    return [b for b in python_blocks(page) if not b.lstrip().startswith(SKIP)]


def run_page(page: pathlib.Path) -> dict:
    namespace = {"__name__": "__main__"}
    for block in runnable(page):
        exec(compile(block, str(page.relative_to(ROOT)), "exec"), namespace)
    return namespace


# -- what particular pages claim, checked on the namespace their blocks leave -----------------

def check_own_rule(ns):
    from canns_stdp import SpikingLayer

    assert ns["trainer"].eligibility.value.shape == (4, 1, 3, 3)
    assert ns["trainer"].r2.value.shape == (1, 8, 8)
    mask = ns["mask"]
    W0 = np.asarray(SpikingLayer(40, 8, mask=mask, seed=0).W.value)  # the page's starting weights
    W = np.asarray(ns["layer"].W.value)
    np.testing.assert_array_equal(W[mask == 0], W0[mask == 0])   # absent synapses never changed
    assert np.abs(W - W0)[mask == 1].max() > 1e-3                # present ones learned


def check_ensembles(ns):
    assert ns["spikes"].shape == (12, 1000, 5) and ns["rates"].shape == (12,)
    assert np.ptp(ns["rates"]) > 0  # the members learned differently


def check_checkpoints(ns):
    assert ns["ckpt"].latest() is not None
    assert len(ns["ckpt"].files()) == 3                      # keep_last=3


def check_reward(ns):
    assert min(ns["before"].values()) > 0.1                   # it answered both stimuli at first
    assert ns["after"]["A"] > 0.3 and ns["after"]["B"] < 0.05  # and learned to answer the rewarded one only


def check_first_layer(ns):
    window = ns["window"]
    assert window["symmetric"][ns["dts"] == 0] < 0 < window["causal"][ns["dts"] == 0]
    assert window["strict"][ns["dts"] == 0] == 0


def check_diehl_cook(ns):
    assert ns["accuracy"] > 0.75   # the page states 0.846


def check_networks(ns):
    assert 5.0 < ns["spikes"].count.mean() < 150.0            # the excitatory neurons fire
    assert ns["weights"].values.shape == (10, 3)
    assert (pathlib.Path("network.npz")).stat().st_size > 1000
    from canns_stdp.network import SpikeMonitor
    alone, spikes = ns["small"](1, 0.05), SpikeMonitor("out")   # the ensemble's last member, run alone
    alone.run(duration=50.0, monitors=[spikes])
    assert spikes.count.sum() > 5
    np.testing.assert_array_equal(ns["outputs"][3][0].i, spikes.i)
    np.testing.assert_allclose(ns["sweep"][3].weights("input->out"), alone.weights("input->out"), atol=1e-6)
    fast, plain = ns["fast"], ns["plain"]  # the native kernel and the XLA step: both learned, alike
    assert fast.native is None and plain.native is False and fast.steps_run == 10_000
    assert np.abs(plain.weights("in->out") - 0.005).max() > 1e-4
    np.testing.assert_allclose(fast.weights("in->out"), plain.weights("in->out"), atol=1e-6)


CHECKS = {
    "docs/tutorials/networks.md": check_networks,
    "docs/tutorials/diehl-cook.md": check_diehl_cook,
    "docs/tutorials/own-rule.md": check_own_rule,
    "docs/tutorials/ensembles.md": check_ensembles,
    "docs/tutorials/checkpoints.md": check_checkpoints,
    "docs/tutorials/reward.md": check_reward,
    "docs/tutorials/first-layer.md": check_first_layer,
}

PAGES_WITH_CODE = [p for p in PAGES if runnable(p)]


@pytest.mark.parametrize("page", PAGES_WITH_CODE, ids=lambda p: str(p.relative_to(ROOT)))
def test_page_code_runs(page, tmp_path, monkeypatch):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    monkeypatch.chdir(tmp_path)
    ns = run_page(page)
    plt.close("all")
    check = CHECKS.get(str(page.relative_to(ROOT)))
    if check:
        check(ns)


def test_checked_pages_exist_and_run_code():
    for name in CHECKS:
        assert ROOT / name in PAGES_WITH_CODE, name


def test_skipped_blocks_are_rare():
    skipped = {str(p.relative_to(ROOT)): len(python_blocks(p)) - len(runnable(p)) for p in PAGES}
    total = sum(len(python_blocks(p)) for p in PAGES)
    assert sum(skipped.values()) <= total // 4, skipped


# -- the README is the front door --------------------------------------------------------------

def test_readme_is_short_and_its_links_resolve():
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) < 200
    for target in re.findall(r"\]\(((?:docs|examples)/[^)#]+)", text):
        assert (ROOT / target).exists(), target


def test_readme_setup_commands_are_the_two_ci_commands():
    text = (ROOT / "README.md").read_text()
    assert ('python3 -m venv .venv && . .venv/bin/activate && pip install -e ".[native,plot,progress,digits]"'
            ' && canns-stdp demo') in text
    assert 'python3 -m venv .venv && . .venv/bin/activate && pip install -e ".[test]" && python -m pytest -q' in text


def test_images_exist_and_are_small():
    for page in PAGES:
        for target in re.findall(r"!\[[^\]]*\]\(([^)]+\.png)\)", page.read_text()):
            path = (page.parent / target).resolve()
            assert path.exists(), f"{page.name}: {target}"
            assert path.stat().st_size < 400_000, f"{target} is {path.stat().st_size} bytes"


# -- the site builds ---------------------------------------------------------------------------

@pytest.mark.skipif(importlib.util.find_spec("mkdocs") is None, reason="mkdocs is not installed")
def test_mkdocs_build_strict(tmp_path):
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir",
                             str(tmp_path / "site")], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "site" / "index.html").exists()
