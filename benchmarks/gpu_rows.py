"""The rows of the GPU table (``benchmarks/gpu.py``), one function per kind of row.

Every function takes its sizes and steps from the caller, so the same rows run at full
size on a GPU and tiny on a CPU (the table's smoke run). Each returns a dict that names
its ``section``.

* :func:`layer_row`: a layer trained end to end by the trainer on the fused kernel (its
  input on the device, as CANNs 1.5 is given it, and from NumPy with its spikes
  returned), the fused kernel alone (no host work between calls), the plain XLA step
  and CANNs 1.5.
* :func:`event_row`: the trainer on the event-driven XLA kernels.
* :func:`agreement_row`: the same job trained here and on the host CPU's plain step.
* :func:`streaming_row`: the fused kernel with a streaming tiling, against the roofline.
* :func:`ensemble_row`: K trainers in one ``Ensemble.train`` against one trainer alone,
  and how far the ensemble's member 0 ends from that trainer.
* :func:`network_row`: a plastic network's steps/s, and how far a short run of it here
  is from the same run on the host CPU.
"""

from __future__ import annotations

import time

import numpy as np


def threshold_of(regime: str, n_in: int) -> float:
    """1 for "saturated"; 10 * n_in / 784 for "sparse" (10 at 784 inputs: the threshold
    scales with the mean input current)."""
    return 1.0 if regime == "saturated" else 10.0 * n_in / 784


def fused_kernel_rate(n_in, n_out, T, threshold, tiling=None, random_init=False):
    """Steps/s of :func:`fused_train` alone (one chunk of ``T`` steps, after one untimed
    call). ``random_init``: weights and inputs drawn on the device (for layers whose
    NumPy draw would take longer than the run)."""
    import jax
    import jax.numpy as jnp
    from canns_stdp.bench import job
    from canns_stdp.functional.fused import fused_train
    from canns_stdp.functional.layer_step import LayerConfig, LayerParams, LayerState
    from canns_stdp.functional.neurons import LIFParams

    if random_init:
        k_x, k_w = jax.random.split(jax.random.PRNGKey(0))
        xs = (jax.random.uniform(k_x, (T, n_in)) < 0.05).astype(jnp.float32)
        W0 = jax.random.uniform(k_w, (n_out, n_in), jnp.float32, 0.0, 0.05)
    else:
        xs, W0 = job(n_in, n_out, T, 0.05)
        xs = jnp.asarray(xs)
    params = LayerParams(lif=LIFParams(0.9, threshold, 0.0))
    state = LayerState.zeros(n_in, n_out, W=W0)
    run = lambda s: fused_train(LayerConfig(), params, s, xs, tiling=tiling)  # noqa: E731
    state, _ = run(state)
    jax.block_until_ready(state)
    start = time.perf_counter()
    state, _ = run(state)
    jax.block_until_ready(state)
    return T / (time.perf_counter() - start)


def layer_row(n_in: int, n_out: int, regime: str, T: int, bandwidth: float, canns: bool = True) -> dict:
    from canns_stdp.bench import measure

    thr = threshold_of(regime, n_in)
    row = dict(section="layers", layer=f"{n_in}x{n_out}", regime=regime, threshold=thr, steps=T,
               roofline_steps_per_s=bandwidth / (8 * n_in * n_out))
    # the input on the device and no spikes returned, as CANNs is timed; then from NumPy, spikes returned
    row["trainer"], row["firing"] = measure(n_in, n_out, T, 0.05, thr, event_driven=False, fused=True,
                                            on_device=True, record=False)
    row["trainer_from_host"], _ = measure(n_in, n_out, T, 0.05, thr, event_driven=False, fused=True)
    row["kernel"] = fused_kernel_rate(n_in, n_out, T, thr)
    row["xla"], _ = measure(n_in, n_out, T, 0.05, thr, event_driven=False, fused=False, on_device=True, record=False)
    if canns:
        try:
            import peers
            row["canns"] = peers.canns(n_in, n_out, T, 0.05, thr, compiled=True)
        except ImportError as err:
            row["canns_missing"] = str(err)
    return row


def event_row(n_in: int, n_out: int, regime: str, T: int) -> dict:
    """The trainer on the event-driven XLA kernels (the CPU's event kernels, which touch
    the columns of the active inputs and the rows of the neurons that fired), its input on
    the device."""
    from canns_stdp.bench import measure

    thr = threshold_of(regime, n_in)
    rate, firing = measure(n_in, n_out, T, 0.05, thr, event_driven=True, fused=False, on_device=True, record=False)
    return dict(section="event", layer=f"{n_in}x{n_out}", regime=regime, steps=T, firing=firing, steps_per_s=rate)


def _on(device):
    """A context in which JAX computes on ``device`` (``None``: its default device)."""
    import contextlib

    import jax

    return contextlib.nullcontext() if device is None else jax.default_device(device)


def _trained(n_in, n_out, T, threshold, fused, device=None):
    """The job's final weights and spikes, trained with or without the fused kernel,
    on ``device`` (default: JAX's default device)."""
    from canns_stdp import SpikingLayer, STDPTrainer
    from canns_stdp.bench import job

    xs, W0 = job(n_in, n_out, T, 0.05, seed=1)
    with _on(device):
        layer = SpikingLayer(n_in, n_out, threshold=threshold, W_init=W0)
        spikes = STDPTrainer(layer, fused=fused, event_driven=False).train(xs, return_spikes=True)
        return np.asarray(layer.W.value), np.asarray(spikes)


def agreement_row(n_in: int, n_out: int, regime: str, T: int) -> dict:
    """Largest weight difference and fraction of differing spikes after ``T`` steps of
    the fused kernel and of the plain XLA step here, each against the plain step on the
    host CPU."""
    import jax

    thr = threshold_of(regime, n_in)
    W_cpu, s_cpu = _trained(n_in, n_out, T, thr, fused=False, device=jax.devices("cpu")[0])
    row = dict(section="agreement", layer=f"{n_in}x{n_out}", regime=regime, steps=T, cpu_firing=float(s_cpu.mean()))
    for name, fused in (("fused", True), ("xla", False)):
        W, s = _trained(n_in, n_out, T, thr, fused=fused)
        row[f"{name}_max_dW"] = float(np.abs(W - W_cpu).max())
        row[f"{name}_spike_flips"] = float(np.mean(s != s_cpu))
    return row


def streaming_row(n: int, T: int, bandwidth: float, tiling) -> dict:
    """The fused kernel on an ``n x n`` layer (sparse regime) with ``tiling``, its
    weights and inputs drawn on the device."""
    rate = fused_kernel_rate(n, n, T, threshold_of("sparse", n), tiling, random_init=True)
    roofline = bandwidth / (8 * n * n)
    return dict(section="streaming", layer=f"{n}x{n}", tiling=str(tiling), steps=T, steps_per_s=rate,
                roofline_steps_per_s=roofline, fraction_of_roofline=rate / roofline)


def ensemble_row(K: int, n_in: int, n_out: int, T: int) -> dict:
    """Member-steps/s of K trainers in one call against the steps/s of one trainer."""
    import ensemble
    from canns_stdp import Ensemble

    X = (np.random.default_rng(0).random((T, n_in)) < 0.05).astype(np.float32)
    one = ensemble.members(1, n_in, n_out)[0]
    together = Ensemble(ensemble.members(K, n_in, n_out))
    one_s, together_s = ensemble.timed([lambda: one.train(X), lambda: together.train(X)], repeats=3)
    # member 0 has the numbers of the trainer alone and was trained as many times on the same input
    member_0 = float(np.abs(np.asarray(together.trainers[0].model.W.value) - np.asarray(one.model.W.value)).max())
    return dict(section="ensembles", layer=f"{n_in}x{n_out}", members=K, steps=T, one_trainer_steps_per_s=T / one_s,
                ensemble_member_steps_per_s=K * T / together_s, ratio=K * one_s / together_s,
                member_0_max_dW=member_0)


def _spikes_and_weights(build, steps, device=None):
    """Every spike (population, step, neuron) and the plastic projections' weights after
    ``steps`` steps of a network from ``build()``, on ``device``."""
    from canns_stdp.network import SpikeMonitor

    with _on(device):
        net = build()
        names = [name for name, pop in net.populations.items() if not pop.is_input]
        monitors = [SpikeMonitor(name) for name in names]
        net.run(steps, monitors=monitors)
        spikes = {(name, int(round(t / net.dt)), int(i)) for name, m in zip(names, monitors) for t, i in zip(m.t, m.i)}
        weights = {p.name: net.weights(p.name) for p in net.projections if p.rule is not None}
    return spikes, weights


def network_row(name: str, build, T: int, check_steps: int) -> dict:
    """Steps/s of ``build()``'s network over ``T`` steps (after an untimed run of ``T``,
    which compiles), and how far ``check_steps`` steps of a fresh one are from the same
    steps on the host CPU's plain step (where this is not the CPU)."""
    import jax

    net = build()
    neurons = sum(pop.n for pop in net.populations.values() if not pop.is_input)
    synapses = sum(int(np.size(net.weights(p.name))) for p in net.projections)
    net.run(T)
    jax.block_until_ready(net.weights(net.projections[0].name))
    start = time.perf_counter()
    net.run(T)
    rate = T / (time.perf_counter() - start)
    row = dict(section="networks", network=name, neurons=neurons, synapses=synapses, steps=T, steps_per_s=rate,
               backend=jax.default_backend())
    if check_steps and row["backend"] != "cpu":  # (on a CPU, the host's step is this one)
        here_spikes, here_W = _spikes_and_weights(build, check_steps)
        cpu_spikes, cpu_W = _spikes_and_weights(build, check_steps, jax.devices("cpu")[0])
        row.update(check_steps=check_steps, spikes=len(cpu_spikes), spikes_differing=len(here_spikes ^ cpu_spikes),
                   max_dW=max((float(np.abs(here_W[k] - cpu_W[k]).max()) for k in cpu_W), default=0.0))
    return row


def delayed_network(n: int = 100_000, synapses: int = 100, max_delay: int = 20, seed: int = 0):
    """Izhikevich's (2006) network at ``n`` neurons: 80% excitatory, each neuron's
    outgoing synapses to random targets with probability ``synapses / n``, excitatory ones
    with a delay per synapse of 1 to ``max_delay`` steps and slow STDP, inhibitory ones
    onto excitatory neurons with a delay of one step; a 1 Hz Poisson thalamic input of
    20 mV per neuron; dt = 1 ms. Drawn in time that follows the synapses (10^7 at n = 10^5)."""
    from canns_stdp.network import Izhikevich, Network, PoissonInput, Projection, Sparse, fixed_probability
    from canns_stdp.rules import slow_stdp

    n_exc, n_inh = n * 4 // 5, n - n * 4 // 5
    rng = np.random.default_rng(seed)
    trace = dict(tau_pre=20.0, tau_post=20.0, a_pre=1.0, a_post=1.0)

    def excitatory(target, n_post, k):
        sparse = fixed_probability(synapses / n, seed=seed * 10 + k, allow_self=target != "exc").bind(n_exc, n_post)
        delays = rng.integers(1, max_delay + 1, sparse.pre.size).astype(np.int32)
        return Projection("exc", target, connectivity=sparse, weights=6.0, delay=delays, rule=slow_stdp(),
                          w_max=10.0, learning_rate=1.0, **trace)

    idx = np.arange(n)
    return Network(
        {"thalamus": PoissonInput(n, rates_hz=1.0),
         "exc": Izhikevich(n_exc, a=0.02, b=0.2, c=-65.0, d=8.0),
         "inh": Izhikevich(n_inh, a=0.1, b=0.2, c=-65.0, d=2.0)},
        [excitatory("exc", n_exc, 1), excitatory("inh", n_inh, 2),
         Projection("inh", "exc", connectivity=fixed_probability(min(1.0, synapses / n_exc), seed=seed * 10 + 3),
                    weights=5.0, receptor="inh", delay=1),
         Projection("thalamus", "exc", connectivity=Sparse(idx[:n_exc], idx[:n_exc]), weights=20.0),
         Projection("thalamus", "inh", connectivity=Sparse(idx[n_exc:], idx[:n_inh]), weights=20.0)],
        dt=1.0, seed=seed)
