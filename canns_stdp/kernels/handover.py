"""Numbers that the native kernel's threads hand one another while they run: one
thread's writes made visible to the others, and a wait for them.

The threads of a layer's chunk each run a group of blocks of neurons over the same
stretches of steps, which read the same pre terms; each stretch's terms are computed by
one of the threads, in turn, into one of a few regions of a room they share
(:func:`~canns_stdp.kernels.native_pair.native_chunk`), instead of by every thread. A
thread publishes what it has done (``publish``: an atomic store with release
semantics, after which its earlier writes are visible to a thread that reads the number
with :func:`published`, an atomic load with acquire semantics) and waits for what the
others publish (:func:`wait_for`, spinning with the CPU's pause hint between reads).
Without these, the compiler may keep a number it reads in a loop in a register and
never see another thread's store.
"""

from __future__ import annotations

import platform

from .native_pair import numba

__all__ = ["publish", "published", "wait_for"]

_X86 = platform.machine().lower() in ("x86_64", "amd64", "i386", "i686", "x86")

if numba is not None:
    from llvmlite import ir
    from numba.core import cgutils, types
    from numba.extending import intrinsic

    def _flat_int64(array) -> bool:
        return isinstance(array, types.Array) and array.ndim == 1 and array.dtype == types.int64

    def _address(context, builder, signature, args):
        kind = signature.args[0]
        view = context.make_array(kind)(context, builder, args[0])
        return cgutils.get_item_pointer(context, builder, kind, view, [args[1]], wraparound=False)

    @intrinsic
    def published(typingctx, numbers, index):
        """``numbers[index]`` (int64), read as an atomic load with acquire semantics."""
        if not (_flat_int64(numbers) and isinstance(index, types.Integer)):
            return None

        def codegen(context, builder, signature, args):
            return builder.load_atomic(_address(context, builder, signature, args), "acquire", 8)
        return types.int64(numbers, index), codegen

    @intrinsic
    def publish(typingctx, numbers, index, value):
        """``numbers[index] = value`` (int64), an atomic store with release semantics."""
        if not (_flat_int64(numbers) and isinstance(index, types.Integer) and isinstance(value, types.Integer)):
            return None

        def codegen(context, builder, signature, args):
            number = context.cast(builder, args[2], signature.args[2], types.int64)
            builder.store_atomic(number, _address(context, builder, signature, args), "release", 8)
            return context.get_dummy_value()
        return types.void(numbers, index, value), codegen

    @intrinsic
    def _pause(typingctx):
        """The CPU's hint that this thread is spinning (x86's ``pause``; nothing elsewhere)."""
        def codegen(context, builder, signature, args):
            if _X86:
                hint = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ir.VoidType(), []),
                                                      "llvm.x86.sse2.pause")
                builder.call(hint, [])
            return context.get_dummy_value()
        return types.void(), codegen

    @numba.njit(inline="always")
    def wait_for(numbers, index, at_least, abort):
        """Until ``numbers[index] >= at_least`` (published by another thread); false if
        ``numbers[abort]`` becomes nonzero first (a thread that failed)."""
        while published(numbers, index) < at_least:
            if published(numbers, abort) != 0:
                return False
            _pause()
        return True
else:  # without numba, nothing calls them
    publish = published = wait_for = None
