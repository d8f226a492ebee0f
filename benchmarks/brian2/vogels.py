"""Vogels et al. (2011) in Brian2, for benchmarks/networks.py (run in an environment that has
Brian2; never a project dependency). Same model as canns_stdp.tasks.vogels: 8,000 + 2,000
conductance-based LIF neurons, 2% connectivity, inhibitory STDP on I->E from 1 s.

    python benchmarks/brian2/vogels.py SECONDS [cython|numpy|cpp_standalone] [SEED] [RUN_MS]

Prints one JSON line: exc_rate_hz, inh_rate_hz (the last second), run_s. With RUN_MS, the
seconds after the first run as successive runs of RUN_MS ms each (as a script that runs a
network a little at a time), and the line also gives run_ms_median: the median wall time
of one such run, in ms.
"""

import json
import sys
import time

import numpy as np
from brian2 import NeuronGroup, SpikeMonitor, Synapses, ms, run, second
from setup_run import from_command_line

duration, target = from_command_line()

# conductances in units of the leak conductance; the bias is 200 pA / 10 nS = 20 mV
model = """
dv/dt = (-60*mV - v + g_exc * (0*mV - v) + g_inh * (-80*mV - v) + 20*mV) / (20*ms) : volt (unless refractory)
dg_exc/dt = -g_exc / (5*ms) : 1
dg_inh/dt = -g_inh / (10*ms) : 1
"""
neurons = NeuronGroup(10000, model, threshold="v > -50*mV", reset="v = -60*mV", refractory=5 * ms,
                      method="euler")
neurons.v = "-60*mV + 10*mV * rand()"
exc, inh = neurons[:8000], neurons[8000:]
from_exc = Synapses(exc, neurons, on_pre="g_exc += 0.03")
from_exc.connect(p=0.02)
inh_inh = Synapses(inh, inh, on_pre="g_inh += 0.3")
inh_inh.connect(p=0.02)
eta = 0.0  # no plasticity during the first second
alpha = 2 * 3.0 * 20.0 / 1000.0
inh_exc = Synapses(inh, exc,
                   """w : 1
                      dpresyn_trace/dt = -presyn_trace / (20*ms) : 1 (event-driven)
                      dpostsyn_trace/dt = -postsyn_trace / (20*ms) : 1 (event-driven)""",
                   on_pre="""presyn_trace += 1.
                             w = clip(w + (postsyn_trace - alpha) * eta, 0, 10)
                             g_inh += w""",
                   on_post="""postsyn_trace += 1.
                              w = clip(w + presyn_trace * eta, 0, 10)""")
inh_exc.connect(p=0.02)
inh_exc.w = 0.0
exc_spikes, inh_spikes = SpikeMonitor(exc), SpikeMonitor(inh)
run_ms = float(sys.argv[4]) if len(sys.argv) > 4 else None
start = time.perf_counter()
run(1 * second)
eta = 1e-3
runs = []
if duration > 1 and run_ms is None:
    run((duration - 1) * second)
elif duration > 1:
    for _ in range(int(round((duration - 1) * 1000 / run_ms))):
        begun = time.perf_counter()
        run(run_ms * ms)
        runs.append(time.perf_counter() - begun)
elapsed = time.perf_counter() - start
end = duration


def last_second(monitor, n):
    t = np.asarray(monitor.t / second)
    return float(np.sum(t >= end - 1.0) / n)


row = dict(exc_rate_hz=last_second(exc_spikes, 8000), inh_rate_hz=last_second(inh_spikes, 2000), run_s=elapsed)
if runs:
    row["run_ms_median"] = float(np.median(runs) * 1000)
print(json.dumps(row))
