"""Izhikevich (2006) polychronization in Brian2, for benchmarks/networks.py (run in an
environment that has Brian2; never a project dependency). Same model as
canns_stdp.tasks.izhikevich: 800 + 200 Izhikevich neurons, 100 synapses each, delays
1-20 ms on excitatory synapses, STDP accumulated and applied once a second, a 20 mV
thalamic input at 1 Hz per neuron; v integrated in half-millisecond steps.

    python benchmarks/brian2/izhikevich.py SECONDS [cython|numpy|cpp_standalone] [SEED]

Prints one JSON line: gamma_peak_hz, high_fraction, run_s.
"""

import json
import time

import numpy as np
from brian2 import (Hz, NeuronGroup, PoissonInput, PopulationRateMonitor, Synapses, defaultclock, ms, run,
                    second)
from setup_run import from_command_line

duration, target = from_command_line()
defaultclock.dt = 0.5 * ms  # Izhikevich integrates v in two half-millisecond steps

model = """
dv/dt = (0.04 * v**2 + 5 * v + 140 - u) / ms : 1
du/dt = a * (0.2 * v - u) / ms : 1
a : 1
d : 1
"""
neurons = NeuronGroup(1000, model, threshold="v >= 30", reset="v = -65; u += d", method="euler")
neurons.v, neurons.u = -65, 0.2 * -65
neurons.a, neurons.d = 0.02, 8
neurons.a[800:], neurons.d[800:] = 0.1, 2
thalamus = PoissonInput(neurons, "v", N=1, rate=1 * Hz, weight=20)

rng = np.random.default_rng(0)
pre = np.repeat(np.arange(800), 100)
post = np.concatenate([rng.choice(np.delete(np.arange(1000), j), 100, replace=False) for j in range(800)])
exc = Synapses(neurons, neurons,
               """w : 1
                  sd : 1
                  dpresyn_trace/dt = -presyn_trace / (20*ms) : 1 (event-driven)
                  dpostsyn_trace/dt = -postsyn_trace / (20*ms) : 1 (event-driven)""",
               on_pre="""v_post += w
                         presyn_trace += 1
                         sd -= 0.12 * postsyn_trace""",
               on_post="""postsyn_trace += 1
                          sd += 0.1 * presyn_trace""")
exc.connect(i=pre, j=post)
exc.w = 6.0
exc.delay = np.tile(np.repeat(np.arange(1, 21), 5), 800) * ms
exc.run_regularly("w = clip(w + 0.01 + sd, 0, 10)\nsd *= 0.9", dt=1 * second, when="end")
inh = Synapses(neurons, neurons, "w : 1", on_pre="v_post -= w", delay=1 * ms)
inh.connect(i=np.repeat(np.arange(800, 1000), 100),
            j=np.concatenate([rng.choice(800, 100, replace=False) for _ in range(200)]))
inh.w = 5.0
rate = PopulationRateMonitor(neurons[:800])
start = time.perf_counter()
run(duration * second)
elapsed = time.perf_counter() - start
r = np.asarray(rate.rate / Hz)
r = r.reshape(-1, 2).mean(axis=1)  # per ms
tail = r[-min(r.size, 10_000):]
freqs = np.fft.rfftfreq(tail.size, d=1e-3)
power = np.abs(np.fft.rfft(tail - tail.mean())) ** 2
band = (freqs >= 30) & (freqs <= 100)
w = np.asarray(exc.w[:])
print(json.dumps(dict(gamma_peak_hz=float(freqs[band][np.argmax(power[band])]), high_fraction=float(np.mean(w > 9.0)),
                      mean_weight=float(w.mean()), run_s=elapsed)))
