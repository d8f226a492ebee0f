"""The one driver of every run, and the ways a chunk of steps can be executed.

:func:`drive` cuts a sequence of per-step inputs into chunks of ``chunk_size`` steps and
hands each to a chunk function ``run_chunk(state, chunk, n_steps, record, offset) ->
(state, outs)``; between chunks it updates the progress bar, calls the checkpoint
``callback`` and keeps the recorded outputs. It knows nothing of kernels. Chunks follow
the global step count: a run that starts at step ``start`` first finishes the chunk in
progress (``offset = start % chunk_size`` steps of it are done), so a sequence split
across calls is cut into the same chunks as in one call. The chunk functions are:

* :func:`compiled_chunks`: a compiled loop over a chunk padded to ``chunk_size`` (the
  number of steps run is a traced argument, so one compilation serves every sequence
  length),
* :func:`blocked_chunks`: the same, one block of output neurons at a time,
* :func:`python_steps`: a Python ``for`` over the steps, one jitted dispatch per step
  (inside ``jax.disable_jit()`` it runs op by op, for debugging),

each for a step ``step(config, params, state, *inputs_t) -> (state, out)``, optionally
with a :class:`Frame` renewing the state every span of steps. A kernel may build its own (e.g. the
fused GPU kernel). :func:`run_compiled` and :func:`run_python` drive a step with the
first and the last.
"""

from __future__ import annotations

import operator
from functools import partial
from typing import Callable, NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np

from .host_memory import ALIGNMENT
from .progress import progress_bar

__all__ = ["Frame", "blocked_chunks", "compilation_count", "compiled_chunks", "convert", "default_chunk_size", "drive",
           "padded", "python_steps", "run_chunk", "run_compiled", "run_python", "static_length"]

_CHUNK_BYTES = 4 << 20  # host-to-device transfer per chunk


def default_chunk_size(n_in: int) -> int:
    """Steps per compiled chunk: about 4 MiB of input, between 16 and 1024 steps."""
    steps = max(1, _CHUNK_BYTES // (4 * max(1, n_in)))
    return int(min(1024, max(16, 1 << (steps.bit_length() - 1))))


def _empty_outs(step, config, params, state, seq):
    """Zeros for the outputs of every step of a chunk."""
    first = tuple(None if a is None else a[0] for a in seq)
    out_shape = jax.eval_shape(lambda s: step(config, params, s, *first)[1], state)
    return jax.tree_util.tree_map(lambda o: jnp.zeros((_length(seq),) + o.shape, o.dtype), out_shape)


class Frame(NamedTuple):
    """A state renewed every ``every`` steps of the global step count, inside the loops.

    ``renew(config, params, state)`` runs after each step whose global index ``g`` has
    ``(g + 1) % every == 0``, so the steps may carry a state of their own that is settled
    and opened again at fixed steps whatever the calls and chunks (e.g. a ledger of
    deferred LTP, :func:`~canns_stdp.functional.layer_step.renew_span`). Both loops
    renew at the same steps; ``every`` divides the chunk size.
    """

    renew: Callable
    every: int


def static_length() -> bool:
    """Whether compiled chunks run every step of their padded length, masking the padding
    (on accelerators: a loop with a traced trip count asks the host at every step whether
    to go on), rather than a loop of ``n_steps`` steps (on a CPU, where that costs nothing
    and the padding would cost its steps)."""
    return jax.default_backend() != "cpu"


def _loop_chunk(step, config, params, state, seq, n_steps, record, frame: Optional[Frame] = None, offset=0,
                static: bool = False):
    """Run ``step`` over the first ``n_steps`` entries of one chunk (the rest is padding),
    whose first step is step ``offset`` of its chunk in the global count.

    A loop with a traced trip count, not a ``cond`` per step: XLA copies the operands
    of a ``cond`` nested in another one, and steps may hold a ``cond`` of their own.
    With ``static`` (:func:`static_length`), a scan over every entry instead, whose steps
    past ``n_steps`` leave the state as it was (their outputs are padding too).
    With a ``frame``, a loop over its spans runs the steps of each span and renews the
    state after every span that ends on a multiple of ``frame.every``.
    """
    outs = _empty_outs(step, config, params, state, seq) if record else None

    def body(t, carry):
        state, outs = carry
        inputs = tuple(None if a is None else a[t] for a in seq)
        state, out = step(config, params, state, *inputs)
        if record:
            outs = jax.tree_util.tree_map(lambda buf, o: buf.at[t].set(o), outs, out)
        return state, outs

    if frame is None and static:
        def masked(carry, t):
            state, outs = body(t, carry)
            state = jax.tree_util.tree_map(lambda new, old: jnp.where(t < n_steps, new, old), state, carry[0])
            return (state, outs), None

        return jax.lax.scan(masked, (state, outs), jnp.arange(_length(seq)))[0]
    if frame is None:
        return jax.lax.fori_loop(0, n_steps, body, (state, outs))
    every = frame.every
    phase = offset % every  # steps of the first span done before this chunk

    def steps_of_span(k, carry):
        lo = jnp.maximum(0, k * every - phase)
        return jax.lax.fori_loop(lo, jnp.minimum(n_steps, (k + 1) * every - phase), body, carry)

    def renew(state):
        return frame.renew(config, params, state)

    def span(k, carry):
        state, outs = steps_of_span(k, carry)
        return renew(state), outs

    n_spans = (phase + n_steps + every - 1) // every
    state, outs = steps_of_span(n_spans - 1, jax.lax.fori_loop(0, n_spans - 1, span, (state, outs)))
    # the last span is renewed only when it is whole: a later call goes on with it
    return jax.lax.cond((phase + n_steps) % every == 0, renew, lambda s: s, state), outs


_run_chunk = jax.jit(_loop_chunk, static_argnames=("step", "config", "record", "frame", "static"))
#: ``run_chunk(step, config, params, state, seq, n_steps, record, frame=None, offset=0)``: the compiled
#: loop over the first ``n_steps`` steps of one chunk, for drivers of their own (e.g. a
#: stack of layers trained inside an optax step); compiled once per step, config and shapes.
run_chunk = _run_chunk


@partial(jax.jit, static_argnames=("step", "config", "record", "blocks"))
def _run_blocked_chunk(step, config, params, state, seq, n_steps, record, blocks):
    """The chunk one block of output neurons at a time: each block runs every step of
    the chunk before the next block starts, so its weights stay in cache meanwhile.

    ``blocks`` (e.g. :class:`~canns_stdp.functional.layer_step.NeuronBlocks`) cuts the
    state and the per-step inputs into blocks and puts them back, and names the state
    every block computes alike (``shared``); it is only valid for steps whose output
    neurons do not interact (a dense layer driven by its input).
    """
    def one_block(b, carry):
        state, outs, _ = carry
        part, part_seq = blocks.take(config, state, seq, b)
        part, out = _loop_chunk(step, config, params, part, part_seq, n_steps, record)  # no frame: offset unused
        if record:
            outs = jax.tree_util.tree_map(
                lambda buf, o: jax.lax.dynamic_update_slice_in_dim(buf, o, b * blocks.size, 1), outs, out)
        return blocks.put(config, state, part, b), outs, blocks.shared(part)

    outs = _empty_outs(step, config, params, state, seq) if record else None
    state, outs, shared = jax.lax.fori_loop(0, blocks.count, one_block, (state, outs, blocks.shared(state)))
    return blocks.with_shared(state, shared), outs


@partial(jax.jit, static_argnames=("step", "config"), donate_argnames=("state",))
def _one_step(step, config, params, state, inputs):
    """One step; ``state``'s buffers are given to the result, so that the weights are
    updated in place as in the compiled loop (no copy of ``W`` per step)."""
    return step(config, params, state, *inputs)


def _length(seq) -> int:
    return next(a.shape[0] for a in seq if a is not None)


def padded(chunk, length: int):
    """A per-step input padded with zeros to ``length`` steps (``None`` stays ``None``)."""
    if chunk is None or chunk.shape[0] == length:
        return chunk
    if isinstance(chunk, jax.Array):  # (an input kept on its device: padded there)
        return jnp.pad(chunk, [(0, length - chunk.shape[0])] + [(0, 0)] * (chunk.ndim - 1))
    pad = np.zeros((length - chunk.shape[0],) + chunk.shape[1:], chunk.dtype)
    return np.concatenate([chunk, pad])


_RESIDENT: dict = {}  # a parameter structure -> (its NumPy scalars, the same numbers on the device)


def resident(params):
    """``params`` with its NumPy scalars as arrays on the device (the same values and
    types): a compiled call takes a device array as it is, where it copies every NumPy
    scalar to the device at each call (for a step's dozen, tens of microseconds a chunk).
    The last scalars of each structure are kept, compared by identity: a trainer hands the
    same objects from call to call while its settings stay the same."""
    leaves, treedef = jax.tree_util.tree_flatten(params)
    scalars = [leaf for leaf in leaves if isinstance(leaf, np.generic)]
    if not scalars:
        return params
    try:
        held = _RESIDENT.get(treedef)
    except TypeError:  # a structure that cannot be a key (then jit hashes it by identity)
        return params
    if held is not None and len(held[0]) == len(leaves) and all(map(operator.is_, held[0], leaves)):
        return held[1]
    moved = iter(jax.device_put(scalars))
    on_device = jax.tree_util.tree_unflatten(
        treedef, [next(moved) if isinstance(leaf, np.generic) else leaf for leaf in leaves])
    if len(_RESIDENT) >= 64:
        _RESIDENT.clear()
    _RESIDENT[treedef] = (tuple(leaves), on_device)
    return on_device


def forget_resident() -> None:
    """Drop the numbers :func:`resident` keeps on the device (the next call moves them again)."""
    _RESIDENT.clear()


def _slice(seq, start: int, stop: int):
    return tuple(None if a is None else a[start:stop] for a in seq)


def _stack_host(outs):
    return jax.tree_util.tree_map(_joined, *outs)


def _joined(*parts):
    """The chunks' outputs one after the other: the array they are consecutive rows of,
    with no copy, where a kernel wrote them into one array of its own (see
    ``kernels.pair_layer.SpikeRows``): all of it, or all of the bytes of an aligned array
    (``host_memory.host_empty``) but its alignment's. Else a new array (never a view of
    another's memory, such as a JAX array's, which is read only)."""
    owner, first = parts[0].base, parts[0]
    if (isinstance(owner, np.ndarray) and owner.flags.owndata and owner.flags.writeable
            and owner.flags.c_contiguous and first.size and first.shape[1:] == parts[-1].shape[1:]):
        at, row = first.ctypes.data, first[:1].nbytes
        for part in parts:
            if part.base is not owner or part.ctypes.data != at or not part.flags.c_contiguous:
                break
            at += part.shape[0] * row
        else:
            before, covered = first.ctypes.data - owner.ctypes.data, at - first.ctypes.data
            if owner.dtype == first.dtype and owner.shape[1:] == first.shape[1:] and owner.nbytes == covered:
                return owner
            if owner.dtype == np.uint8 and before < ALIGNMENT and owner.nbytes == covered + ALIGNMENT:
                return np.ndarray((covered // row,) + first.shape[1:], first.dtype, owner, before)
    return np.concatenate(parts)


def drive(run_chunk: Callable, state, seq: tuple, *, chunk_size: int, start: int = 0, record: bool = False,
          progress: bool = False, desc: str = "steps", callback: Optional[Callable] = None,
          consume: Optional[Callable] = None):
    """Run ``seq`` chunk by chunk through ``run_chunk(state, chunk, n_steps, record, offset)``.

    ``seq`` is a tuple of per-step inputs, each an array with leading axis ``T`` or
    ``None`` (e.g. ``(xs, post_spikes)``); a chunk holds ``n_steps <= chunk_size`` of
    them. Chunks are cut at multiples of ``chunk_size`` of the global step count, the
    first step of ``seq`` being step ``start``; ``offset`` is the position of a chunk's
    first step in its chunk. Returns ``(state, outs)``: ``outs`` stacks the steps'
    outputs on the host when ``record``, else ``None``. ``callback(steps_done, state)``,
    if given, runs on the host after each chunk (e.g. periodic checkpoints); it may raise
    to stop the run. With ``consume``, each chunk's recorded outputs go to
    ``consume(outs, n_steps, first_step)`` on the host as the chunk ends (e.g. monitors
    that keep a part of them) instead of being kept and returned.
    """
    T = _length(seq)
    recorded = []
    if not progress:  # without a bar: no context to enter
        state = _drive_chunks(run_chunk, state, seq, chunk_size, start, record, None, callback, consume, recorded)
    else:
        with progress_bar(T, progress, desc) as bar:
            state = _drive_chunks(run_chunk, state, seq, chunk_size, start, record, bar, callback, consume,
                                  recorded)
    if not record or consume is not None:
        return state, None
    # sliced on the host: no compilation per sequence length
    return state, _stack_host([jax.tree_util.tree_map(lambda o: np.asarray(o)[:n], out) for out, n in recorded])


def _drive_chunks(run_chunk, state, seq, chunk_size, start, record, bar, callback, consume, recorded):
    """The loop of :func:`drive`; returns the final state (recorded outputs go to ``recorded``)."""
    T = _length(seq)
    done = 0
    pending = []  # a chunk's records, consumed while the next chunk runs (none with a callback)
    while done < T:
        offset = (start + done) % chunk_size
        stop = min(T, done + chunk_size - offset)
        chunk = seq if done == 0 and stop == T and type(seq) is tuple else _slice(seq, done, stop)
        state, out = run_chunk(state, chunk, stop - done, record, offset)
        if spans_processes(state):
            jax.block_until_ready(state)  # (see spans_processes)
        if record and consume is not None:
            _consume(consume, pending)
            pending.append((out, stop - done, start + done))
            if callback is not None:
                _consume(consume, pending)
        elif record:  # kept on the device until the end: fetching each chunk would wait for it
            recorded.append((out, stop - done))
        if bar is not None:
            jax.block_until_ready(state)
            bar.update(stop - done)
        done = stop
        if callback is not None:
            callback(stop, state)
    _consume(consume, pending)
    return state


def _consume(consume, pending):
    """Hand the pending chunk's records to ``consume`` (on the host)."""
    if pending:
        out, n, first = pending.pop()
        consume(jax.tree_util.tree_map(lambda o: np.asarray(o)[:n], out), n, first)


def compiled_chunks(step: Callable, config, params, chunk_size: int, frame: Optional[Frame] = None,
                    static: Optional[bool] = None):
    """Chunks of ``step`` in one compiled loop each, padded to ``chunk_size`` steps; all of
    them run, the padding masked, where ``static`` (default :func:`static_length`)."""
    static = static_length() if static is None else static

    params = resident(params)

    def run_chunk(state, chunk, n_steps, record, offset=0):
        chunk = tuple(padded(a, chunk_size) for a in chunk)
        return _run_chunk(step, config, params, state, chunk, n_steps, record, frame, offset, static)
    return run_chunk


def blocked_chunks(step: Callable, config, params, chunk_size: int, blocks):
    """Chunks of ``step`` run one block of output neurons at a time (:func:`_run_blocked_chunk`)."""
    params = resident(params)

    def run_chunk(state, chunk, n_steps, record, offset=0):
        chunk = tuple(padded(a, chunk_size) for a in chunk)
        return _run_blocked_chunk(step, config, params, state, chunk, n_steps, record, blocks)
    return run_chunk


def spans_processes(state) -> bool:
    """Whether ``state`` lies on devices of several processes (a mesh across hosts).
    There the loops wait for each program they dispatch before the next: a device may
    start the next program while another device still runs the last (each waits only for
    its own shards), and two CPU processes running a Python loop of steps with
    collectives hung in 1 of 12 runs (both waiting inside a step), in none of 30 once
    each step was waited for."""
    if jax.process_count() == 1:
        return False
    return any(isinstance(a, jax.Array) and not a.is_fully_addressable for a in jax.tree_util.tree_leaves(state))


def python_steps(step: Callable, config, params, frame: Optional[Frame] = None):
    """Chunks of ``step`` run by a Python loop, one jitted step per dispatch.

    Each step donates its state to the next, so ``W`` is updated in place as in the
    compiled loop; a chunk starts from a copy of the state it is given, so the caller's
    arrays are left alone. The numbers go to the device once, not at every step. The
    frame renews the state at the same steps as in :func:`compiled_chunks`.
    """
    # arrays already placed stay where they are (on a mesh of several processes, too)
    params = jax.tree_util.tree_map(lambda a: a if isinstance(a, jax.Array) else jax.device_put(a), params)

    def run_chunk(state, chunk, n_steps, record, offset=0):
        state = jax.tree_util.tree_map(jnp.copy, state)
        sync = spans_processes(state)
        outs = []
        for t in range(n_steps):
            inputs = tuple(None if a is None else a[t] for a in chunk)
            state, out = _one_step(step, config, params, state, inputs)
            if record:
                outs.append(out)
            if frame is not None and (offset + t + 1) % frame.every == 0:
                state = _convert(frame.renew, config, params, state)
            if sync:
                jax.block_until_ready(state)  # (see spans_processes)
        if not record:
            return state, None
        return state, jax.tree_util.tree_map(lambda *o: np.stack([np.asarray(a) for a in o]), *outs)
    return run_chunk


def run_compiled(step: Callable, config, params, state, seq: tuple, *, record: bool = False,
                 chunk_size: int = 256, start: int = 0, progress: bool = False, desc: str = "steps",
                 callback: Optional[Callable] = None, frame: Optional[Frame] = None):
    """Run ``step(config, params, state, *inputs_t) -> (state, out)`` over ``seq`` in
    compiled chunks (:func:`drive` with :func:`compiled_chunks`)."""
    return drive(compiled_chunks(step, config, params, chunk_size, frame), state, seq, chunk_size=chunk_size,
                 start=start, record=record, progress=progress, desc=desc, callback=callback)


def run_python(step: Callable, config, params, state, seq: tuple, *, record: bool = False,
               chunk_size: int = 256, start: int = 0, progress: bool = False, desc: str = "steps",
               callback: Optional[Callable] = None, frame: Optional[Frame] = None):
    """Run ``step`` over ``seq`` with a Python loop, one step per dispatch; the frame and
    the callback come at the steps where :func:`run_compiled` with the same
    ``chunk_size`` applies them, so both loops run the same steps."""
    return drive(python_steps(step, config, params, frame), state, seq, chunk_size=chunk_size, start=start,
                 record=record, progress=progress, desc=desc, callback=callback)


@partial(jax.jit, static_argnames=("convert", "config"))
def _convert(convert, config, params, state, *inputs):
    return convert(config, params, state, *inputs)


#: ``convert(function, config, params, state, *inputs)``: ``function(config, params, state,
#: *inputs)`` compiled once per function, config and shapes (a state's change of layout
#: between kernels, e.g. a ledger opened or settled).
convert = _convert


def compilation_count() -> int:
    """How many programs the loops have compiled in this process (chunks of every kind,
    single steps and span conversions, and the programs of :func:`count_compilations`,
    e.g. a layer's ``forward``): a second call that changes only numbers or the sequence
    length adds none."""
    return sum(f._cache_size() for f in (_run_chunk, _run_blocked_chunk, _one_step, _convert) + tuple(_COUNTED))


_COUNTED: list = []


def count_compilations(function):
    """Count the programs a jitted ``function`` compiles in :func:`compilation_count` (e.g.
    a layer's single step); returns ``function``."""
    _COUNTED.append(function)
    return function
