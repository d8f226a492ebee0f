"""Which of 64 float32 entries are nonzero, as the bits of one integer, in a few vector
instructions: the native kernels list a step's active inputs from it.

A loop that shifts each entry's test into a mask runs scalar, a few instructions an entry
(4096 inputs: the listing took 1.0 us a step on every thread that lists them, 0.7 us
with the mask made here, most of it now the pass over the set bits); it is kept where the
entries are not next to each other in memory, or fewer than 64. Here the 64 entries are
loaded as one vector of integers, their sign bits masked off (-0.0 is not active),
compared with zero and the 64 results taken as the bits of an integer (LLVM's ``icmp`` on
a vector, bitcast to ``i64``: compares into mask registers, 16 entries each, on AVX-512,
and moves of the compares' sign bits elsewhere). Both of the native kernels' listings of
active entries (a layer's inputs, a network's spikes) use :func:`nonzero_mask`. The
inverse, :func:`ones_at_mask` (:func:`ones_at_bits` where it can), writes 64 floats (1
where a bit is set) from such an integer in one vector store: a block of the layer
kernel keeps its spikes as these bits until its stretch of steps ends.
"""

from __future__ import annotations

import numpy as np

from .native_pair import numba

__all__ = ["MAGNITUDE", "nonzero_bits", "nonzero_mask", "ones_at_bits", "ones_at_mask", "WIDTH"]

WIDTH = 64  # entries a mask covers
MAGNITUDE = np.int32(0x7FFFFFFF)  # all bits of a float32 but its sign

if numba is not None:
    from llvmlite import ir
    from numba.core import types
    from numba.extending import intrinsic

    @intrinsic
    def nonzero_bits(typingctx, x, start):
        """Bit ``j`` of the result (a ``uint64``) set where ``x[start + j]`` is nonzero (its
        bits, the sign aside), for ``j < 64``: ``x`` a 1-D float32 array whose entries
        ``start..start+63`` are next to each other in memory (not checked: the caller
        tests ``x.strides``)."""
        if not (isinstance(x, types.Array) and x.ndim == 1 and x.dtype == types.float32
                and isinstance(start, types.Integer)):
            return None

        def codegen(context, builder, signature, args):
            data = context.make_array(signature.args[0])(context, builder, args[0]).data
            lanes = ir.VectorType(ir.IntType(32), WIDTH)
            first = builder.gep(data, [args[1]])
            entries = builder.load(builder.bitcast(first, lanes.as_pointer()), align=4)
            magnitude = builder.and_(entries, ir.Constant(lanes, [int(MAGNITUDE)] * WIDTH))
            nonzero = builder.icmp_unsigned("!=", magnitude, ir.Constant(lanes, [0] * WIDTH))
            return builder.bitcast(nonzero, ir.IntType(WIDTH))
        return types.uint64(x, types.int64), codegen

    @numba.njit(inline="always")
    def nonzero_mask(x, start):
        """Bit ``j`` set where ``x[start + j]`` is nonzero (the sign aside), for the up to 64
        entries of a 1-D float32 ``x`` from ``start``: :func:`nonzero_bits` where 64 entries
        are next to each other in memory, else entry by entry."""
        n = min(WIDTH, x.shape[0] - start)
        if n == WIDTH and x.strides[0] == 4:
            return nonzero_bits(x, start)
        bits, mask = x.view(np.int32), np.uint64(0)
        for j in range(n):
            mask |= np.uint64((bits[start + j] & MAGNITUDE) != 0) << np.uint64(j)
        return mask

    @intrinsic
    def ones_at_bits(typingctx, bits, out, start):
        """``out[start + j] = 1.0`` where bit ``j`` of ``bits`` (a ``uint64``) is set, else
        ``0.0``, for ``j < 64``, as one vector store (the inverse of :func:`nonzero_bits`):
        ``out`` a 1-D float32 array whose entries ``start..start+63`` are next to each
        other in memory (not checked)."""
        if not (isinstance(bits, types.Integer) and isinstance(out, types.Array) and out.ndim == 1
                and out.dtype == types.float32 and isinstance(start, types.Integer)):
            return None

        def codegen(context, builder, signature, args):
            data = context.make_array(signature.args[1])(context, builder, args[1]).data
            lanes = ir.VectorType(ir.FloatType(), WIDTH)
            which = builder.bitcast(context.cast(builder, args[0], signature.args[0], types.uint64),
                                    ir.VectorType(ir.IntType(1), WIDTH))
            ones = builder.select(which, ir.Constant(lanes, [1.0] * WIDTH), ir.Constant(lanes, [0.0] * WIDTH))
            builder.store(ones, builder.bitcast(builder.gep(data, [args[2]]), lanes.as_pointer()), align=4)
            return context.get_dummy_value()
        return types.void(bits, out, start), codegen

    @numba.njit(inline="always")
    def ones_at_mask(bits, out, start):
        """``out[start + j] = 1.0`` where bit ``j`` of ``bits`` is set, else ``0.0``, for the up
        to 64 entries of a 1-D float32 ``out`` from ``start`` (the inverse of
        :func:`nonzero_mask`): :func:`ones_at_bits` where 64 entries are next to each other
        in memory, else entry by entry."""
        n = min(WIDTH, out.shape[0] - start)
        if n == WIDTH and out.strides[0] == 4:
            ones_at_bits(bits, out, start)
            return
        for j in range(n):
            out[start + j] = np.float32((bits >> np.uint64(j)) & np.uint64(1))
else:  # without numba, nothing calls them
    nonzero_bits = nonzero_mask = ones_at_bits = ones_at_mask = None
