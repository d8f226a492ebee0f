"""``import canns_stdp`` is light: the public names load their modules on first use."""

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
