"""Tiles of 16 x 16 float32 weights moved between the native kernel's layout and
``(n_out, n_in)``, transposed in vector registers.

The kernel's layout holds a block's weights input by input (64 neurons' lanes per input),
a layer's ``W`` neuron by neuron, so moving weights between them is a transposition. A
loop of scalar loads and stores moved them at about 1 ns a weight; here a tile of 16
rows of 16 floats is loaded as 16 vectors, transposed by four rounds of interleaving
shuffles (LLVM's ``shufflevector``: two-source permutes on AVX-512, pairs of narrower ones
elsewhere) and stored as 16 vectors (4096x4096 settled out of the layout, one thread:
14.6 ms by the scalar loop, 3.9 ms so, the tiles of a block's 16 lanes taken input after
input; 7.1 ms with the inputs outer).

:func:`settled_tile` brings each weight up to date on the way, ``clip(u + rate * owed)``
(each input's owed LTP in its own base) as the kernel settles its ledger (a multiply
then an add, each rounded, and the bounds as
selects, so the result is the scalar loop's bit for bit), and tells whether every weight
it stored is finite.
"""

from __future__ import annotations

from .native_pair import numba

__all__ = ["TILE", "settled_tile", "transposed_tile"]

TILE = 16  # rows and columns of a tile

if numba is not None:
    from llvmlite import ir
    from numba.core import types
    from numba.extending import intrinsic

    _INTERLEAVED = ([v for i in range(TILE // 2) for v in (i, i + TILE)],  # the first halves, interleaved
                    [v for i in range(TILE // 2, TILE) for v in (i, i + TILE)])  # the second halves

    def _flat(dtype, *arrays) -> bool:
        return all(isinstance(a, types.Array) and a.ndim == 1 and a.dtype == dtype and a.layout == "C"
                   for a in arrays)

    def _flat_float32(*arrays) -> bool:
        return _flat(types.float32, *arrays)

    _I = types.int64  # (offsets and strides: the arguments given are cast to it)

    def _integers(*numbers) -> bool:
        return all(isinstance(n, types.Integer) for n in numbers)

    class _Tile:
        """LLVM IR of a tile's move for one call: its loads, transposition and stores."""

        def __init__(self, context, builder, signature, args):
            self.context, self.builder, self.signature, self.args = context, builder, signature, args
            self.vector = ir.VectorType(ir.FloatType(), TILE)

        def index(self, k):
            return self.args[k]  # (an int64: see the signatures)

        def data(self, k):
            return self.context.make_array(self.signature.args[k])(self.context, self.builder, self.args[k]).data

        def at(self, k, offset, row=0, stride=None):
            """A pointer to entry ``offset + row * stride`` of array argument ``k``."""
            b = self.builder
            if stride is not None:
                offset = b.add(offset, b.mul(stride, ir.Constant(ir.IntType(64), row)))
            return b.gep(self.data(k), [offset])

        def rows(self):
            s_offset, s_stride = self.index(1), self.index(2)
            return [self.builder.load(self.builder.bitcast(self.at(0, s_offset, i, s_stride), self.vector.as_pointer()),
                                      align=4) for i in range(TILE)]

        def transposed(self, rows):
            """Row ``i`` entry ``k`` to row ``k`` entry ``i``: each round interleaves row ``i``
            with row ``i + 8`` (after four, of a 16 x 16 tile, the transposition)."""
            masks = [ir.Constant(ir.VectorType(ir.IntType(32), TILE), m) for m in _INTERLEAVED]
            for _ in range(4):
                rows = [self.builder.shuffle_vector(rows[i], rows[i + TILE // 2], mask)
                        for i in range(TILE // 2) for mask in masks]
            return rows

        def store(self, rows):
            d_offset, d_stride = self.index(4), self.index(5)
            for i, row in enumerate(rows):
                self.builder.store(row, self.builder.bitcast(self.at(3, d_offset, i, d_stride),
                                                             self.vector.as_pointer()), align=4)

        def splat(self, scalar):
            b, undefined = self.builder, ir.Constant(self.vector, ir.Undefined)
            zeros = ir.Constant(ir.VectorType(ir.IntType(32), TILE), [0] * TILE)
            return b.shuffle_vector(b.insert_element(undefined, scalar, ir.Constant(ir.IntType(32), 0)), undefined,
                                    zeros)

    @intrinsic
    def transposed_tile(typingctx, src, s_offset, s_stride, dst, d_offset, d_stride):
        """``dst[d_offset + k * d_stride + i] = src[s_offset + i * s_stride + k]`` for ``i,
        k < 16``: a tile of flat float32 arrays (C-contiguous, 1-D), offsets and strides in
        entries."""
        if not (_flat_float32(src, dst) and _integers(s_offset, s_stride, d_offset, d_stride)):
            return None

        def codegen(context, builder, signature, args):
            tile = _Tile(context, builder, signature, args)
            tile.store(tile.transposed(tile.rows()))
            return context.get_dummy_value()
        return types.void(src, _I, _I, dst, _I, _I), codegen

    @intrinsic
    def settled_tile(typingctx, src, s_offset, s_stride, dst, d_offset, d_stride, rates, r_offset, owed, o_offset,
                     bases, o_stride, w_min, w_max, hardbound):
        """:func:`transposed_tile` of ``clip(u + rates[r_offset + i] * owed[o_offset +
        bases[r_offset + i] * o_stride + k])`` (row ``i`` of the tile, entry ``k``; its
        input's owed LTP in the input's base, ``bases`` int32; clipped to ``[w_min,
        w_max]`` where ``hardbound``, as the kernel's ``_within``: a NaN becomes
        ``w_min``); whether every weight stored is finite."""
        if not (_flat_float32(src, dst, rates, owed) and _flat(types.int32, bases)
                and _integers(s_offset, s_stride, d_offset, d_stride, r_offset, o_offset, o_stride)
                and w_min == w_max == types.float32 and isinstance(hardbound, types.Boolean)):
            return None

        def codegen(context, builder, signature, args):
            tile = _Tile(context, builder, signature, args)
            b, i64 = builder, ir.IntType(64)
            low, high = tile.splat(args[12]), tile.splat(args[13])
            rows, unordered = [], None
            for i, u in enumerate(tile.rows()):
                at = b.add(tile.index(7), ir.Constant(i64, i))
                rate = b.load(tile.at(6, at))
                base = b.sext(b.load(tile.at(10, at)), i64)
                owed_at = b.add(tile.index(9), b.mul(base, tile.index(11)))
                owed_lanes = b.load(b.bitcast(tile.at(8, owed_at), tile.vector.as_pointer()), align=4)
                w = b.fadd(u, b.fmul(tile.splat(rate), owed_lanes))
                clipped = b.select(b.fcmp_ordered(">", w, low), w, low)
                clipped = b.select(b.fcmp_ordered("<", clipped, high), clipped, high)
                w = b.select(args[14], clipped, w)
                rows.append(w)
                difference = b.fsub(w, w)  # NaN where w is infinite or NaN
                nan = b.fcmp_unordered("uno", difference, difference)
                unordered = nan if unordered is None else b.or_(unordered, nan)
            tile.store(tile.transposed(rows))
            any_unordered = b.icmp_unsigned("!=", b.bitcast(unordered, ir.IntType(TILE)), ir.Constant(ir.IntType(TILE),
                                                                                                        0))
            return b.not_(any_unordered)
        return types.boolean(src, _I, _I, dst, _I, _I, rates, _I, owed, _I, bases, _I, w_min, w_max,
                             types.boolean), codegen
else:  # without numba, nothing calls them
    transposed_tile = settled_tile = None
