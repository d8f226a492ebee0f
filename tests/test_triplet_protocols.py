"""The protocols of Pfister & Gerstner (2006), run with the library (through the
example's helpers) and checked against the event-driven NumPy transcription of the
paper's equations in triplet_reference.py, then for the paper's signs and trends."""


import importlib.util
import numpy as np
import pytest

import triplet_reference as tref
from canns_stdp.functional.triplet import triplet_parameters
from examples_loader import load_example as load



ex = load("triplet_frequency")
FREQS = (1.0, 10.0, 20.0, 40.0, 50.0)


def pairs(rho, delta, n=60):
    """Spike times written here, independently of the example: pre every 1000/rho ms."""
    pre = [20 + round(k * 1000.0 / rho) for k in range(n)]
    return pre, [t + delta for t in pre]


@pytest.mark.parametrize("version", ["all_to_all", "nearest"])
def test_frequency_dependence_matches_paper_equations(version):
    p = triplet_parameters("visual_cortex", version)
    nearest = version == "nearest"
    _, trainer = ex.make_trainer("triplet", version=version)
    got, want = {}, {}
    for delta in (10, -10):
        got[delta] = np.array([ex.weight_change(trainer, *pairs(rho, delta)) for rho in FREQS])
        want[delta] = np.array([tref.event_driven(*pairs(rho, delta), p, nearest) for rho in FREQS])
        np.testing.assert_allclose(got[delta], want[delta], atol=5e-5)
    plus, minus = got[10], got[-10]
    # pre-post pairs: no change at 1 Hz, potentiation growing with frequency
    assert abs(plus[0]) < 1e-3 and np.all(np.diff(plus) > 0) and plus[-1] > 0.5
    # post-pre pairs: depression at low frequency, potentiation at 50 Hz
    assert minus[0] < -0.25 and minus[1] < -0.25 and minus[-1] > 0.5
    assert np.all(np.diff(minus[2:]) > 0)  # rising from 20 Hz on


def test_pair_rule_never_turns_post_pre_into_potentiation():
    _, trainer = ex.make_trainer("pair")
    minus = np.array([ex.weight_change(trainer, *pairs(rho, -10)) for rho in FREQS])
    # pair rule, all-to-all, as written in Song et al. 2000: closed form per pair sum
    d_p, d_m = np.exp(-1 / 16.8), np.exp(-1 / 33.7)
    want = []
    for rho in FREQS:
        pre, post = pairs(rho, -10)
        w = sum(ex.PAIR["A_plus"] * d_p ** (tq - tp) for tq in post for tp in pre if tp < tq)
        w -= sum(ex.PAIR["A_minus"] * d_m ** (tp - tq) for tq in post for tp in pre if tq < tp)
        want.append(w)
    np.testing.assert_allclose(minus, want, atol=5e-5)
    assert np.all(minus < -0.25)


def triplet_times(kind, d1, d2, n=60, rho=1.0):
    """Wang et al. (2005) triplets at 1 Hz: pre-post-pre (d1 > 0, d2 < 0) or post-pre-post."""
    base = [100 + round(k * 1000.0 / rho) for k in range(n)]
    if kind == "pre-post-pre":  # pre at 0, post at d1, pre at d1 - d2
        return [b for b in base] + [b + d1 - d2 for b in base], [b + d1 for b in base]
    # post-pre-post: post at 0, pre at -d1, post at -d1 + d2
    return [b - d1 for b in base], [b for b in base] + [b - d1 + d2 for b in base]


def quadruplet_times(T, n=60, rho=1.0):
    """A post-pre pair (Δt = -5 ms) and a pre-post pair (Δt = +5 ms) T ms apart
    (T > 0: post-pre first, T < 0: pre-post first), at 1 Hz."""
    base = [100 + round(k * 1000.0 / rho) for k in range(n)]
    if T > 0:
        return [b + 5 for b in base] + [b + T for b in base], [b for b in base] + [b + T + 5 for b in base]
    A = -T
    return [b for b in base] + [b + A + 5 for b in base], [b + 5 for b in base] + [b + A for b in base]


@pytest.mark.parametrize("version", ["all_to_all", "nearest"])
def test_triplet_and_quadruplet_protocols(version):
    """Hippocampal parameters: post-pre-post triplets potentiate, pre-post-pre triplets
    with symmetric timing give a much smaller change (no pair rule has this asymmetry),
    and quadruplets potentiate, the more the closer the two pairs."""
    p = triplet_parameters("hippocampal", version)
    nearest = version == "nearest"
    layer, trainer = ex.make_trainer("triplet", data="hippocampal", version=version)

    def both(pre, post):
        got = ex.weight_change(trainer, pre, post)
        np.testing.assert_allclose(got, tref.event_driven(pre, post, p, nearest), atol=5e-5)
        return got

    post_pre_post = [both(*triplet_times("post-pre-post", d1, d2)) for d1, d2 in [(-5, 5), (-10, 10), (-15, 5), (-5, 15)]]
    pre_post_pre = [both(*triplet_times("pre-post-pre", d1, d2)) for d1, d2 in [(5, -5), (10, -10)]]
    assert min(post_pre_post) > 0.05
    assert abs(pre_post_pre[0]) < post_pre_post[0] / 3 and abs(pre_post_pre[1]) < post_pre_post[1] / 3
    quads = {T: both(*quadruplet_times(T)) for T in (-50, -15, 15, 50, 100)}
    assert all(q > 0 for q in quads.values())
    assert quads[15] > quads[50] and quads[15] > quads[100] and quads[-15] > quads[-50]


def test_example_runs_and_writes_its_figure(tmp_path, capsys):
    result = ex.main(["--out", str(tmp_path), "--frequencies", "1", "50"])
    curves = result["curves"]
    assert curves[("triplet", -10)][0] < 0 < curves[("triplet", -10)][1]
    assert curves[("pair", -10)][1] < 0
    assert "triplet +10" in capsys.readouterr().out
    if importlib.util.find_spec("matplotlib"):
        assert (tmp_path / "triplet_frequency.png").stat().st_size > 10_000
