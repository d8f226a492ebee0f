"""The native CPU kernel: a whole chunk of pair-STDP steps of a dense layer in one call.

A layer driven by its input has no coupling between output neurons (see
:class:`~canns_stdp.functional.layer_step.NeuronBlocks`), so the kernel runs one block of
64 neurons at a time, each block every step of a stretch of 64 steps (1,024 where the
weights are far larger than the cache) before the next block starts. Its private layout
stores a block's weights input by input (64 contiguous floats per input), so that the
current and the LTD of an active input are one vector operation on a block. ``W`` is put
in that layout as a run's first chunk starts (:func:`kernel_weights`), handed from chunk
to chunk in it, updated in place, and put back as ``(n_out, n_in)`` when the run ends
(:func:`layer_weights`). Weights outside their bounds are clipped at the first step of a
call, as the plain step clips every synapse (inside them, an untouched synapse is
unchanged). Blocks share nothing, so a chunk's blocks are split into groups that run on
threads of their own (:func:`block_groups`; the threads share the pre terms, each
stretch's computed by one of them in turn, where a stretch's terms are small), with the
one thread's result bit for bit.

The LTP of a neuron that fires reaches every input, also the silent ones. Where the rule
is additive (its LTP does not depend on ``W``), the kernel defers it: a silent input's
pre trace only decays, so what a row of synapses is owed is its input's rate ``tr_j
d^-c`` (as of its last active step, ``c`` its clock in its span) times each neuron's
``sum lr A+ s d^c`` since that span opened. Spans last 16 steps up to a stretch, the
longest over which the ledger rounds no more than the dense step
(``functional.event.deferred_span``); each span of a settling period of
``LEDGER_BASES`` spans opens a base, each neuron's owed LTP is kept in every base opened
so far and each input's rate in the base of its last active step. A block's rows hold
``U = W - rate * owed[base]``; an active input's row is brought up to date (``clip(U +
rate * owed[base])``, one vector operation), updated and stored back; every row is
settled as the period ends. A step then costs what its active inputs cost, however many
neurons fire. A call that ends inside a period hands the open ledger to the next
(:class:`OpenLedger`, ``U`` kept in the kernel's layout: :class:`BlockedWeights`), so
calls split anywhere give the one call's result. Otherwise a neuron that fired gets
its LTP at the silent inputs synapse by synapse; when more than a few neurons of the
block fired, the whole block is updated, a vector operation per input.

The pre trace depends on the input only: it is computed once per stretch of steps, with
each step's pairing term ``P`` and list of active inputs, before the neurons run.

Every number is computed as :func:`~canns_stdp.functional.layer_step.train_step` computes
it, operation by operation in float32 (``v' = leak*v + W x``, ``dW = lr*(A+ f+ (s P) -
A- f- (Q x))``, ``clip(W + dW)``). The current sums the active inputs in ascending order,
and ``W + lr*dW`` is rounded twice where XLA fuses a multiply-add, so results equal the
plain step to float rounding.

The trainer's loops drive chunks from Python, so the kernel is called there, on the
chunk's arrays on the host (:func:`native_chunk`; the state it hands on holds NumPy
arrays, which the next chunk takes as they are). Called through XLA instead (brainevent's
:class:`XLACustomKernel`, whose callback hands the buffers to numba), the same kernel ran
1.3-1.4x slower at 784x400 (the callback's work, and copies of the weights and spikes
around it). The ensemble's kernel is called from the host too; the network's kernel is
registered that way (:func:`registered`). numba is an optional dependency (the
``native`` extra); without it the XLA kernels run, and the library says so once
(:func:`native_available`). The compiled kernel is cached on disk, so a fresh process
does not compile it again.
"""

from __future__ import annotations

import os
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor
from typing import Any, NamedTuple

import jax
import numpy as np

from ..functional.dependence import DEPENDENCES
from ..functional.traces import TRACE_MODES
from .._validation import vouch_finite
from ..host_memory import host_empty, keeps_room
from .policy import HANDOVER_MAX_TERMS, NATIVE_THREADED_MIN_SYNAPSES, NATIVE_THREADED_MIN_WORK

try:  # numba, and brainevent's mechanism to call it from a compiled function
    import numba
    from brainevent import XLACustomKernel, numba_kernel
    from numba.cpython.unsafe.numbers import trailing_zeros  # (LLVM's cttz)

    from .distinct import DistinctArrays, stack_lanes
except ImportError:  # the XLA kernels run instead
    numba = None

__all__ = ["BlockedWeights", "HostChunk", "LEDGER_BASES", "OpenLedger", "blocked_lanes", "host_chunk", "host_outputs",
           "host_result", "host_view", "in_kernel_layout", "kernel_flags", "kernel_weights", "layer_numbers",
           "layer_weights", "ledger_arrays", "native_available", "native_chunk", "native_compatible", "on_host",
           "out_of_layout", "settled", "settling_period", "stretch_for"]

# the kernel's codes of the static choices (its branches test these numbers)
_PAIRINGS = ("symmetric", "causal", "strict")
_DEPENDENCE_CODES = {DEPENDENCES[name]: code for code, name in enumerate(("additive", "hard", "soft", "power"))}
_COEF = ("d_pre", "a_pre", "d_post", "a_post", "lr", "A_plus", "A_minus", "w_min", "w_max", "mu")
_SYNC_REGIONS = 1  # (a chunk's sync[0]: a thread failed; then the regions' stretches, then the groups' stretches run)
_LANES = 64  # neurons per block of the kernel's layout (a contiguous run the compiler vectorises)
_FEW_FIRED = 5  # up to this many lanes of a block firing, their LTP runs synapse by synapse
# deferred LTP keeps a base for each span of a settling period (of this many spans), each
# neuron's owed LTP in every base, each input's rate in the base of its last active step: rows
# are settled once a period instead of once a span (at 4096x4096 and almost no input the
# settling of every span was half of a step)
LEDGER_BASES = 8
NATIVE_STRETCH = 64  # steps per stretch: its pre terms stay in the L2 cache while every block of neurons runs it
# ... but each stretch brings every block's weights from memory again: where they are far
# larger than the last-level cache, longer stretches run (4096x4096, kernel alone, calls of
# 2,048 steps, steps/s at p = 0.05 / 0.01: 64 steps 2.7k / 6.5k, 256 4.2k / 11.2k, 512
# 4.6k / 13.3k, 1,024 4.6k / 12.8k; 2048x2048 and 4096x1024 (16 MiB) 1.2-1.45x with 512,
# 1024x4096 1.05x, 2048x1024 (8 MiB) even; 784x400 0.8x: its pre terms leave the L2 cache).
# Since the steps read the pairing terms of the active inputs beside their values, not
# from a row of every input's, 1,024 steps gain too (one thread, calls of 2,048 steps, us
# per step at p = 0.01 / 0.05, 512 against 1,024: 4096x4096 50.7 / 153.8 against 43.1 /
# 147.3, 4096x1024 16.1 / 42.3 against 12.7 / 40.1, 8192x4096 111 / 372 against 95 / 351,
# 2048x2048 and 1024x4096 even)
LONG_STRETCH = 1024
_LONG_STRETCH_MIN_BYTES = 16 << 20  # weights from which stretches are long ...
_LONG_STRETCH_MIN_OUT = 1024  # ... in layers of at least this many neurons: a stretch's pre terms,
# ``LONG_STRETCH * n_in`` numbers of each kind, stay within a few times the weights
# Up to 1,024 inputs, a stretch of 128 steps keeps its pre terms in the L2 cache beside a
# block's weights, and lets spans of deferred LTP be as long where the rounding allows
# (kernel alone, calls of 2,000 steps, 128 steps against 64: 784x400 1.03-1.04x at p =
# 0.05, 1.11x at p = 0.01; 784x100 1.02-1.07x; 256 steps gained nothing more at 784x400
# and lost at 784x100)
MEDIUM_STRETCH = 128
_MEDIUM_STRETCH_MAX_INPUTS = 1024


def settling_period(span: int) -> int:
    """Steps between settlings of deferred LTP over spans of ``span`` steps: ``LEDGER_BASES``
    spans (whatever the stretches: they only group the steps)."""
    return span * LEDGER_BASES


def stretch_for(n_out: int, n_in: int) -> int:
    """Steps per stretch of the native kernel for a layer of ``n_out`` neurons and ``n_in``
    inputs (a multiple of every span of deferred LTP)."""
    if 4 * n_out * n_in >= _LONG_STRETCH_MIN_BYTES and n_out >= _LONG_STRETCH_MIN_OUT:
        return LONG_STRETCH
    if n_in <= _MEDIUM_STRETCH_MAX_INPUTS:
        return MEDIUM_STRETCH
    return NATIVE_STRETCH


_warned = []


def native_available(warn: bool = True) -> bool:
    """Whether the native kernel can run: numba installed and JAX on the CPU. Says once,
    as a warning, when JAX runs on the CPU without numba."""
    if jax.default_backend() != "cpu":
        return False
    if numba is None and warn and not _warned:
        _warned.append(True)
        warnings.warn("numba is not installed (or brainevent cannot call it): canns_stdp trains dense layers with "
                      "its XLA kernels, which are slower on a CPU (pip install 'canns_stdp[native]' adds the native "
                      "kernel)",
                      RuntimeWarning, stacklevel=3)
    return numba is not None


def native_compatible(config, params, dtype) -> bool:
    """A built-in weight dependence and trace mode, scalar trace and rule numbers, float32."""
    if config.dependence not in _DEPENDENCE_CODES or config.trace_add not in TRACE_MODES.values():
        return False
    if np.dtype(dtype) != np.float32:
        return False
    numbers = (*params.traces, params.stdp.lr, params.stdp.A_plus, params.stdp.A_minus, *params.stdp.bounds)
    return all(np.ndim(a) == 0 for a in numbers)


if numba is not None:
    from .prefetch import prefetch_run
    from .nonzero import WIDTH, nonzero_mask, ones_at_mask
    from .tiles import TILE, settled_tile, transposed_tile
    from .handover import publish, wait_for

    @numba.njit(inline="always")
    def _advance_trace(x, trace, P, d_pre, a_pre, nearest, strict):
        """One step of the pre trace (``trace`` in place) and its pairing term ``P``: each
        choice a loop of its own, which the compiler vectorises."""
        if nearest and strict:
            for j in range(x.shape[0]):
                decayed = d_pre * trace[j]
                P[j] = decayed
                trace[j] = a_pre if x[j] > 0 else decayed
        elif nearest:
            for j in range(x.shape[0]):
                new = a_pre if x[j] > 0 else d_pre * trace[j]
                P[j] = new
                trace[j] = new
        elif strict:
            for j in range(x.shape[0]):
                decayed = d_pre * trace[j]
                P[j] = decayed
                trace[j] = decayed + a_pre * x[j]
        else:
            for j in range(x.shape[0]):
                new = d_pre * trace[j] + a_pre * x[j]
                P[j] = new
                trace[j] = new

    @numba.njit(inline="always")
    def _list_active(x, active, values, count):
        """The nonzero entries of ``x``, ascending, appended to ``active`` (their values to
        ``values``) from ``count``; the new count. 64 entries at a time: a mask of those
        that are nonzero (sign bits aside: -0.0 is not), in vector instructions
        (:func:`.nonzero.nonzero_mask`), then one pass per set bit."""
        for start in range(0, x.shape[0], WIDTH):
            mask = nonzero_mask(x, start)
            while mask:
                j = start + trailing_zeros(mask)
                active[count] = j
                values[count] = x[j]
                count += 1
                mask &= mask - np.uint64(1)
        return count

    @numba.njit(inline="always")
    def _copy(source, target):
        """``target[:] = source`` as a loop (numba's slice assignment may allocate a copy, and
        compiles the message of its shape check: about 2 s of a machine's first call)."""
        for j in range(target.shape[0]):
            target[j] = source[j]

    _period = numba.njit(inline="always")(settling_period)  # (the kernel's own call of it)

    @numba.njit(cache=True, nogil=True, _nrt=False)
    def _pre_terms(first, stop, at, nearest, strict, d_pre, a_pre, xs, trace, terms, span, period):
        """The pre trace over steps ``first..stop-1`` (``trace`` in place) and ``terms`` (see
        :func:`_pre_arrays`): each step's pairing term ``P`` and its active inputs, ascending:
        ``active[offsets[t]:offsets[t+1]]`` with their values and pairing terms beside them
        (``values``, ``pairs``: read in order, where ``P`` at the active inputs is a cache
        line each; ``t`` counted from ``first``).

        With deferred LTP (``span`` > 0; step ``first`` is step ``at`` of its chunk, whose
        spans and settling periods of ``period`` steps it follows): each active input's
        ledger rate before and after its step (``owed_before``, ``owed_after``: ``tr_j
        d^-c`` as of its last active step, ``c`` the step's clock in its span, 1 to
        ``span``) and the base of the rate before (``base_before``: the span of the period
        it was active in last; the rate after is in the step's own), every input's rate
        and base at the end of each period or of these steps (``owed_end``, ``bases_end``,
        a row a period, from the period of ``at``), the running rates and bases (``rates``,
        ``bases``: every rate is the trace, in the first span's base, as a period opens)
        and, at a call's first step, the rates it opens with (``opening``). Only a call's
        first step then reads its row of ``P`` (where a weight is out of bounds, that step
        updates every synapse): the other steps' rows are written into ``P``'s last row,
        used again (4096 inputs: 16 KiB a step that stays in the L1 cache instead of going
        to memory, half of the trace's time)."""
        P, offsets, active, values, ledger, pairs = terms
        powers, owed_before, owed_after, owed_end, opening, rates, base_before, bases_end, bases = ledger
        count = 0
        for t in range(stop - first):
            offsets[t] = count
            g = at + t
            c = g % span + 1 if span > 0 else 0
            within = g % period if span > 0 else 0
            current_base = within // span if span > 0 else 0
            if span > 0 and within == 0:
                _copy(trace, rates)
                bases[:] = 0
            if first + t == 0 and span > 0:
                _copy(rates, opening)
            x = xs[first + t]
            P_t = P[t] if span == 0 or first + t == 0 else P[P.shape[0] - 1]
            _advance_trace(x, trace, P_t, d_pre, a_pre, nearest, strict)
            count = _list_active(x, active, values, offsets[t])
            for k in range(offsets[t], count):  # the active inputs' pairing terms, beside their values
                pairs[k] = P_t[active[k]]
            if span > 0:
                for k in range(offsets[t], count):  # the active inputs' rates restart from their new trace
                    j = active[k]
                    owed_before[k] = rates[j]
                    base_before[k] = bases[j]
                    rates[j] = trace[j] * powers[1, c]
                    bases[j] = current_base
                    owed_after[k] = rates[j]
                if within == period - 1 or t == stop - first - 1:
                    _copy(rates, owed_end[g // period - at // period])
                    _copy(bases, bases_end[g // period - at // period])
        offsets[stop - first] = count

    @numba.njit(inline="always")
    def _pre_arrays(steps, n_in, span, d_pre, regions):
        """Room for the pre terms of ``steps`` steps: ``(P, offsets, active, values, ledger,
        pairs)``, ``P`` with a row more (see :func:`_pre_terms`), the ledger of deferred
        LTP ``(powers, owed_before, owed_after, owed_end, opening, rates, base_before,
        bases_end, bases)`` (empty but ``powers`` without it: ``span`` 0), ``powers[0,
        c] = d_pre**c`` up to a settling period's longest, ``powers[1, c] = d_pre**-c`` up
        to a span. Made for ``regions`` stretches of ``steps`` steps at a time
        (:func:`_region`), each array but the ledger's running ones (``powers``,
        ``opening``, ``rates``, ``bases``) that many times over."""
        events = steps * n_in if span > 0 else 0
        powers = np.ones((2, _period(span) + 1), np.float32)
        for c in range(1, _period(span) + 1):
            powers[0, c] = np.float32(np.float64(d_pre) ** c)
            powers[1, c] = np.float32(np.float64(d_pre) ** -c) if c <= span else np.float32(1.0)
        ends = (steps + span - 1) // span + 1 if span > 0 else 0  # (rows enough for periods of a span or more)
        inputs = n_in if span > 0 else 0
        ledger = (powers, np.empty(regions * events, np.float32), np.empty(regions * events, np.float32),
                  np.empty((regions * ends, n_in), np.float32), np.empty(inputs, np.float32),
                  np.zeros(inputs, np.float32), np.empty(regions * events, np.int32),
                  np.empty((regions * ends, n_in), np.int32), np.zeros(inputs, np.int32))
        return (np.empty((regions * (steps + 1), n_in), np.float32), np.empty(regions * (steps + 1), np.int64),
                np.empty(regions * steps * n_in, np.int32), np.empty(regions * steps * n_in, np.float32), ledger,
                np.empty(regions * steps * n_in, np.float32))

    @numba.njit(inline="always")
    def _region(terms, r, regions):
        """Region ``r`` of pre terms made for ``regions`` stretches (:func:`_pre_arrays`): the
        terms of one stretch, views of the same types (the functions that take them are
        compiled once), the ledger's running arrays in common."""
        P, offsets, active, values, ledger, pairs = terms
        powers, owed_before, owed_after, owed_end, opening, rates, base_before, bases_end, bases = ledger
        rows, events, ends = offsets.shape[0] // regions, active.shape[0] // regions, owed_end.shape[0] // regions
        owing = owed_before.shape[0] // regions
        e_lo, e_hi, o_lo, o_hi = r * events, (r + 1) * events, r * owing, (r + 1) * owing
        n_lo, n_hi = r * ends, (r + 1) * ends
        return (P[r * rows:(r + 1) * rows], offsets[r * rows:(r + 1) * rows], active[e_lo:e_hi], values[e_lo:e_hi],
                (powers, owed_before[o_lo:o_hi], owed_after[o_lo:o_hi], owed_end[n_lo:n_hi], opening, rates,
                 base_before[o_lo:o_hi], bases_end[n_lo:n_hi], bases), pairs[e_lo:e_hi])

    @numba.njit(inline="always")
    def _room_steps(terms):
        """The steps of pre terms that ``terms`` (:func:`_pre_arrays`) have room for."""
        return terms[1].shape[0] - 1

    @numba.njit(inline="always")
    def _updated(w, ltp_term, ltd_term, dependence, lr, w_min, w_max, mu, hardbound):
        """``clip(w + lr * (f+(w) ltp - f-(w) ltd))`` for one synapse, in float32."""
        if dependence == 0:
            ltp, ltd = ltp_term, ltd_term
        elif dependence == 1:
            ltp = ltp_term * np.float32(1.0 if w_max - w > 0 else 0.0)
            ltd = ltd_term * np.float32(1.0 if w - w_min > 0 else 0.0)
        elif dependence == 2:
            ltp = max(w_max - w, np.float32(0.0)) * ltp_term
            ltd = max(w - w_min, np.float32(0.0)) * ltd_term
        else:
            ltp = max(w_max - w, np.float32(0.0)) ** mu * ltp_term
            ltd = max(w - w_min, np.float32(0.0)) ** mu * ltd_term
        w = w + lr * (ltp - ltd)
        if hardbound:
            w = min(max(w, w_min), w_max)
        return w

    @numba.njit(inline="always")
    def _within(w, w_min, w_max, hardbound):
        """``w`` clipped to the bounds where they are hard (selects, which vectorise)."""
        if hardbound:
            w = w if w > w_min else w_min
            w = w if w < w_max else w_max
        return w

    # (a function of its own, compiled with its arrays marked distinct, not inlined: inlined,
    # the compiler could not tell a block's rows from the lanes' amplitudes, and tested
    # every row against them before its vector loop, 784x400 1.11x and 4096x4096 1.06x
    # (p = 0.01) to 1.13x (p = 0.05) slower; its callers pass arrays that do not overlap)
    @numba.njit(nogil=True, _nrt=False, pipeline_class=DistinctArrays)
    def _update_synapses(block, inputs, values, pairs, ltp_amp, ltd_amp, dependence, lr, w_min, w_max, mu,
                         hardbound, rates, owed, owing):
        """Synapses ``inputs`` (with input values ``values`` and pairing terms ``pairs``, one
        per input) of every neuron of a block, by ``(A+ s) P_j`` and ``(A- Q) x_j``; one
        contiguous slice of lanes per input, which the compiler turns into vector
        operations. ``owing`` (the additive rule's deferred LTP): each row is stored as ``W
        - rate * owed``, ``rates`` one per input."""
        for k in range(inputs.shape[0]):
            j = inputs[k]
            lanes, p, x = block[j * _LANES:(j + 1) * _LANES], pairs[k], values[k]
            if dependence == 0 and owing:
                rate = rates[k]
                for lane in range(_LANES):
                    w = _within(lanes[lane] + lr * (ltp_amp[lane] * p - ltd_amp[lane] * x), w_min, w_max, hardbound)
                    lanes[lane] = w - rate * owed[lane]
            elif dependence == 0:
                for lane in range(_LANES):
                    lanes[lane] = _within(lanes[lane] + lr * (ltp_amp[lane] * p - ltd_amp[lane] * x), w_min, w_max,
                                          hardbound)
            else:
                for lane in range(_LANES):
                    lanes[lane] = _updated(lanes[lane], ltp_amp[lane] * p, ltd_amp[lane] * x, dependence, lr, w_min,
                                           w_max, mu, hardbound)

    @numba.njit(inline="always")
    def _potentiate_silent_inputs(block, lane, active, x, P, ltp_amp, ltd_amp, dependence, lr, w_min, w_max, mu,
                                  hardbound):
        """LTP of one lane that fired at the inputs not in ``active`` (ascending), whose
        ``x`` is zero: one synapse at a time, for a block where few lanes fired."""
        k = 0
        for j in range(P.shape[0]):
            if k < active.shape[0] and active[k] == j:
                k += 1
                continue
            i = j * _LANES + lane
            block[i] = _updated(block[i], ltp_amp[lane] * P[j], ltd_amp[lane] * x[j], dependence, lr, w_min, w_max,
                                mu, hardbound)

    # rows of a block's lane scratch: the current, the neuron's state and numbers, this
    # step's amplitudes, the LTP owed in each base of deferred LTP; one array, so that its
    # loops need no aliasing checks to vectorise
    _CURRENT, _V, _S, _TRACE, _LEAK, _THRESHOLD, _RESET, _LTP, _LTD, _OWED = range(10)
    _ROWS = _OWED + LEDGER_BASES

    @numba.njit(inline="always")
    def _row(lanes, row):
        return lanes[row * _LANES:(row + 1) * _LANES]

    @numba.njit(inline="always")
    def _advance_lanes(lanes, posts, imposed, nearest, pairing, d_post, a_post, A_plus, A_minus):
        """Steps 2-5 for the lanes of a block (the current already summed), and the
        amplitudes of step 6: ``A+ s`` and ``A- Q``. Every choice is a select, not a branch."""
        current, v, s, trace = _row(lanes, _CURRENT), _row(lanes, _V), _row(lanes, _S), _row(lanes, _TRACE)
        leak, threshold, reset = _row(lanes, _LEAK), _row(lanes, _THRESHOLD), _row(lanes, _RESET)
        ltp, ltd = _row(lanes, _LTP), _row(lanes, _LTD)
        for lane in range(_LANES):
            vi = leak[lane] * v[lane] + current[lane]
            crossed = np.float32(1.0) if vi >= threshold[lane] else np.float32(0.0)
            si = posts[lane] if imposed else crossed
            v[lane] = reset[lane] if si > 0 else vi
            decayed = d_post * trace[lane]
            cumulative = decayed + a_post * si
            nearest_value = a_post if si > 0 else decayed
            new = nearest_value if nearest else cumulative
            trace[lane] = new
            s[lane] = si
            ltp[lane] = A_plus * si
            ltd[lane] = A_minus * (new if pairing == 0 else decayed)

    # deferred LTP: a block's rows hold ``U = W - rate_j * owed[k_j]``, ``rate_j`` the
    # input's ledger rate (``tr_j d^-c`` as of its last active step, in the base of that
    # step's span ``k_j``) and ``owed[k]`` the lane's ``sum lr A+ s d^(c + m span)`` over its
    # steps since base ``k`` opened (``m`` spans after it); a row is brought up to date when
    # its input is active, every row when the settling period ends
    @numba.njit(inline="always")
    def _up_to_date(u, rate, owed, w_min, w_max, hardbound):
        """A synapse's weight from its ledger entry ``U``: ``clip(U + rate * owed)``."""
        return _within(u + rate * owed, w_min, w_max, hardbound)

    @numba.njit(inline="always")
    def _owed_in(scratch, base):
        """The lanes' LTP owed in ``base`` (a row of a block's lane scratch)."""
        return _row(scratch, _OWED + base)

    @numba.njit(inline="always")
    def _owed_rows(block, inputs, rates, bases, scratch, w_min, w_max, hardbound):
        """Rows ``inputs`` of a block up to date (:func:`_up_to_date`, each from its rate in
        its base), lanes in vectors."""
        for k in range(inputs.shape[0]):
            j = inputs[k]
            lanes, rate, owed = block[j * _LANES:(j + 1) * _LANES], rates[k], _owed_in(scratch, bases[k])
            for lane in range(_LANES):
                lanes[lane] = _up_to_date(lanes[lane], rate, owed[lane], w_min, w_max, hardbound)

    @numba.njit(inline="always")
    def _any_owed(scratch):
        """Whether any lane of a block is owed LTP in any base (no early exit: the loop
        vectorises). Where none is, every row already holds its weights (``U = W - rate *
        0``), and settling them would only rewrite them: at 4096x4096 and almost no input,
        half of a step."""
        owed = scratch[_OWED * _LANES:_ROWS * _LANES]
        owing = False
        for k in range(owed.shape[0]):
            owing |= owed[k] != 0
        return owing

    @numba.njit(inline="always")
    def _owe(scratch, ltp_amp, lr, powers, c, span, current_base):
        """A step's LTP (``ltp_amp = A+ s``, the step ``c`` of span ``current_base``) owed
        in every base opened so far: ``lr A+ s d^(c + m span)`` in the base ``m`` spans
        before."""
        for k in range(current_base + 1):
            owed, power = _owed_in(scratch, k), powers[0, c + (current_base - k) * span]
            for lane in range(_LANES):
                owed[lane] += lr * ltp_amp[lane] * power

    @numba.njit(inline="always")
    def _owed_current(block, inputs, values, rates, bases, scratch, current, w_min, w_max, hardbound, owing):
        """The current of the active ``inputs`` (ascending, with their ``values``), their
        rows of a block first brought up to date where anything is ``owing`` (as
        :func:`_owed_rows`): one pass over each row."""
        for k in range(inputs.shape[0]):
            if k + 2 < inputs.shape[0]:  # a row further on, to the cache (rows are visited in no order it can guess)
                prefetch_run(block, inputs[k + 2] * _LANES, (inputs[k + 2] + 1) * _LANES)
            j = inputs[k]
            lanes, x = block[j * _LANES:(j + 1) * _LANES], values[k]
            if owing:
                rate, owed = rates[k], _owed_in(scratch, bases[k])
                for lane in range(_LANES):
                    w = _up_to_date(lanes[lane], rate, owed[lane], w_min, w_max, hardbound)
                    lanes[lane] = w
                    current[lane] += w * x
            else:
                for lane in range(_LANES):
                    current[lane] += lanes[lane] * x

    @numba.njit(inline="always")
    def _owing_all(block, active, rates, opening, owed):
        """Every row of a block, just updated, as ``W - rate * owed``: the active inputs'
        (ascending) with their ``rates``, the others with their ``opening`` ones."""
        k = 0
        for j in range(opening.shape[0]):
            rate = opening[j]
            if k < active.shape[0] and active[k] == j:
                rate = rates[k]
                k += 1
            lanes = block[j * _LANES:(j + 1) * _LANES]
            for lane in range(_LANES):
                lanes[lane] = lanes[lane] - rate * owed[lane]

    @numba.njit(inline="always")
    def _into_blocks_of(W, blocked, b_lo, b_hi):
        """``W`` ``(n_out, n_in)`` into blocks ``b_lo..b_hi-1`` of the kernel's layout
        ``blocked`` (``(n_blocks, n_in, _LANES)``, room that may hold anything: padding
        lanes zeroed): tiles of 16 neurons by 16 inputs transposed in registers
        (:mod:`.tiles`), 16 rows of ``W`` read along their inputs at a time, the edges
        weight by weight."""
        n_out, n_in = W.shape
        rows, whole_in = W.reshape(-1), n_in - n_in % TILE
        for b in range(b_lo, b_hi):
            width, block = min(_LANES, n_out - b * _LANES), blocked[b]
            for j in range(n_in if width < _LANES else 0):  # (padding lanes: never fire, weigh nothing)
                for lane in range(width, _LANES):
                    block[j, lane] = 0.0
            lanes, whole_lanes = block.reshape(-1), width - width % TILE
            for lo in range(0, whole_lanes, TILE):
                for j in range(0, whole_in, TILE):
                    transposed_tile(rows, (b * _LANES + lo) * n_in + j, n_in, lanes, j * _LANES + lo, _LANES)
            for lane in range(width):
                row = W[b * _LANES + lane]
                for j in range(whole_in if lane < whole_lanes else 0, n_in):
                    block[j, lane] = row[j]

    @numba.njit(inline="always")
    def _out_of_blocks(blocked, W, settle, owed, rates, bases, w_min, w_max, hardbound, b_lo, b_hi):
        """The rows of ``W`` ``(n_out, n_in)`` of blocks ``b_lo..b_hi-1`` from the kernel's
        layout ``blocked``, each weight brought up to date on the way (:func:`_up_to_date`,
        from ``U``, each input's rate and its base ``bases[j]``, ``owed`` flat, a base's
        ``n_out`` neurons after another's) where ``settle``; whether every weight written
        is finite (where
        ``settle``; else true). Tiles as :func:`_into_blocks_of` makes them (4096x4096,
        one thread: 12.7 ms by a loop of scalar loads and stores, 3.9 ms so; settled,
        14.6 ms and 3.9 ms)."""
        n_out, n_in = W.shape
        rows, whole_in = W.reshape(-1), n_in - n_in % TILE
        finite = True
        for b in range(b_lo, b_hi):
            width, block = min(_LANES, n_out - b * _LANES), blocked[b]
            lanes, whole_lanes = block.reshape(-1), width - width % TILE
            for lo in range(0, whole_lanes, TILE):
                for j in range(0, whole_in, TILE):
                    if settle:
                        finite &= settled_tile(lanes, j * _LANES + lo, _LANES, rows, (b * _LANES + lo) * n_in + j,
                                               n_in, rates, j, owed, b * _LANES + lo, bases, n_out, w_min, w_max,
                                               hardbound)
                    else:
                        transposed_tile(lanes, j * _LANES + lo, _LANES, rows, (b * _LANES + lo) * n_in + j, n_in)
            for lane in range(width):
                row = W[b * _LANES + lane]
                for j in range(whole_in if lane < whole_lanes else 0, n_in):
                    if settle:
                        own = owed[bases[j] * n_out + b * _LANES + lane]
                        w = _up_to_date(block[j, lane], rates[j], own, w_min, w_max, hardbound)
                        finite &= w - w == 0
                        row[j] = w
                    else:
                        row[j] = block[j, lane]
        return finite

    @numba.njit(inline="always")
    def _lanes_of(scratch, row, neurons, into_lanes, b_lo, b_hi):
        """A per-neuron array into row ``row`` of the lane scratch of blocks ``b_lo..b_hi-1``,
        or back."""
        n_out = neurons.shape[0]
        for b in range(b_lo, b_hi):
            width = min(_LANES, n_out - b * _LANES)
            lanes, own = _row(scratch[b], row)[:width], neurons[b * _LANES:b * _LANES + width]
            if into_lanes:
                _copy(own, lanes)
            else:
                _copy(lanes, own)

    # a chunk of a layer: its neurons loaded, its steps a stretch at a time, its neurons
    # stored (the weights stay in the kernel's layout from chunk to chunk; the ensemble's
    # kernel runs each member through the same pieces)
    @numba.njit(inline="always")
    def _load(lif, v_in, s_in, post_in, scratch):
        """A layer's neurons' numbers and state into the lane scratch (padding lanes: zero
        state)."""
        for b in range(scratch.shape[0]):
            for row, source in ((_LEAK, lif[0, b]), (_THRESHOLD, lif[1, b]), (_RESET, lif[2, b])):
                _copy(source, _row(scratch[b], row))
        for row, source in ((_V, v_in), (_S, s_in), (_TRACE, post_in)):
            _lanes_of(scratch, row, source, True, 0, scratch.shape[0])

    @numba.njit(inline="always")
    def _store(scratch, v, s, trace_post, b_lo, b_hi):
        """The state of the neurons of blocks ``b_lo..b_hi-1`` back from the lane scratch."""
        for row, target in ((_V, v), (_S, s), (_TRACE, trace_post)):
            _lanes_of(scratch, row, target, False, b_lo, b_hi)

    # the steps allocate nothing, so they are compiled without numba's runtime: the views
    # they take of rows and lanes (several per active input and step) cost no atomic
    # reference counts (a third of a step at 784x400 in a profile with debug information;
    # 10-20% faster without them)
    @numba.njit(cache=True, nogil=True, _nrt=False, pipeline_class=DistinctArrays)
    def _run_stretch(flags, coef, first, stop, at, terms, base, terms_at, xs, posts, W, source, scratch, every, fired,
                     fired_bits, no_posts, spikes, check_bounds, copy_in, b_lo, b_hi):
        """Steps ``first..stop-1`` of blocks ``b_lo..b_hi-1`` of a layer (step ``first`` is
        step ``at`` of its chunk), given their pre terms: step ``first + t``'s pairing
        term ``P[base + t]`` and active inputs ``active[offsets[base + t]:offsets[base + t
        + 1]]`` with their ``values``, and with deferred LTP their ledger (see
        :func:`_pre_terms`; its row ``base`` is step ``terms_at`` of the chunk). The
        ledger is settled as a settling period ends (:func:`settling_period`), and as the
        call ends where the call closes its chunk. ``W`` holds each block's weights as one
        row, ``(n_blocks, n_in * _LANES)``: as views of a row of an argument, the compiler
        can tell them apart from the other arrays (a reshaped view it could not).
        ``copy_in``: each block's weights are first copied from ``source`` (of ``W``'s
        shape), as the block starts."""
        plastic, nearest, dependence, pairing, hardbound, imposed = (
            flags[1], flags[2], flags[3], flags[4], flags[5], flags[6])
        span, n, closes = flags[7] if plastic else 0, flags[0], flags[9]
        period = _period(span)
        P, offsets, active, values, ledger, pairs = terms
        powers, owed_before, owed_after, owed_end, opening, _, base_before, bases_end, _ = ledger
        deferred = span > 0
        d_post, a_post, lr, A_plus, A_minus, w_min, w_max, mu = (
            coef[2], coef[3], coef[4], coef[5], coef[6], coef[7], coef[8], coef[9])
        n_in = W.shape[1] // _LANES
        zero = np.float32(0.0)
        for b in range(b_lo, b_hi):
            block = W[b]  # synapse j of lane l at j * _LANES + l
            if copy_in:
                _copy(source[b], block)
            lanes = scratch[b]
            current, s_b, ltp_amp, ltd_amp = _row(lanes, _CURRENT), _row(lanes, _S), _row(lanes, _LTP), _row(
                lanes, _LTD)
            owed = _owed_in(lanes, 0)  # (what the step's base owes, with deferred LTP)
            whole = False  # a first step over every synapse, where some are out of bounds
            if check_bounds and plastic and hardbound:
                for k in range(n_in * _LANES):  # no early exit: the loop vectorises
                    whole |= (block[k] < w_min) | (block[k] > w_max)
            # the first step's clock in its settling period, the base of its span and its clock
            # in the span, counted on from step to step (divided out for each block and step, 784x100
            # ran 3% slower)
            within = at % period if deferred else 0
            current_base = within // span if deferred else 0
            c = within - current_base * span + 1 if deferred else 0
            for t in range(stop - first):
                if t > 0 and deferred:
                    within, c = within + 1, c + 1
                    if c > span:
                        c, current_base = 1, current_base + 1
                    if within == period:
                        within, current_base = 0, 0
                lo, hi = offsets[base + t], offsets[base + t + 1]
                # nothing is owed as a period opens, nor as a call opens a ledger (told by the clock:
                # testing the owed lanes themselves cost 15% of a step at 784x400)
                owing = within > 0 and not (check_bounds and first + t == 0)
                summed = stack_lanes(_LANES)  # (its own memory: summed in registers, row after row)
                summed[:] = zero
                # the active inputs' synapses, in ascending order, up to date
                _owed_current(block, active[lo:hi], values[lo:hi], owed_before[lo:hi], base_before[lo:hi], lanes,
                              summed, w_min, w_max, hardbound, owing)
                _copy(summed, current)
                _advance_lanes(lanes, posts[first + t, b] if imposed else no_posts, imposed, nearest, pairing,
                               d_post, a_post, A_plus, A_minus)
                bits = nonzero_mask(s_b, 0)
                if not imposed:  # (imposed spikes are the step's spikes: see _spikes_out)
                    fired_bits[(b - b_lo) * (stop - first) + t] = bits
                if not plastic:
                    continue
                P_t, x_t = P[base + t], xs[first + t]
                if deferred:
                    if bits:  # (else nothing is owed: the step adds zeros)
                        _owe(lanes, ltp_amp, lr, powers, c, span, current_base)
                    owed = _owed_in(lanes, current_base)
                    if whole:
                        _update_synapses(block, every, x_t, P_t, ltp_amp, ltd_amp, dependence, lr, w_min, w_max, mu,
                                         hardbound, opening, owed, False)
                        _owing_all(block, active[lo:hi], owed_after[lo:hi], opening, owed)
                        whole = False
                    else:
                        _update_synapses(block, active[lo:hi], values[lo:hi], pairs[lo:hi], ltp_amp, ltd_amp,
                                         dependence, lr, w_min, w_max, mu, hardbound, owed_after[lo:hi], owed, True)
                    if within == period - 1 or closes and first + t == n - 1:  # every row settled ...
                        if _any_owed(lanes):  # ... where a lane is owed anything (else U is W)
                            end = (at + t) // period - terms_at // period
                            _owed_rows(block, every, owed_end[end], bases_end[end], lanes, w_min, w_max, hardbound)
                        lanes[_OWED * _LANES:_ROWS * _LANES] = zero
                    continue
                n_fired = 0
                for lane in range(_LANES):
                    if s_b[lane] != 0:
                        fired[n_fired] = lane
                        n_fired += 1
                if whole or n_fired > _FEW_FIRED:  # every synapse of the block, lanes in vectors
                    _update_synapses(block, every, x_t, P_t, ltp_amp, ltd_amp, dependence, lr, w_min, w_max, mu,
                                     hardbound, opening, owed, False)
                    whole = False
                    continue
                # the active inputs' synapses (LTD; LTP too, of the lanes that fired) ...
                _update_synapses(block, active[lo:hi], values[lo:hi], pairs[lo:hi], ltp_amp, ltd_amp, dependence,
                                 lr, w_min, w_max, mu, hardbound, opening, owed, False)
                for f in range(n_fired):  # ... and the LTP of the lanes that fired at the others
                    _potentiate_silent_inputs(block, fired[f], active[lo:hi], x_t, P_t, ltp_amp, ltd_amp,
                                              dependence, lr, w_min, w_max, mu, hardbound)
        _spikes_out(spikes, fired_bits, posts, imposed, first, stop, b_lo, b_hi)

    @numba.njit(inline="always")
    def _spikes_out(spikes, fired_bits, posts, imposed, first, stop, b_lo, b_hi):
        """The spikes of blocks ``b_lo..b_hi-1`` over steps ``first..stop-1`` into those rows of
        ``spikes``, step by step: each block's lanes that fired at each step as the bits of
        one integer (``fired_bits``, block by block), or the imposed spikes. (Stored as
        each block ran its steps, a step's 64 spikes went a row of ``spikes`` apart, into
        a new cache line every time, and took the block's weights out of the cache: at
        4096x4096 a fifth of a step at almost no input.)"""
        steps = stop - first
        for t in range(steps):
            row = spikes[first + t]
            for b in range(b_lo, b_hi):
                if imposed:
                    _copy(posts[first + t, b], row[b * _LANES:(b + 1) * _LANES])
                    continue
                ones_at_mask(fired_bits[(b - b_lo) * steps + t], row, b * _LANES)  # (a last block's real lanes)

    @numba.njit(inline="always")
    def _running(terms):
        """The running arrays of pre terms' ledger (:func:`_pre_arrays`): ``(rates, bases)``."""
        ledger = terms[4]
        return ledger[5], ledger[8]

    @numba.njit(inline="always")
    def _opened(flags, coef, lif, v_in, s_in, post_in, trace_pre, terms, ledger_in, owner):
        """A layer's chunk opened: ``(scratch, resumed)``, its neurons in the lane scratch,
        the ledger of deferred LTP started (``terms``' running rates and bases, written by
        their ``owner`` only: threads that share them leave them to one) or taken from the
        previous call (``resumed``: a settling period it left open, ``ledger_in = (owed
        (LEDGER_BASES, n_out), rates, bases)``, see :func:`_blocked_chunk`)."""
        phase, resumed = flags[8], flags[10]
        span = flags[7] if flags[1] else 0
        period = _period(span)
        n_in = trace_pre.shape[0]
        scratch = np.zeros((lif.shape[1], _ROWS * _LANES), np.float32)
        _load(lif, v_in, s_in, post_in, scratch)
        powers, (rates, bases) = terms[4][0], _running(terms)
        owed_in, rates_in, bases_in = ledger_in
        inside = span > 0 and phase % period != 0  # the call starts inside a settling period
        if inside and resumed:  # the ledger the previous call left open
            if owner:
                _copy(rates_in, rates)
                _copy(bases_in, bases)
            for k in range(LEDGER_BASES):
                _lanes_of(scratch, _OWED + k, owed_in[k], True, 0, scratch.shape[0])
        elif inside and owner:  # a ledger opened here: nothing owed yet, the rates of the trace as it is
            for j in range(n_in):
                rates[j] = trace_pre[j] * powers[1, phase % span]
                bases[j] = phase % period // span
        return scratch, inside and resumed != 0

    @numba.njit(inline="always")
    def _closed(flags, scratch, v, s, trace_post, running, ledger_out, b_lo, b_hi):
        """The neurons of a layer's chunk's blocks ``b_lo..b_hi-1`` stored back, with the
        ledger it hands on (``ledger_out = (owed, rates, bases)``, as :func:`_opened` takes
        it; ``running``: the pre terms' :func:`_running` arrays)."""
        _store(scratch, v, s, trace_post, b_lo, b_hi)
        if flags[1] and flags[7] > 0:
            owed_out, rates_out, bases_out = ledger_out
            _copy(running[0], rates_out)
            _copy(running[1], bases_out)
            for k in range(LEDGER_BASES):
                _lanes_of(scratch, _OWED + k, owed_out[k], False, b_lo, b_hi)

    @numba.njit(inline="always")
    def _owns_terms(group, groups):
        """Whether a group's thread writes the running arrays of its pre terms' room: every
        group its own, one of those that share one."""
        return group == 0 or groups == 1

    @numba.njit(inline="always")
    def _stretch_stop(first, n, phase, stretch):
        """Where the stretch of a chunk's ``n`` steps that starts at step ``first`` (step
        ``phase + first`` of its chunk) stops: at the chunk's next multiple of ``stretch``."""
        return min(n, first + stretch - (phase + first) % stretch)

    @numba.njit(inline="always")
    def _blocked_chunk(flags, coef, lif, xs, posts, W, source, v_in, s_in, post_in, v, s, trace_pre, trace_post, spikes,
                       terms, shared, ledger, sync, group, groups, regions, b_lo, b_hi):
        """A layer's chunk on its weights ``W`` in the kernel's layout (``(n_blocks, n_in,
        _LANES)``, padding lanes zero; updated in place), run a stretch of steps at a time
        (stretches end on the chunk's multiples of their length, ``flags[11]``). Its pre
        ``terms`` (:func:`_pre_arrays`) are given for the whole chunk (``shared``: an
        ensemble's members that share them) or its own: ``trace_pre``, holding the trace
        before the chunk, is advanced here a stretch at a time, into ``terms`` where they
        are room for a stretch (see :func:`_room`), else into room made here.

        ``groups`` > 1 threads that run the chunk's groups of blocks at the same time
        (this one ``group`` of them) may share its pre terms: each stretch's are computed
        by one thread in turn (stretch ``k``'s by group ``k % groups``, the group before
        it runs the stretch before, so that the next stretch's terms are ready as the
        others come to it) into the ``regions`` (three or more, :func:`_region`) of
        ``terms``, and ``trace_pre`` is the threads' one trace. ``sync`` holds what
        they hand one another (:mod:`.handover`): ``[failed, the stretch whose terms
        each region holds..., the stretches each group has run...]``; a thread that finds
        ``failed`` set returns at once.

        With deferred LTP, ``ledger = ((owed_in, rates_in, bases_in), (owed_out, rates_out,
        bases_out))``: a settling period the previous call left open (``flags[10]``; ``W``
        then holds ``U``) goes on from its per-neuron ``owed`` in each base ``(LEDGER_BASES,
        n_out)`` and per-input ``rates`` and ``bases``; a period this call leaves open (it
        ends inside one and does not close its chunk) is handed on the same way.

        ``source``: weights of ``W``'s shape that ``W`` is to start from, each block copied
        as its first stretch starts (on the threads that run the blocks, each block then
        warm in the cache; a separate copy of 4096x4096 weights took 3.5 ms before a call),
        or an array of no blocks.

        Only blocks ``b_lo..b_hi-1`` run, and only their neurons' arrays, spikes and weights
        are written (blocks share nothing: other threads may run the others at the same
        time, each with a ``rates_out`` of its own, and a ``trace_pre`` of its own where
        they share no terms)."""
        n, nearest, pairing, phase = flags[0], flags[2], flags[4], flags[8]
        span = flags[7] if flags[1] else 0
        period = _period(span)
        n_blocks, n_in = W.shape[0], W.shape[1]
        stretch, strict = flags[11], pairing == 2
        handing = groups > 1
        if not (shared or handing) and _room_steps(terms) < stretch:
            terms = _pre_arrays(stretch, n_in, span, coef[0], 1)
        scratch, resumed = _opened(flags, coef, lif, v_in, s_in, post_in, trace_pre, terms, ledger[0],
                                   _owns_terms(group, groups))
        rows = W.reshape(n_blocks, n_in * _LANES)  # a block's weights as one row (see _run_stretch)
        copied = source.reshape(source.shape[0], n_in * _LANES)
        every = np.arange(n_in).astype(np.int32)
        fired = np.empty(_LANES, np.int64)
        fired_bits = np.empty((b_hi - b_lo) * stretch, np.uint64)  # (see _spikes_out)
        no_posts = np.zeros(_LANES, np.float32)
        spikes[n:, b_lo * _LANES:b_hi * _LANES] = 0.0
        first = np.int64(0)  # (a literal 0 would compile the stretch a second time, for its first call)
        if handing and group == 0 and n > 0:  # the first stretch's terms
            _pre_terms(first, _stretch_stop(first, n, phase, stretch), phase + first, nearest, strict, coef[0], coef[1],
                       xs, trace_pre, _region(terms, 0, regions), span, period)
            publish(sync, _SYNC_REGIONS, 0)
        k = 0  # the stretch
        while first < n:
            at = phase + first
            stop = _stretch_stop(first, n, phase, stretch)
            if handing:
                if stop < n and (k + 1) % groups == group:  # the next stretch's terms, from this stretch's trace
                    ready = wait_for(sync, _SYNC_REGIONS + k % regions, k, 0)
                    for other in range(groups):  # ... into a region every group is done with
                        ready = ready and wait_for(sync, _SYNC_REGIONS + regions + other, k + 2 - regions, 0)
                    if not ready:
                        return
                    _pre_terms(stop, _stretch_stop(stop, n, phase, stretch), phase + stop, nearest, strict, coef[0],
                               coef[1], xs, trace_pre, _region(terms, (k + 1) % regions, regions), span, period)
                    publish(sync, _SYNC_REGIONS + (k + 1) % regions, k + 1)
                if not wait_for(sync, _SYNC_REGIONS + k % regions, k, 0):
                    return
            elif not shared:
                _pre_terms(first, stop, at, nearest, strict, coef[0], coef[1], xs, trace_pre, terms, span, period)
            base = first if shared else np.int64(0)  # (an int64 however the caller gives shared: one compilation)
            these = _region(terms, k % regions, regions) if handing else terms
            _run_stretch(flags, coef, first, stop, at, these, base, phase if shared else at, xs, posts, rows, copied,
                         scratch, every, fired, fired_bits, no_posts, spikes, first == 0 and not resumed,
                         first == 0 and copied.shape[0] > 0, b_lo, b_hi)
            if handing:
                publish(sync, _SYNC_REGIONS + regions + group, k + 1)
            first = stop
            k += 1
        if n == 0:  # (no step to copy the weights in)
            for b in range(b_lo, b_hi if copied.shape[0] > 0 else b_lo):
                _copy(copied[b], rows[b])
        _closed(flags, scratch, v, s, trace_post, _running(terms), ledger[1], b_lo, b_hi)

    @numba.njit(inline="always")
    def _layer_chunk(flags, coef, lif, xs, posts, W_in, W, v_in, s_in, post_in, W_out, v, s, trace_pre, trace_post,
                     spikes, terms, ledger):
        """:func:`_blocked_chunk` on weights ``W_in`` ``(n_out, n_in)``, the result in
        ``W_out``: put in the kernel's layout (into ``W``, room of its shape, whatever it
        holds) and back around the chunk."""
        b_lo, b_hi = np.int64(0), np.int64(W.shape[0])  # (every block)
        _into_blocks_of(W_in, W, b_lo, b_hi)
        _blocked_chunk(flags, coef, lif, xs, posts, W, W[:0], v_in, s_in, post_in, v, s, trace_pre, trace_post, spikes,
                       terms, _room_steps(terms) > 0, ledger, np.zeros(0, np.int64), 0, 1, 1, b_lo, b_hi)
        none = ledger[0][1][:0]
        _out_of_blocks(W, W_out, False, none, none, ledger[0][2], coef[0], coef[0], False, b_lo, b_hi)  # (no settling)

    @numba.njit(cache=True, nogil=True)
    def _settle(U, owed, rates, bases, w_min, w_max, hardbound, W):
        """``W = clip(U + rate_j * owed[k_j, i])`` (:func:`_up_to_date`, ``k_j = bases[j]``,
        ``owed`` flat) for ``U`` ``(n_out, n_in)``."""
        n_out = U.shape[0]
        for i in range(n_out):
            for j in range(U.shape[1]):
                W[i, j] = _up_to_date(U[i, j], rates[j], owed[bases[j] * n_out + i], w_min, w_max, hardbound)

    @numba.njit(cache=True, nogil=True)
    def _chunk(flags, coef, lif, xs, posts, W, source, v_in, s_in, pre_in, post_in, owed_in, rates_in, bases_in, v, s,
               trace_pre, trace_post, owed_out, rates_out, bases_out, spikes, room, sync, group, groups, regions, b_lo,
               b_hi):
        if _owns_terms(group, groups):  # (threads that share the terms share the trace: the first group's)
            _copy(pre_in, trace_pre)
        _blocked_chunk(flags, coef, lif, xs, posts, W, source, v_in, s_in, post_in, v, s, trace_pre, trace_post, spikes,
                       room, False, ((owed_in, rates_in, bases_in), (owed_out, rates_out, bases_out)), sync, group,
                       groups, regions, b_lo, b_hi)

    @numba.njit(cache=True, nogil=True)
    def _pre_room(steps, n_in, span, d_pre, regions):
        return _pre_arrays(steps, n_in, span, d_pre, regions)

    # (the ways into the layout and out of it, a group of blocks at a time: see _in_groups)
    @numba.njit(cache=True, nogil=True)
    def _into_blocks(W, blocked, b_lo, b_hi):
        _into_blocks_of(W, blocked, b_lo, b_hi)

    @numba.njit(cache=True, nogil=True)
    def _from_blocks(blocked, W, b_lo, b_hi):
        none = np.zeros(0, np.float32)
        _out_of_blocks(blocked, W, False, none, none, np.zeros(0, np.int32), np.float32(0.0), np.float32(0.0), False,
                       b_lo, b_hi)

    @numba.njit(cache=True, nogil=True)
    def _settle_from_blocks(blocked, owed, rates, bases, w_min, w_max, hardbound, W, b_lo, b_hi):
        """:func:`_settle` of ``U`` in the kernel's layout, into ``W`` ``(n_out, n_in)``, so
        that a call's end reads and writes the weights once; whether every weight is finite."""
        return _out_of_blocks(blocked, W, True, owed, rates, bases, w_min, w_max, hardbound, b_lo, b_hi)

    def registered(name: str, kernel, aliases: dict):
        """A native chunk ``kernel`` as a JAX operation (brainevent's :class:`XLACustomKernel`,
        numba on the CPU); ``aliases``: the inputs its outputs are, updated in place."""
        def generator(**kwargs):
            def run(*ins):
                return numba_kernel(kernel, outs=kwargs["outs"], input_output_aliases=aliases)(*ins)
            return run
        operation = XLACustomKernel(name)
        operation.def_numba_kernel(generator)
        return operation



def kernel_flags(config, plastic: bool, imposed: bool, n_steps, clocks, stretch: int):
    """The kernels' ``flags`` (int32, on the host): the steps to run, the static choices (plastic,
    nearest, dependence, pairing, hard bounds, imposed spikes), then ``clocks``: the span
    of deferred LTP, the call's first step in its chunk, whether it closes its chunk, and
    whether it goes on from a ledger handed on; last the steps per stretch
    (:func:`stretch_for`)."""
    static = [int(plastic), int(config.trace_add is TRACE_MODES["nearest"]), _DEPENDENCE_CODES[config.dependence],
              _PAIRINGS.index(config.pairing), int(config.hardbound), int(imposed)]
    return np.array([n_steps, *static, *clocks, stretch], np.int32)


def blocked_lanes(a, n_blocks: int):
    """Per-neuron values ``(..., n_out)`` as the kernels' blocks ``(..., n_blocks, _LANES)``
    on the host, the padding neurons' zero (e.g. imposed spikes: never)."""
    blocked = np.zeros(a.shape[:-1] + (n_blocks * _LANES,), np.float32)
    blocked[..., :a.shape[-1]] = a
    return blocked.reshape(a.shape[:-1] + (n_blocks, _LANES))


class OpenLedger(NamedTuple):
    """A layer state inside a settling period of the native kernel's deferred LTP:
    ``layer.W`` holds ``U = W - rates[j] * owed[bases[j], i]`` (:func:`settled` gives
    ``W``). Without ``bases`` (a ledger of one base, as earlier versions handed on),
    ``owed`` is ``(n_out,)``: the base of the span the ledger was left open in."""

    layer: Any
    owed: Any   # (LEDGER_BASES, n_out) each neuron's sum of lr A+ s d^(c + m span) since each base opened
    rates: Any  # (n_in,) each input's tr d^-c as of its last active step, in that step's base
    bases: Any = None  # (n_in,) int32 the base of each input's rate: the span of the period it was active in last


def ledger_arrays(ledger, n_out: int, base: int = 0):
    """``(owed, rates, bases)`` of an :class:`OpenLedger` as the kernels take them: ``owed``
    ``(LEDGER_BASES, n_out)`` float32, ``bases`` int32; a ledger of one base put in ``base``."""
    owed, rates = on_host(ledger.owed), on_host(ledger.rates)
    if ledger.bases is not None:
        return owed, rates, np.require(np.asarray(ledger.bases), np.int32, ("C_CONTIGUOUS", "ALIGNED"))
    bases = np.full(rates.shape, base, np.int32)
    every = np.zeros((LEDGER_BASES, n_out), np.float32)
    every[base] = owed
    return every, rates, bases


def in_kernel_layout(W) -> bool:
    """Whether a layer state's ``W`` is in the native kernel's layout: ``(n_blocks, n_in,
    _LANES)``, as the chunks of a run hand it on (a dense layer's own ``W`` is 2-D)."""
    return np.ndim(W) == 3


def kernel_weights(W):
    """``W`` ``(n_out, n_in)`` (or already in the kernel's layout, then as it is) in the
    native kernel's layout: a block of 64 neurons' weights input by input, padding lanes
    zero."""
    if in_kernel_layout(W):
        return W
    W = host_view(W)
    n_out = W.shape[0]
    blocked = host_empty((-(-n_out // _LANES), W.shape[1], _LANES))
    _in_groups(_into_blocks, n_out, W.shape[1], W, blocked)
    return blocked


def layer_weights(state):
    """``state`` (a layer state or an :class:`OpenLedger`) with ``W`` ``(n_out, n_in)``,
    out of the kernel's layout if it is in it."""
    layer = state.layer if isinstance(state, OpenLedger) else state
    if not in_kernel_layout(layer.W):
        return state
    layer = layer._replace(W=out_of_layout(layer.W, layer.v.shape[-1]))
    return state._replace(layer=layer) if isinstance(state, OpenLedger) else layer


def out_of_layout(blocked, n_out: int):
    """Weights in the kernel's layout as ``(n_out, n_in)``, a new array on the host (taken
    over by JAX as it is, see ``on_device_tree``)."""
    W = host_empty((n_out, blocked.shape[1]))
    _in_groups(_from_blocks, n_out, blocked.shape[1], blocked, W)
    return W


def settled(params, hardbound: bool, state):
    """The layer state of ``state`` (an :class:`OpenLedger` or already settled) with every
    synapse's owed LTP applied, ``clip(U + rate * owed)``, as the kernel settles a span
    that ends, and ``W`` ``(n_out, n_in)`` (on the host: NumPy arrays come back). ``U``
    is left as it is (it may be held elsewhere, e.g. as what a call leaves open)."""
    if not isinstance(state, OpenLedger):
        return layer_weights(state)
    layer, bounds = state.layer, params.stdp.bounds
    U, W = host_view(layer.W), host_empty((layer.v.shape[-1], layer.W.shape[1]))
    owed, rates, bases = ledger_arrays(state, W.shape[0])
    numbers = (owed.reshape(-1), rates, bases, np.float32(bounds.w_min), np.float32(bounds.w_max), bool(hardbound), W)
    if in_kernel_layout(U):
        if all(_in_groups(_settle_from_blocks, W.shape[0], W.shape[1], U, *numbers)):
            vouch_finite(W)  # (the trainer's check of the state before it commits it need not read W again)
    else:
        _settle(U, *numbers)
    return layer._replace(W=W)


class BlockedWeights:
    """Weights kept in the native kernel's layout (:func:`kernel_weights`) between calls,
    which read as ``(n_out, n_in)`` where they are taken as an array (e.g. by a
    checkpoint): a call that goes on from them runs on a copy of the layout as it is,
    which the kernel makes (:func:`host_chunk`); these stay as they are."""

    def __init__(self, blocks, n_out: int):
        self.blocks, self.n_out = blocks, n_out

    def __array__(self, dtype=None, copy=None):
        W = out_of_layout(self.blocks, self.n_out)
        return W if dtype is None else W.astype(dtype, copy=False)


_LAST_NUMBERS = [None]  # (parameters, n_out, their numbers) of the last call: a run's chunks share them


def layer_numbers(layer_params, n_out: int):
    """A layer's numbers as the kernels take them, on the host: ``coef`` (10,) and the LIF
    rows ``(3, n_blocks, _LANES)`` (padding neurons never fire). The chunks of a run
    share its parameters: their numbers are made once (kept for the same object)."""
    held = _LAST_NUMBERS[0]
    if held is not None and held[0] is layer_params and held[1] == n_out:
        return held[2]
    stdp, traces, lif = layer_params.stdp, layer_params.traces, layer_params.lif
    named = dict(d_pre=traces.d_pre, a_pre=traces.a_pre, d_post=traces.d_post, a_post=traces.a_post,
                 lr=stdp.lr, A_plus=stdp.A_plus, A_minus=stdp.A_minus, w_min=stdp.bounds.w_min,
                 w_max=stdp.bounds.w_max, mu=stdp.bounds.mu)
    coef = np.array([np.float32(named[name]) for name in _COEF], np.float32)
    n_blocks = -(-n_out // _LANES)
    rows = np.empty((3, n_blocks * _LANES), np.float32)
    for row, p, fill in zip(rows, lif, (1.0, np.inf, 0.0)):
        row[:n_out] = np.broadcast_to(np.asarray(p, np.float32), (n_out,))
        row[n_out:] = fill
    numbers = coef, rows.reshape(3, n_blocks, _LANES)
    _LAST_NUMBERS[0] = (layer_params, n_out, numbers)
    return numbers


class HostChunk(NamedTuple):
    """A chunk's arrays on the host as the native kernels take them: C-contiguous,
    writable float32 (a copy of any that is not one already, e.g. a view of a JAX
    array's buffer), so that their functions are compiled for one type of each."""

    flags: np.ndarray  # (int32) see kernel_flags
    coef: np.ndarray
    lif: np.ndarray
    xs: np.ndarray     # the chunk's first n_steps steps
    posts: np.ndarray  # (n_steps, n_blocks, _LANES), or (1, 1, 1) with none imposed
    W: np.ndarray      # in the kernel's layout (kernel_weights), updated in place
    source: np.ndarray  # what W starts from, copied in by the kernel (going on from BlockedWeights), or no blocks
    v: np.ndarray
    spike: np.ndarray
    trace_pre: np.ndarray
    trace_post: np.ndarray
    owed: np.ndarray   # a ledger handed on (or zeros): see ledger_arrays
    rates: np.ndarray
    bases: np.ndarray


def on_host(a):
    """``a`` as the native kernels take it (see :class:`HostChunk`)."""
    return np.require(np.asarray(a), np.float32, ("C_CONTIGUOUS", "WRITEABLE", "ALIGNED"))


def host_view(a):
    """``a`` as C-contiguous float32 on the host for a kernel that only reads it: a JAX
    array's own buffer, read only, where :func:`on_host` would copy it."""
    return np.ascontiguousarray(np.asarray(a), np.float32)


def host_chunk(config, params, state, chunk, n_steps: int, plastic: bool, span: int, phase: int, closes: bool):
    """``(layer, HostChunk)`` for :func:`native_chunk`'s arguments: the layer's ``W`` in the
    kernel's layout (a copy made there, or the one the previous chunk of the run handed on)."""
    xs, posts = chunk
    ledger = state if isinstance(state, OpenLedger) else None
    layer = state.layer if ledger else state
    n_out, n_in = layer.v.shape[-1], layer.trace_pre.shape[-1]
    coef, lif = layer_numbers(params, n_out)
    stretch = stretch_for(n_out, n_in)
    flags = kernel_flags(config, plastic, posts is not None, n_steps, [span, phase, closes, ledger is not None],
                         stretch)
    posts = np.zeros((1, 1, 1), np.float32) if posts is None else blocked_lanes(posts[:n_steps], lif.shape[1])
    if ledger:  # (a ledger of one base was left in the span the call starts in)
        owed, rates, bases = ledger_arrays(ledger, n_out, phase % settling_period(span) // span if span else 0)
    else:
        owed, rates, bases = (np.zeros((LEDGER_BASES, n_out), np.float32), np.zeros(n_in, np.float32),
                              np.zeros(n_in, np.int32))
    if isinstance(layer.W, BlockedWeights):  # (left open by a previous call: the kernel copies it in)
        W, source = host_empty(layer.W.blocks.shape), layer.W.blocks
    else:
        W = kernel_weights(layer.W)
        source = np.zeros((0,) + W.shape[1:], np.float32)
    return layer, HostChunk(flags, coef, lif, on_host(xs[:n_steps]), posts, W, source, on_host(layer.v),
                            on_host(layer.spike), on_host(layer.trace_pre), on_host(layer.trace_post), owed, rates,
                            bases)


def host_outputs(n_out: int, n_in: int):
    """Room for a chunk's neurons and ledger: ``v, spike, trace_pre, trace_post, owed, rates,
    bases``."""
    return (np.empty(n_out, np.float32), np.empty(n_out, np.float32), np.empty(n_in, np.float32),
            np.empty(n_out, np.float32), np.empty((LEDGER_BASES, n_out), np.float32), np.empty(n_in, np.float32),
            np.empty(n_in, np.int32))


def host_result(layer, W, outs, span: int, phase: int, n_steps: int, closes: bool):
    """The state after a chunk from its weights ``W`` (in the kernel's layout) and outputs
    (:func:`host_outputs`): the layer state with the new arrays (NumPy arrays: the next
    chunk takes them as they are), or an :class:`OpenLedger` where the chunk leaves a
    settling period open."""
    v, spike, trace_pre, trace_post, owed, rates, bases = outs
    layer = layer._replace(W=W, v=v, spike=spike, trace_pre=trace_pre, trace_post=trace_post)
    period = settling_period(span)
    if span and not closes and (phase + n_steps) % period:
        return OpenLedger(layer, owed, rates, bases)
    return layer


def native_chunk(config, params, state, chunk, n_steps, plastic: bool = True, span: int = 0, phase: int = 0,
                 closes: bool = True, spikes=None):
    """The first ``n_steps`` steps of ``chunk = (xs, posts)`` (``(T, n_in)``, ``(T, n_out)``
    or ``None``) through the native kernel, called on the host: ``(state, spikes)``,
    ``spikes`` of shape ``(T, n_out)`` with zero rows past ``n_steps``, the state's arrays
    and the spikes NumPy arrays of the kernel's own, ``W`` in the kernel's layout
    (:func:`kernel_weights`; :func:`layer_weights` gives it back as ``(n_out, n_in)``). The
    arrays given are left alone, but for a ``W`` already in that layout (as a previous
    chunk handed it on), which is updated in place. ``params`` is a
    :class:`~canns_stdp.functional.layer_step.LayerParams`, ``config`` a
    :class:`~canns_stdp.functional.layer_step.LayerConfig` (dense, unbatched);
    ``plastic=False`` runs the neurons and traces only.

    ``span`` > 0 (from :func:`~canns_stdp.functional.event.deferred_span`): LTP of the
    additive rule deferred over spans of that many steps of the chunk (the first step
    being step ``phase`` of its chunk), a ledger per block of neurons settled as each
    settling period ends (:func:`settling_period`), so that a step costs what its active
    inputs cost, however many neurons fire. A call that ends inside a period without
    closing its chunk (``closes``) returns an :class:`OpenLedger`, which the next call of
    the chunk takes as ``state``.

    ``spikes``: where to write the spikes (C-contiguous float32 of their shape, e.g. a
    chunk's rows of one array for a whole call), else new."""
    span = span if plastic else 0
    layer, a = host_chunk(config, params, state, chunk, n_steps, plastic, span, phase, closes)
    n_out, n_in = a.v.shape[0], a.trace_pre.shape[0]
    outs = host_outputs(n_out, n_in)
    if spikes is None:
        spikes = np.empty((chunk[0].shape[0], n_out), np.float32)
    arguments = (a.flags, a.coef, a.lif, a.xs, a.posts, a.W, a.source, a.v, a.spike, a.trace_pre, a.trace_post, a.owed,
                 a.rates, a.bases)

    groups = block_groups(n_out, n_in, n_steps)
    stretch = int(a.flags[11])
    # (the groups' threads share the pre terms where their rooms are small, and every group
    # has a thread of its own: one waiting in the pool's queue would keep the others waiting)
    handing = len(groups) > 1 and stretch * n_in <= HANDOVER_MAX_TERMS and len(groups) - 1 <= _pool()._max_workers
    regions = _SHARED_REGIONS if handing else 1
    shared_room = _room(stretch, n_in, span, a.coef[0], threading.get_ident()) if handing else None  # (before threads)
    sync = np.zeros(_SYNC_REGIONS + regions + len(groups) if handing else 1, np.int64)
    sync[_SYNC_REGIONS:_SYNC_REGIONS + regions if handing else 1] = -1  # (no region holds a stretch's terms yet)

    def group(b_lo, b_hi, first):
        # (the first group's pre trace, rates and bases are the chunk's; the others write their
        # rates and bases into arrays of their own, and their trace too where they share no terms)
        trace = outs[2] if first or handing else np.empty(n_in, np.float32)
        own = (*outs[:2], trace, *outs[3:5], *(outs[5:] if first else (np.empty(n_in, np.float32),
                                                                        np.empty(n_in, np.int32))))
        room = shared_room if handing else _room(stretch, n_in, span, a.coef[0])
        try:
            _chunk(*arguments, *own, spikes, room, sync, groups.index((b_lo, b_hi)), len(groups) if handing else 1,
                   regions, b_lo, b_hi)
        except BaseException:
            sync[0] = 1  # (the other threads stop waiting for this one)
            raise

    _on_threads(group, groups)
    return host_result(layer, a.W, outs, span, phase, n_steps, closes), spikes


_POOL = []


def native_threads() -> int:
    """Threads the native layer kernel runs a chunk's blocks of neurons on: the cores this
    process may use, or the environment variable ``CANNS_STDP_THREADS``."""
    given = os.environ.get("CANNS_STDP_THREADS")
    if given is not None:
        if not given.isdigit() or int(given) < 1:
            raise ValueError(f"CANNS_STDP_THREADS must be a positive integer, got {given!r}")
        return int(given)
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def block_groups(n_out: int, n_in: int, n_steps: int, min_work=None) -> list:
    """The blocks of neurons ``[(b_lo, b_hi), ...]`` each thread runs for a chunk: one
    group where the chunk is small (under ``min_work`` synapse-steps, by default
    ``NATIVE_THREADED_MIN_WORK``: a thread's start would cost more than it saves), else up to
    :func:`native_threads` groups of as many blocks each, the first ones one more where
    they do not divide evenly. Blocks, not neurons: a block's row visits cost the same
    however few of its lanes hold neurons (784x400, a chunk of 2,000 steps on two
    threads: 4 and 3 blocks 5.7 ms, 192 and 208 neurons (3 and 4 blocks) 7.5 ms, one
    thread 8.6 ms)."""
    n_blocks = -(-n_out // _LANES)
    min_work = NATIVE_THREADED_MIN_WORK if min_work is None else min_work
    threads = min(native_threads(), n_blocks) if n_steps * n_in * n_out >= min_work else 1
    bounds = [(g * n_blocks + threads - 1) // threads for g in range(threads + 1)]
    return list(zip(bounds, bounds[1:]))


def _in_groups(kernel, n_out: int, n_in: int, *arguments) -> list:
    """``kernel(*arguments, b_lo, b_hi)`` for every block of a layer's weights, in groups on
    threads (:func:`block_groups`) where they are large: a pass into the kernel's layout or
    out of it, which each thread makes over rows of its own; what each group returned."""
    return _on_threads(lambda b_lo, b_hi, first: kernel(*arguments, b_lo, b_hi),
                       block_groups(n_out, n_in, 1, NATIVE_THREADED_MIN_SYNAPSES))


def _on_threads(run, groups) -> list:
    """``run(b_lo, b_hi, first)`` for each group of blocks, the first group on this thread
    (``first`` true) and the others on the pool's; returns what each returned once every
    group has finished (nothing writes to their arrays after it, also where one failed)."""
    others = [_pool().submit(run, b_lo, b_hi, False) for b_lo, b_hi in groups[1:]]
    results = []
    try:
        results.append(run(*groups[0], True))
    finally:
        results += [each.result() for each in others]
    return results


_ROOMS: dict = {}  # a thread's id (or its and "shared") -> ((n_in, span, d_pre), steps, the room for its pre terms)
_SHARED_REGIONS = 3  # (the stretch running, the next one's terms, and one for a thread a stretch behind)
_MAX_ROOMS = 16
_ROOMS_LOCK = threading.Lock()


def _room(steps: int, n_in: int, span: int, d_pre, shared_by=None):
    """Room for ``steps`` steps of pre terms (:func:`_pre_arrays`; a stretch's for the thread
    that runs a group of blocks, a chunk's for an ensemble's members that share them) for
    the calling thread, made once and used by every chunk after it that fits: made anew at
    every chunk, the system maps its memory anew (4096x4096, stretches of 1,024 steps: 35
    MiB of it at every chunk of two threads, a fifth of a chunk's time at p = 0.01).
    ``shared_by``: the thread whose chunk's threads share the room, which then has
    ``_SHARED_REGIONS`` regions of ``steps`` steps (see :func:`_blocked_chunk`)."""
    regions = 1 if shared_by is None else _SHARED_REGIONS
    key = (int(n_in), int(span), float(d_pre))
    thread = threading.get_ident() if shared_by is None else (shared_by, "shared")
    held = _ROOMS.get(thread)
    if held is None or held[0] != key or held[1] < steps:
        room = _pre_room(np.int64(steps), np.int64(n_in), np.int64(span), np.float32(d_pre), np.int64(regions))
        with _ROOMS_LOCK:  # (threads of other groups may come in at the same time)
            if thread not in _ROOMS and len(_ROOMS) >= _MAX_ROOMS:
                del _ROOMS[next(iter(_ROOMS))]
            held = _ROOMS[thread] = (key, steps, room)
    return held[2]


@keeps_room
def _release_rooms() -> int:
    """Drop every thread's room for pre terms (:func:`_room`); returns its bytes."""
    with _ROOMS_LOCK:
        n_bytes = sum(_nbytes(room) for _, _, room in _ROOMS.values())
        _ROOMS.clear()
    return n_bytes


def _nbytes(arrays) -> int:
    return sum(_nbytes(a) if isinstance(a, tuple) else a.nbytes for a in arrays)


def _pool():
    """The threads that run the native kernel's other groups of blocks: made once per
    process (a child forked from this one has none of its parent's threads), and anew
    where more threads are asked for (``CANNS_STDP_THREADS``; the old pool's threads
    finish what they were given)."""
    wanted = max(1, native_threads() - 1)
    if not _POOL or _POOL[0][0] != os.getpid() or _POOL[0][1]._max_workers < wanted:
        if _POOL and _POOL[0][0] == os.getpid():
            _POOL[0][1].shutdown(wait=False)
        _POOL[:] = [(os.getpid(), ThreadPoolExecutor(wanted, thread_name_prefix="canns_stdp-native"))]
    return _POOL[0][1]
