"""``import canns_stdp`` is light: the public names load their modules on first use."""

import importlib.util
import subprocess
import sys

import canns_stdp


def test_import_loads_neither_jax_nor_brainpy():
    code = "import sys, canns_stdp; print(sorted({'jax', 'brainpy'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_cli_help_loads_neither_jax_nor_brainpy():
    code = ("import sys, contextlib, io\n"
            "from canns_stdp import cli\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            "    try: cli.main(['demo', '--help'])\n"
            "    except SystemExit: pass\n"
            "print(sorted({'jax', 'brainpy'} & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().endswith("[]")


def test_every_public_name_resolves():
    for name in canns_stdp.__all__:
        assert getattr(canns_stdp, name) is not None
    from canns_stdp import SpikingLayer, Trainer, rules  # noqa: F401  (from-import goes through __getattr__)
    assert set(canns_stdp.__all__) <= set(dir(canns_stdp))


def test_unknown_name_is_an_attribute_error():
    try:
        canns_stdp.NoSuchThing
    except AttributeError as err:
        assert "NoSuchThing" in str(err)
    else:
        raise AssertionError("expected AttributeError")


def test_the_modules_the_docs_import_first_import_in_a_fresh_interpreter():
    # each module imported first, as a script that starts with it does (no import cycles)
    modules = ["canns_stdp.step", "canns_stdp.functional.layer_step", "canns_stdp.rules", "canns_stdp.network"]
    code = ("import subprocess, sys\n"
            f"for m in {modules!r}:\n"
            "    done = subprocess.run([sys.executable, '-c', 'import ' + m], capture_output=True, text=True)\n"
            "    print(m, done.returncode, done.stderr.strip().splitlines()[-1:] )\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert all(line.split()[1] == "0" for line in out.strip().splitlines()), out


def test_numba_starts_in_the_background_while_the_layer_loads_and_not_before():
    code = ("import sys, threading\n"
            "import canns_stdp\n"
            "from canns_stdp import cli\n"
            "print([t.name for t in threading.enumerate() if t.name.startswith('canns_stdp')])\n"
            "import canns_stdp.layer\n"
            "from canns_stdp.kernels import native_start\n"
            "print(len(native_start._started), 'numba' in sys.modules)\n"
            "for t in native_start._started:\n"
            "    t.join()\n"
            "print(native_start.failure, 'numba' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split("\n")
    assert out[0] == "[]"  # not by the package or the command line
    numba_installed = importlib.util.find_spec("numba") is not None
    assert out[1].split()[0] == str(int(numba_installed))  # one thread, started by the layer's module
    assert out[2] == f"[] {numba_installed}"  # it loaded numba, and nothing went wrong


def test_without_numba_nothing_starts(monkeypatch):
    from canns_stdp.kernels import native_start
    monkeypatch.setattr(native_start, "_started", [])
    monkeypatch.setattr(native_start.importlib.util, "find_spec", lambda name: None)
    native_start.begin()
    assert native_start._started == []
