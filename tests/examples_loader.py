"""Import an example script from examples/ as a module, for the tests that run it."""

import importlib.util
import pathlib
import sys

EXAMPLES = pathlib.Path(__file__).resolve().parents[1] / "examples"


def load_example(name: str):
    found = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(found)
    sys.modules[name] = module  # dataclasses (e.g. a user rule) look their module up while it runs
    found.loader.exec_module(module)
    return module
