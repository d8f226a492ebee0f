"""Import a script of the project (an example from examples/, a benchmark from
benchmarks/) as a module, for the tests that run it."""

import importlib.util
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"


def load_example(name: str):
    return _load(EXAMPLES, name)


def load_benchmark(name: str):
    return _load(ROOT / "benchmarks", name)


def _load(folder: pathlib.Path, name: str):
    found = importlib.util.spec_from_file_location(name, folder / f"{name}.py")
    module = importlib.util.module_from_spec(found)
    sys.modules[name] = module  # dataclasses (e.g. a user rule) look their module up while it runs
    found.loader.exec_module(module)
    return module
