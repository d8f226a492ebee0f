"""NetworkEnsemble: K networks of one structure run in one compiled call.

The members share what shapes the compiled step (populations' types, sizes and static
fields; projections' names, ends, receptors, connectivity kind and sizes, delays, rule
kind and fixed fields, trace modes; ``dt`` and the loop); they may differ in every number
(population numbers, learning rates, rule amplitudes, weights, seeds) and even in their
random connectivity, as long as its index arrays have the same shapes. The step is
:func:`~canns_stdp.network.step.monitored_step` under ``jax.vmap``: member ``k`` ends where
the same network run alone ends (spikes identical, states up to float rounding).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from .. import _validation as v
from ..ensemble import _rule_difference, _stack, _unstack, stacked_inputs
from ..loops import compiled_chunks, default_chunk_size, drive, padded, python_steps
from ..sharding import MemberSharding, constrain, gathered, place, put
from .monitors import Monitor
from .network import Network
from .step import monitored_step

__all__ = ["NetworkEnsemble"]


@lru_cache(maxsize=None)
def _members_step(params_def, params_axes: tuple, input_axes: tuple, layout: Optional[tuple] = None):
    """:func:`monitored_step` over the members: axis 0 of the state, of each stacked
    number (``params_axes``: 0, or ``None`` for a number all members share) and of each
    per-step input (``input_axes``: 0 for one per member, ``None`` for one shared). Cached,
    so that the loops compile it once per structure and axes."""
    def member(config, leaves, state, *inputs):  # the numbers flat: a rule's axes could not be one of its trees
        return monitored_step(config, jax.tree_util.tree_unflatten(params_def, leaves), state, *inputs)

    def step(config, params, state, *inputs):
        state, out = jax.vmap(lambda p, s, *x: member(config, p, s, *x), in_axes=(list(params_axes), 0) + input_axes)(
            jax.tree_util.tree_leaves(params), state, *inputs)
        if layout is not None:
            state = constrain(state, layout)
        return state, out
    return step


@jax.jit
def _finite_members(arrays):
    """For each array, whether each member's part is finite: ``(arrays, K)`` booleans."""
    return jnp.stack([jnp.isfinite(a).reshape(a.shape[0], -1).all(axis=1) for a in arrays])


class NetworkEnsemble:
    """Run ``networks`` (K :class:`~canns_stdp.network.Network` s of one structure) as one
    vectorised network.

    Members may differ in every number and in their random connectivity (a sparse
    projection's synapses, a mask) when its arrays have the same shapes: the index arrays
    of each member are used as they are (those all members share are kept once). Each
    member's Poisson inputs draw from its own ``seed``.

    Args:
        networks: the members; after a run each holds exactly what its own
            :meth:`Network.run` would have left in it (state, ``steps_run``, monitors).
        mesh: a ``jax.sharding.Mesh``: members split along ``member_axis`` (by default
            the mesh's first axis, :mod:`canns_stdp.sharding`); the results are those of
            the run on one device. The networks hold their arrays on one device between runs.
        member_axis: the mesh axis the members are split along.

    Raises:
        ValueError: when a member's structure differs from the first's (the message names
            the first difference), when one network is given twice, or when the members
            do not split evenly over the mesh.

    Example:
        >>> from canns_stdp import rules
        >>> from canns_stdp.network import LIF, Network, NetworkEnsemble, PoissonInput, Projection
        >>> nets = [Network({"in": PoissonInput(50, rates_hz=15.0), "out": LIF(1)},
        ...                 [Projection("in", "out", weights=0.005, rule=rules.pair(a, 1.05 * a), w_max=0.01)],
        ...                 seed=k) for k, a in enumerate([1e-4, 2e-4, 4e-4])]
        >>> NetworkEnsemble(nets).run(duration=50.0)
        >>> nets[2].steps_run
        500
    """

    def __init__(self, networks: Sequence[Network], *, mesh=None, member_axis: Optional[str] = None):
        networks = v.check_members("a NetworkEnsemble", "networks", networks, Network, "canns_stdp.network.Network")
        if len({id(net) for net in networks}) != len(networks):
            raise ValueError("every member must be a network of its own: one network is given twice")
        split = [k for k, net in enumerate(networks) if getattr(net, "mesh", None) is not None]
        if split:
            raise ValueError(f"network {split[0]} has its neurons split over a mesh (Network(mesh=)): a "
                             "NetworkEnsemble splits its members, not their neurons; give the ensemble mesh= "
                             "and the members none")
        self.networks = networks
        first = _structure(networks[0])
        for k, net in enumerate(networks[1:], 1):
            difference = _difference(networks[0], first, net, _structure(net))
            if difference:
                raise ValueError(f"network {k} differs from network 0: {difference} (a NetworkEnsemble runs "
                                 "one structure; numbers may differ)")
        self.sharding = None
        if mesh is not None:
            self.sharding = MemberSharding.build(mesh, member_axis)
            self.sharding.check(len(networks), (), ())
        elif member_axis is not None:
            raise ValueError(f"member_axis needs a mesh=, got member_axis={member_axis!r} and no mesh")

    def __len__(self) -> int:
        return len(self.networks)

    # -- a run -----------------------------------------------------------------------------
    def _per_member(self, label: str, value, ndim: int = 0) -> list:
        """``value`` for every member: a list or tuple of K gives one to each (for ``reward``,
        only when each has ``ndim`` dimensions or more), anything else is given to all."""
        K = len(self.networks)
        if isinstance(value, (list, tuple)) and (ndim == 0 or all(np.ndim(x) >= ndim for x in value)):
            if len(value) != K:
                raise ValueError(f"{label} must be one for all members or a list of {K}, one per member; "
                                 f"got a list of {len(value)}")
            return list(value)
        return [value] * K

    def run(self, steps: Optional[int] = None, *, duration: Optional[float] = None, inputs=None, imposed=None,
            reward=None, learn: bool = True, monitors=None, progress: bool = False) -> None:
        """Run every member (with plasticity when ``learn``) from where it stands, in one
        compiled call.

        Args:
            steps, duration: how long, as for :meth:`Network.run`.
            inputs, imposed: one ``{name: (T, n)}`` for all members, or a list of K.
            reward: one for all (``T`` numbers or one), or a list of K arrays of ``T``
                numbers (or one number each, as a 1-element list).
            learn: apply the projections' rules.
            monitors: a list of K lists of monitors, one list per member (alike: the same
                kinds of monitor in the same order, recording as many entries).
            progress: show a progress bar.

        A failed run (bad input, non-finite values in any member) changes no member and no
        monitor.
        """
        nets, K = self.networks, len(self.networks)
        first = nets[0]
        if not isinstance(learn, bool):
            raise TypeError(f"learn must be True or False, got {learn!r}")
        input_names = {n for n, p in first.populations.items() if p.given_activity}
        neuron_names = {n for n, p in first.populations.items() if not p.is_input}
        given = _checked(nets, "inputs", self._per_member("inputs", inputs), input_names, False)
        forced = _checked(nets, "imposed", self._per_member("imposed", imposed), neuron_names, True)
        missing = sorted(input_names - set(given[0]))
        if missing:
            raise ValueError(f"inputs must give the activity of every SpikeInput population; missing {missing}")
        for k, g in enumerate(given):
            if set(g) != set(given[0]) or set(forced[k]) != set(forced[0]):
                raise ValueError(f"every member must be given the same populations: member {k} gets inputs "
                                 f"{sorted(g)} and imposed {sorted(forced[k])}, member 0 {sorted(given[0])} and "
                                 f"{sorted(forced[0])}")
        Ts = {net._steps(steps, duration, list(g.values()) + list(f.values()))
              for net, g, f in zip(nets, given, forced)}
        if len(Ts) != 1:
            raise ValueError(f"every member's inputs must have one length, got {sorted(Ts)} steps")
        T = Ts.pop()
        wants_reward = learn and any(p.plastic and "reward" in p.rule.required_extras() for p in first.projections)
        if reward is not None and not wants_reward:
            raise TypeError("reward= is given but no plastic projection's rule takes a reward")
        if wants_reward and reward is None:
            raise TypeError("reward is required by a projection's reward-modulated rule: T numbers or one number")
        rewards = self._per_member("reward", reward, 1) if wants_reward else []
        lists = self._monitors(monitors)
        bound = [[m.bind(net) for m in ms] for net, ms in zip(nets, lists)]
        _check_alike(lists, bound)

        # the per-step inputs of each member, as Network.run lays them out
        order = list(first.populations)
        ticks = np.arange(T, dtype=np.int32)
        seqs = []
        cache: dict = {}
        for k in range(K):
            seq = [ticks] + [given[k][n] for n in order if n in given[k]]
            seq += [forced[k][n] for n in order if n in forced[k]]
            if wants_reward:
                key = id(rewards[k])
                if key not in cache:
                    cache[key] = v.as_per_step("reward", rewards[k], T)
                seq.append(cache[key])
            seqs.append(seq)
        seq, input_axes = stacked_inputs(seqs)

        same_start = len({net.steps_run for net in nets}) == 1
        width = sum(first.populations[n].n for n in order if n in given[0] or n in forced[0]) + 1
        if same_start:
            chunk, periodic = first._chunking(lists[0], width)
            snapshot_at = {j for j, m in enumerate(lists[0]) if m in periodic}
        else:  # chunks cannot end on every member's sampling steps: every monitor samples every step
            chunk, snapshot_at = first.chunk_size or default_chunk_size(width), set()
        sampled = [[(m, b) for j, (m, b) in enumerate(zip(ms, bs)) if j not in snapshot_at]
                   for ms, bs in zip(lists, bound)]
        plans = [net._plan(learn, set(given[0]), set(forced[0]), wants_reward, [b[0] for _, b in s],
                           [b[1] for _, b in s]) for net, s in zip(nets, sampled)]
        config = plans[0][0]
        params, params_def, params_axes = _stacked_numbers([p for _, p in plans], nets)
        state = _stack([net._state for net in nets])
        layout = None
        if self.sharding is not None:
            params, state, layout = self._placed(params, params_axes, params_def, state)
        step = _members_step(params_def, params_axes, input_axes, layout)
        if first.compiled:
            run_chunk = compiled_chunks(step, config, params, chunk)
        else:
            run_chunk = python_steps(step, config, params)
        if self.sharding is not None:
            run_chunk = self._sharded_inputs(run_chunk, seq, input_axes, chunk if first.compiled else None)
        for ms in lists:
            for m in ms:
                m.begin()
        start = first.steps_run if same_start else 0

        def consume(outs, n_steps, first_step):
            for k, (net, s) in enumerate(zip(nets, sampled)):
                for (m, _), samples in zip(s, outs):
                    m.consume(np.asarray(samples)[:, k], net.steps_run + first_step - start, net.dt)

        def between_chunks(done, state):
            host = None
            for j in sorted(snapshot_at):
                if (start + done) % lists[0][j].every:
                    continue
                host = jax.device_get(state) if host is None else host
                for k, net in enumerate(nets):
                    member = jax.tree_util.tree_map(lambda a: a[k], host)
                    lists[k][j].snapshot(*bound[k][j], member, start + done, net.dt)

        state, _ = drive(run_chunk, state, seq, chunk_size=chunk, start=start, record=any(sampled),
                         progress=progress, desc=f"ensemble of {K} networks", consume=consume,
                         callback=between_chunks if snapshot_at else None)
        if self.sharding is not None:
            state = gathered(state)
        _check_finite(first, state)  # every member checked before any is written
        for net, member in zip(nets, _unstack(state, K)):
            net._state = member
            net.steps_run += T
        for ms in lists:
            for m in ms:
                m.commit()

    def _monitors(self, monitors) -> list:
        """K lists of monitors, checked (no monitor given twice)."""
        K = len(self.networks)
        if monitors is None:
            return [[] for _ in range(K)]
        if not isinstance(monitors, (list, tuple)) or len(monitors) != K or \
                not all(isinstance(ms, (list, tuple)) for ms in monitors):
            raise ValueError(f"monitors must be a list of {K} lists of monitors, one list per member, "
                             f"got {monitors!r:.120}")
        seen = set()
        for k, ms in enumerate(monitors):
            for m in ms:
                if not isinstance(m, Monitor):
                    raise TypeError(f"monitors[{k}] must hold canns_stdp.network monitors, got {m!r}")
                if id(m) in seen:
                    raise ValueError(f"monitors[{k}] holds a monitor already given: each member needs its own")
                seen.add(id(m))
        return [list(ms) for ms in monitors]

    # -- on a mesh -------------------------------------------------------------------------
    def _placed(self, params, params_axes, params_def, state):
        """The numbers (split along the members where stacked, else replicated) and the
        state (split along the members) placed on the mesh; the state's layout."""
        sharding = self.sharding
        leaves = jax.tree_util.tree_leaves(params)
        where = [sharding._named(np.ndim(a), None, axis) for a, axis in zip(leaves, params_axes)]
        params = jax.tree_util.tree_unflatten(params_def, [put(a, s) for a, s in zip(leaves, where)])
        layout = sharding.state(state, [None] * len(jax.tree_util.tree_leaves(state)))
        return params, place(state, layout), layout

    def _sharded_inputs(self, run_chunk, seq, input_axes, pad_to):
        """``run_chunk`` given each chunk of inputs placed on the mesh (padded to ``pad_to``
        steps first, as the compiled loop pads them); recorded samples come back whole."""
        shardings = self.sharding.inputs(seq, input_axes, 0)

        def sharded_chunk(state, part, n_steps, record, offset=0):
            part = tuple(None if a is None else put(a if pad_to is None else padded(a, pad_to), s)
                         for a, s in zip(part, shardings))
            state, out = run_chunk(state, part, n_steps, record, offset)
            if record and self.sharding.multi_process:
                out = gathered(out)
            return state, out
        return sharded_chunk


# -- the structure ---------------------------------------------------------------------------

def _structure(net: Network):
    """What shapes the compiled step: the plan of a run without monitors, and the shapes
    and kinds of its numbers."""
    inputs = {n for n, p in net.populations.items() if p.given_activity}
    config, params = net._plan(True, inputs, set(), False, [], [])
    return config, params


def _difference(net0: Network, plan0, net: Network, plan) -> str:
    """The first difference in structure of ``net`` from ``net0`` ('' for none)."""
    for what, a, b in (("dt", net0.dt, net.dt), ("compiled", net0.compiled, net.compiled),
                       ("chunk_size", net0.chunk_size, net.chunk_size),
                       ("populations", list(net0.populations), list(net.populations)),
                       ("projections", [p.name for p in net0.projections], [p.name for p in net.projections])):
        if a != b:
            return f"it has {what} {b!r}, not {a!r}"
    (config0, params0), (config, params) = plan0, plan
    for name, c0, c in zip(net0.populations, config0.pops, config.pops):
        p0, p = net0.populations[name], net.populations[name]
        if type(p0) is not type(p):
            return f"population {name!r} is a {type(p).__name__}, not a {type(p0).__name__}"
        for field in p0._static:
            if getattr(p0, field) != getattr(p, field):
                return f"population {name!r} has {field}={getattr(p, field)!r}, not {getattr(p0, field)!r}"
        if c0.history != c.history:
            return (f"population {name!r} keeps {c.history} steps of past spikes (its longest outgoing delay "
                    f"+ 1), not {c0.history}")
    for proj0, proj, c0, c, q0, q in zip(net0.projections, net.projections, config0.projs, config.projs,
                                         params0.projs, params.projs):
        label = f"projection {proj0.name!r}"
        for what, a, b in (("pre", proj0.pre, proj.pre), ("post", proj0.post, proj.post),
                           ("receptor", c0.receptor, c.receptor),
                           ("connectivity", type(c0.connectivity).__name__, type(c.connectivity).__name__),
                           ("weight shape", tuple(net0.connectivity(proj0.name).shape),
                            tuple(net.connectivity(proj.name).shape)),
                           ("delay", _delay_text(c0, q0), _delay_text(c, q)),
                           ("rule", _rule_name(proj0), _rule_name(proj)),
                           ("trace_mode", proj0.trace_mode, proj.trace_mode),
                           ("hardbound", c0.hardbound, c.hardbound),
                           ("event-driven input", "fanout" in q0.arrays, "fanout" in q.arrays)):
            if a != b:
                return f"{label} has {what} {b!r}, not {a!r}"
        if proj0.plastic:
            inner = _rule_difference(proj0.rule, proj.rule)
            if inner:
                return f"{label} has a different {inner}"
    if config0 != config:
        return "the compiled step's static configuration"
    leaves0, def0 = jax.tree_util.tree_flatten_with_path(params0)
    leaves, def_ = jax.tree_util.tree_flatten_with_path(params)
    if def0 != def_:
        return "the structure of its numbers"
    for (path, a), (_, b) in zip(leaves0, leaves):
        if np.shape(a) != np.shape(b) and not _reshapeable(path):
            return f"numbers{jax.tree_util.keystr(path)} have shape {np.shape(b)}, not {np.shape(a)}"
    return ""


def _delay_text(config, params):
    return "per synapse" if config.delay is None else config.delay


def _rule_name(proj) -> str:
    return "none" if proj.rule is None else type(proj.rule).__name__


def _reshapeable(path) -> bool:
    """Numbers whose shapes may differ between members: a population's (one number or one
    per neuron: broadcast) and a sparse projection's tables of fan-out and fan-in (padded)."""
    keys = [getattr(k, "name", getattr(k, "key", None)) for k in path]
    return keys[:1] == ["pops"] or keys[-1:] in (["fanout"], ["fanin"])


def _stacked_numbers(params_list, nets):
    """The members' numbers: a number all share (equal values) kept once (axis ``None``),
    the others stacked along a new axis 0 (population numbers broadcast to one shape,
    fan-out and fan-in tables padded with the synapse count, which marks no synapse).
    Returns ``(numbers on the device, their structure, the axis of each)``."""
    flat = [jax.tree_util.tree_flatten_with_path(p) for p in params_list]
    treedef = jax.tree_util.tree_structure(params_list[0])
    leaves, axes = [], []
    for i, (path, _) in enumerate(flat[0][0]):
        values = [np.asarray(f[0][i][1]) for f in flat]
        if all(a.shape == values[0].shape and a.dtype == values[0].dtype and np.array_equal(a, values[0])
               for a in values[1:]):
            leaves.append(values[0])
            axes.append(None)
            continue
        keys = [getattr(k, "name", getattr(k, "key", None)) for k in path]
        if keys[-1] in ("fanout", "fanin") and keys[:1] == ["projs"]:
            n_syn = int(np.shape(params_list[0].projs[path[1].idx].arrays["pre"])[0])
            most = max(a.shape[1] for a in values)
            values = [np.pad(a, ((0, 0), (0, most - a.shape[1])), constant_values=n_syn) for a in values]
        shape = np.broadcast_shapes(*[a.shape for a in values])
        leaves.append(np.stack([np.broadcast_to(a, shape) for a in values]))
        axes.append(0)
    params = jax.tree_util.tree_unflatten(treedef, leaves)
    params = jax.tree_util.tree_map(lambda a: jax.device_put(a), params)
    return params, treedef, tuple(axes)


def _checked(nets, label, values, names, binary) -> list:
    """Each member's ``{name: (T, n)}``, checked by its network (once for one shared by all)."""
    shared = all(value is values[0] for value in values)
    if shared:
        return [nets[0]._per_step(label, values[0], names, binary)] * len(nets)
    out = []
    for k, (net, value) in enumerate(zip(nets, values)):
        try:
            out.append(net._per_step(label, value, names, binary))
        except (ValueError, TypeError) as err:
            raise type(err)(f"{label} of member {k}: {err}") from None
    return out


def _check_alike(lists, bound) -> None:
    """Refuse members whose monitors differ in kind or in how many entries they record."""
    def kinds(ms, bs):
        return [(type(m).__name__, b[0], getattr(m, "every", 1), np.shape(b[1])) for m, b in zip(ms, bs)]
    first = kinds(lists[0], bound[0])
    for k in range(1, len(lists)):
        mine = kinds(lists[k], bound[k])
        if mine != first:
            raise ValueError(f"monitors[{k}] must record what monitors[0] records (the same kinds of monitor, in "
                             f"the same order, of as many entries): got {mine}, not {first}")


def _check_finite(net0: Network, state) -> None:
    """Raise, naming the first member and its arrays, if any member's state is not finite."""
    names, arrays = [], []
    for name, s in zip(net0.populations, state.pops):
        for key, a in s._asdict().items():
            names.append(f"{name}.{key}")
            arrays.append(a)
    for proj, s in zip(net0.projections, state.projs):
        for key, a in s._asdict().items():
            if key != "rule" and a is not None:
                names.append(f"{proj.name}.{key}")
                arrays.append(a)
    finite = np.asarray(_finite_members(arrays))
    if finite.all():
        return
    k = int(np.flatnonzero(~finite.all(axis=0))[0])
    bad = [name for name, ok in zip(names, finite[:, k]) if not ok]
    raise FloatingPointError(f"the run produced non-finite values in {bad} of network {k}; no network was "
                             "changed")
