"""Which of 64 float32 entries are nonzero, as the bits of one integer, in a few vector
instructions: the native kernels list a step's active inputs from it.

A loop that shifts each entry's test into a mask runs scalar, a few instructions an entry
(4096 inputs: the listing took 1.0 us a step on every thread that lists them, 0.7 us
with the mask made here, most of it now the pass over the set bits). Here the 64
entries are loaded as one vector of integers, their sign bits masked off (-0.0 is not
active), compared with zero and the 64 results taken as the bits of an integer (LLVM's
``icmp`` on a vector, bitcast to ``i64``: compares into mask registers, 16 entries each,
on AVX-512, and moves of the compares' sign bits elsewhere).
"""

from __future__ import annotations

from .native_pair import numba

__all__ = ["nonzero_bits", "WIDTH"]

WIDTH = 64  # entries a mask covers

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
            magnitude = builder.and_(entries, ir.Constant(lanes, [0x7FFFFFFF] * WIDTH))
            nonzero = builder.icmp_unsigned("!=", magnitude, ir.Constant(lanes, [0] * WIDTH))
            return builder.bitcast(nonzero, ir.IntType(WIDTH))
        return types.uint64(x, types.int64), codegen
else:  # without numba, nothing calls it
    nonzero_bits = None
