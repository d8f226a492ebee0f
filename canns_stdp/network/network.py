"""A network of populations and projections, run with the library's loops."""

from __future__ import annotations

from typing import Dict, Mapping, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from .. import _validation as v
from ..functional.dependence import WeightBounds
from ..functional.stdp import TraceParams
from ..functional.traces import TRACE_MODES
from ..loops import compiled_chunks, default_chunk_size, drive, python_steps
from ..kernels.native_network import native_chunk_size, native_network_chunks, why_not_native
from ..kernels.native_pair import native_available
from .monitors import Monitor, SpikeMonitor
from .populations import Population
from .connectivity import Sparse
from .projection import Projection
from .step import NetConfig, NetParams, NetState, PopConfig, ProjConfig, ProjParams, ProjState, monitored_step

__all__ = ["Network"]


def _template(pop: Population) -> Population:
    """``pop`` without its numbers (hashable: the static part of the compiled step)."""
    clone = object.__new__(type(pop))
    for f in pop.__dataclass_fields__:
        object.__setattr__(clone, f, getattr(pop, f) if f in pop._static else None)
    return clone


EVENT_DRIVEN_SYNAPSES = 10_000  # "auto": sparse projections from this size compute their input from events


def _events(proj: Projection, conn, per_synapse) -> bool:
    """Whether a projection's input is computed from the fan-out of the spiking neurons."""
    if not isinstance(conn, Sparse) or per_synapse is not None or proj.event_driven is False:
        return False
    return proj.event_driven is True or conn.pre.size >= EVENT_DRIVEN_SYNAPSES


class Network:
    """Populations and the projections between them, recurrent ones included.

    Args:
        populations: ``{name: population}`` (:class:`~canns_stdp.network.SpikeInput`,
            :class:`~canns_stdp.network.PoissonInput`, :class:`~canns_stdp.network.LIF`,
            :class:`~canns_stdp.network.LayerLIF`, :class:`~canns_stdp.network.Izhikevich`).
        projections: :class:`~canns_stdp.network.Projection` s between them.
        dt: the time step in ms.
        seed: seed of the Poisson inputs' spikes.
        compiled: compiled loop (``True``) or Python loop (``False``), the same step.
        chunk_size: steps per compiled chunk (default: from the inputs' size).
        native: run the compiled loop's chunks through the native CPU kernel
            (:mod:`canns_stdp.kernels.native_network`): ``None`` (default) where it can,
            ``True`` always (a run it cannot do is refused, saying why), ``False`` never.
        mesh, neuron_axis: run on the devices of a ``jax.sharding.Mesh``, every neuron
            population's neurons (and the synapses onto them) split along mesh axis
            ``neuron_axis`` (default: the mesh's first axis); each step gathers every
            population's spikes to every device (:mod:`canns_stdp.network.sharded`). The
            results are those of one device; between runs the network holds its arrays
            on one device. It runs the XLA step (``native=True`` is refused).

    Example:
        >>> from canns_stdp import rules
        >>> from canns_stdp.network import LIF, Network, PoissonInput, Projection, SpikeMonitor
        >>> net = Network({"in": PoissonInput(100, rates_hz=15.0), "out": LIF(1)},
        ...               [Projection("in", "out", weights=0.005, rule=rules.pair(0.0001, 0.000105),
        ...                           w_max=0.01)], dt=0.1)
        >>> spikes = SpikeMonitor("out")
        >>> net.run(duration=100.0, monitors=[spikes])
        >>> net.weights("in->out").shape
        (1, 100)
    """

    def __init__(self, populations: Mapping[str, Population], projections: Sequence[Projection] = (), *,
                 dt: float = 0.1, seed: int = 0, compiled: bool = True, chunk_size: Optional[int] = None,
                 native: Optional[bool] = None, mesh=None, neuron_axis: Optional[str] = None):
        if not isinstance(populations, Mapping) or not populations:
            raise ValueError(f"populations must be a non-empty dict of name: population, got {populations!r}")
        for name, pop in populations.items():
            if not isinstance(name, str) or not name or "/" in name:
                raise ValueError(f"population names must be non-empty strings without '/', got {name!r}")
            if not isinstance(pop, Population):
                raise TypeError(f"population {name!r} must be a canns_stdp.network population, got {pop!r}")
        self.populations: Dict[str, Population] = dict(populations)
        self.projections = list(projections)
        for proj in self.projections:
            if not isinstance(proj, Projection):
                raise TypeError(f"projections must be Projection objects, got {proj!r}")
        names = [p.name for p in self.projections]
        if len(set(names)) != len(names):
            raise ValueError(f"projection names must be unique, got {names}")
        self.dt = v.check_positive("dt", dt)
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2 ** 32:
            raise ValueError(f"seed must be an integer in [0, 2**32), got {seed!r}")
        if not isinstance(compiled, bool):
            raise TypeError(f"compiled must be True or False, got {compiled!r}")
        if native is not None and not isinstance(native, bool):
            raise TypeError(f"native must be None, True or False, got {native!r}")
        if native and not compiled:
            raise ValueError("native=True runs the compiled loop's chunks in the native kernel: it needs compiled=True")
        self.compiled, self.seed, self.native = compiled, int(seed), native
        self.chunk_size = None if chunk_size is None else v.check_positive_int("chunk_size", chunk_size)
        if mesh is None and neuron_axis is not None:
            raise ValueError(f"neuron_axis={neuron_axis!r} needs a mesh=")
        if mesh is not None and native:
            raise ValueError("native=True runs one device's native kernel: it cannot run a network split over a "
                             "mesh (use native=None or False with mesh=)")
        self._build()
        self.mesh, self._layout = mesh, None
        if mesh is not None:
            from .sharded import NeuronLayout
            self._layout = NeuronLayout(self, mesh, neuron_axis)
        self.neuron_axis = None if self._layout is None else self._layout.axis
        self.steps_run = 0

    # -- structure -----------------------------------------------------------------------
    def _population_index(self, name: str) -> int:
        if name not in self.populations:
            raise ValueError(f"no population named {name!r} (the network has {list(self.populations)})")
        return list(self.populations).index(name)

    def _projection_index(self, name: str) -> int:
        names = [p.name for p in self.projections]
        if name not in names:
            raise ValueError(f"no projection named {name!r} (the network has {names})")
        return names.index(name)

    def _build(self) -> None:
        pops = list(self.populations)
        self._bound, self._delays, self._weights0 = [], [], []
        for proj in self.projections:
            for end in (proj.pre, proj.post):
                if end not in self.populations:
                    raise ValueError(f"projection {proj.name}: no population named {end!r} (the network has {pops})")
            if self.populations[proj.post].is_input:
                raise ValueError(f"projection {proj.name}: {proj.post!r} is an input population; it takes no input")
            conn = proj.bind(self.populations[proj.pre].n, self.populations[proj.post].n)
            delay, per_synapse = proj.delays(conn.shape)
            self._bound.append(conn)
            self._delays.append((delay, per_synapse))
            self._weights0.append(proj.initial_weights(conn.shape))
            if proj.plastic:
                rule = proj.rule
                rule.check_shapes(conn.shape, WeightBounds(proj.w_min, proj.w_max))
        self._order = self._update_order()
        longest = {name: 0 for name in pops}
        for proj, (delay, per_synapse) in zip(self.projections, self._delays):
            most = delay if per_synapse is None else int(per_synapse.max(initial=0))
            longest[proj.pre] = max(longest[proj.pre], most)
        self._history = [longest[name] + 1 if longest[name] else 0 for name in pops]
        self._state = self._initial_state([jnp.asarray(w) for w in self._weights0])

    def _update_order(self):
        """Populations in an order where each comes after the sources of its zero-delay
        projections; a cycle of zero-delay projections is refused."""
        pops = list(self.populations)
        after = {name: set() for name in pops}
        for proj, (delay, per_synapse) in zip(self.projections, self._delays):
            zero = delay == 0 if per_synapse is None else bool((per_synapse == 0).any())
            if zero:
                after[proj.post].add(proj.pre)
        order, placed = [], set()
        while len(order) < len(pops):
            ready = [n for n in pops if n not in placed and after[n] <= placed]
            if not ready:
                stuck = sorted(n for n in pops if n not in placed)
                raise ValueError(f"projections with delay 0 form a cycle among populations {stuck}: "
                                 "give a delay >= 1 to a projection of the cycle")
            order.extend(ready)
            placed.update(ready)
        return tuple(pops.index(n) for n in order)

    @property
    def _state(self) -> NetState:
        """The network's state. After a run of the native kernel it is held in the kernel's
        layout (the next such run goes on from it as it is) and unpacked when first read."""
        if self._unpacked is None:
            self._unpacked = self._held.state()
        return self._unpacked

    @_state.setter
    def _state(self, state: NetState) -> None:
        self._unpacked, self._held = state, None

    def _initial_state(self, weights, t=0) -> NetState:
        pops = tuple(p.init() for p in self.populations.values())
        history = tuple(jnp.zeros((h, p.n), jnp.float32) if h else None
                        for h, p in zip(self._history, self.populations.values()))
        projs = []
        for proj, conn, (delay, per_synapse), W in zip(self.projections, self._bound, self._delays, weights):
            if not proj.plastic:
                projs.append(ProjState(W, None, None, None))
                continue
            n_pre, n_post = self.populations[proj.pre].n, self.populations[proj.post].n
            pre_shape = (n_pre,) if per_synapse is None else conn.shape
            rule_state = proj.rule.init_state(pre_shape, (n_post,), conn.shape)
            projs.append(ProjState(W, jnp.zeros(pre_shape, jnp.float32), jnp.zeros((n_post,), jnp.float32),
                                   rule_state))
        return NetState(jnp.asarray(t, jnp.int32), jnp.asarray(self.seed, jnp.uint32), pops, history, tuple(projs))

    def _plan(self, learn: bool, given, imposed, reward: bool, samplers, takes, event_tables: bool = True):
        """``(config, params)`` of a run; ``event_tables=False`` leaves out the fan-out and
        fan-in tables of the XLA step's event-driven projections (the native kernel lays
        out its own)."""
        pop_configs = tuple(
            PopConfig(name, _template(pop), self._history[i], name in given, name in imposed)
            for i, (name, pop) in enumerate(self.populations.items()))
        index = {name: i for i, name in enumerate(self.populations)}
        proj_configs, proj_params = [], []
        for proj, conn, (delay, per_synapse) in zip(self.projections, self._bound, self._delays):
            extras = tuple(proj.rule.extras()) if proj.plastic else ()
            events = _events(proj, conn, per_synapse)
            local = events and proj.plastic and proj.rule.local
            proj_configs.append(ProjConfig(proj.name, index[proj.pre], index[proj.post], proj.receptor, conn, delay,
                                           proj.plastic, local, TRACE_MODES[proj.trace_mode], proj.hardbound,
                                           extras))
            d_pre, d_post = proj.decays(self.dt)
            numbers = dict(lr=proj.learning_rate, bounds=WeightBounds(proj.w_min, proj.w_max),
                           traces=TraceParams(d_pre, d_post, proj.a_pre, proj.a_post))
            numbers = jax.tree_util.tree_map(np.float32, numbers)
            arrays = conn.arrays()
            if events and event_tables:
                arrays["fanout"] = conn.fanout()
            if local and event_tables:
                arrays["fanin"] = conn.fanin()
            proj_params.append(ProjParams(arrays, per_synapse, rule=proj.rule, **numbers))
        config = NetConfig(tuple(pop_configs), tuple(proj_configs), self._order, learn, reward, tuple(samplers))
        params = NetParams(np.float32(self.dt), tuple(p.params() for p in self.populations.values()),
                           tuple(proj_params), tuple(takes))
        return config, params

    # -- running -------------------------------------------------------------------------
    def _steps(self, steps, duration, arrays) -> int:
        lengths = {a.shape[0] for a in arrays}
        if steps is not None and duration is not None:
            raise ValueError("give steps or duration, not both")
        if steps is None and duration is not None:
            steps = int(round(v.check_positive("duration", duration) / self.dt))
            if steps < 1:
                raise ValueError(f"duration must be at least one step of dt = {self.dt} ms, got {duration!r}")
        if steps is None:
            if not lengths:
                raise ValueError("give steps=, duration= or inputs= to say how long to run")
            steps = lengths.pop()
        steps = v.check_positive_int("steps", steps)
        if lengths - {steps}:
            raise ValueError(f"every input must have one row per step ({steps}), got {sorted(lengths)} rows")
        return steps

    def _per_step(self, label: str, given, names, binary: bool):
        given = {} if given is None else dict(given)
        out = {}
        for name, data in given.items():
            if name not in names:
                raise ValueError(f"{label}: no population {name!r} takes {label} (those that do: {sorted(names)})")
            n = self.populations[name].n
            arr = v.as_time_series(f"{label}[{name!r}]", data, n)
            out[name] = v.check_binary(f"{label}[{name!r}]", arr) if binary else arr
        return out

    def run(self, steps: Optional[int] = None, *, duration: Optional[float] = None, inputs=None, imposed=None,
            reward=None, learn: bool = True, monitors: Sequence[Monitor] = (), progress: bool = False) -> None:
        """Run the network (with plasticity when ``learn``), from where it stands.

        Args:
            steps, duration: how long: a number of steps or ms (or the length of ``inputs``).
            inputs: ``{name: (T, n)}`` the activity of every :class:`~canns_stdp.network.SpikeInput`.
            imposed: ``{name: (T, n)}`` 0/1 spikes imposed on neuron populations (teacher forcing).
            reward: the reward of each step (``T`` numbers or one) for reward-modulated rules.
            learn: apply the projections' rules (``False``: weights stay).
            monitors: :mod:`~canns_stdp.network.monitors` to record into.
            progress: show a progress bar.

        A failed run (bad input, non-finite values) leaves the network and the monitors as
        they were.
        """
        if not isinstance(learn, bool):
            raise TypeError(f"learn must be True or False, got {learn!r}")
        input_names = {n for n, p in self.populations.items() if p.given_activity}
        neuron_names = {n for n, p in self.populations.items() if not p.is_input}
        given = self._per_step("inputs", inputs, input_names, binary=False)
        missing = sorted(input_names - set(given))
        if missing:
            raise ValueError(f"inputs must give the activity of every SpikeInput population; missing {missing}")
        forced = self._per_step("imposed", imposed, neuron_names, binary=True)
        T = self._steps(steps, duration, list(given.values()) + list(forced.values()))
        wants_reward = learn and any(p.plastic and "reward" in p.rule.required_extras() for p in self.projections)
        if reward is not None and not wants_reward:
            raise TypeError("reward= is given but no plastic projection's rule takes a reward")
        if wants_reward and reward is None:
            raise TypeError("reward is required by a projection's reward-modulated rule: T numbers or one number")
        monitors = list(monitors)
        for m in monitors:
            if not isinstance(m, Monitor):
                raise TypeError(f"monitors must be canns_stdp.network monitors, got {m!r}")
        bound = [m.bind(self) for m in monitors]
        seq_width = sum(p.n for n, p in self.populations.items() if n in given or n in forced) + 1
        order = [n for n in self.populations]
        seq = [np.arange(T, dtype=np.int32)]
        seq += [given[n] for n in order if n in given] + [forced[n] for n in order if n in forced]
        if wants_reward:
            seq.append(v.as_per_step("reward", reward, T))
        native = (self._layout is None and self.compiled and self.native is not False
                  and (self.native or native_available(warn=True)))
        while True:
            chunk, snapshots = self._chunking(monitors, seq_width, native, T)
            sampled = [(m, b) for m, b in zip(monitors, bound) if m not in snapshots]
            config, params = self._plan(learn, set(given), set(forced), wants_reward,
                                        [b[0] for _, b in sampled], [b[1] for _, b in sampled], not native)
            why = why_not_native(config, params) if native else ""
            if native and why and self.native:
                raise ValueError(f"native=True, but the native kernel cannot run this network: {why}")
            if not why:
                break
            native = False
        step = monitored_step
        if self._layout is not None:  # the neurons split over the mesh
            config, params, step = self._layout.local(config, params)
        if native:
            run_chunk = native_network_chunks(config, params, chunk)
            resumes = self._held is not None and self._held.key == run_chunk.key
            state = self._held if resumes else self._state
        else:
            state = self._state if self._layout is None else self._layout.to_mesh(self._state)
            run_chunk = (compiled_chunks(step, config, params, chunk) if self.compiled
                         else python_steps(step, config, params))
        if self._layout is not None:
            run_chunk = self._layout.inputs(run_chunk, chunk if self.compiled else None, len(given), len(forced))
        for m in monitors:
            m.begin()

        def consume(outs, n_steps, first_step):
            for (m, _), samples in zip(sampled, outs):
                m.consume(np.asarray(samples), first_step, self.dt)

        start = self.steps_run

        unpacked = getattr(run_chunk, "unpacked", lambda state: state)  # (the native kernel's layout)

        def between_chunks(done, state):
            due = [(m, b) for m, b in snapshots.items() if (start + done) % m.every == 0]
            if due:
                state = unpacked(state)
            if due and self._layout is not None:
                state = self._layout.from_mesh(state)
            for m, (sampler, take) in due:
                m.snapshot(sampler, take, state, start + done, self.dt)

        state, _ = drive(run_chunk, state, tuple(seq), chunk_size=chunk, start=start,
                         record=bool(sampled), progress=progress, desc="network", consume=consume,
                         callback=between_chunks if snapshots else None)
        if native:  # kept in the kernel's layout
            held = run_chunk.held(state)
            self._check_finite_held(held)
            self._held, self._unpacked = held, None
        else:
            if self._layout is not None:
                state = self._layout.from_mesh(state)
            self._check_finite(state)
            self._state = state
        self.steps_run += T
        for m in monitors:
            m.commit()

    def _chunking(self, monitors, seq_width: int, native: bool = False, steps: int = 0):
        """``(chunk size, {monitor: (sampler, take)} read between chunks)``.

        Monitors that sample every ``k > 1`` steps are read from the state between chunks
        when chunks can end on their steps (a chunk size dividing every ``k``, of at least
        128 steps), which costs nothing per step; otherwise they sample every step. The
        native kernel takes longer chunks (its calls cost about 0.3 ms each), but no longer
        than a run of ``steps`` needs (a power of two, at least 128): its inputs and records
        are allocated for a whole chunk."""
        recorded = sum(self.populations[m.population].n // (8 if native else 1) if isinstance(m, SpikeMonitor)
                       else 4 for m in monitors if getattr(m, "every", 1) == 1)  # native: spikes as bits
        chunk = self.chunk_size or (native_chunk_size(4 * seq_width + recorded) if native
                                    else default_chunk_size(seq_width))
        periodic = [m for m in monitors if getattr(m, "every", 1) > 1]
        if native and not periodic and self.chunk_size is None:
            chunk = min(chunk, max(128, 1 << (steps - 1).bit_length()))
        if not periodic or self.chunk_size is not None:
            return chunk, {}
        common = int(np.gcd.reduce([m.every for m in periodic]))
        divisor = max(d for d in range(1, min(common, chunk) + 1) if common % d == 0)
        if divisor < 128:
            return chunk, {}
        return divisor, {m: m.bind(self) for m in periodic}

    def _check_finite_held(self, held) -> None:
        """:meth:`_check_finite` of a state in the native kernel's layout: one pass over its
        arrays, the state unpacked only to name what is not finite."""
        if not (np.isfinite(np.asarray(held.packed.S)).all() and np.isfinite(np.asarray(held.packed.W)).all()):
            self._check_finite(held.state())

    def _check_finite(self, state: NetState) -> None:
        names = list(self.populations)
        bad = [f"{names[i]}.{k}" for i, s in enumerate(state.pops) for k, a in s._asdict().items()
               if not np.isfinite(np.asarray(a)).all()]
        bad += [f"{p.name}.{k}" for p, s in zip(self.projections, state.projs) for k, a in s._asdict().items()
                if k != "rule" and a is not None and not np.isfinite(np.asarray(a)).all()]
        if bad:
            raise FloatingPointError(f"the run produced non-finite values in {bad}; the network was left unchanged")

    # -- reading and writing -------------------------------------------------------------
    @property
    def t(self) -> float:
        """Time run so far, in ms."""
        return self.steps_run * self.dt

    def weights(self, projection: str) -> np.ndarray:
        """A copy of a projection's weights (``(n_post, n_pre)``, or ``(n_syn,)`` when sparse)."""
        return np.array(self._state.projs[self._projection_index(projection)].W)

    def connectivity(self, projection: str):
        """A projection's connectivity as drawn (e.g. ``Sparse``, with ``indices()``)."""
        return self._bound[self._projection_index(projection)]

    def set_weights(self, projection: str, W) -> None:
        """Replace a projection's weights (same shape, finite)."""
        k = self._projection_index(projection)
        old = self._state.projs[k]
        arr = np.asarray(W, np.float32)
        if arr.shape != old.W.shape:
            raise ValueError(f"weights of {projection!r} must have shape {tuple(old.W.shape)}, got {arr.shape}")
        if not np.isfinite(arr).all():
            raise ValueError(f"weights of {projection!r} must be finite")
        projs = list(self._state.projs)
        projs[k] = old._replace(W=jnp.asarray(arr))
        self._state = self._state._replace(projs=tuple(projs))

    def state(self, population: str, variable: str) -> np.ndarray:
        """A copy of a population's state variable (``"v"``, ``"spike"``, ...)."""
        pop = self.populations[population] if population in self.populations else None
        i = self._population_index(population)
        if variable not in pop.variables:
            raise ValueError(f"population {population!r} has no variable {variable!r} (it has {pop.variables})")
        return np.array(getattr(self._state.pops[i], variable))

    def save(self, path):
        """Save the network (structure and state) to ``path`` atomically; returns the path."""
        from .persist import save
        return save(self, path)

    @classmethod
    def load(cls, path, *, mesh=None, neuron_axis: Optional[str] = None) -> "Network":
        """A network saved with :meth:`save`: it goes on exactly where it stood (a user
        weight-dependence function or rule class must be importable). ``mesh`` and
        ``neuron_axis`` split its neurons over devices as in the constructor, whatever
        the devices it was saved from."""
        from .persist import load
        return load(path, cls, mesh, neuron_axis)

    def reset_state(self) -> None:
        """Neurons, traces, ring buffers and rule states back to their start; weights and
        the step count kept."""
        weights = [p.W for p in self._state.projs]
        self._state = self._initial_state(weights, self.steps_run)
