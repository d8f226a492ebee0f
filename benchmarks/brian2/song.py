"""Song, Miller & Abbott (2000) in Brian2, for benchmarks/networks.py (run in an environment
that has Brian2; never a project dependency). Same model as canns_stdp.tasks.song:
1,000 Poisson inputs at 15 Hz, one conductance-based LIF neuron, additive pair STDP.

    python benchmarks/brian2/song.py SECONDS [cython|numpy|cpp_standalone] [SEED]

Prints one JSON line: low_fraction, high_fraction, rate_hz, run_s.
"""

import json
import time

import numpy as np
from brian2 import Hz, NeuronGroup, PoissonGroup, SpikeMonitor, Synapses, mV, run, second
from setup_run import from_command_line

duration, target = from_command_line()

gmax, a_plus = 0.01, 0.01 * 0.01
model = """
dv/dt = (g_exc * (0*mV - v) + (-74*mV) - v) / (10*ms) : volt
dg_exc/dt = -g_exc / (5*ms) : 1
"""
inputs = PoissonGroup(1000, rates=15 * Hz)
neuron = NeuronGroup(1, model, threshold="v > -54*mV", reset="v = -60*mV", method="euler")
neuron.v = -60 * mV
synapses = Synapses(inputs, neuron,
                    """w : 1
                       dpre/dt = -pre / (20*ms) : 1 (event-driven)
                       dpost/dt = -post / (20*ms) : 1 (event-driven)""",
                    on_pre="""g_exc += w
                              pre += a_plus
                              w = clip(w - post, 0, gmax)""",
                    on_post="""post += 1.05 * a_plus
                               w = clip(w + pre, 0, gmax)""",
                    namespace=dict(a_plus=a_plus, gmax=gmax))
synapses.connect()
synapses.w = "rand() * gmax"
spikes = SpikeMonitor(neuron)
start = time.perf_counter()
run(duration * second)
elapsed = time.perf_counter() - start
w = np.asarray(synapses.w[:]) / gmax
t = np.asarray(spikes.t / second)
rate = float(np.sum(t >= 0.9 * duration) / (0.1 * duration))
print(json.dumps(dict(low_fraction=float(np.mean(w < 0.1)), high_fraction=float(np.mean(w > 0.9)), rate_hz=rate,
                      run_s=elapsed)))
