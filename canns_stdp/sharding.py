"""Where an ensemble's arrays live on a ``jax.sharding.Mesh``.

An :class:`~canns_stdp.Ensemble` given a mesh splits its members along one mesh axis
(``member_axis``) and, for dense layers, each member's output neurons along another
(``neuron_axis``): the rows of ``W``, the membrane, the spikes, the postsynaptic trace
and every array of the rule's state that has a neuron axis. The presynaptic trace, the
numbers and an input shared by all members are replicated; inputs given one per member
are split along the members. Neither split needs communication inside a step (members
are independent; a dense layer's neurons interact only through their shared input), so
a sharded run computes what the unsharded one computes. See ``docs/scaling.md``.

On a mesh whose devices belong to several processes (``jax.distributed``), every process
holds the whole value of what it places (the same members, the same inputs: every
process runs the same script) and gives each of its own devices its part
(:func:`put`); nothing is sent between processes to place it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

__all__ = ["MemberSharding", "constrain", "gathered", "neuron_dims", "place", "put"]


@dataclass(frozen=True)
class MemberSharding:
    """The placement of an ensemble's stacked arrays on ``mesh``.

    Args:
        mesh: the devices, a ``jax.sharding.Mesh``.
        member_axis: the mesh axis the members are split along (``None``: every device
            holds every member).
        neuron_axis: the mesh axis a dense layer's output neurons are split along
            (``None``: not split).
    """

    mesh: Mesh
    member_axis: Optional[str] = None
    neuron_axis: Optional[str] = None

    @classmethod
    def build(cls, mesh, member_axis=None, neuron_axis=None) -> "MemberSharding":
        """Checked settings; with neither axis named, the members go along the mesh's first axis."""
        if not isinstance(mesh, Mesh):
            raise TypeError(f"mesh must be a jax.sharding.Mesh, got {mesh!r}")
        if member_axis is None and neuron_axis is None:
            member_axis = mesh.axis_names[0]
        for name, axis in (("member_axis", member_axis), ("neuron_axis", neuron_axis)):
            if axis is not None and axis not in mesh.axis_names:
                raise ValueError(f"{name} must be one of the mesh's axes {tuple(mesh.axis_names)}, got {axis!r}")
        if member_axis is not None and member_axis == neuron_axis:
            raise ValueError(f"member_axis and neuron_axis must be different mesh axes, both are {member_axis!r}")
        return cls(mesh, member_axis, neuron_axis)

    def size(self, axis: Optional[str]) -> int:
        return 1 if axis is None else int(self.mesh.shape[axis])

    def check(self, K: int, weight_shape: tuple, out_shape: tuple) -> None:
        """Refuse what does not split evenly, naming the numbers."""
        members = self.size(self.member_axis)
        if K % members:
            raise ValueError(f"{K} members do not split evenly over mesh axis {self.member_axis!r} of size "
                             f"{members}: use a multiple of {members} members")
        if self.neuron_axis is None:
            return
        if len(out_shape) != 1 or len(weight_shape) != 2 or weight_shape[0] != out_shape[0]:
            raise ValueError(f"neuron_axis splits a dense layer's neurons; this layer has output shape {out_shape} "
                             f"and weight shape {tuple(weight_shape)}")
        neurons = self.size(self.neuron_axis)
        if out_shape[0] % neurons:
            raise ValueError(f"{out_shape[0]} output neurons do not split evenly over mesh axis "
                             f"{self.neuron_axis!r} of size {neurons}")

    def _named(self, ndim: int, neuron_dim: Optional[int], member_dim: Optional[int] = 0) -> NamedSharding:
        axes = [None] * ndim
        if member_dim is not None:
            axes[member_dim] = self.member_axis
        if neuron_dim is not None and self.neuron_axis is not None:
            axes[neuron_dim % ndim] = self.neuron_axis
        return NamedSharding(self.mesh, PartitionSpec(*axes))

    def state(self, state, neuron_dims: list) -> tuple:
        """Where each array of ``state`` (stacked, ``(K, ...)``; in the order of its leaves)
        lives: split along the members, and along the dimension of its output neurons
        given in ``neuron_dims`` (``None`` for none)."""
        return tuple(self._named(np.ndim(a), d) for a, d in zip(jax.tree_util.tree_leaves(state), neuron_dims))

    @property
    def multi_process(self) -> bool:
        """Whether the mesh spans devices of several processes."""
        return bool(self.mesh.is_multi_process)

    def replicate(self, tree):
        """``tree`` on every device of the mesh."""
        whole = NamedSharding(self.mesh, PartitionSpec())
        return jax.tree_util.tree_map(lambda a: put(a, whole), tree)

    def inputs(self, seq, input_axes, out_ndim: int):
        """Shardings for one chunk of per-step inputs ``(xs, post_spikes, *extras)``: split
        along the members where each member has its own (axis 1), replicated otherwise;
        imposed output spikes also along the neurons."""
        shardings = []
        for i, (a, axis) in enumerate(zip(seq, input_axes)):
            if a is None:
                shardings.append(None)
                continue
            neuron_dim = -1 if i == 1 and out_ndim == 1 else None  # i == 1: imposed output spikes
            shardings.append(self._named(a.ndim, neuron_dim, 1 if axis == 0 else None))
        return tuple(shardings)


def neuron_dims(state, rule, in_shape: tuple, out_shape: tuple, weight_shape: tuple, batch_shape: tuple) -> list:
    """For each array of a :class:`~canns_stdp.step.StepState` (in the order of its leaves),
    the dimension of the output neurons, counted from the end (``None`` for none): ``W``'s
    rows; the last axis of the membrane, the spikes and the postsynaptic trace; for the
    rule's state, the dimension that grows when the rule is asked for its state with one
    more output neuron."""
    layer = {"W": -2, "v": -1, "spike": -1, "trace_pre": None, "trace_post": -1, "refractory_left": -1}

    def shapes(n_out):
        return jax.tree_util.tree_leaves(jax.eval_shape(lambda: rule.init_state(
            tuple(in_shape), (n_out,), (n_out,) + tuple(weight_shape[1:]), tuple(batch_shape))))

    def grown(a, b):
        changed = [d for d, (x, y) in enumerate(zip(a.shape, b.shape)) if x != y]
        return changed[0] - len(a.shape) if changed else None
    rule_dims = [grown(a, b) for a, b in zip(shapes(out_shape[0]), shapes(out_shape[0] + 1))]
    return [layer[name] for name in state.layer.arrays()] + rule_dims


def put(value, sharding):
    """``value`` (the whole array, held by this process) placed where ``sharding`` says.

    On a mesh of this process's devices, one ``jax.device_put``. On a mesh that spans
    several processes, each process builds the parts of its own devices from its own
    copy (``jax.make_array_from_callback``): every process must hold the same value,
    which is not checked (checking would cost a transfer between processes).
    """
    if sharding.is_fully_addressable:
        return jax.device_put(value, sharding)
    shape, dtype = np.shape(value), getattr(value, "dtype", None)
    return jax.make_array_from_callback(shape, sharding, lambda index: value[index], dtype=dtype)


def place(tree, shardings: tuple):
    """``tree`` with its leaves put where ``shardings`` (one per leaf) says."""
    leaves, treedef = jax.tree_util.tree_flatten(tree)
    if all(s.is_fully_addressable for s in shardings):
        return jax.tree_util.tree_unflatten(treedef, jax.device_put(leaves, list(shardings)))
    return jax.tree_util.tree_unflatten(treedef, [put(a, s) for a, s in zip(leaves, shardings)])


def constrain(tree, shardings: tuple):
    """Inside a compiled function: ``tree``'s leaves kept where ``shardings`` says (the
    compiler would otherwise be free to gather an axis the inputs split)."""
    leaves, treedef = jax.tree_util.tree_flatten(tree)
    return jax.tree_util.tree_unflatten(
        treedef, [jax.lax.with_sharding_constraint(a, s) for a, s in zip(leaves, shardings)])


def gathered(tree):
    """``tree`` on one device (this process's first), for members' trainers to hold; when
    its arrays span several processes, each process gets every array whole
    (``process_allgather``, then onto this process's first device)."""
    local = jax.local_devices()[0]
    leaves = jax.tree_util.tree_leaves(tree)
    if any(isinstance(a, jax.Array) and not a.is_fully_addressable for a in leaves):
        from jax.experimental import multihost_utils
        tree = multihost_utils.process_allgather(tree, tiled=True)
    return jax.device_put(tree, local)
