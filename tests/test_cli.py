"""The canns-stdp command: help, a tiny digits run with a measured criterion, errors."""

import importlib.util
import os
import re
import subprocess
import sys

import numpy as np
import pytest

import background
from canns_stdp import cli
from canns_stdp.cli import main
from canns_stdp.tasks import masquelier

HAS_SKLEARN = importlib.util.find_spec("sklearn") is not None
HAS_MPL = importlib.util.find_spec("matplotlib") is not None


def test_help_lists_the_options(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["demo", "--help"])
    assert e.value.code == 0
    text = capsys.readouterr().out
    for opt in ("--task", "masquelier", "digits", "mnist", "--data", "--neurons", "--epochs",
                "--seed", "--out"):
        assert opt in text


def test_bad_options_fail_clearly(capsys):
    with pytest.raises(SystemExit):
        cli.main(["demo", "--neurons", "0"])
    assert "positive integer" in capsys.readouterr().err
    assert cli.main(["demo", "--task", "mnist", "--no-figures"]) == 1
    assert "--data" in capsys.readouterr().err
    assert cli.main(["demo", "--task", "mnist", "--data", "/nonexistent/mnist"]) == 1
    assert "not found" in capsys.readouterr().err


@pytest.mark.skipif(not HAS_SKLEARN, reason="needs the digits extra (scikit-learn)")
def test_tiny_digits_demo_learns_well_above_chance(tmp_path, capsys):
    # measured at this size: accuracy 0.56 to 0.66 over seeds (chance 0.10)
    code = cli.main(["demo", "--task", "digits", "--neurons", "40", "--epochs", "1",
                     "--train-size", "500", "--test-size", "200", "--steps", "100",
                     "--out", str(tmp_path), "--no-progress"] + ([] if HAS_MPL else ["--no-figures"]))
    assert code == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith("accuracy: ")
    assert float(last.split()[1]) > 0.4
    if HAS_MPL:
        assert (tmp_path / "digits_receptive_fields.png").stat().st_size > 10_000
        assert (tmp_path / "digits_confusion.png").stat().st_size > 10_000


def test_masquelier_window_metrics_by_hand():
    is_pat = np.array([False, True, False, True])
    s = np.zeros(4 * masquelier.PATTERN_MS)
    s[50 + 7] = 1      # hit at latency 7
    s[100 + 3] = 1     # false alarm
    hit, fa, lat = masquelier.window_metrics(s, is_pat)
    assert hit == 0.5 and fa == 0.5
    assert lat[0] == 7 and np.isnan(lat[1])


def test_tiny_masquelier_demo_prints_its_result_line(tmp_path, capsys, monkeypatch):
    full = masquelier.run

    def small(**kw):
        return full(seconds_per_epoch=4.0, test_seconds=2.0, n_afferents=200, **kw)

    monkeypatch.setattr(masquelier, "run", small)
    code = cli.main(["demo", "--task", "masquelier", "--epochs", "1", "--out", str(tmp_path),
                     "--no-progress"] + ([] if HAS_MPL else ["--no-figures"]))
    assert code == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith("hit_rate: ") and "false_alarm_rate: " in last
    hit, fa = float(last.split()[1]), float(last.split()[3])
    assert 0.0 <= hit <= 1.0 and 0.0 <= fa <= 1.0
    if HAS_MPL:
        assert (tmp_path / "masquelier.png").stat().st_size > 10_000


def test_bench_command_prints_a_table(capsys):
    from canns_stdp.cli import main

    assert main(["bench", "--sizes", "784x100", "--rates", "0.05", "--regimes", "sparse",
                 "--steps", "50"]) == 0
    out = capsys.readouterr().out
    assert "784x100" in out and "sparse" in out and "steps/s" in out


def test_bench_times_the_rates_of_a_job_in_turns(capsys, monkeypatch):
    from canns_stdp import STDPTrainer

    order, train = [], STDPTrainer.train

    def recorded(self, xs, *args, **kwargs):
        order.append(round(float(np.mean(xs)), 2))  # (the job's input probability, near enough)
        return train(self, xs, *args, **kwargs)

    monkeypatch.setattr(STDPTrainer, "train", recorded)
    assert main(["bench", "--sizes", "784x100", "--rates", "0.05,0.5", "--regimes", "sparse", "--steps", "200"]) == 0
    assert order == [0.05, 0.05, 0.5, 0.5] + [0.05, 0.5] * 3  # two untimed calls each, then three timed in turns
    out = capsys.readouterr().out
    assert re.search(r"a step at p = 0\.05 costs \d\.\d\d of one at p = 0\.5", out)


@pytest.mark.parametrize("args, message", [
    (["--sizes", "foo"], "--sizes: expected names from 784x100, 784x400, 4096x4096, got 'foo'"),
    (["--rates", "-1"], r"--rates: expected probabilities in \(0, 1\], got '-1'"),
    (["--rates", "0.05,abc"], r"--rates: expected probabilities in \(0, 1\], got '0.05,abc'"),
    (["--regimes", "busy"], "--regimes: expected names from saturated, sparse, got 'busy'"),
    (["--steps", "-3"], "--steps: expected a positive integer, got '-3'"),
])
def test_bench_refuses_bad_arguments_before_any_work(args, message, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["bench"] + args)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert re.search(message, err) and "Traceback" not in err


def test_demo_refuses_an_out_that_is_a_file_before_training(tmp_path, capsys):
    existing = tmp_path / "taken"
    existing.write_text("not a folder")
    with pytest.raises(SystemExit) as exit_:
        main(["demo", "--out", str(existing)])
    assert exit_.value.code == 2
    assert "--out must be a folder for the figures" in capsys.readouterr().err
    assert existing.read_text() == "not a folder"


@pytest.mark.skipif(not HAS_SKLEARN, reason="needs the digits extra (scikit-learn)")
def test_digits_seeds_prints_each_seed_as_run_alone_and_a_summary(capsys):
    from canns_stdp.tasks import digits
    tiny = ["--neurons", "20", "--epochs", "1", "--train-size", "200", "--test-size", "100", "--steps", "50",
            "--no-progress", "--no-figures"]
    assert cli.main(["demo", "--task", "digits", "--seed", "4", "--seeds", "3"] + tiny) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    alone = [digits.run("digits", seed=s, neurons=20, epochs=1, n_train=200, n_test=100, steps=50,
                        progress=False, echo=lambda line: None)["accuracy"] for s in (4, 5, 6)]
    for line, s, acc in zip(lines[-4:-1], (4, 5, 6), alone):
        assert line.startswith(f"seed {s}: accuracy {acc:.3f} ")
    summary = dict(zip(lines[-1].split()[::2], lines[-1].split()[1::2]))
    assert float(summary["accuracy:"]) == pytest.approx(np.mean(alone), abs=5e-4)
    assert float(summary["std:"]) == pytest.approx(np.std(alone), abs=5e-4)
    assert float(summary["min:"]) == pytest.approx(min(alone), abs=5e-4)
    assert float(summary["max:"]) == pytest.approx(max(alone), abs=5e-4)
    assert summary["seeds:"] == "3"


def test_seeds_is_refused_for_masquelier(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["demo", "--task", "masquelier", "--seeds", "2"])
    assert exit_.value.code == 2
    assert "--seeds is only used by --task digits and mnist" in capsys.readouterr().err


@pytest.fixture
def no_work(monkeypatch):
    """Any task run fails the test: refusals must come before any work."""
    from canns_stdp.tasks import digits

    def fail(*args, **kwargs):
        pytest.fail("a task ran despite a bad argument")

    for module, name in ((digits, "run"), (digits, "run_seeds"), (masquelier, "run")):
        monkeypatch.setattr(module, name, fail)


@pytest.mark.parametrize("args, message", [
    (["--seed", "-1"], r"--seed: expected an integer in \[0, 4294967295\], got '-1'"),
    (["--seed", "abc"], r"--seed: expected an integer in \[0, 4294967295\], got 'abc'"),
    (["--seed", str(2**40)], r"--seed: expected an integer in \[0, 4294967295\], got '1099511627776'"),
    (["--seed", "4294967295", "--seeds", "2"], r"--seed 4294967295 with --seeds 2 goes past the largest seed"),
    (["--task", "masquelier", "--steps", "5"], r"--steps is only used by --task digits and mnist"),
    (["--task", "masquelier", "--train-size", "5"], r"--train-size is only used by --task digits and mnist"),
    (["--task", "masquelier", "--test-size", "5"], r"--test-size is only used by --task digits and mnist"),
    (["--task", "masquelier", "--seeds", "2"], r"--seeds is only used by --task digits and mnist"),
    (["--task", "digits", "--data", "x"], r"--data is only used by --task mnist, got --task digits"),
    (["--epochs", "1.5"], r"--epochs: expected a positive integer, got '1.5'"),
])
def test_demo_refuses_bad_arguments_before_any_work(args, message, capsys, no_work):
    with pytest.raises(SystemExit) as exit_:
        main(["demo"] + args)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert re.search(message, err) and "Traceback" not in err


def test_demo_refuses_an_out_it_cannot_create_and_mnist_data_that_is_no_folder(tmp_path, capsys, no_work):
    existing = tmp_path / "taken"
    existing.write_text("not a folder")
    with pytest.raises(SystemExit) as exit_:
        main(["demo", "--out", str(existing / "figures")])
    assert exit_.value.code == 2
    assert re.search(r"--out '.*taken/figures' cannot be created: Not a directory", capsys.readouterr().err)
    assert main(["demo", "--task", "mnist", "--data", str(existing), "--no-figures"]) == 1
    assert "--data: MNIST folder not found" in capsys.readouterr().err


def test_bench_refuses_a_json_file_it_cannot_write_before_any_work(tmp_path, capsys, monkeypatch):
    from canns_stdp import bench

    monkeypatch.setattr(bench, "measure_rates", lambda *a, **k: pytest.fail("measured despite a bad --json"))
    for target in (str(tmp_path / "missing" / "rows.json"), str(tmp_path)):
        with pytest.raises(SystemExit) as exit_:
            main(["bench", "--json", target])
        assert exit_.value.code == 2
        assert f"--json must name a file in an existing folder, got {target!r}" in capsys.readouterr().err


@pytest.mark.parametrize("error", [OSError("No space left on device"), TypeError("bad type"),
                                   FloatingPointError("non-finite"), MemoryError("Unable to allocate")])
def test_a_failed_run_is_one_line_and_status_1(error, capsys, monkeypatch):
    from canns_stdp.tasks import digits

    def fail(*args, **kwargs):
        raise error

    monkeypatch.setattr(digits, "run", fail)
    assert main(["demo", "--task", "digits", "--no-figures"]) == 1
    assert capsys.readouterr().err == f"canns-stdp: error: {error}\n"


def _command(args, tmp_path):
    """``canns-stdp`` as a process (``Popen`` arguments), its compilation cache under ``tmp_path``."""
    env = {k: v for k, v in os.environ.items() if k != "JAX_COMPILATION_CACHE_DIR"}
    env["XDG_CACHE_HOME"] = str(tmp_path / "cache")
    return dict(args=[sys.executable, "-m", "canns_stdp.cli", *args], env=env)


def _song_command(tmp_path):
    return _command(["demo", "--task", "song", "--duration", "3", "--out", str(tmp_path / "figs"), "--no-progress"],
                    tmp_path)


def start_in_background(tmp_path_factory):
    """The song command, started beside the other tests (see ``background.py``)."""
    if background.scheduled("song-command"):
        return background.scheduled("song-command")
    folder = tmp_path_factory.mktemp("song-command")
    return background.schedule("song-command", [_song_command(folder)], timeout=300, folder=folder)


def test_the_song_command_prints_its_result_line_writes_its_figure_and_its_compilation_cache(tmp_path_factory):
    job = start_in_background(tmp_path_factory)
    [(returncode, stdout, stderr)] = job.outcome()
    assert returncode == 0, stderr
    last = stdout.strip().splitlines()[-1]  # flushed before the process ended
    match = re.fullmatch(r"low_fraction: ([\d.]+) high_fraction: ([\d.]+) rate_hz: ([\d.]+)", last)
    assert match and 0 < float(match[3]) < 200
    assert (job.folder / "figs" / "song_weights_and_rate.png").stat().st_size > 10_000
    assert any((job.folder / "cache" / "canns_stdp" / "xla").iterdir())


def test_the_command_ends_with_the_status_of_its_run(tmp_path):
    done = subprocess.run(**_command(["demo", "--task", "mnist", "--data", str(tmp_path / "absent")], tmp_path),
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 1
    assert done.stderr == f"canns-stdp: error: --data: MNIST folder not found: {str(tmp_path / 'absent')!r}\n"
    assert not (tmp_path / "cache").exists()  # refused before any work


@pytest.mark.parametrize("args, message", [
    (["--task", "song", "--epochs", "2"], "--epochs is not used by --task song"),
    (["--task", "vogels", "--seeds", "2"], "--seeds is not used by --task vogels"),
    (["--task", "digits", "--duration", "2"], "--duration is only used by --task izhikevich, song, vogels"),
    (["--task", "song", "--duration", "0"], "expected a positive number, got '0'"),
])
def test_network_demos_refuse_options_they_do_not_use(args, message, capsys):
    with pytest.raises(SystemExit):
        main(["demo", *args])
    assert message in capsys.readouterr().err
