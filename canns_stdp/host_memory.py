"""Large arrays on the host whose memory is used again once nothing references it.

A call of the native kernel writes a layer's weights, and the spikes it records, into new
arrays on the host, which JAX or the caller then keep. Memory the system maps for the
first time costs its page faults (a 64 MiB array: 4 ms of faults on one thread where its
memory is used again, about 60 ms where the system brings new pages, on this project's
2-core machine; several threads writing new memory at once wait on each other in them),
so at 4096x4096 a call's new arrays cost about as much as its steps at p = 0.01. The
arrays of :func:`host_empty` from ``_RECYCLED_FROM`` bytes are taken from buffers made
before that nothing references any more: JAX keeps a reference to an array it took over
(its memory) for as long as the JAX array or any view of it lives, and so does every
NumPy view, so a buffer referenced by this module alone is free. Up to ``_KEPT_FREE``
free buffers are kept for the next calls; :func:`release_host_memory` gives them back,
and the room other modules keep for later calls (see :func:`keeps_room`).
"""

from __future__ import annotations

import sys
import threading

import numpy as np

__all__ = ["ALIGNMENT", "host_empty", "keeps_room", "release_host_memory"]

ALIGNMENT = 64  # bytes: JAX takes over a host array without a copy where it starts on this boundary
_PAGE = 4096
_MAPPED_FROM = 1 << 20    # bytes from which a new array's pages are mapped as it is made (see _mapped)
_RECYCLED_FROM = 4 << 20  # bytes from which host_empty uses free buffers again
_KEPT_FREE = 6            # free buffers kept for later calls (each as large as the arrays asked for)

_buffers: list = []  # the buffers host_empty made (owning uint8 arrays), oldest first
_lock = threading.Lock()
_kept_elsewhere: list = []  # functions that drop the room a module keeps, each returning its bytes


def host_empty(shape, dtype=np.float32):
    """``np.empty(shape, dtype)`` whose memory starts on a 64-byte boundary, as JAX takes
    it over without a copy (``layer.on_device_tree``), and is mapped (:func:`_mapped`);
    from ``_RECYCLED_FROM`` bytes, the memory of a buffer nothing references any more
    where one of the size is free."""
    dtype = np.dtype(dtype)
    nbytes = int(np.prod(shape)) * dtype.itemsize
    buffer = _buffer(nbytes + ALIGNMENT)
    start = -buffer.ctypes.data % ALIGNMENT
    return buffer[start:start + nbytes].view(dtype).reshape(shape)


def _mapped(a):
    """A new C-contiguous array ``a`` with every page of its memory mapped by this thread:
    a zero byte written to each page (as a page the system maps starts), before threads
    write to it (two threads writing 64 MiB of new memory: 78-89 ms; mapped first, 11 ms)."""
    if a.nbytes >= _MAPPED_FROM:
        a.reshape(-1).view(np.uint8)[::_PAGE] = 0
    return a


def release_host_memory() -> int:
    """Drop the free buffers and the room kept for later calls (their memory goes back to
    the system once nothing else references it); returns their bytes."""
    elsewhere = sum(release() for release in _kept_elsewhere)  # (first: what they held may be free then)
    with _lock:
        free = _free()
        _buffers[:] = [b for b in _buffers if not any(b is f for f in free)]
    return sum(b.nbytes for b in free) + elsewhere


def keeps_room(release):
    """Register ``release()``, which drops the room a module keeps for later calls (e.g. a
    kernel's working arrays) and returns its bytes, for :func:`release_host_memory`."""
    _kept_elsewhere.append(release)
    return release


def _buffer(nbytes: int):
    """A buffer of ``nbytes``: a free one of that size, else a new one (kept, and the
    oldest free buffers beyond ``_KEPT_FREE`` dropped)."""
    if nbytes < _RECYCLED_FROM:
        return _mapped(np.empty(nbytes, np.uint8))
    with _lock:
        free = _free()
        if not any(b.nbytes == nbytes for b in free):
            del free  # (its references would count)
            _let_jax_release()
            free = _free()
        for buffer in free:
            if buffer.nbytes == nbytes:
                return buffer
        buffer = _mapped(np.empty(nbytes, np.uint8))
        dropped = free[:max(0, len(free) - _KEPT_FREE + 1)]
        _buffers[:] = [b for b in _buffers if not any(b is d for d in dropped)] + [buffer]
        return buffer


def _let_jax_release() -> None:
    """Let JAX drop the arrays it took over that nothing uses any more: it lets go of them
    at its next operation, not as their last JAX array goes (a scalar put on the device:
    about 0.1 ms, where new memory for a layer's weights costs tens)."""
    import jax
    jax.device_put(np.float32(0.0))


def _free() -> list:
    """The buffers nothing but this module references, oldest first: as many references
    to them as to a new array held in a list alone (counted the same way, so that the
    count does not depend on how the interpreter counts its own)."""
    alone = _references([np.empty(0, np.uint8)])[0]
    return [b for b, n in zip(_buffers, _references(_buffers)) if n == alone]


def _references(buffers: list) -> list:
    return [sys.getrefcount(b) for b in buffers]
