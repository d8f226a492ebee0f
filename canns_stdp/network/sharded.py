"""One network's neurons split over the devices of a ``jax.sharding.Mesh``.

``Network(..., mesh=mesh, neuron_axis="x")`` splits every neuron population (LIF,
LayerLIF, Izhikevich) into equal blocks along mesh axis ``x``: a device holds its block's
state (membranes, conductances, refractory counters, thresholds, the postsynaptic traces
of the projections onto it, the rule states per postsynaptic neuron) and the synapses
onto its block: the rows of a dense ``W`` (and of a mask, of per-synapse delays), and a
sparse projection's synapses whose target is in the block, padded to the same count on
every device (a padding synapse has weight 0, never changes and carries nothing).

Each step runs :func:`~canns_stdp.network.step.network_step` under ``jax.shard_map``:
a population's spikes are all-gathered (``jax.lax.all_gather``, one per population per
step) as soon as they are computed, and every device then has the whole spike vector
that the projections, the ring buffers of delayed spikes and the monitors read. What
follows from the whole spikes alone is computed on every device alike rather than sent:
the presynaptic traces, the ring buffers (``H · n`` numbers each), the inputs (a Poisson
draw is a few integer operations per neuron, cheaper than moving it; given inputs come
whole from the host). So the all-gather is the only communication, and every device
adds its synapses' input and updates its neurons and its synapses as one device would:
the spikes are identical to the unsharded run's and the states equal up to float rounding.

A rule must act per synapse (the library's rules all do); numbers of a rule are the same
on every device.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import lru_cache
from typing import Optional

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from ..loops import padded
from ..sharding import gathered, put
from .connectivity import AllToAll, Masked, Sparse, _table
from .step import NetConfig, NetParams, NetState, network_step, sampled, step_inputs

__all__ = ["NeuronLayout", "NeuronSplit"]


@dataclass(frozen=True)
class NeuronSplit:
    """The static part of a split step: the mesh axis the neurons are split along."""

    axis: str

    def gather(self, spikes):
        """A population's whole spike vector from every device's block."""
        return jax.lax.all_gather(spikes, self.axis, tiled=True)


class _LocalSparse(Sparse):
    """A device's part of a sparse projection: ``size`` synapses (padding included) onto
    its ``n_post`` neurons, indexed locally (``arrays["post"]``) from every presynaptic
    neuron (``arrays["pre"]``); padding synapses (``arrays["valid"]`` false) never change."""

    def __init__(self, n_pre: int, n_post: int, size: int):
        self.n_pre, self.n_post, self.size = n_pre, n_post, size
        self._distinct = True

    @property
    def shape(self):
        return (self.size,)

    def __hash__(self):
        return hash(("local", self.size, self.n_pre, self.n_post))

    def __eq__(self, other):
        return isinstance(other, _LocalSparse) and (other.size, other.n_pre, other.n_post) == \
            (self.size, self.n_pre, self.n_post)

    def keep_absent(self, arrays, W_old, W_new):
        return jax.numpy.where(arrays["valid"], W_new, W_old)


@dataclass(frozen=True)
class _Cut:
    """Where an array lives: whole on every device (``dim`` None), or split along ``dim``;
    ``proj``: the sparse projection whose synapses that dimension counts (padded)."""

    dim: Optional[int] = None
    proj: Optional[int] = None


WHOLE, ROWS = _Cut(), _Cut(0)


class _Synapses:
    """A sparse projection's synapses grouped by the device of their target (they are
    sorted by target, so each device's are consecutive), padded to ``size`` each."""

    def __init__(self, conn: Sparse, devices: int):
        block = conn.n_post // devices
        self.starts = np.searchsorted(conn.post, np.arange(devices + 1) * block).astype(np.int64)
        counts = np.diff(self.starts)
        self.size = int(counts.max(initial=0))
        self.devices, self.block, self.conn = devices, block, conn
        self.position = (np.repeat(np.arange(devices) * self.size - self.starts[:-1], counts)
                         + np.arange(conn.pre.size)).astype(np.int64)  # synapse k's place in the padded order
        self._tables: dict = {}

    def pad(self, a, dim: int = 0, fill=0):
        """``a`` with its synapse dimension ``dim`` in the padded order."""
        a = np.moveaxis(np.asarray(a), dim, 0)
        out = np.full((self.devices * self.size,) + a.shape[1:], fill, a.dtype)
        out[self.position] = a
        return np.moveaxis(out, 0, dim)

    def unpad(self, a, dim: int = 0):
        return np.take(np.asarray(a), self.position, axis=dim)

    def arrays(self, wanted) -> dict:
        """The index arrays of every device, one after the other: ``pre``, ``post`` (local
        to the device's block; padding: its last neuron), ``valid``, and the tables asked
        for (``fanout``: per device and presynaptic neuron, ``fanin``: per neuron), padded
        with ``size``."""
        if not self._tables:
            conn, block = self.conn, self.block
            local_post = conn.post - np.repeat(np.arange(self.devices) * block, np.diff(self.starts))
            self._tables["pre"] = self.pad(conn.pre)
            self._tables["post"] = self.pad(local_post.astype(np.int32), fill=max(block - 1, 0))
            self._tables["valid"] = self.pad(np.ones(conn.pre.size, bool), fill=False)
        for name in wanted:
            if name in self._tables:
                continue
            parts = []
            for d in range(self.devices):
                lo, hi = self.starts[d], self.starts[d + 1]
                if name == "fanout":
                    parts.append(_table(self.conn.pre[lo:hi], self.conn.n_pre))
                else:
                    parts.append(_table(self.conn.post[lo:hi] - d * self.block, self.block))
                parts[-1] = np.where(parts[-1] == hi - lo, self.size, parts[-1])  # padding: the padded size
            most = max(p.shape[1] for p in parts)
            parts = [np.pad(p, ((0, 0), (0, most - p.shape[1])), constant_values=self.size) for p in parts]
            self._tables[name] = np.concatenate(parts).astype(np.int32)
        return {name: self._tables[name] for name in ("pre", "post", "valid") + tuple(wanted)}


class NeuronLayout:
    """Where a network's arrays live when its neurons are split along ``axis`` of
    ``mesh``, and the conversions between that layout and the network's own (checked:
    every neuron population splits evenly)."""

    def __init__(self, net, mesh, axis: Optional[str]):
        if not isinstance(mesh, Mesh):
            raise TypeError(f"mesh must be a jax.sharding.Mesh, got {mesh!r}")
        axis = mesh.axis_names[0] if axis is None else axis
        if axis not in mesh.axis_names:
            raise ValueError(f"neuron_axis must be one of the mesh's axes {tuple(mesh.axis_names)}, got {axis!r}")
        devices = int(mesh.shape[axis])
        for name, pop in net.populations.items():
            if not pop.is_input and pop.n % devices:
                raise ValueError(f"population {name!r} has {pop.n} neurons, which do not split evenly over "
                                 f"neuron_axis={axis!r} of size {devices}: use a multiple of {devices} neurons")
        self.mesh, self.axis, self.devices = mesh, axis, devices
        self.split = tuple(not pop.is_input for pop in net.populations.values())
        self.synapses = {k: _Synapses(conn, devices) for k, conn in enumerate(net._bound) if isinstance(conn, Sparse)}
        self._cuts = self._state_cuts(net)

    # -- the state ---------------------------------------------------------------------------
    def _state_cuts(self, net):
        """A tree shaped like the network's state, a :class:`_Cut` for each array."""
        state = net._state
        pops = tuple(jax.tree_util.tree_map(lambda a: ROWS if split else WHOLE, s)
                     for s, split in zip(state.pops, self.split))
        history = jax.tree_util.tree_map(lambda a: WHOLE, state.history)
        projs = []
        for k, (proj, st) in enumerate(zip(net.projections, state.projs)):
            W = _Cut(0, k if k in self.synapses else None)
            if not proj.plastic:
                projs.append(st._replace(W=W))
                continue
            per_synapse = net._delays[k][1] is not None
            rule = self._rule_cuts(net, k, per_synapse)
            projs.append(st._replace(W=W, trace_pre=W if per_synapse else WHOLE, trace_post=ROWS, rule=rule))
        return NetState(WHOLE, WHOLE, pops, history, tuple(projs))

    def _rule_cuts(self, net, k: int, per_synapse: bool):
        """For each array of projection ``k``'s rule state, the dimension that grows with
        its postsynaptic neurons (or, sparse, with its synapses)."""
        proj, conn = net.projections[k], net._bound[k]
        n_pre, n_post = net.populations[proj.pre].n, net.populations[proj.post].n

        def shapes(n, n_syn):
            weight = (n_syn,) if k in self.synapses else (n, n_pre)
            pre = weight if per_synapse else (n_pre,)
            return jax.tree_util.tree_leaves(jax.eval_shape(lambda: proj.rule.init_state(pre, (n,), weight)))

        base = shapes(n_post, conn.shape[0])
        by_post = shapes(n_post + 1, conn.shape[0])
        by_synapse = shapes(n_post, conn.shape[0] + 1) if k in self.synapses else base
        cuts = []
        for a, b, c in zip(base, by_post, by_synapse):
            grown = [d for d, (x, y) in enumerate(zip(a.shape, b.shape)) if x != y]
            more = [d for d, (x, y) in enumerate(zip(a.shape, c.shape)) if x != y]
            cuts.append(_Cut(grown[0]) if grown else _Cut(more[0], k) if more else WHOLE)
        treedef = jax.tree_util.tree_structure(net._state.projs[k].rule)
        return jax.tree_util.tree_unflatten(treedef, cuts)

    def _part(self, cut: _Cut) -> PartitionSpec:
        return PartitionSpec() if cut.dim is None else PartitionSpec(*([None] * cut.dim), self.axis)

    def state_parts(self) -> tuple:
        return tuple(self._part(c) for c in jax.tree_util.tree_leaves(self._cuts))

    def to_mesh(self, state: NetState) -> NetState:
        """The network's state placed on the mesh (sparse synapses in the padded order)."""
        leaves, treedef = jax.tree_util.tree_flatten(state)
        cuts = jax.tree_util.tree_leaves(self._cuts)
        host = [self.synapses[c.proj].pad(a, c.dim) if c.proj is not None else a
                for a, c in zip(jax.device_get(leaves), cuts)]
        placed = [put(a, NamedSharding(self.mesh, self._part(c))) for a, c in zip(host, cuts)]
        return jax.tree_util.tree_unflatten(treedef, placed)

    def from_mesh(self, state: NetState) -> NetState:
        """The state of a run on the mesh in the network's own layout, on one device."""
        leaves, treedef = jax.tree_util.tree_flatten(gathered(state))
        cuts = jax.tree_util.tree_leaves(self._cuts)
        own = [self.synapses[c.proj].unpad(a, c.dim) if c.proj is not None else a
               for a, c in zip(jax.device_get(leaves), cuts)]
        return jax.tree_util.tree_unflatten(treedef, [jax.numpy.asarray(a) for a in own])

    # -- a run -------------------------------------------------------------------------------
    def local(self, config: NetConfig, params: NetParams):
        """``(config, numbers, step)`` of a run on the mesh: the static part as one device
        sees it (its blocks' sizes), the numbers placed (split where they are per neuron
        or per synapse) and the step (:func:`network_step` under ``jax.shard_map``)."""
        pops = tuple(dataclasses.replace(c, template=_resized(c.template, c.template.n // self.devices))
                     if split else c for c, split in zip(config.pops, self.split))
        projs, proj_params = [], []
        for k, (c, p) in enumerate(zip(config.projs, params.projs)):
            n_post = config.pops[c.post].template.n // self.devices
            arrays, delays = dict(p.arrays), p.delays
            if k in self.synapses:
                synapses = self.synapses[k]
                connectivity = _LocalSparse(c.connectivity.n_pre, n_post, synapses.size)
                arrays = synapses.arrays([name for name in ("fanout", "fanin") if name in arrays])
                delays = None if delays is None else synapses.pad(delays, fill=int(delays.min(initial=0)))
            elif isinstance(c.connectivity, Masked):
                connectivity = object.__new__(Masked)
                connectivity.mask = np.broadcast_to(np.float32(0), (n_post, c.connectivity.n_pre))
                connectivity.n_post, connectivity.n_pre = n_post, c.connectivity.n_pre
            else:
                connectivity = AllToAll(c.connectivity.n_pre, n_post)
            projs.append(dataclasses.replace(c, connectivity=connectivity))
            proj_params.append(p._replace(arrays=arrays, delays=delays))
        inner = params._replace(projs=tuple(proj_params), take=())
        leaves, treedef = jax.tree_util.tree_flatten_with_path(inner)
        placement = tuple(self._part(self._params_cut(path, a)) for path, a in leaves)
        numbers = [put(a, NamedSharding(self.mesh, part)) for (_, a), part in zip(leaves, placement)]
        whole = NamedSharding(self.mesh, PartitionSpec())
        take = tuple(None if t is None else put(self._weights_take(s, t), whole)
                     for s, t in zip(config.samplers, params.take))
        local_params = jax.tree_util.tree_unflatten(treedef, numbers)._replace(take=take)
        config = dataclasses.replace(config, pops=pops, projs=tuple(projs), split=NeuronSplit(self.axis))
        return config, local_params, _split_step(self.mesh, self.axis, placement, self.state_parts())

    def _params_cut(self, path, a) -> _Cut:
        """Where a number lives: per neuron of a split population, a projection's index
        arrays and per-synapse delays (rows, or synapses in the padded order) split; the
        rest (one number, the rules' numbers) on every device."""
        keys = [getattr(k, "name", getattr(k, "key", getattr(k, "idx", None))) for k in path]
        if keys[0] == "pops":
            return ROWS if self.split[keys[1]] and np.ndim(a) == 1 else WHOLE
        if keys[0] == "projs" and keys[2] in ("arrays", "delays"):
            return ROWS
        return WHOLE

    def _weights_take(self, sampler, take):
        """A monitor's synapses of a sparse projection, in the padded order."""
        if take is None or sampler.kind != "weights" or sampler.index not in self.synapses:
            return take
        return self.synapses[sampler.index].position[np.asarray(take)].astype(np.int32)

    def inputs(self, run_chunk, pad_to: Optional[int], n_given: int, n_imposed: int):
        """``run_chunk`` given each chunk of per-step inputs placed on the mesh: the step
        numbers, given activities and reward on every device, imposed spikes split along
        the neurons (padded to ``pad_to`` steps first, as the compiled loop pads them)."""
        whole = NamedSharding(self.mesh, PartitionSpec())
        split = NamedSharding(self.mesh, PartitionSpec(None, self.axis))

        def placed_chunk(state, part, n_steps, record, offset=0):
            part = tuple(None if a is None else put(a if pad_to is None else padded(a, pad_to),
                                                    split if 1 + n_given <= i < 1 + n_given + n_imposed else whole)
                         for i, a in enumerate(part))
            state, out = run_chunk(state, part, n_steps, record, offset)
            if record and self.mesh.is_multi_process:
                out = gathered(out)
            return state, out
        return placed_chunk


def _resized(template, n: int):
    """A population's template (numbers left out) for ``n`` of its neurons."""
    clone = object.__new__(type(template))
    for f in template.__dataclass_fields__:
        object.__setattr__(clone, f, getattr(template, f))
    object.__setattr__(clone, "n", n)
    return clone


@lru_cache(maxsize=None)
def _split_step(mesh: Mesh, axis: str, param_parts: tuple, state_parts: tuple):
    """The step of a network split along ``axis``: :func:`network_step` on every device's
    blocks under ``jax.shard_map`` (the numbers and the state split as ``param_parts``
    and ``state_parts`` say, leaf by leaf), then what the monitors record, read from the
    whole state. Cached: one function, so one compilation, per layout."""
    def step(config, params, state, tick, *inputs):
        given, imposed, reward = step_inputs(config, inputs)
        p_leaves, p_def = jax.tree_util.tree_flatten(params._replace(take=()))
        s_leaves, s_def = jax.tree_util.tree_flatten(state)
        extra = () if reward is None else (reward,)

        def on_device(p_leaves, s_leaves, given, imposed, extra):
            new, spikes = network_step(config, jax.tree_util.tree_unflatten(p_def, p_leaves),
                                       jax.tree_util.tree_unflatten(s_def, s_leaves), given, imposed,
                                       extra[0] if extra else None)
            return tuple(jax.tree_util.tree_leaves(new)), spikes

        whole, split = PartitionSpec(), PartitionSpec(axis)
        inside = (param_parts, state_parts, (whole,) * len(given), (split,) * len(imposed), (whole,) * len(extra))
        outside = (state_parts, (whole,) * len(config.pops))
        new, spikes = jax.shard_map(on_device, mesh=mesh, in_specs=inside, out_specs=outside, check_vma=False)(
            tuple(p_leaves), tuple(s_leaves), tuple(given), tuple(imposed), extra)
        state = jax.tree_util.tree_unflatten(s_def, list(new))
        return state, sampled(config, params, state, spikes)
    return step
