"""A software prefetch for the native kernels: ``prefetch(a, i)`` asks the CPU to bring
the cache line of ``a[i]`` closer (LLVM's ``llvm.prefetch``; a hint with no effect on any
result). The kernels call it for the synapses they will visit next, whose addresses they
know a few sources ahead while the hardware prefetcher cannot guess them."""

from __future__ import annotations

from .native_pair import numba

__all__ = ["prefetch", "prefetch_run"]

if numba is not None:
    from llvmlite import ir
    from numba.core import cgutils, types
    from numba.extending import intrinsic

    @intrinsic
    def prefetch(typingctx, array, index):
        """``a[index]``'s cache line, prefetched for reading (kept in all cache levels)."""
        if not isinstance(array, types.Array) or not isinstance(index, types.Integer):
            return None

        def codegen(context, builder, signature, args):
            kind = signature.args[0]
            view = context.make_array(kind)(context, builder, args[0])
            address = cgutils.get_item_pointer(context, builder, kind, view, [args[1]], wraparound=False)
            byte_pointer, i32 = ir.IntType(8).as_pointer(), ir.IntType(32)
            hint = cgutils.get_or_insert_function(builder.module, ir.FunctionType(
                ir.VoidType(), [byte_pointer, i32, i32, i32]), "llvm.prefetch.p0i8")
            # (address, read, locality 3: every cache level, data)
            builder.call(hint, [builder.bitcast(address, byte_pointer), ir.Constant(i32, 0), ir.Constant(i32, 3),
                                ir.Constant(i32, 1)])
            return context.get_dummy_value()
        return types.void(array, index), codegen

    @numba.njit(inline="always")
    def prefetch_run(a, start, stop):
        """The cache lines of ``a[start:stop]`` (16 four-byte entries a line), prefetched."""
        for m in range(start, stop, 16):
            prefetch(a, m)
        if stop > start:
            prefetch(a, stop - 1)
else:  # without numba, nothing calls them
    prefetch = prefetch_run = None
