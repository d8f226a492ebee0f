"""The native CPU kernel of networks: a whole chunk of a network's steps in one call.

It computes :func:`canns_stdp.network.step.network_step` step after step, for networks
built of what it knows (:func:`why_not_native` says what it does not): Poisson and given inputs,
:class:`~canns_stdp.network.LIF`, :class:`~canns_stdp.network.LayerLIF` and
:class:`~canns_stdp.network.Izhikevich` neurons, all-to-all and sparse projections with a
delay per projection, and pair STDP with a built-in weight dependence or Vogels et al.'s
inhibitory rule. Its cost follows the spikes: each population lists its active neurons
once per step (a ring of lists for the delayed projections), a projection's input visits
the fan-out of the neurons whose spikes arrive, and plasticity the synapses of the
neurons that spiked, as the XLA step's local update does.

The network is handed to the kernel as a few flat arrays: ``plan`` (integers: the order
of the populations, then a record per population and per projection, see
:func:`_plan`), ``num`` (every number, per neuron), ``idx`` (the sparse projections'
index tables), the state ``S`` and the weights ``W`` (updated in place), and the given
inputs and imposed spikes of the chunk's steps. Every number is computed as the XLA
step computes it, in float32 and in the same order (a sparse projection's input sums the
arriving neurons in ascending order, as the XLA step's scatter does); XLA may round a
multiply-add once where the kernel rounds twice, so results equal the plain step to
float rounding.

It is registered with brainevent's :class:`XLACustomKernel` (numba on the CPU), as the
layer's native kernel (:mod:`canns_stdp.kernels.native_pair`), and cached on disk.
"""

from __future__ import annotations

import hashlib
from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ..functional.dependence import DEPENDENCES
from ..functional.traces import TRACE_MODES
from .native_pair import native_available, numba
from .prefetch import prefetch, prefetch_run

if numba is not None:
    from numba.cpython.unsafe.numbers import trailing_zeros  # (LLVM's cttz)
    from numba.extending import overload

    from .native_pair import _copy, registered
    from .nonzero import WIDTH, nonzero_mask

__all__ = ["Held", "native_chunk_size", "native_network_chunks", "why_not_native"]

# population kinds, projection kinds and rules, as the kernel's branches test them
GIVEN, POISSON, LIF_COND, LIF_CURRENT, LAYER_LIF, IZHIKEVICH = range(6)
DENSE, SPARSE = range(2)
NO_RULE, PAIR, VOGELS, SLOW = range(4)
_PAIRINGS = ("symmetric", "causal", "strict")
_DEPENDENCE_CODES = {DEPENDENCES[name]: code for code, name in enumerate(("additive", "hard", "soft", "power"))}
_HEAD = 2        # plan[0] = populations, plan[1] = projections, then the update order
_POP = 18        # integers per population record
_PROJ = 26       # integers per projection record
# a population's numbers in ``num``, each n floats, in this order
_POP_NUMBERS = {
    POISSON: ("p",),
    LIF_COND: ("dt_tau_m", "v_rest", "E_exc", "E_inh", "bias", "dt_tau_exc", "dt_tau_inh", "v_threshold",
               "refractory_steps", "v_reset", "theta_decay", "theta_plus"),
    LIF_CURRENT: ("dt_tau_m", "v_rest", "E_exc", "E_inh", "bias", "dt_tau_exc", "dt_tau_inh", "v_threshold",
                  "refractory_steps", "v_reset", "theta_decay", "theta_plus"),
    LAYER_LIF: ("leak", "threshold", "v_reset", "theta_decay", "theta_plus"),
    IZHIKEVICH: ("dt_a", "b", "c", "d", "h"),
}
_STATE_FIELDS = {GIVEN: ("spike",), POISSON: ("spike",), LIF_COND: ("v", "g_exc", "g_inh", "refractory", "spike",
                                                                     "theta"),
                 LIF_CURRENT: ("v", "g_exc", "g_inh", "refractory", "spike", "theta"),
                 LAYER_LIF: ("v", "spike", "theta"), IZHIKEVICH: ("v", "u", "spike")}
# a projection's numbers in ``num``: scalars
_PROJ_NUMBERS = ("d_pre", "a_pre", "d_post", "a_post", "lr", "w_min", "w_max", "mu", "A_plus", "A_minus", "alpha",
                 "offset", "keep", "period")
_N_PROJ_NUMBERS = len(_PROJ_NUMBERS)
_AHEAD = 2  # sources ahead whose synapses a sparse projection prefetches
_EARLY = 16  # sources whose synapses are prefetched as a step starts


def _pop_kind(template) -> int:
    from ..network.populations import LIF, Izhikevich, LayerLIF, PoissonInput, SpikeInput
    kinds = {SpikeInput: GIVEN, PoissonInput: POISSON, LayerLIF: LAYER_LIF, Izhikevich: IZHIKEVICH}
    if type(template) is LIF:
        return LIF_COND if template.synapse == "conductance" else LIF_CURRENT
    return kinds.get(type(template), -1)


def why_not_native(config, params) -> str:
    """Why the native kernel cannot run this network's step ("" when it can)."""
    from ..network.connectivity import AllToAll, Sparse
    from ..rules.inhibitory import Vogels
    from ..rules.pair import Pair
    from ..rules.slow import SlowSTDP
    if not native_available(warn=False):
        return "it needs numba (pip install 'canns_stdp[native]') and JAX on the CPU"
    if config.reward:
        return "a reward-modulated rule"
    for pop in config.pops:
        if _pop_kind(pop.template) < 0:
            return f"population {pop.name!r} is a {type(pop.template).__name__}"
    for s in config.samplers:
        if s.kind not in ("spikes", "rate"):
            return f"a monitor samples {s.kind} at every step"
    for proj, p in zip(config.projs, params.projs):
        if type(proj.connectivity) not in (AllToAll, Sparse):
            return f"projection {proj.name!r} has {type(proj.connectivity).__name__} connectivity"
        if proj.delay is None and type(proj.connectivity) is not Sparse:
            return f"projection {proj.name!r} has a delay per synapse on all-to-all connectivity"
        if not proj.plastic or not config.learn:
            continue
        if type(p.rule) not in (Pair, Vogels, SlowSTDP):
            return f"projection {proj.name!r} learns with {type(p.rule).__name__}"
        if type(p.rule) is SlowSTDP and type(proj.connectivity) is not Sparse:
            return f"projection {proj.name!r} learns with SlowSTDP on all-to-all connectivity"
        if type(p.rule) is Pair and p.rule.dependence not in _DEPENDENCE_CODES:
            return f"projection {proj.name!r} has a user weight dependence"
        if proj.trace_add not in TRACE_MODES.values():
            return f"projection {proj.name!r} has a user trace"
        numbers = (*p.traces, p.lr, *p.bounds) + tuple(np.asarray(getattr(p.rule, f, 0.0))
                                                       for f in ("A_plus", "A_minus", "alpha", "offset", "keep",
                                                                 "period"))
        if any(np.ndim(a) for a in numbers):
            return f"projection {proj.name!r} has per-synapse or per-neuron learning numbers"
    return ""


_CHUNK_BYTES = 32 << 20


def native_chunk_size(bytes_per_step: int) -> int:
    """Steps per native call: about 32 MiB of per-step inputs and records, between 1,024
    and 16,384 steps (a call costs about 0.3 ms on the host)."""
    steps = max(1, _CHUNK_BYTES // max(1, bytes_per_step))
    return int(min(16384, max(1024, 1 << (steps.bit_length() - 1))))


if numba is not None:
    f32 = np.float32
    _ZERO, _ONE, _TO_UNIT = f32(0.0), f32(1.0), f32(1.0 / (1 << 24))
    _IZ_A, _IZ_B, _IZ_C, _IZ_PEAK = f32(0.04), f32(5.0), f32(140.0), f32(30.0)
    _U16 = np.uint32(16)

    @numba.njit(inline="always")
    def _mix(x):
        """Wellons' lowbias32 on uint32 (numba widens integer products: each is cut back
        to 32 bits, the wrap-around of the XLA step's)."""
        x = x ^ (x >> _U16)
        x = np.uint32(x * np.uint32(0x7FEB352D))
        x = x ^ (x >> np.uint32(15))
        x = np.uint32(x * np.uint32(0x846CA68B))
        return np.uint32(x ^ (x >> _U16))

    @numba.njit(inline="always")
    def _poisson(spikes, seed, step, counters, below, listed):
        """``u < p`` as ``k < ceil(p · 2**24)`` for ``u = k · 2**-24``: exact, in integers.
        The indices of the inputs that fire go to ``listed`` block by block, as :func:`_listed`
        would list them; returns their count."""
        base = _mix(np.uint32(seed) ^ _mix(np.uint32(np.uint32(step) + np.uint32(0x9E3779B9))))
        count = 0
        for start in range(0, spikes.shape[0], 64):
            block, keys, limits = spikes[start:start + 64], counters[start:start + 64], below[start:start + 64]
            any_fired = np.int32(0)
            for j in range(block.shape[0]):
                fired = (_mix(np.uint32(base + keys[j])) >> np.uint32(8)) < limits[j]
                block[j] = _ONE if fired else _ZERO
                any_fired = np.int32(any_fired | np.int32(fired))
            if any_fired:
                for j in range(block.shape[0]):
                    if block[j] != _ZERO:
                        listed[count] = start + j
                        count += 1
        return count

    @numba.njit(inline="always")
    def _factors(w, dependence, w_min, w_max, mu):
        if dependence == 0:
            return _ONE, _ONE
        if dependence == 1:
            return (_ONE if w_max - w > _ZERO else _ZERO), (_ONE if w - w_min > _ZERO else _ZERO)
        up, down = max(w_max - w, _ZERO), max(w - w_min, _ZERO)
        if dependence == 2:
            return up, down
        return up ** mu, down ** mu

    @numba.njit(inline="always")
    def _updated(w, rule, s_j, P_i, Q_j, a_i, x_i, dec_j, c, dependence, hardbound):
        """One synapse's ``clip(W + lr · dW)`` (``c``: the projection's numbers)."""
        lr, w_min, w_max, mu, A_plus, A_minus, alpha = c[4], c[5], c[6], c[7], c[8], c[9], c[10]
        if rule == PAIR:
            fp, fm = _factors(w, dependence, w_min, w_max, mu)
            dw = fp * ((A_plus * s_j) * P_i) - fm * ((A_minus * Q_j) * a_i)
        else:
            dw = s_j * x_i + (dec_j - alpha) * a_i
        w = w + lr * dw
        if hardbound:
            w = min(max(w, w_min), w_max)
        return w

    # (every hot loop indexes views from 0: numba's wrap-around of negative indices would
    # stop the vectoriser on an offset loaded from memory)
    @numba.njit(inline="always")
    def _listed(x, out):
        """The indices of the nonzero entries of ``x`` (sign bits aside: -0.0 is inactive)
        into ``out``, ascending; their count. 64 entries at a time from a mask built in
        vector instructions (:func:`.nonzero.nonzero_mask`, as a layer's active inputs are
        listed), then one pass per set bit: blocks with none active (most, when spikes are
        sparse) cost a few instructions."""
        count = 0
        for start in range(0, x.shape[0], WIDTH):
            mask = nonzero_mask(x, start)
            while mask:
                out[count] = start + trailing_zeros(mask)
                count += 1
                mask &= mask - np.uint64(1)
        return count

    @numba.njit(cache=True, nogil=True, fastmath={"contract"})  # multiply-adds fused, as XLA's
    def _chunk(plan, num, idx, seeds, head, X, Y, S_in, W_in, S, W, rec_s, rec_r):
        # S and W are S_in and W_in themselves (aliased outputs): the kernel updates them in place
        n_pops, n_projs = plan[0], plan[1]
        t0, n_steps, learn = head[0], head[1], head[2]
        pops = _HEAD + n_pops
        projs = pops + _POP * n_pops
        # rings of active lists: per population, one list per slot of its history (or one)
        ring_at = np.zeros(n_pops + 1, np.int64)
        count_at = np.zeros(n_pops + 1, np.int64)
        most_n = 1
        for i in range(n_pops):
            r = pops + _POP * i
            slots = max(plan[r + 10], 1)
            ring_at[i + 1] = ring_at[i] + slots * plan[r + 1]
            count_at[i + 1] = count_at[i] + slots
            most_n = max(most_n, plan[r + 1])
        ring = np.zeros(max(ring_at[n_pops], 1), np.int32)
        counts = np.zeros(max(count_at[n_pops], 1), np.int64)
        for i in range(n_pops):
            r = pops + _POP * i
            n, hist, H = plan[r + 1], plan[r + 9], plan[r + 10]
            for slot in range(H):
                row = S[hist + slot * n:hist + (slot + 1) * n]
                counts[count_at[i] + slot] = _listed(row, ring[ring_at[i] + slot * n:])
        counters = np.empty(most_n, np.uint32)
        for j in range(most_n):
            counters[j] = np.uint32((j * 0x85EBCA6B) & 0xFFFFFFFF)
        below_at = np.zeros(n_pops + 1, np.int64)
        for i in range(n_pops):
            r = pops + _POP * i
            below_at[i + 1] = below_at[i] + (plan[r + 1] if plan[r] == POISSON else 0)
        below = np.zeros(max(below_at[n_pops], 1), np.uint32)
        for i in range(n_pops):
            r = pops + _POP * i
            if plan[r] == POISSON:
                for j in range(plan[r + 1]):
                    below[below_at[i] + j] = np.uint32(min(np.ceil(np.float64(num[plan[r + 15] + j]) * 16777216.0),
                                                           16777216.0))
        adaptive = np.zeros(n_pops, np.bool_)  # an LIF threshold that can move in this chunk
        for i in range(n_pops):
            r = pops + _POP * i
            if plan[r] == LIF_COND or plan[r] == LIF_CURRENT:
                n, p, theta = plan[r + 1], plan[r + 15], plan[r + 7]
                for j in range(n):
                    if num[p + 11 * n + j] != _ZERO or S[theta + j] != _ZERO:
                        adaptive[i] = True
        current = np.zeros(most_n, np.float32)
        exc = np.zeros(most_n, np.float32)
        inh = np.zeros(most_n, np.float32)
        # the decayed traces of a step, per projection
        dec_at = np.zeros(n_projs + 1, np.int64)
        for k in range(n_projs):
            q = projs + _PROJ * k
            n_pre = plan[q + 5] if plan[q + 22] > 0 else plan[pops + _POP * plan[q] + 1]  # per synapse, or neuron
            dec_at[k + 1] = dec_at[k] + n_pre + plan[pops + _POP * plan[q + 1] + 1]
        decayed = np.zeros(max(dec_at[n_projs], 1), np.float32)
        most_arrivals = 1  # the arrivals of a step over all delays, listed by source (see _projected_delayed)
        for k in range(n_projs):
            q = projs + _PROJ * k
            most_arrivals = max(most_arrivals, plan[q + 22] * plan[pops + _POP * plan[q] + 1])
        merge = (np.zeros(most_n, np.float32), np.full(most_n, -1, np.int64), np.zeros(most_arrivals, np.int64),
                 np.zeros(most_arrivals, np.int64), np.zeros(most_n, np.int32))
        # per-synapse presynaptic traces, kept as their neuron's trace shifted by the delay
        z_at = np.zeros(n_projs + 1, np.int64)
        for k in range(n_projs):
            q = projs + _PROJ * k
            n_pre, _, H = _source_rows(plan, pops, plan[q])
            z_at[k + 1] = z_at[k] + ((H + 1) * n_pre if learn and plan[q + 13] and plan[q + 22] > 0 else 0)
        Z = np.zeros(max(z_at[n_projs], 1), np.float32)
        shifted = np.zeros(n_projs, np.bool_)
        for k in range(n_projs):
            if z_at[k + 1] > z_at[k]:
                shifted[k] = _shift_traces(plan, idx, num, S, projs + _PROJ * k, pops, t0, Z[z_at[k]:z_at[k + 1]])
        if learn:  # weights out of their bounds are clipped where the full update clips every synapse
            for k in range(n_projs):
                q = projs + _PROJ * k
                if plan[q + 13] and (plan[q + 4] == DENSE or plan[q + 14] == SLOW) and plan[q + 18]:
                    c = num[plan[q + 21]:plan[q + 21] + _N_PROJ_NUMBERS]
                    for s in range(plan[q + 6], plan[q + 6] + plan[q + 5]):
                        W[s] = min(max(W[s], c[5]), c[6])
        _steps(plan, num, idx, seeds, X, Y, S, W, rec_s, rec_r, t0, n_steps, learn, ring, ring_at, counts, count_at,
               counters, below, below_at, adaptive, current, exc, inh, decayed, dec_at, merge, Z, z_at, shifted)
        for k in range(n_projs):
            if shifted[k]:
                _unshift_traces(plan, idx, S, projs + _PROJ * k, pops, t0 + n_steps, Z[z_at[k]:z_at[k + 1]])

    # the step loop allocates nothing, so it is compiled without numba's runtime: the views
    # it takes of its arrays at every step cost no atomic reference counts
    @numba.njit(cache=True, nogil=True, fastmath={"contract"}, _nrt=False)
    def _steps(plan, num, idx, seeds, X, Y, S, W, rec_s, rec_r, t0, n_steps, learn, ring, ring_at, counts, count_at,
               counters, below, below_at, adaptive, current, exc, inh, decayed, dec_at, merge, Z, z_at, shifted):
        n_pops, n_projs = plan[0], plan[1]
        pops = _HEAD + n_pops
        projs = pops + _POP * n_pops
        for step in range(n_steps):
            t = t0 + step
            for k in range(n_projs):
                _fetch_arrivals(plan, idx, W, projs + _PROJ * k, pops, t, ring, ring_at, counts, count_at)
            for o in range(n_pops):
                i = plan[_HEAD + o]
                r = pops + _POP * i
                kind, n, spike = plan[r], plan[r + 1], plan[r + 2]
                slots = max(plan[r + 10], 1)
                slot = t % slots
                if plan[r + 9] >= 0 and kind != GIVEN:  # the history row this step takes: its old spikes cleared
                    _clear(S[plan[r + 9] + slot * n:plan[r + 9] + (slot + 1) * n],
                           _active(ring, ring_at, counts, count_at, i, n, slot))
                if kind == GIVEN:
                    _copy(X[step, plan[r + 11]:plan[r + 11] + n], S[spike:spike + n])
                elif kind == POISSON:
                    listed = _poisson(S[spike:spike + n], seeds[i], t, counters[:n], below[below_at[i]:below_at[i] + n],
                                      ring[ring_at[i] + (t % slots) * n:])
                else:
                    have_exc, have_inh = False, False
                    for k in range(n_projs):
                        q = projs + _PROJ * k
                        if plan[q + 1] != i:
                            continue
                        excitatory = plan[q + 2] == 0
                        target = exc[:n] if excitatory else inh[:n]
                        if excitatory and not have_exc or not excitatory and not have_inh:
                            _fill(target, _ZERO)  # the receptor's first projection: its input, as it is
                            _projected(plan, idx, S, W, q, pops, t, ring, ring_at, counts, count_at, target, merge)
                            have_exc, have_inh = have_exc or excitatory, have_inh or not excitatory
                        else:  # then each one's input added, as the XLA step sums them
                            _fill(current[:n], _ZERO)
                            _projected(plan, idx, S, W, q, pops, t, ring, ring_at, counts, count_at, current[:n],
                                       merge)
                            _add(current[:n], target)
                    if not have_exc:  # an absent input adds 0, as the XLA step's
                        _fill(exc[:n], _ZERO)
                    if not have_inh:
                        _fill(inh[:n], _ZERO)
                    _neurons(kind, plan, r, num, S, Y, step, exc, inh, adaptive[i])
                # this step's active list, and the ring buffer of past spikes
                if kind != POISSON:  # (its inputs listed themselves as they were drawn)
                    listed = _listed(S[spike:spike + n], ring[ring_at[i] + slot * n:])
                counts[count_at[i] + slot] = listed
                if learn:
                    _fetch_fanins(plan, idx, i, projs, _active(ring, ring_at, counts, count_at, i, n, slot))
                if plan[r + 9] >= 0:
                    row = S[plan[r + 9] + slot * n:plan[r + 9] + (slot + 1) * n]
                    if kind == GIVEN:  # any values: the whole row
                        _copy(S[spike:spike + n], row)
                    else:  # spikes of 0 or 1: the row, cleared of its old ones, takes the new ones
                        _set(S[spike:spike + n], row, _active(ring, ring_at, counts, count_at, i, n, slot))
            if learn:
                for k in range(n_projs):
                    q = projs + _PROJ * k
                    if plan[q + 13] and plan[q + 22] > 0:
                        _learn_delayed(plan, num, idx, S, W, q, pops, t, ring, ring_at, counts, count_at,
                                       decayed[dec_at[k]:dec_at[k + 1]], Z[z_at[k]:z_at[k + 1]], shifted[k])
                    elif plan[q + 13]:
                        _learn(plan, num, idx, S, W, q, pops, t, ring, ring_at, counts, count_at,
                               decayed[dec_at[k]:dec_at[k + 1]])
            for i in range(n_pops):  # what the monitors sample
                r = pops + _POP * i
                n, spike = plan[r + 1], plan[r + 2]
                fired = _active(ring, ring_at, counts, count_at, i, n, t % max(plan[r + 10], 1))
                if plan[r + 13] >= 0:
                    _record(S[spike:spike + n], fired, rec_s[step, plan[r + 13]:plan[r + 13] + (n + 31) // 32])
                if plan[r + 14] >= 0:  # spikes of 0 or 1 sum to their count; given values are summed
                    total = _total(S[spike:spike + n]) if plan[r] == GIVEN else f32(fired.shape[0])
                    rec_r[step, plan[r + 14]] = total / f32(n)

    @numba.njit(inline="always")
    def _clear(row, listed):
        """The listed entries of ``row`` set to 0 (a row of past spikes whose other entries are 0)."""
        for j in listed:
            row[np.uint32(j)] = _ZERO

    @numba.njit(inline="always")
    def _set(spikes, row, listed):
        """``row[j] = spikes[j]`` at the listed entries: a copy of ``spikes`` into a cleared row,
        where only the listed entries are not 0."""
        for j in listed:
            row[np.uint32(j)] = spikes[np.uint32(j)]

    @numba.njit(inline="always")
    def _fill(target, value):
        for j in range(target.shape[0]):
            target[j] = value

    @numba.njit(inline="always")
    def _add(source, target):
        for j in range(target.shape[0]):
            target[j] += source[j]

    @numba.njit(inline="always")
    def _record(spikes, listed, words):
        """The step's spikes (``> 0``) as bits, 32 neurons to a word, from its active list."""
        for w in range(words.shape[0]):
            words[w] = np.uint32(0)
        for j in listed:
            if spikes[j] > _ZERO:
                words[j >> 5] |= np.uint32(1) << np.uint32(j & 31)

    @numba.njit(inline="always")
    def _total(x):
        total = _ZERO
        for j in range(x.shape[0]):
            total += x[j]
        return total

    @numba.njit(inline="always")
    def _arrivals(plan, q, pops, t):
        """``(offset in S of the arriving activity, slot of its active list)``."""
        r = pops + _POP * plan[q]
        n, delay, H = plan[r + 1], plan[q + 3], plan[r + 10]
        if delay == 0:
            return plan[r + 2], t % max(H, 1)
        slot = (t - delay) % H
        return plan[r + 9] + slot * n, slot

    @numba.njit(inline="always")
    def _projected(plan, idx, S, W, q, pops, t, ring, ring_at, counts, count_at, current, merge):
        """A projection's input this step, added to ``current`` (zeros, its target's size)."""
        if plan[q + 22] > 0:
            _projected_delayed(plan, idx, S, W, q, pops, t, ring, ring_at, counts, count_at, current, merge)
            return
        pre = plan[q]
        n_pre, n_post = plan[pops + _POP * pre + 1], plan[pops + _POP * plan[q + 1] + 1]
        a, slot = _arrivals(plan, q, pops, t)
        listed = _active(ring, ring_at, counts, count_at, pre, n_pre, slot)
        w0 = plan[q + 6]
        if plan[q + 4] == DENSE:
            for j in range(n_post):
                total = _ZERO
                row = w0 + j * n_pre
                for i in listed:
                    total += W[row + i] * S[a + i]
                current[j] = total
            return
        out_start, post_of = plan[q + 7], plan[q + 8]
        for o in range(listed.shape[0]):
            if o + _AHEAD < listed.shape[0]:  # the weights and targets of a source further on, to the cache
                _fetch_fanout(idx, W, out_start, post_of, w0, listed[o + _AHEAD])
            i = listed[o]
            _scatter(S[a + i], idx, W, out_start, post_of, w0, i, current)

    @numba.njit(inline="always")
    def _scatter(x, idx, W, out_start, post_of, w0, run, current):
        """``current[j] += w · x`` over a run of synapses (a source's, or a source's at one
        delay), in order. The run's targets and weights are views indexed from 0, and each
        target is read as unsigned: no index needs numba's wrap-around of negative ones."""
        lo, hi = idx[out_start + run], idx[out_start + run + 1]
        targets, weights = idx[post_of + lo:post_of + hi], W[w0 + lo:w0 + hi]
        for k in range(targets.shape[0]):
            j = np.uint32(targets[k])
            current[j] = current[j] + weights[k] * x

    @numba.njit(inline="always")
    def _fetch_arrivals(plan, idx, W, q, pops, t, ring, ring_at, counts, count_at):
        """At a step's start, the synapses of a sparse projection's first arrivals, where
        they are known (one delay of a step or more), go to the cache while the neurons
        update."""
        if plan[q + 4] != SPARSE or plan[q + 22] > 0 or plan[q + 3] < 1:
            return
        pre = plan[q]
        n_pre = plan[pops + _POP * pre + 1]
        arriving = _active(ring, ring_at, counts, count_at, pre, n_pre, _arrivals(plan, q, pops, t)[1])
        for o in range(min(arriving.shape[0], _EARLY)):
            _fetch_fanout(idx, W, plan[q + 7], plan[q + 8], plan[q + 6], arriving[o])

    @numba.njit(inline="always")
    def _fetch_fanins(plan, idx, post, projs, fired):
        """Once a population has fired, the sources and positions of the first spiking
        neurons' synapses in its plastic sparse projections go to the cache, while the
        step's other work runs: the update of these synapses reads them at its end."""
        for k in range(plan[1]):
            q = projs + _PROJ * k
            if plan[q + 1] != post or not plan[q + 13] or plan[q + 4] != SPARSE or plan[q + 22] > 0:
                continue
            in_start, position, pre_of = plan[q + 9], plan[q + 10], plan[q + 11]
            for o in range(min(fired.shape[0], _EARLY)):
                j = fired[o]
                start, stop = idx[in_start + j], idx[in_start + j + 1]
                prefetch_run(idx, position + start, position + stop)
                prefetch_run(idx, pre_of + start, pre_of + stop)

    @numba.njit(inline="always")
    def _fetch_fanout(idx, W, out_start, post_of, w0, i):
        """Prefetch source ``i``'s run of weights and targets (a sparse projection)."""
        start, stop = idx[out_start + i], idx[out_start + i + 1]
        prefetch_run(W, w0 + start, w0 + stop)
        prefetch_run(idx, post_of + start, post_of + stop)

    @numba.njit(inline="always")
    def _source_rows(plan, pops, pre):
        """``(n, offset in S of the ring of past spikes (or of the spikes), ring length)``."""
        r = pops + _POP * pre
        hist = plan[r + 9]
        return plan[r + 1], (hist if hist >= 0 else plan[r + 2]), max(plan[r + 10], 1)

    @numba.njit(inline="always")
    def _projected_delayed(plan, idx, S, W, q, pops, t, ring, ring_at, counts, count_at, current, merge):
        """A projection with a delay per synapse: the spikes of ``d`` steps ago reach the
        synapses of delay ``d``. The arriving sources are visited in ascending order over
        all delays (each marked, with a list of its delays, then the marks listed), so that
        each target sums its inputs in the order of the XLA step's scatter."""
        mark, first, link, link_d, order = merge
        pre = plan[q]
        n_pre, rows, H = _source_rows(plan, pops, pre)
        D, w0, start, post_of = plan[q + 22], plan[q + 6], plan[q + 7], plan[q + 8]
        now = t % H
        k = 0
        for d in range(D):
            slot = _wrap(now - d, H)
            for i in _active(ring, ring_at, counts, count_at, pre, n_pre, slot):
                link[k], link_d[k], first[i] = first[i], d, k
                mark[i] = _ONE
                k += 1
        for o in range(_listed(mark[:n_pre], order)):
            i = order[o]
            e = first[i]
            mark[i], first[i] = _ZERO, -1
            while e >= 0:
                d = link_d[e]
                _scatter(S[rows + _wrap(now - d, H) * n_pre + i], idx, W, start, post_of, w0, i * D + d, current)
                e = link[e]

    @numba.njit(inline="always")
    def _slow_due(W, w0, sd, S, clock_at, c, hardbound):
        """The slow rule's clock; every ``period`` steps ``W += lr · (offset + sd)``, then
        ``sd *= keep``."""
        clock = S[clock_at] + _ONE
        if clock >= c[13]:
            for m in range(sd.shape[0]):
                w = W[w0 + m] + c[4] * (c[11] + sd[m])
                if hardbound:
                    w = min(max(w, c[5]), c[6])
                W[w0 + m] = w
                sd[m] = c[12] * sd[m]
            clock = _ZERO
        S[clock_at] = clock

    @numba.njit(inline="always")
    def _wrap(slot, H):
        return slot + H if slot < 0 else slot

    @numba.njit(inline="always")
    def _trace_step(z, s, decay, amplitude, nearest):
        """A trace's step: decayed, then the spike ``s`` added (or, nearest, set). The
        decayed trace has two uses, so that a compiler allowed to fuse a multiply-add fuses
        the spike's product (exact for spikes of 0 or 1), never the decay's: a trace rounds
        the same wherever it is computed (each step, and again where the next chunk of a
        split run recomputes it)."""
        d = decay * z
        if nearest:
            return amplitude if s > _ZERO else d
        return d + amplitude * s if s != _ZERO else d

    @numba.njit
    def _shift_traces(plan, idx, num, S, q, pops, t0, Z):
        """The presynaptic traces of a projection with a delay per synapse, as the trace of
        each source neuron ``z`` at the steps ``t0 - H - 1 .. t0 - 1`` (``Z``: ``H + 1`` rows
        of its sources, one more than the ring of spikes: a decayed trace reads one step
        further back): the trace of a synapse of delay ``d`` is ``z`` of ``d`` steps earlier,
        as it takes the same spikes ``d`` steps later. ``z`` is read from the synapse of
        the longest delay and run forward over the spikes since; whether every synapse's
        trace then is ``z`` at its delay, bit for bit, is returned (after a run without
        learning it is not: the traces stayed, the spikes went on)."""
        n_pre, rows, H = _source_rows(plan, pops, plan[q])
        D, start, tr_pre = plan[q + 22], plan[q + 7], plan[q + 19]
        c = num[plan[q + 21]:plan[q + 21] + _N_PROJ_NUMBERS]
        nearest, HZ = plan[q + 15], H + 1
        for i in range(n_pre):
            longest = -1
            for d in range(D - 1, -1, -1):
                if idx[start + i * D + d + 1] > idx[start + i * D + d]:
                    longest = d
                    break
            if longest < 0:
                for slot in range(HZ):
                    Z[slot * n_pre + i] = _ZERO
                continue
            z = S[tr_pre + idx[start + i * D + longest]]
            Z[((t0 - 1 - longest) % HZ) * n_pre + i] = z
            for lag in range(longest - 1, -1, -1):
                z = _trace_step(z, S[rows + ((t0 - 1 - lag) % H) * n_pre + i], c[0], c[1], nearest)
                Z[((t0 - 1 - lag) % HZ) * n_pre + i] = z
            for d in range(D):
                expected = Z[((t0 - 1 - d) % HZ) * n_pre + i]
                for m in range(idx[start + i * D + d], idx[start + i * D + d + 1]):
                    if S[tr_pre + m] != expected:
                        return False
        return True

    @numba.njit
    def _unshift_traces(plan, idx, S, q, pops, t_end, Z):
        """Each synapse's presynaptic trace from its source's, at the chunk's end."""
        n_pre, _, H = _source_rows(plan, pops, plan[q])
        D, start, tr_pre = plan[q + 22], plan[q + 7], plan[q + 19]
        for i in range(n_pre):
            for d in range(D):
                z = Z[((t_end - 1 - d) % (H + 1)) * n_pre + i]
                for m in range(idx[start + i * D + d], idx[start + i * D + d + 1]):
                    S[tr_pre + m] = z

    @numba.njit(inline="always")
    def _learn_delayed(plan, num, idx, S, W, q, pops, t, ring, ring_at, counts, count_at, decayed, Z, shifted):
        """:func:`_learn` for a sparse projection with a delay per synapse: its
        presynaptic traces are per synapse, each taking the spikes that arrive there;
        ``shifted``: they are read from their sources' traces in ``Z`` (see
        :func:`_shift_traces`), else each one decays at every step."""
        pre, post = plan[q], plan[q + 1]
        n_pre, rows, H = _source_rows(plan, pops, pre)
        rq = pops + _POP * post
        n_post, n_syn, w0, D = plan[rq + 1], plan[q + 5], plan[q + 6], plan[q + 22]
        fired, s_at = _fired(plan, pops, post, t, ring, ring_at, counts, count_at)
        c, nearest, rule, pairing, dependence, hardbound, tr_pre, tr_post = _rule_of(plan, num, q)
        start, post_of, in_start, position, pre_of, delay_in = plan[q + 7], plan[q + 8], plan[q + 9], \
            plan[q + 10], plan[q + 11], plan[q + 24]
        x, dec = S[tr_pre:tr_pre + n_syn], decayed[:n_syn]
        _advance_trace(S[tr_post:tr_post + n_post], S[s_at:s_at + n_post], c[2], c[3], nearest, decayed[n_syn:])
        P_dec = rule != SLOW and pairing == 2
        Q_dec = rule != SLOW and pairing != 0
        now, HZ = t % H, H + 1
        z_now = t % HZ
        if shifted:  # this step's trace of every source
            before = _wrap(z_now - 1, HZ)
            _next_traces(Z[before * n_pre:(before + 1) * n_pre], S[rows + now * n_pre:rows + (now + 1) * n_pre],
                         c[0], c[1], nearest, Z[z_now * n_pre:(z_now + 1) * n_pre])
        elif P_dec:  # every synapse's trace decays; those of the arrivals take them below
            for m in range(n_syn):
                d_m = c[0] * x[m]
                dec[m] = d_m
                x[m] = d_m
        else:
            for m in range(n_syn):
                x[m] = c[0] * x[m]
        sd = S[plan[q + 23]:plan[q + 23] + n_syn] if rule == SLOW else S[:0]
        for d in range(D):
            slot = _wrap(now - d, H)
            listed = _active(ring, ring_at, counts, count_at, pre, n_pre, slot)
            for i in listed:
                a = S[rows + slot * n_pre + i]
                x_i = p_i = _ZERO
                if shifted:
                    z = _wrap(z_now - d, HZ)
                    x_i, p_i = Z[z * n_pre + i], c[0] * Z[_wrap(z - 1, HZ) * n_pre + i]
                for m in range(idx[start + i * D + d], idx[start + i * D + d + 1]):
                    if not shifted:
                        if nearest:
                            x[m] = c[1] if a > _ZERO else x[m]
                        else:
                            x[m] = x[m] + c[1] * a
                        x_i, p_i = x[m], dec[m]
                    j = idx[post_of + m]
                    if rule == SLOW:
                        sd[m] = (sd[m] + (c[8] * S[s_at + j]) * x_i) - (c[9] * S[tr_post + j]) * a
                    else:
                        Q_j = decayed[n_syn + j] if Q_dec else S[tr_post + j]
                        W[w0 + m] = _updated(W[w0 + m], rule, S[s_at + j], p_i if P_dec else x_i, Q_j, a, x_i,
                                             decayed[n_syn + j], c, dependence, hardbound)
        for j in fired:  # the synapses onto the neurons that fired, less those visited above
            Q_j = decayed[n_syn + j] if Q_dec else S[tr_post + j]
            for s in range(idx[in_start + j], idx[in_start + j + 1]):
                m = idx[position + s]
                i = idx[pre_of + s]
                d = idx[delay_in + s]
                if S[rows + _wrap(now - d, H) * n_pre + i] != _ZERO:
                    continue
                if shifted:
                    z = _wrap(z_now - d, HZ)
                    x_i, p_i = Z[z * n_pre + i], c[0] * Z[_wrap(z - 1, HZ) * n_pre + i]
                else:
                    x_i, p_i = x[m], dec[m]
                if rule == SLOW:
                    sd[m] = sd[m] + (c[8] * S[s_at + j]) * x_i
                else:
                    W[w0 + m] = _updated(W[w0 + m], rule, S[s_at + j], p_i if P_dec else x_i, Q_j, _ZERO, x_i,
                                         decayed[n_syn + j], c, dependence, hardbound)
        if rule == SLOW:
            _slow_due(W, w0, sd, S, plan[q + 23] + n_syn, c, hardbound)

    @numba.njit(inline="always")
    def _neurons(kind, plan, r, num, S, Y, step, exc, inh, adaptive):
        n, p = np.int64(plan[r + 1]), plan[r + 15]
        imposed = plan[r + 12]
        given = Y[step, max(imposed, 0):max(imposed, 0) + n] if imposed >= 0 else Y[step, :0]
        spike = S[plan[r + 2]:plan[r + 2] + n]
        if kind == LIF_COND or kind == LIF_CURRENT:
            rows = (S[plan[r + 3]:plan[r + 3] + n], S[plan[r + 4]:plan[r + 4] + n], S[plan[r + 5]:plan[r + 5] + n],
                    S[plan[r + 6]:plan[r + 6] + n], spike, S[plan[r + 7]:plan[r + 7] + n])
            c, uniform = num[p:p + 12 * n], plan[r + 17] == 1
            # constant flags, each case a loop of its own that the compiler vectorises
            if kind == LIF_COND and imposed < 0:
                _lif(True, rows, c, exc[:n], inh[:n], given, False, uniform, adaptive)
            elif kind == LIF_COND:
                _lif(True, rows, c, exc[:n], inh[:n], given, True, uniform, adaptive)
            elif imposed < 0:
                _lif(False, rows, c, exc[:n], inh[:n], given, False, uniform, adaptive)
            else:
                _lif(False, rows, c, exc[:n], inh[:n], given, True, uniform, adaptive)
        elif kind == LAYER_LIF:
            v, theta, c = S[plan[r + 3]:plan[r + 3] + n], S[plan[r + 7]:plan[r + 7] + n], num[p:p + 5 * n]
            for j in range(n):
                drive = exc[j] - inh[j]
                vm = c[j] * v[j] + drive
                fired = given[j] > _ZERO if imposed >= 0 else vm >= c[n + j] + theta[j]
                s = _ONE if fired else _ZERO
                v[j] = c[2 * n + j] if fired else vm
                spike[j] = s
                theta[j] = c[3 * n + j] * theta[j] + c[4 * n + j] * s
        else:  # IZHIKEVICH
            rows = S[plan[r + 3]:plan[r + 3] + n], S[plan[r + 8]:plan[r + 8] + n], spike
            c, substeps = num[p:p + 5 * n], plan[r + 16]
            # the common cases with a constant number of substeps: loops the compiler vectorises
            if substeps == 2 and imposed < 0:
                _izhikevich(rows, c, exc[:n], inh[:n], given, False, 2)
            elif substeps == 1 and imposed < 0:
                _izhikevich(rows, c, exc[:n], inh[:n], given, False, 1)
            else:
                _izhikevich(rows, c, exc[:n], inh[:n], given, imposed >= 0, substeps)

    @numba.njit(inline="always")
    def _izhikevich(rows, c, exc, inh, given, imposed, substeps):
        """:class:`~canns_stdp.network.Izhikevich`'s step: ``v`` in ``substeps`` steps of
        ``h``, then ``u``; a spike at 30 mV resets both."""
        v, u_, spike = rows
        n = v.shape[0]
        for j in range(n):
            drive = exc[j] - inh[j]
            vm, u, h = v[j], u_[j], c[4 * n + j]
            for _ in range(substeps):
                vm = vm + h * (_IZ_A * vm * vm + _IZ_B * vm + _IZ_C - u + drive)
            u = u + c[j] * (c[n + j] * vm - u)
            fired = given[j] > _ZERO if imposed else vm >= _IZ_PEAK
            v[j] = c[2 * n + j] if fired else vm
            u_[j] = u + c[3 * n + j] if fired else u
            spike[j] = _ONE if fired else _ZERO

    def _at(x, j):
        """``x[j]``, or ``x`` itself when it is one number for every neuron."""

    @overload(_at, inline="always")
    def _at_overload(x, j):
        if isinstance(x, numba.types.Array):
            return lambda x, j: x[j]
        return lambda x, j: x

    @numba.njit(inline="always")
    def _lif(conductance, rows, c, exc, inh, given, imposed, uniform, adaptive):
        """:class:`~canns_stdp.network.LIF`'s step (``c``: its numbers, one row of ``n`` after another);
        numbers the same for every neuron are passed as scalars, a loop of their own. The
        adaptive threshold has a loop of its own too, run only where it can move (a
        threshold at 0 that no spike raises stays 0): the neurons' loop stays simple
        enough for the compiler to vectorise."""
        v, ge, gi, left, spike, theta = rows
        n = v.shape[0]
        if uniform:
            _lif_loop(conductance, v, ge, gi, left, spike, theta, exc, inh, given, imposed, c[0], c[n], c[2 * n],
                      c[3 * n], c[4 * n], c[5 * n], c[6 * n], c[7 * n], c[8 * n], c[9 * n], c[10 * n], c[11 * n])
        else:
            _lif_loop(conductance, v, ge, gi, left, spike, theta, exc, inh, given, imposed, c[:n], c[n:2 * n],
                      c[2 * n:3 * n], c[3 * n:4 * n], c[4 * n:5 * n], c[5 * n:6 * n], c[6 * n:7 * n], c[7 * n:8 * n],
                      c[8 * n:9 * n], c[9 * n:10 * n], c[10 * n:11 * n], c[11 * n:])
        if adaptive:
            decay, plus = c[10 * n:11 * n], c[11 * n:]
            for j in range(n):
                theta[j] = decay[j] * theta[j] + plus[j] * spike[j]

    @numba.njit(inline="always")
    def _lif_loop(conductance, v, ge, gi, left, spike, theta, exc, inh, given, imposed, dt_tau_m, v_rest, E_exc,
                  E_inh, bias, dt_tau_exc, dt_tau_inh, v_threshold, refractory, v_reset, theta_decay, theta_plus):
        for j in range(v.shape[0]):
            vm, g_e, g_i = v[j], ge[j], gi[j]
            if conductance:
                dv = (_at(v_rest, j) - vm + g_e * (_at(E_exc, j) - vm) + g_i * (_at(E_inh, j) - vm)
                      + _at(bias, j))
            else:
                dv = _at(v_rest, j) - vm + g_e - g_i + _at(bias, j)
            resting = left[j] > _ZERO
            vm = vm if resting else vm + _at(dt_tau_m, j) * dv
            ge[j] = g_e - _at(dt_tau_exc, j) * g_e + exc[j]
            gi[j] = g_i - _at(dt_tau_inh, j) * g_i + inh[j]
            if imposed:
                fired = given[j] > _ZERO
            else:
                fired = (vm > _at(v_threshold, j) + theta[j]) & (not resting)
            s = _ONE if fired else _ZERO
            left[j] = _at(refractory, j) if fired else max(left[j] - _ONE, _ZERO)
            v[j] = _at(v_reset, j) if fired else vm
            spike[j] = s

    @numba.njit(inline="always")
    def _advance_trace(trace, spikes, decay, amplitude, nearest, decayed):
        """``decayed = decay · trace``, ``trace' = add(decayed, spikes, amplitude)``."""
        if nearest:
            for i in range(trace.shape[0]):
                d = decay * trace[i]
                decayed[i] = d
                trace[i] = amplitude if spikes[i] > _ZERO else d
        else:
            for i in range(trace.shape[0]):
                d = decay * trace[i]
                decayed[i] = d
                trace[i] = d + amplitude * spikes[i]

    @numba.njit(inline="always")
    def _next_traces(trace, spikes, decay, amplitude, nearest, after):
        """``after`` = ``trace`` a step on (:func:`_trace_step`); one decay and amplitude for
        all, held outside the loop, which the compiler vectorises."""
        for i in range(trace.shape[0]):
            after[i] = _trace_step(trace[i], spikes[i], decay, amplitude, nearest)

    @numba.njit(inline="always")
    def _active(ring, ring_at, counts, count_at, pop, n, slot):
        """Population ``pop``'s (``n`` neurons) list of active neurons in ring slot ``slot``."""
        at = ring_at[pop] + slot * n
        return ring[at:at + counts[count_at[pop] + slot]]

    @numba.njit(inline="always")
    def _fired(plan, pops, post, t, ring, ring_at, counts, count_at):
        """``(the neurons of population post that fired this step, offset of its spikes in S)``."""
        r = pops + _POP * post
        return _active(ring, ring_at, counts, count_at, post, plan[r + 1], t % max(plan[r + 10], 1)), plan[r + 2]

    @numba.njit(inline="always")
    def _rule_of(plan, num, q):
        """A plastic projection's numbers (``c``) and choices: ``(c, nearest, rule, pairing,
        dependence, hardbound, offset in S of its pre trace, of its post trace)``."""
        return (num[plan[q + 21]:plan[q + 21] + _N_PROJ_NUMBERS], plan[q + 15], plan[q + 14], plan[q + 16],
                plan[q + 17], plan[q + 18], plan[q + 19], plan[q + 20])

    @numba.njit(inline="always")
    def _learn(plan, num, idx, S, W, q, pops, t, ring, ring_at, counts, count_at, decayed):
        """Traces, then the synapses of the arriving inputs and of the neurons that fired."""
        pre, post = plan[q], plan[q + 1]
        n_pre, n_post = plan[pops + _POP * pre + 1], plan[pops + _POP * post + 1]
        a, slot = _arrivals(plan, q, pops, t)
        arrived = _active(ring, ring_at, counts, count_at, pre, n_pre, slot)
        fired, s_at = _fired(plan, pops, post, t, ring, ring_at, counts, count_at)
        c, nearest, rule, pairing, dependence, hardbound, tr_pre, tr_post = _rule_of(plan, num, q)
        _advance_trace(S[tr_pre:tr_pre + n_pre], S[a:a + n_pre], c[0], c[1], nearest, decayed[:n_pre])
        _advance_trace(S[tr_post:tr_post + n_post], S[s_at:s_at + n_post], c[2], c[3], nearest, decayed[n_pre:])
        # the pairing's traces: P (pre, with post spikes) and Q (post, with pre spikes)
        P_at, P_dec = (tr_pre, False) if pairing != 2 else (0, True)
        Q_dec = pairing != 0
        w0 = plan[q + 6]
        if plan[q + 4] == DENSE:
            for i in arrived:
                P_i = decayed[i] if P_dec else S[P_at + i]
                for j in range(n_post):
                    Q_j = decayed[n_pre + j] if Q_dec else S[tr_post + j]
                    s = w0 + j * n_pre + i
                    W[s] = _updated(W[s], rule, S[s_at + j], P_i, Q_j, S[a + i], S[tr_pre + i],
                                    decayed[n_pre + j], c, dependence, hardbound)
            for j in fired:
                Q_j = decayed[n_pre + j] if Q_dec else S[tr_post + j]
                for i in range(n_pre):
                    if S[a + i] != _ZERO:
                        continue
                    P_i = decayed[i] if P_dec else S[P_at + i]
                    s = w0 + j * n_pre + i
                    W[s] = _updated(W[s], rule, S[s_at + j], P_i, Q_j, _ZERO, S[tr_pre + i],
                                    decayed[n_pre + j], c, dependence, hardbound)
            return
        out_start, post_of, in_start, position, pre_of = plan[q + 7], plan[q + 8], plan[q + 9], plan[q + 10], \
            plan[q + 11]
        if rule == SLOW:
            n_syn = plan[q + 5]
            sd = S[plan[q + 23]:plan[q + 23] + n_syn]
            for i in arrived:
                x_i, a_i = S[tr_pre + i], S[a + i]
                for m in range(idx[out_start + i], idx[out_start + i + 1]):
                    j = idx[post_of + m]
                    sd[m] = (sd[m] + (c[8] * S[s_at + j]) * x_i) - (c[9] * S[tr_post + j]) * a_i
            for j in fired:
                for s in range(idx[in_start + j], idx[in_start + j + 1]):
                    i = idx[pre_of + s]
                    if S[a + i] == _ZERO:
                        m = idx[position + s]
                        sd[m] = sd[m] + (c[8] * S[s_at + j]) * S[tr_pre + i]
            _slow_due(W, w0, sd, S, plan[q + 23] + n_syn, c, hardbound)
            return
        # the neurons' numbers as views indexed from 0 by unsigned indices (no wrap-around)
        pre_in, pre_trace = S[a:a + n_pre], S[tr_pre:tr_pre + n_pre]
        pre_P = decayed[:n_pre] if P_dec else pre_trace
        post_spike, post_dec = S[s_at:s_at + n_post], decayed[n_pre:n_pre + n_post]
        post_Q = post_dec if Q_dec else S[tr_post:tr_post + n_post]
        synapses = W[w0:w0 + plan[q + 5]]
        for o in range(arrived.shape[0]):
            if o + _AHEAD < arrived.shape[0]:
                _fetch_fanout(idx, W, out_start, post_of, w0, arrived[o + _AHEAD])
            i = arrived[o]
            P_i, a_i, x_i = pre_P[np.uint32(i)], pre_in[np.uint32(i)], pre_trace[np.uint32(i)]
            lo, hi = idx[out_start + i], idx[out_start + i + 1]
            targets, run = idx[post_of + lo:post_of + hi], synapses[lo:hi]
            for k in range(targets.shape[0]):
                j = np.uint32(targets[k])
                run[k] = _updated(run[k], rule, post_spike[j], P_i, post_Q[j], a_i, x_i, post_dec[j], c, dependence,
                                  hardbound)
        for o in range(fired.shape[0]):
            # to the cache: the synapses' sources and positions of a neuron further on, then
            # the scattered weights of a nearer one (its positions fetched a step before)
            if o + 2 * _AHEAD < fired.shape[0]:
                further = fired[o + 2 * _AHEAD]
                prefetch_run(idx, pre_of + idx[in_start + further], pre_of + idx[in_start + further + 1])
                prefetch_run(idx, position + idx[in_start + further], position + idx[in_start + further + 1])
            if o + _AHEAD < fired.shape[0]:
                ahead = fired[o + _AHEAD]
                for s in range(idx[in_start + ahead], idx[in_start + ahead + 1]):
                    prefetch(W, w0 + idx[position + s])
            j = fired[o]
            Q_j, s_j, dec_j = post_Q[np.uint32(j)], post_spike[np.uint32(j)], post_dec[np.uint32(j)]
            lo, hi = idx[in_start + j], idx[in_start + j + 1]
            sources, places = idx[pre_of + lo:pre_of + hi], idx[position + lo:position + hi]
            for k in range(sources.shape[0]):
                i = np.uint32(sources[k])
                if pre_in[i] != _ZERO:
                    continue
                m = np.uint32(places[k])
                synapses[m] = _updated(synapses[m], rule, s_j, pre_P[i], Q_j, _ZERO, pre_trace[i], dec_j, c,
                                       dependence, hardbound)

    _network_chunk = registered("canns_stdp_network_chunk", _chunk, {7: 0, 8: 1})


# -- the network as the kernel's flat arrays ---------------------------------------------
_FIELD_SLOTS = {"spike": 2, "v": 3, "g_exc": 4, "g_inh": 5, "refractory": 6, "theta": 7, "u": 8}


def _per_synapse(proj) -> bool:
    return proj.delay is None


def _state_layout(config, slow=()):
    """Where each state array lives in ``S``: ``(pops, history, traces, rules, size)``
    with ``pops[i][field]``, ``history[i]`` (or -1), ``traces[k] = (pre, post)`` (or
    None) and ``rules[k]`` (the slow rule's ``sd`` then its clock, or -1) as offsets; a
    projection with a delay per synapse has a presynaptic trace per synapse. ``slow``:
    the projections that learn with :class:`~canns_stdp.rules.SlowSTDP`. Static: it
    follows the sizes only."""
    at, pops, history, traces, rules = 0, [], [], [], []
    for pop in config.pops:
        kind = _pop_kind(pop.template)
        fields = {}
        for name in _STATE_FIELDS[kind]:
            fields[name] = at
            at += pop.template.n
        pops.append(fields)
    for pop in config.pops:
        history.append(at if pop.history else -1)
        at += pop.history * pop.template.n
    for k, proj in enumerate(config.projs):
        n_syn = int(np.prod(proj.connectivity.shape))
        if proj.plastic:
            n_pre = n_syn if _per_synapse(proj) else config.pops[proj.pre].template.n
            traces.append((at, at + n_pre))
            at += n_pre + config.pops[proj.post].template.n
        else:
            traces.append(None)
        rules.append(at if k in slow else -1)
        at += n_syn + 1 if k in slow else 0
    return pops, history, traces, rules, at


def _number_layout(config):
    """Offsets in ``num`` of each population's and projection's numbers (static)."""
    at, pops, projs = 0, [], []
    for pop in config.pops:
        pops.append(at)
        at += len(_POP_NUMBERS.get(_pop_kind(pop.template), ())) * pop.template.n
    for _ in config.projs:
        projs.append(at)
        at += len(_PROJ_NUMBERS)
    return pops, projs


def _records(config):
    """``(spike columns per population, rate column per population, widths)`` of what the
    monitors sample (-1 where nothing); a population's spikes take ``ceil(n / 32)`` words
    of 32 bits."""
    spikes, rates = [-1] * len(config.pops), [-1] * len(config.pops)
    width_s = width_r = 0
    for s in config.samplers:
        if s.kind == "spikes" and spikes[s.index] < 0:
            spikes[s.index] = width_s
            width_s += (config.pops[s.index].template.n + 31) // 32
        elif s.kind == "rate" and rates[s.index] < 0:
            rates[s.index] = width_r
            width_r += 1
    return spikes, rates, max(width_s, 1), max(width_r, 1)


def _weight_offsets(config):
    at, offsets = 0, []
    for proj in config.projs:
        offsets.append(at)
        at += int(np.prod(proj.connectivity.shape))
    return offsets, at


def _is_sparse(proj) -> bool:
    from ..network.connectivity import Sparse
    return isinstance(proj.connectivity, Sparse)


def _slow(config, params) -> tuple:
    """The projections that learn with :class:`~canns_stdp.rules.SlowSTDP` in this run."""
    from ..rules.slow import SlowSTDP
    return tuple(k for k, (proj, p) in enumerate(zip(config.projs, params.projs))
                 if config.learn and proj.plastic and type(p.rule) is SlowSTDP)


def _uniform(pop_params) -> bool:
    """Whether a population's step takes the same numbers for every neuron (its initial
    values, ``*_init``, aside: the step never reads them), so that the neurons' loop
    reads them as scalars instead of a row of numbers each."""
    return all(np.ndim(a) == 0 for name, a in pop_params.items() if not name.endswith("_init"))


def _host_plan(config, params, tables):
    """The kernel's integers (a host array); ``tables``: where :func:`_layout` put each
    sparse projection's tables, and its number of delays."""
    pops, history, traces, rules, _ = _state_layout(config, _slow(config, params))
    pop_numbers, proj_numbers = _number_layout(config)
    spike_cols, rate_cols, _, _ = _records(config)
    w_offsets, _ = _weight_offsets(config)
    n_pops, n_projs = len(config.pops), len(config.projs)
    plan = np.full(_HEAD + n_pops + _POP * n_pops + _PROJ * n_projs, -1, np.int64)
    plan[0], plan[1] = n_pops, n_projs
    plan[_HEAD:_HEAD + n_pops] = config.order
    given = imposed = 0
    for i, pop in enumerate(config.pops):
        r = _HEAD + n_pops + _POP * i
        kind = _pop_kind(pop.template)
        plan[r], plan[r + 1] = kind, pop.template.n
        for name, offset in pops[i].items():
            plan[r + _FIELD_SLOTS[name]] = offset
        plan[r + 9], plan[r + 10] = history[i], pop.history
        if pop.given:
            plan[r + 11] = given
            given += pop.template.n
        if pop.imposed:
            plan[r + 12] = imposed
            imposed += pop.template.n
        plan[r + 13], plan[r + 14], plan[r + 15] = spike_cols[i], rate_cols[i], pop_numbers[i]
        plan[r + 16] = getattr(pop.template, "substeps", 1)
        plan[r + 17] = int(_uniform(params.pops[i]))
    for k, (proj, p) in enumerate(zip(config.projs, params.projs)):
        q = _HEAD + n_pops + _POP * n_pops + _PROJ * k
        sparse = _is_sparse(proj)
        n_syn = int(np.prod(proj.connectivity.shape))
        per_synapse = _per_synapse(proj)
        plan[q:q + 7] = (proj.pre, proj.post, 0 if proj.receptor == "exc" else 1, -1 if per_synapse else proj.delay,
                         SPARSE if sparse else DENSE, n_syn, w_offsets[k])
        if sparse:  # the kernel's layout: synapses by presynaptic neuron (see _by_source)
            at, depth = tables[k]
            plan[[q + 7, q + 8, q + 9, q + 10, q + 11, q + 24]] = at
            plan[q + 22] = depth if per_synapse else 0
        plastic = proj.plastic and config.learn
        plan[q + 13] = int(plastic)
        plan[q + 23] = rules[k]
        if plastic:
            from ..rules.pair import Pair
            from ..rules.slow import SlowSTDP
            pair = type(p.rule) is Pair
            plan[q + 14] = PAIR if pair else SLOW if type(p.rule) is SlowSTDP else VOGELS
            plan[q + 15] = int(proj.trace_add is TRACE_MODES["nearest"])
            plan[q + 16] = _PAIRINGS.index(p.rule.pairing) if pair else 0
            plan[q + 17] = _DEPENDENCE_CODES[p.rule.dependence] if pair else 0
            plan[q + 18] = int(proj.hardbound)
            plan[q + 19], plan[q + 20] = traces[k]
        plan[q + 21] = proj_numbers[k]
    return plan.astype(np.int32)


def _layout(config, params):
    """``(idx, orders, tables)``: the sparse projections' tables of :func:`_by_source`, one
    after another in ``idx`` (int32); per sparse projection, the order of its synapses in
    the kernel's layout and their positions in it; per projection, where its tables start
    in ``idx`` and its number of delays (``None`` for a dense one)."""
    parts, orders, tables = [], [], []
    idx_at = 0
    for proj, p in zip(config.projs, params.projs):
        if not _is_sparse(proj):
            tables.append(None)
            continue
        order, own = _by_source(p, config.pops[proj.pre].template.n, config.pops[proj.post].template.n)
        orders.append((order, own[3]))
        if p.delays is None:  # one delay for all: no table of delays
            own = own[:5] + (own[5][:0],)
        at = []
        for table in own:
            at.append(idx_at)
            parts.append(table)
            idx_at += table.size
        tables.append((at, int(np.max(p.delays, initial=0)) + 1 if p.delays is not None else 1))
    idx = np.concatenate(parts) if parts else np.zeros(1, np.int32)
    return idx, tuple(orders), tables


def _kept(cache: dict, key, make, size: int = 4):
    """``cache[key]``, made by ``make()`` when absent; the ``size`` last keys kept."""
    if key not in cache:
        while len(cache) >= size:
            cache.pop(next(iter(cache)))
        cache[key] = make()
    return cache[key]


_PLANS: dict = {}  # the plans of the last networks run, by what determines them
_LAYOUTS: dict = {}  # their connectivity in the kernel's layout


def _device_plan(config, params):
    """``(plan, idx, orders)`` on the device, kept for the next runs of the same network.
    The layout of the connectivity (:func:`_layout`) follows its index arrays (held here,
    so that their identities stay theirs) and is shared by runs with and without
    learning; the plan follows the configuration, the rules' kinds and which numbers are
    uniform."""
    arrays = tuple((p.arrays.get("pre"), p.arrays.get("post"), p.delays) for p in params.projs)
    wiring = (tuple(id(a) for held in arrays for a in held),
              tuple((proj.pre, proj.post, _is_sparse(proj)) for proj in config.projs),
              tuple(pop.template.n for pop in config.pops))

    def layout():
        idx, orders, tables = _layout(config, params)
        return jax.device_put(idx), jax.device_put(orders), tables, arrays
    idx, orders, tables, _ = _kept(_LAYOUTS, wiring, layout)
    key = (config, wiring, tuple((type(p.rule), getattr(p.rule, "pairing", None),
                                  getattr(p.rule, "dependence", None)) for p in params.projs),
           tuple(_uniform(p) for p in params.pops))
    plan = _kept(_PLANS, key, lambda: jax.device_put(_host_plan(config, params, tables)))
    return plan, idx, orders


def _by_source(p, n_pre: int, n_post: int):
    """A sparse projection in the kernel's layout. Its synapses are stored by target (the
    order of ``W``); the kernel keeps them by source (then by delay, when each synapse
    has its own), so that the fan-out of a spiking neuron (arriving with a given delay)
    is one contiguous run of weights and targets. Returns the order (``W[order]`` is the
    kernel's weights) and the tables: where each source's (and delay's) run starts, the
    target of each run entry, where each target's synapses start (in ``W``'s order), the
    position in the kernel's layout of each synapse, each synapse's source and its delay
    (these three in ``W``'s order)."""
    from ..network.connectivity import stable_order
    pre, post = np.asarray(p.arrays["pre"], np.int32), np.asarray(p.arrays["post"], np.int32)
    delays = np.zeros(pre.size, np.int32) if p.delays is None else np.asarray(p.delays, np.int32)
    slots = int(delays.max(initial=0)) + 1
    runs = pre * np.int64(slots) + delays if slots > 1 else pre
    order = stable_order(runs, n_pre * slots).astype(np.int32)
    position = np.empty_like(order)
    position[order] = np.arange(order.size, dtype=np.int32)
    out_start = np.zeros(n_pre * slots + 1, np.int32)
    np.cumsum(np.bincount(runs, minlength=n_pre * slots), out=out_start[1:])
    in_start = np.zeros(n_post + 1, np.int32)
    np.cumsum(np.bincount(post, minlength=n_post), out=in_start[1:])
    return order, (out_start, post[order], in_start, position, pre, delays)


def _pop_numbers(template, p, dt):
    """A population's numbers as the XLA step computes them (``dt`` traced)."""
    kind = _pop_kind(template)
    if kind == POISSON:
        named = dict(p=p["rates_hz"] * (dt / 1000.0))
    elif kind in (LIF_COND, LIF_CURRENT):
        named = dict(dt_tau_m=dt / p["tau_m"], v_rest=p["v_rest"], E_exc=p["E_exc"], E_inh=p["E_inh"],
                     bias=p["bias"], dt_tau_exc=dt / p["tau_exc"], dt_tau_inh=dt / p["tau_inh"],
                     v_threshold=p["v_threshold"], refractory_steps=jnp.round(p["refractory"] / dt),
                     v_reset=p["v_reset"], theta_decay=jnp.exp(-dt / p["tau_theta"]), theta_plus=p["theta_plus"])
    elif kind == LAYER_LIF:
        named = dict(leak=p["leak"], threshold=p["threshold"], v_reset=p["v_reset"],
                     theta_decay=jnp.exp(-dt / p["tau_theta"]), theta_plus=p["theta_plus"])
    elif kind == IZHIKEVICH:
        named = dict(dt_a=dt * p["a"], b=p["b"], c=p["c"], d=p["d"], h=dt / template.substeps)
    else:
        return []
    return [jnp.broadcast_to(jnp.asarray(named[k], jnp.float32), (template.n,)) for k in _POP_NUMBERS[kind]]


def _proj_numbers(proj, p):
    rule = p.rule
    named = dict(d_pre=p.traces.d_pre, a_pre=p.traces.a_pre, d_post=p.traces.d_post, a_post=p.traces.a_post,
                 lr=p.lr, w_min=p.bounds.w_min, w_max=p.bounds.w_max, mu=getattr(rule, "mu", 1.0),
                 A_plus=getattr(rule, "A_plus", 0.0), A_minus=getattr(rule, "A_minus", 0.0),
                 alpha=getattr(rule, "alpha", 0.0), offset=getattr(rule, "offset", 0.0),
                 keep=getattr(rule, "keep", 0.0), period=getattr(rule, "period", 0))
    return [jnp.reshape(jnp.asarray(named[k] if proj.plastic else 0.0, jnp.float32), (1,)) for k in _PROJ_NUMBERS]


def _flat(parts, dtype=jnp.float32):
    parts = [jnp.reshape(jnp.asarray(a, dtype), (-1,)) for a in parts]
    return jnp.concatenate(parts) if parts else jnp.zeros((1,), dtype)


def _sparse_layout(config, orders) -> dict:
    """Per sparse projection (by index): ``(order, position)`` of its synapses in the
    kernel's layout (:func:`_layout`)."""
    sparse = [k for k, proj in enumerate(config.projs) if _is_sparse(proj)]
    return dict(zip(sparse, orders))


class Packed(NamedTuple):
    """A network's state between the chunks of a run of the native kernel: its arrays in
    the kernel's layout (``S``: the neurons' state, histories and traces; ``W``: every
    weight, a sparse projection's by source), the step count ``t``, and the state the run
    started from (the shapes, and what the kernel does not hold). The weights are put in
    and out of the kernel's order once a run, not once a chunk (:func:`_pack`,
    :func:`_unpack`)."""

    state: Any
    S: Any
    W: Any
    t: Any


@partial(jax.jit, static_argnames=("config",))
def _pack(config, orders, params, state):
    """``(S, W)``: ``state`` in the kernel's layout."""
    slow = _slow(config, params)
    parts = [getattr(s, name) for pop, s in zip(config.pops, state.pops) for name in _STATE_FIELDS[
        _pop_kind(pop.template)]]
    parts += [h for h in state.history if h is not None]
    layout = _sparse_layout(config, orders)
    for k, (proj, st) in enumerate(zip(config.projs, state.projs)):
        if st.trace_pre is not None:  # per synapse, in the kernel's order
            parts += [st.trace_pre[layout[k][0]] if _per_synapse(proj) else st.trace_pre, st.trace_post]
        if k in slow:
            parts += [st.rule.sd[layout[k][0]], st.rule.clock]
    W = _flat([st.W[layout[k][0]] if k in layout else st.W for k, st in enumerate(state.projs)])
    return _flat(parts), W


@partial(jax.jit, static_argnames=("config",), donate_argnames=("S", "W"))
def _run_packed(config, plan, idx, params, seed, t, S, W, X, Y, n_steps):
    """The kernel over one chunk: ``(S, W, t, samples)`` after it; ``S`` and ``W`` are
    updated in place (given to the result)."""
    _, _, width_s, width_r = _records(config)
    num = _flat([a for pop, p in zip(config.pops, params.pops) for a in _pop_numbers(pop.template, p, params.dt)]
                + [a for proj, p in zip(config.projs, params.projs) for a in _proj_numbers(proj, p)])
    seeds = jnp.stack([seed + jnp.uint32(i * 0x632BE5AB) if _pop_kind(pop.template) == POISSON
                       else jnp.uint32(0) for i, pop in enumerate(config.pops)])
    head = jnp.stack([t, jnp.asarray(n_steps, jnp.int32), jnp.int32(config.learn)])
    T = X.shape[0]
    outs = [jax.ShapeDtypeStruct(S.shape, jnp.float32), jax.ShapeDtypeStruct(W.shape, jnp.float32),
            jax.ShapeDtypeStruct((T, width_s), jnp.uint32), jax.ShapeDtypeStruct((T, width_r), jnp.float32)]
    S, W, rec_s, rec_r = _network_chunk(plan, num, idx, seeds, head, X, Y, S, W, outs=outs)
    spike_cols, rate_cols, _, _ = _records(config)
    samples = []
    for s in config.samplers:
        if s.kind == "spikes":
            words = (config.pops[s.index].template.n + 31) // 32  # as SpikeMonitor unpacks them
            samples.append(rec_s[:, spike_cols[s.index]:spike_cols[s.index] + words])
        else:
            samples.append(rec_r[:, rate_cols[s.index]])
    return S, W, t + jnp.asarray(n_steps, jnp.int32), tuple(samples)


@partial(jax.jit, static_argnames=("config",))
def _unpack(config, orders, params, state, S, W, t):
    slow = _slow(config, params)
    pops_at, history_at, traces_at, rules_at, _ = _state_layout(config, slow)
    layout = _sparse_layout(config, orders)
    new_pops = []
    for i, (pop, s) in enumerate(zip(config.pops, state.pops)):
        n = pop.template.n
        new_pops.append(s._replace(**{name: S[at:at + n] for name, at in pops_at[i].items()}))
    new_history = tuple(None if h is None else S[at:at + h.size].reshape(h.shape)
                        for h, at in zip(state.history, history_at))
    w_offsets, _ = _weight_offsets(config)
    new_projs = []
    for k, st in enumerate(state.projs):
        W_k = W[w_offsets[k]:w_offsets[k] + st.W.size]
        st = st._replace(W=W_k[layout[k][1]] if k in layout else W_k.reshape(st.W.shape))
        if traces_at[k] is not None:
            pre_at, post_at = traces_at[k]
            trace_pre = S[pre_at:pre_at + st.trace_pre.size]
            st = st._replace(trace_pre=trace_pre[layout[k][1]] if _per_synapse(config.projs[k]) else trace_pre,
                             trace_post=S[post_at:post_at + st.trace_post.size])
        if k in slow:
            at, n_syn = rules_at[k], st.W.size
            st = st._replace(rule=st.rule._replace(sd=S[at:at + n_syn][layout[k][1]], clock=S[at + n_syn]))
        new_projs.append(st)
    return state._replace(t=t, pops=tuple(new_pops), history=new_history, projs=tuple(new_projs))


_ON_DEVICE: dict = {}  # the numbers of the last runs on the device, by their values
_NONE: dict = {}  # a chunk's absent inputs, by chunk length


def _on_device(params):
    """``params`` on the device, kept for the next runs while their numbers stay the same: a
    network builds them anew for each run, and putting their ~60 arrays on the device cost
    about 2 ms a run."""
    leaves, treedef = jax.tree_util.tree_flatten(params)
    digest = hashlib.blake2b(repr(treedef).encode(), digest_size=16)
    for leaf in leaves:
        a = np.ascontiguousarray(leaf)
        digest.update(f"{a.dtype}{a.shape}".encode())
        digest.update(a.tobytes())
    return _kept(_ON_DEVICE, digest.digest(), lambda: jax.device_put(params))


class Held(NamedTuple):
    """A network's state as a run of the native kernel left it: ``packed`` (a
    :class:`Packed`), ``unpack`` (``unpack(packed)``: the state as the network holds it)
    and ``key`` (its layout; a later run with the same key goes on from ``packed`` without
    packing the state again)."""

    packed: Packed
    unpack: Any
    key: Any

    def state(self):
        """The state as the network holds it."""
        return self.unpack(self.packed)


@jax.jit
def _copied(S, W):
    return jnp.copy(S), jnp.copy(W)


def native_network_chunks(config, params, chunk_size: int):
    """Chunks of a network's steps through the native kernel, with the interface of
    :func:`canns_stdp.loops.compiled_chunks` (the per-step inputs: the step's number,
    then the given activities, then the imposed spikes). A run starts from the network's
    state, or from a :class:`Held` one whose ``key`` is ``run_chunk.key``; ``run_chunk.held``
    makes a run's last state one."""
    from ..loops import padded
    plan, idx, orders = _device_plan(config, params)
    # the held state's layout (the orders themselves are kept alive by its unpacking)
    key = (_state_layout(config, _slow(config, params)), _weight_offsets(config), id(orders))
    # the kernel reads the connectivity from the plan: its index arrays stay on the host
    params = _on_device(params._replace(projs=tuple(p._replace(arrays={}, delays=None) for p in params.projs)))
    n_given = sum(p.given for p in config.pops)
    # no given inputs, or no imposed spikes
    none = _kept(_NONE, chunk_size, lambda: jax.device_put(np.zeros((chunk_size, 1), np.float32)))

    def run_chunk(state, chunk, n_steps, record, offset=0):
        chunk = tuple(padded(a, chunk_size) for a in chunk[1:])
        given, imposed = chunk[:n_given], chunk[n_given:]
        X = jnp.concatenate([jnp.asarray(a, jnp.float32) for a in given], axis=1) if given else none
        Y = jnp.concatenate([jnp.asarray(a, jnp.float32) for a in imposed], axis=1) if imposed else none
        if isinstance(state, Held):  # a run's first chunk, from where the last one left off: copies, so that
            S, W = _copied(state.packed.S, state.packed.W)  # the held state outlives a failed run
            state = state.packed._replace(S=S, W=W)
        elif not isinstance(state, Packed):  # a run's first chunk, from the network's state
            state = Packed(state, *_pack(config, orders, params, state), state.t)
        S, W, t, samples = _run_packed(config, plan, idx, params, state.state.seed, state.t, state.S, state.W, X, Y,
                                       np.int32(n_steps))
        return Packed(state.state, S, W, t), samples

    def unpacked(state):
        """The network's state (as :class:`~canns_stdp.network.Network` holds it) of a
        state between chunks."""
        if not isinstance(state, Packed):
            return state
        return _unpack(config, orders, params, state.state, state.S, state.W, state.t)
    run_chunk.unpacked = unpacked
    run_chunk.key = key
    run_chunk.held = lambda state: Held(state, unpacked, key)
    return run_chunk
