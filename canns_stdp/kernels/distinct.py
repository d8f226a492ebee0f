"""Arrays the compiler knows never overlap, for the native kernels' inner loops.

Unless told otherwise, LLVM must assume that a store into one array may change another:
it guards each vectorised loop with a run-time overlap test, keeps a scalar copy of the
loop for when they overlap, and so keeps a sum over many such loops in memory instead of
in registers. Two ways to tell it:

- :class:`DistinctArrays`, numba's compiler with its ``noalias`` flag set: each array
  argument's data pointer reaches LLVM marked ``noalias`` (as C's ``restrict``). Only for
  kernels whose callers pass distinct arrays (two views of one array must not both be
  passed where either is written).
- :func:`stack_lanes`: room on the calling function's stack, which no other array can
  overlap (a block's current, summed over the rows of its active inputs).

It needs numba (the ``native`` extra): without it, :mod:`.native_pair` does not import
it and the XLA kernels run.
"""

from __future__ import annotations

__all__ = ["DistinctArrays", "stack_lanes"]

from llvmlite import ir
from numba.core import cgutils, types
from numba.core.compiler import Compiler
from numba.extending import intrinsic
from numba.np.arrayobj import populate_array


class DistinctArrays(Compiler):
    """numba's own compiler pipeline, with the arguments marked ``noalias`` (a
    ``pipeline_class`` for ``numba.njit``)."""

    def __init__(self, typingctx, targetctx, library, args, return_type, flags, locals):
        flags = flags.copy()
        flags.noalias = True
        super().__init__(typingctx, targetctx, library, args, return_type, flags, locals)


@intrinsic
def stack_lanes(typingctx, size):
    """Room for ``size`` (a literal) float32 on the stack of the calling function, as a
    1-D array (uninitialised; valid until that function returns)."""
    if not isinstance(size, types.IntegerLiteral):
        return None
    kind = types.Array(types.float32, 1, "C")

    def codegen(context, builder, signature, args):
        n = size.literal_value
        intp = context.get_value_type(types.intp)
        array = context.make_array(kind)(context, builder)
        populate_array(array, data=cgutils.alloca_once(builder, ir.FloatType(), size=n),
                       shape=[ir.Constant(intp, n)], strides=[ir.Constant(intp, 4)],
                       itemsize=ir.Constant(intp, 4), meminfo=None)
        return array._getvalue()
    return kind(size), codegen
