import jax
import numpy as np
import pytest

import background

jax.config.update("jax_numpy_rank_promotion", "raise")


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


def pytest_collection_finish(session):
    """Starts the fresh-interpreter checks of the selected modules (see ``background.py``)
    so that they run beside the other tests."""
    if session.config.option.collectonly:
        return
    seen = []
    for item in session.items:
        module = getattr(item, "module", None)
        if module is not None and module not in seen and hasattr(module, "start_in_background"):
            seen.append(module)
            module.start_in_background(session.config._tmp_path_factory)


def pytest_sessionfinish(session):
    background.stop()
