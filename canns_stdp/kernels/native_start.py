"""numba's own start, made in the background while the library loads.

The first time a process compiles a numba function or loads one from numba's cache,
numba fills its typing and target registries: about 0.3 s of Python on a small CPU, which
a fresh process's first training call would otherwise wait for before its native kernel
runs. Importing this module (the layer's and the network's modules do, before BrainPy
and JAX) calls :func:`begin`, which starts that work in a thread while their imports go on; a
kernel called before the thread is done waits for it in numba's own lock, so nothing
changes but when the work is done. Without numba it does nothing, and
``import canns_stdp`` alone (the command line's help) never starts it.
"""

from __future__ import annotations

import importlib.util
import threading

__all__ = ["begin"]

_THREAD_NAME = "canns_stdp-native-start"
_started: list = []  # the thread, once started
failure: list = []   # what stopped it, if anything did (a kernel's own first call meets it again and reports it)


def begin() -> None:
    """Start numba's registries in a background thread, once per process (not joined:
    the interpreter waits for it at exit, as for any thread that is not a daemon, so it
    never stops half way)."""
    if _started or importlib.util.find_spec("numba") is None:
        return
    thread = threading.Thread(target=_start_numba, name=_THREAD_NAME)
    _started.append(thread)
    thread.start()


def _start_numba() -> None:
    try:  # the first function numba loads from its cache (or compiles, once) fills its registries
        import numba
        numba.njit(cache=True, nogil=True)(_one_more)(1)
    except Exception as error:  # noqa: BLE001
        failure.append(error)


def _one_more(n):
    return n + 1


begin()
