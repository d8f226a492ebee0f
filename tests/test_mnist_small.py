"""Diehl & Cook on real MNIST at a reduced size, when the shared data is present."""

import pathlib

import pytest

from canns_stdp.tasks.digits import run

ROOT = pathlib.Path(__file__).resolve().parents[1]
DATA = next((p for p in (ROOT.parent / "shared" / "data" / "mnist",
                         ROOT.parent.parent / "shared" / "data" / "mnist") if p.is_dir()), None)


@pytest.mark.skipif(DATA is None, reason="no MNIST files next to the repository (../shared/data/mnist)")
def test_mnist_reduced_learns_well_above_chance():
    # 1,000 training images, 50 neurons, one pass: measured 0.628 (seed 0); chance is 0.1
    r = run("mnist", data=DATA, neurons=50, epochs=1, n_train=1000, n_test=500,
            progress=False, figures=False, echo=lambda *a: None)
    assert r["accuracy"] > 0.5
    assert (r["result"].assignments >= 0).all()   # every neuron fired and got a label
