"""Where the step's time goes on XLA:CPU: its row operations one at a time, then whole steps.

    python benchmarks/xla_cpu_rows.py               # every CPU this process may use
    taskset -c 0 python benchmarks/xla_cpu_rows.py  # one CPU: XLA:CPU splits no pass in two

Each line times one operation on the 64 padded rows of ``W.T`` that a step of the
784×400 benchmark job visits at p = 0.05 (25,600 weights), inside a compiled loop of
2,000 iterations, in microseconds per iteration. XLA:CPU splits a pass over more than
about 512 KB (operands included) between its threads; a pass written in place, into a
buffer carried from step to step, is never split (``canns_stdp.functional.in_place``).
The last lines are the library's own compiled chunks, per step: the deferred-LTP kernel
(sparse regime, p = 0.05) and the dense kernel (p = 0.2). Rerun it on a new JAX release
to see what XLA:CPU's gathers, scatters and splits cost there.
"""

from __future__ import annotations

import os
import time

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

N_IN, N_OUT, ROWS, P, ITERATIONS = 784, 400, 64, 0.05, 2000


def per_iteration(body, carry) -> float:
    """Microseconds per iteration of ``fori_loop(body)``, the best of three runs."""
    run = jax.jit(lambda c: lax.fori_loop(0, ITERATIONS, body, c))
    jax.block_until_ready(run(carry))
    best = np.inf
    for _ in range(3):
        start = time.perf_counter()
        jax.block_until_ready(run(carry))
        best = min(best, time.perf_counter() - start)
    return best / ITERATIONS * 1e6


def row_operations(rng):
    """``(name, microseconds)`` for each row operation alone."""
    WT = jnp.asarray(rng.uniform(0.0, 0.05, (N_IN, N_OUT)).astype(np.float32))
    events = np.full((ITERATIONS, ROWS), N_IN, np.int32)
    for t in range(ITERATIONS):
        active = np.flatnonzero(rng.random(N_IN) < P)[:ROWS]
        events[t, :active.size] = active
    events = jnp.asarray(events)
    rate, fired = (jnp.asarray(rng.random(n).astype(np.float32)) for n in (ROWS, N_OUT))

    def gather(W, idx):
        return W.at[idx].get(mode="fill", fill_value=0)

    def sliced(W, idx):  # the same rows, one dynamic slice each (clamped in place of filled)
        return jnp.concatenate([lax.dynamic_slice_in_dim(W, idx[k], 1) for k in range(ROWS)])

    def ledger_formula(A, v):  # the shape of the deferred update: three broadcast products
        owed, ltd = rate[:, None] * v[None, :], 1e-4 * v[None, :]
        return jnp.clip(jnp.clip(A + owed, 0, 1) - ltd, 0, 1) - owed

    def buffered(c, t):  # the gathered rows written into a carried buffer one row longer
        buffer = lax.dynamic_update_slice_in_dim(c[1], gather(c[0], events[t]), 0, 0)
        return c[0], buffer, c[2] + buffer[:ROWS].sum(0)

    bodies = {
        "loop alone (one op on 400 floats)": (lambda t, c: (c[0], c[1] * 0.999), (WT, fired)),
        "gather 64 rows, summed": (lambda t, c: (c[0], c[1] + gather(c[0], events[t]).sum(0)), (WT, fired)),
        "gather 64 rows through a buffer, summed": (lambda t, c: buffered(c, t),
                                                    (WT, jnp.zeros((ROWS + 1, N_OUT)), fired)),
        "dynamic slices of 64 rows, summed": (lambda t, c: (c[0], c[1] + sliced(c[0], events[t]).sum(0)), (WT, fired)),
        "gather 64 rows, scatter them back": (
            lambda t, c: (c[0].at[events[t]].set(gather(c[0], events[t]) * 0.999, mode="drop"), c[1]), (WT, fired)),
        "broadcasting formula on 64x400": (lambda t, c: (ledger_formula(c[0], c[1]), c[1]), (WT[:ROWS], fired)),
    }
    return [(name, per_iteration(body, carry)) for name, (body, carry) in bodies.items()]


def library_chunk(p: float, threshold: float, deferred: bool) -> float:
    """Microseconds per step of the library's compiled chunk on the benchmark job:
    the deferred-LTP kernel or the dense one."""
    from canns_stdp.bench import job
    from canns_stdp.functional.event import input_events
    from canns_stdp.functional.layer_step import (LayerConfig, LayerParams, LayerState, begin_span, end_span,
                                                  train_step)
    from canns_stdp.functional.neurons import LIFParams
    from canns_stdp.loops import Frame, _loop_chunk

    chunk, count = 128, 8
    xs, W0 = job(N_IN, N_OUT, chunk * count, p)
    params = jax.tree_util.tree_map(np.float32, LayerParams(lif=LIFParams(0.9, threshold, 0.0)))
    config = LayerConfig(event_driven=deferred, deferred_ltp=deferred)
    chunks = [xs[i * chunk:(i + 1) * chunk] for i in range(count)]
    chunks = [(jnp.asarray(x), None, jnp.asarray(input_events(x, N_IN // 4)) if deferred else None) for x in chunks]
    frame = Frame(begin_span, end_span, chunk) if deferred else None
    run = jax.jit(lambda state, seq: _loop_chunk(train_step, config, params, state, seq, chunk, False, frame)[0])
    state = LayerState.zeros(N_IN, N_OUT, W=W0.T if deferred else W0)
    for seq in chunks:
        state = run(state, seq)
    jax.block_until_ready(state)
    best = np.inf
    for _ in range(3):
        start = time.perf_counter()
        for seq in chunks:
            state = run(state, seq)
        jax.block_until_ready(state)
        best = min(best, time.perf_counter() - start)
    return best / (chunk * count) * 1e6


def main():
    rng = np.random.default_rng(0)
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"JAX {jax.__version__}, {cpus} CPU(s) usable; microseconds per iteration")
    for name, us in row_operations(rng):
        print(f"{name:42s} {us:7.2f}")
    print(f"{'library deferred-LTP step, p = 0.05':42s} {library_chunk(P, 10.0, True):7.2f}")
    print(f"{'library dense step, p = 0.2':42s} {library_chunk(0.2, 1.0, False):7.2f}")


if __name__ == "__main__":
    main()
