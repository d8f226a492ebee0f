"""Writing a new weight array into the old one, in pieces the CPU runs in one thread.

XLA:CPU splits an elementwise pass that moves more than about 512 KB (its operands
included) into parts for its threads. For weights that fit in one core's cache that
costs more than it saves: at 784×400 on a 2-core machine a dense step took 191 µs with
its weight update split and 128 µs with it in one piece, as the hand-overs between the
threads went and the next step's matrix-vector product ran in 21 µs instead of 59 (with
the update split, half of ``W`` sat in the other core's cache). Gathering and summing
the 64 rows of ``W.T`` that a step of the event kernels visits took 15.8 µs split and
9.3 µs through a buffer; a deferred-LTP step, 53 µs and 34 µs
(``benchmarks/xla_cpu_rows.py``).

An update that XLA can do in place, a ``dynamic_update_slice`` of the old buffer, is
never split. So :func:`written_in_halves` writes new rows into ``old`` in two such
halves, and :func:`through_buffer` passes a few rows gathered from a large array
through a buffer of their own: the same values, computed by the calling thread.

Example:
    >>> import jax.numpy as jnp
    >>> from canns_stdp.functional.in_place import written_in_halves
    >>> W = jnp.zeros((400, 784))
    >>> W = written_in_halves(W, lambda buf, lo, hi: jnp.clip(buf[lo:hi] + 0.1, 0.0, 1.0))
"""

from __future__ import annotations

import math
from typing import Callable, Optional

import jax
import jax.numpy as jnp

__all__ = ["BUFFERED_ROWS_BYTES", "IN_PLACE_BYTES", "rows_buffer", "through_buffer", "written_in_halves",
           "writes_in_place"]

# Sizes written in place: from where XLA:CPU starts to split a pass to where the array
# no longer fits in one core's cache (NeuronBlocks cut larger layers into 2 MB blocks).
IN_PLACE_BYTES = (128 << 10, 4 << 20)
# Rows passed through a buffer up to this size; a larger pass gains from the split.
BUFFERED_ROWS_BYTES = 512 << 10


def writes_in_place(old) -> bool:
    """Whether :func:`written_in_halves` pays: a CPU array of ``IN_PLACE_BYTES`` with at
    least two rows."""
    low, high = IN_PLACE_BYTES
    size = old.size * jnp.dtype(old.dtype).itemsize
    return jax.default_backend() == "cpu" and old.ndim >= 1 and old.shape[0] >= 2 and low <= size <= high


def written_in_halves(old, rows: Callable):
    """``old`` with its rows replaced by ``rows(buffer, lo, hi)``, the new rows ``lo:hi``
    computed from ``buffer[lo:hi]``, written in place one half at a time.

    The second half reads the buffer the first half was written into; its rows are
    still the old ones. Call it where :func:`writes_in_place`.
    """
    n = old.shape[0]
    half = n // 2
    out = jax.lax.dynamic_update_slice_in_dim(old, rows(old, 0, half), 0, 0)
    return jax.lax.dynamic_update_slice_in_dim(out, rows(out, half, n), half, 0)


def rows_buffer(rows: int, row_shape, dtype=jnp.float32) -> Optional[jnp.ndarray]:
    """A buffer for :func:`through_buffer` of ``rows`` rows (one row more, so that
    writing them is not a replacement of the whole buffer, which XLA would fold away),
    or ``None`` on other backends and above ``BUFFERED_ROWS_BYTES``, where splitting
    the pass between threads pays."""
    size = rows * math.prod(row_shape) * jnp.dtype(dtype).itemsize
    if jax.default_backend() != "cpu" or size > BUFFERED_ROWS_BYTES:
        return None
    return jnp.zeros((rows + 1,) + tuple(row_shape), dtype)


def through_buffer(buffer, rows):
    """``(buffer, rows)``: ``rows`` written into the first rows of ``buffer`` (from
    :func:`rows_buffer`, carried from step to step) and read back; ``rows`` as they are
    when ``buffer`` is ``None``.

    The same values; the pass that computes them, e.g. rows gathered from a large
    array, is then done in place by the calling thread, where XLA:CPU would split it.
    """
    if buffer is None:
        return None, rows
    buffer = jax.lax.dynamic_update_slice_in_dim(buffer, rows.astype(buffer.dtype), 0, 0)
    return buffer, buffer[:rows.shape[0]]
