"""Every measured threshold that picks an execution kernel, with the measurement behind it.

All figures were measured on the project's 2-core x86_64 CPU machine with the benchmark
job (784 Poisson inputs, LIF neurons, pair STDP every step).
"""

from __future__ import annotations

__all__ = ["COLUMN_MAX_FIRED", "EVENT_MAX_ACTIVITY", "EVENT_MIN_SYNAPSES", "NATIVE_DEFERRED_MAX_INPUTS",
           "NATIVE_MAX_FIRED", "NATIVE_MAX_FIRING", "NATIVE_MIN_SYNAPSES", "NATIVE_THREADED_MIN_SYNAPSES",
           "NATIVE_THREADED_MIN_WORK", "HANDOVER_MAX_TERMS", "PYTHON_LOOP_EVENT_MIN_SYNAPSES", "event_max_firing"]

# Above this fraction of active inputs (in a chunk) or of firing neurons, the dense
# kernel is faster than the event-driven ones.
EVENT_MAX_ACTIVITY = 1 / 10

# Below this many neurons firing per step, visiting their columns costs less than
# deferring LTP (784x400, measured: 34k against 25k steps/s with none firing, about even
# with 5 per step).
COLUMN_MAX_FIRED = 4


# Where the native kernel cannot defer LTP (a rule whose LTP depends on W, or numbers
# for which no span of 16 steps rounds within the dense step's error), it runs chunks with
# up to this fraction of neurons firing per step (and EVENT_MAX_ACTIVITY of the inputs
# active), the XLA kernels above it: each fired neuron then costs the native kernel a pass
# over its synapses, where the XLA kernels' deferred LTP owes them one number (784x400,
# p = 0.05: 25k against 15k steps/s at 1.3% firing, 9.7k against 22k at 22%; p = 0.01:
# 9.8k against 29k at 12%). Where it defers LTP, firing costs it nothing and it runs
# every chunk, busy inputs too (784x400: p = 0.05, 73k steps/s at 22% firing and 81k at
# 1.3%, the XLA kernels 49k and 38k; p = 0.3, 39k-47k against the dense kernel's 18k-19k).
NATIVE_MAX_FIRING = 1 / 20
# ... and up to this many neurons per step: a fired neuron's LTP at the silent inputs is
# written synapse by synapse (4096x4096, p = 0.01, 3% firing, 123 neurons per step: 345
# against 613 steps/s for deferred LTP).
NATIVE_MAX_FIRED = 16

# The native kernel defers LTP for layers of up to this many inputs (the largest
# measured). Once its weights stayed in its layout from chunk to chunk, with their
# transposition tiled, it beat the XLA kernels' deferred LTP at 4096x4096 (threshold 10,
# steps/s: 2,000-step calls, p = 0.05 1,360 against 607, p = 0.01 2,390 against 1,711;
# 298-step calls, 387 against 303 and 693 against 534); before, a chunk's weights were
# transposed in and out at every chunk, and it lost (308-496 against 707-1,307).
NATIVE_DEFERRED_MAX_INPUTS = 4096

# Layers with fewer synapses keep the XLA kernels: a call of the native kernel costs about
# 300 us on the host (brainevent's callback into numba), where a whole step of such a
# layer costs the XLA kernels a few us, and their users make many short calls (20x5: 330
# us for one step against 270 us for 1,024). Called from the host instead, a train() of
# 50 rows took 580 against 405 us at 20x5; at 200x50, 400x30 and 784x20 the two were
# within this machine's scatter of each other (536-812 against 510-967 us).
NATIVE_MIN_SYNAPSES = 1 << 14

# The native kernel runs a chunk's blocks of neurons in groups on several threads from
# this many synapse-steps (784x400: 54 steps, about 0.23 ms of work on one thread, of
# which a second thread saves about 80 us), where handing a group to another thread and
# waiting for it costs 18 us (30 us at the 90th percentile; calls of 5,000 steps at
# 784x400 ran 1.5x faster on two threads) ...
NATIVE_THREADED_MIN_WORK = 1 << 24
# ... and the passes into its layout and out of it from this many synapses (4096x4096 on
# two threads: into 14.1 -> 8.2 ms, out of it and settled 16.7 -> 11.4 ms; a pass over
# 2^20 synapses takes about 0.9 ms, thirty times the hand-over).
NATIVE_THREADED_MIN_SYNAPSES = 1 << 20
# The threads of a chunk share its pre terms (each stretch's computed by one of them in
# turn, instead of by every thread) where a stretch's terms take up to this many entries
# of each kind (stretch x inputs: 784x400's 128 x 784; not 4096x4096's 1,024 x 4,096,
# whose room of three shared regions would take ~300 MiB; its terms are a few percent of a
# step at p = 0.01 on an AMD EPYC VM, about a tenth on an Intel Xeon VM)
HANDOVER_MAX_TERMS = 1 << 18
# Layers with fewer synapses run the dense XLA kernel under event_driven="auto": the event
# kernels' work on the host (tables of active inputs, W.T, the ledger's conversions) costs
# more than the dense steps they save (calls of 50 steps, reset between calls, p = 0.05:
# 20x5 1.6x, 200x50 1.8x, 784x100 1.5x slower than dense; calls of 2,048 steps: 20x5 3.5x,
# 200x50 1.2x slower, 400x100 even, 784x100 0.55x).
EVENT_MIN_SYNAPSES = 1 << 14

# In the Python loop (a dispatch per step) the dense step wins for more layers: each
# dispatched event step carries its own host work (the step's table of active inputs,
# the ledger's renewals). Below this many synapses that loop runs dense steps under
# event_driven="auto" (steps/s, dense against event kernels, p = 0.05 and 0.01: 784x100
# 29-30k against 15-18k, 784x200 23-24k against 11-13k, 784x300 15-18k against 13-15k,
# 784x400 about even, 784x600 7-8k against 7-10k, 784x1000 4-5k against 7-11k).
PYTHON_LOOP_EVENT_MIN_SYNAPSES = 1 << 18


def event_max_firing(n_out: int, blocked: bool = False) -> float:
    """Firing fraction up to which the fired-column kernel beats the dense one.

    Each fired neuron costs the event kernel one strided column of ``W.T``; once a row of
    ``W.T`` spans a memory page (``n_out >= 1024`` floats) every element of that column
    is on its own page, and the break-even falls from about 1/8 of the neurons (784x400)
    to about 1/25 (4096x4096). Run in neuron blocks that stay in cache (``blocked``), the
    columns are cheap again and the small layers' 1/10 applies (4096x4096, measured: 2.6
    against 5.4 ms per step at 3% firing, 15 against 5.5 ms at 35%).
    """
    return EVENT_MAX_ACTIVITY if 4 * n_out < 4096 or blocked else 1 / 30
