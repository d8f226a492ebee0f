"""Who connects to whom in a projection, and how its weights map spikes to input.

A connectivity stores the weights of a projection ``pre → post`` its own way and gives
the input they deliver, ``current(W, a)``, and the Hebbian term
``hebbian(W, post_term, pre_term)`` shaped like ``W``, for the arrivals ``a`` either per
presynaptic neuron (``(n_pre,)``) or, with per-synapse delays, per synapse (shaped like
``W``):

* :class:`AllToAll`: ``W`` of shape ``(n_post, n_pre)``,
* :class:`Masked`: the same, absent synapses carrying nothing and never changing,
* :class:`Sparse`: only the synapses that exist, ``W`` of shape ``(n_syn,)`` with their
  presynaptic and postsynaptic indices (built by :func:`fixed_probability`,
  :func:`fixed_in_degree` or :func:`from_indices`); the input is a segment sum over
  the synapses, so memory and work follow the synapses, not ``n_pre · n_post``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["AllToAll", "Masked", "Sparse", "fixed_in_degree", "fixed_probability", "from_indices"]


class Connectivity:
    """Base: ``shape`` of ``W``; :meth:`current`, :meth:`hebbian`, :meth:`keep_absent`."""

    n_pre: int
    n_post: int

    def bind(self, n_pre: int, n_post: int) -> "Connectivity":
        """This connectivity for populations of ``n_pre`` and ``n_post`` neurons (checked)."""
        return self

    def arrays(self) -> dict:
        """Index arrays (traced: new random connections of the same size never recompile)."""
        return {}

    @property
    def shape(self):
        return (self.n_post, self.n_pre)

    def current(self, arrays, W, a, per_synapse: bool, events=None):
        return jnp.sum(W * a, axis=1) if per_synapse else W @ a

    def hebbian(self, arrays, W, post, pre, per_synapse: bool):
        return post[:, None] * (pre if per_synapse else pre[None, :])

    def keep_absent(self, arrays, W_old, W_new):
        return W_new

    def pre_index(self, arrays):
        """The presynaptic neuron of every synapse, shaped like ``W``."""
        return jnp.broadcast_to(jnp.arange(self.n_pre), self.shape)


@dataclass(frozen=True)
class AllToAll(Connectivity):
    """Every presynaptic neuron onto every postsynaptic one."""

    n_pre: int = 0
    n_post: int = 0

    def bind(self, n_pre, n_post):
        return AllToAll(n_pre, n_post)


class Masked(Connectivity):
    """All-to-all under a 0/1 ``mask`` of shape ``(n_post, n_pre)``."""

    def __init__(self, mask):
        mask = np.asarray(mask)
        if mask.ndim != 2 or not np.isin(mask, (0, 1)).all():
            raise ValueError(f"mask must be a 2-D array of 0/1, got shape {mask.shape}")
        self.mask = mask.astype(np.float32)
        self.n_post, self.n_pre = mask.shape

    def bind(self, n_pre, n_post):
        if self.mask.shape != (n_post, n_pre):
            raise ValueError(f"mask must have shape (n_post, n_pre) = {(n_post, n_pre)}, got {self.mask.shape}")
        return self

    def __hash__(self):
        return hash(self.mask.shape)

    def __eq__(self, other):
        return isinstance(other, Masked) and other.mask.shape == self.mask.shape

    def arrays(self):
        return {"mask": self.mask}

    def current(self, arrays, W, a, per_synapse, events=None):
        return super().current(arrays, W * arrays["mask"], a, per_synapse)

    def hebbian(self, arrays, W, post, pre, per_synapse):
        return arrays["mask"] * super().hebbian(arrays, W, post, pre, per_synapse)

    def keep_absent(self, arrays, W_old, W_new):
        return jnp.where(arrays["mask"] > 0, W_new, W_old)


class Sparse(Connectivity):
    """The synapses ``pre[k] → post[k]``, ``k < n_syn``; ``W`` has shape ``(n_syn,)``."""

    def __init__(self, pre, post, n_pre: Optional[int] = None, n_post: Optional[int] = None, *,
                 distinct: bool = False):
        pre, post = np.asarray(pre), np.asarray(post)
        if pre.ndim != 1 or post.shape != pre.shape or not (np.issubdtype(pre.dtype, np.integer)
                                                              and np.issubdtype(post.dtype, np.integer)):
            raise ValueError(f"pre and post must be 1-D integer arrays of one length, got {pre.dtype} "
                             f"{pre.shape} and {post.dtype} {post.shape}")
        pre, post = pre.astype(np.int32), post.astype(np.int32)
        ascending = _ascending(pre, post)  # strictly: then no synapse is listed twice
        if not ascending:
            order = np.lexsort((pre, post))  # by target: segment sums read W in order
            pre, post = pre[order], post[order]
        self.pre, self.post = pre, post
        self.n_pre, self.n_post = n_pre, n_post
        self._distinct = distinct or ascending  # no synapse listed twice (not checked again)

    def bind(self, n_pre, n_post):
        for name, idx, n in (("pre", self.pre, n_pre), ("post", self.post, n_post)):
            if idx.size and (idx.min() < 0 or idx.max() >= n):
                raise ValueError(f"{name} indices must be in [0, {n}), got values in [{idx.min()}, {idx.max()}]")
        if not getattr(self, "_distinct", False):
            pairs = self.post.astype(np.int64) * n_pre + self.pre
            if np.unique(pairs).size != pairs.size:
                raise ValueError("a sparse connectivity lists a synapse twice (same pre and post)")
        bound = Sparse.__new__(Sparse)
        bound.pre, bound.post, bound.n_pre, bound.n_post = self.pre, self.post, n_pre, n_post
        bound._distinct = True
        return bound

    @property
    def shape(self):
        return (self.pre.size,)

    def __hash__(self):
        return hash((self.pre.size, self.n_pre, self.n_post))

    def __eq__(self, other):
        return (isinstance(other, Sparse) and other.pre.size == self.pre.size
                and (other.n_pre, other.n_post) == (self.n_pre, self.n_post))

    def arrays(self):
        return {"pre": self.pre, "post": self.post}

    def fanout(self) -> np.ndarray:
        """``(n_pre, most)``: the synapses of each presynaptic neuron, padded with ``n_syn``."""
        if getattr(self, "_fanout", None) is None:  # drawn once: the indices never change
            self._fanout = _table(self.pre, self.n_pre)
        return self._fanout

    def fanin(self) -> np.ndarray:
        """``(n_post, most)``: the synapses onto each postsynaptic neuron, padded with ``n_syn``."""
        if getattr(self, "_fanin", None) is None:
            self._fanin = _table(self.post, self.n_post)
        return self._fanin

    def current(self, arrays, W, a, per_synapse, events=None):
        if "fanout" in arrays and not per_synapse:
            return self.current_of_events(arrays, W, a, events)
        carried = W * (a if per_synapse else a[arrays["pre"]])
        return jax.ops.segment_sum(carried, arrays["post"], num_segments=self.n_post, indices_are_sorted=True)

    def current_of_events(self, arrays, W, a, events=None):
        """The same input, visiting only the fan-out of the active presynaptic neurons
        (``events``: theirs, when already listed): the cost follows the spikes, not the
        synapses."""
        n_syn = W.shape[0]

        def visit(ids, pres, current):
            carried = W.at[ids].get(mode="fill", fill_value=0.0) * a.at[pres].get(mode="fill", fill_value=0.0)[:, None]
            targets = arrays["post"].at[ids].get(mode="fill", fill_value=0)
            return current.at[targets].add(carried)

        events = listed(a != 0) if events is None else events
        return visit_events(events, arrays["fanout"], n_syn, visit, jnp.zeros((self.n_post,), W.dtype))

    def hebbian(self, arrays, W, post, pre, per_synapse):
        return post[arrays["post"]] * (pre if per_synapse else pre[arrays["pre"]])

    def pre_index(self, arrays):
        return arrays["pre"]

    def indices(self):
        """``(pre, post)``: the synapses, in the order of ``W``."""
        return self.pre.copy(), self.post.copy()


def _ascending(pre: np.ndarray, post: np.ndarray) -> bool:
    """Whether the synapses are listed by target, then source, each once."""
    if pre.size < 2:
        return True
    key = post.astype(np.int64) * (int(pre.max()) + 1) + pre
    return bool(np.all(key[1:] > key[:-1]))


def stable_order(owner: np.ndarray, n: int) -> np.ndarray:
    """``np.argsort(owner, kind="stable")`` for indices in ``[0, n)``: as 16-bit keys
    when they fit, which NumPy sorts by radix in linear time."""
    if n <= 1 << 16:
        return np.argsort(owner.astype(np.uint16), kind="stable")
    return np.argsort(owner, kind="stable")


def _table(owner: np.ndarray, n: int) -> np.ndarray:
    """``(n, most)``: for each neuron, the synapses whose ``owner`` it is, padded with ``n_syn``."""
    counts = np.bincount(owner, minlength=n)
    most = max(1, int(counts.max(initial=0)))
    table = np.full((n, most), owner.size, np.int32)
    order = stable_order(owner, n)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rank = np.arange(owner.size) - np.repeat(starts, counts)
    table[owner[order], rank] = order
    return table


_LANE = 64  # neurons per row of the prefix sum's matrix product


def compact(active, size: int):
    """The indices of the ``True`` entries of ``active``, first, padded with ``len(active)``
    to ``size`` (what ``jnp.nonzero(active, size=size, fill_value=n)`` gives).

    The positions are a prefix sum computed as a product with a triangular matrix per
    row of 64 entries (exact: small integers in float32) and a cumulative sum over the
    rows: on a CPU, several times faster than ``jnp.nonzero`` or ``jnp.cumsum``, whose
    cost would otherwise dominate a step with few spikes."""
    n = active.shape[0]
    rows = -(-n // _LANE)
    flags = jnp.zeros(rows * _LANE, jnp.float32).at[:n].set(active.astype(jnp.float32)).reshape(rows, _LANE)
    within = flags @ jnp.triu(jnp.ones((_LANE, _LANE), jnp.float32))
    before = jnp.cumsum(within[:, -1]) - within[:, -1]
    position = (within + before[:, None]).reshape(-1)[:n].astype(jnp.int32) - 1
    slots = jnp.where(active, position, size)
    return jnp.full((size,), n, jnp.int32).at[slots].set(jnp.arange(n, dtype=jnp.int32), mode="drop")


BLOCK = 8  # active neurons visited together


class Events(NamedTuple):
    """The active neurons of a population at one step: their indices first in ``order``
    (padded with the population's size to a multiple of :data:`BLOCK`), and ``count``."""

    order: Any
    count: Any


def listed(active) -> Events:
    """:class:`Events` of a boolean vector (one compaction, shared by whoever visits them)."""
    n = active.shape[0]
    return Events(compact(active, -(-n // BLOCK) * BLOCK), jnp.sum(active))


def visit_events(events: Events, table, n_syn: int, visit, carry):
    """``carry`` through ``visit(ids, neurons, carry)`` for the active neurons of ``events``,
    :data:`BLOCK` at a time: ``neurons`` (padded with the population's size) and ``ids``,
    their rows of ``table`` (padded with ``n_syn``). As many visits as active neurons need."""
    def one_block(i, carry):
        neurons = jax.lax.dynamic_slice(events.order, (i * BLOCK,), (BLOCK,))
        return visit(table.at[neurons].get(mode="fill", fill_value=n_syn), neurons, carry)

    return jax.lax.fori_loop(0, (events.count + BLOCK - 1) // BLOCK, one_block, carry)


def from_indices(pre, post) -> Sparse:
    """The synapses ``pre[k] → post[k]``."""
    return Sparse(pre, post)


def fixed_probability(p: float, seed: int = 0, allow_self: bool = True) -> "_Deferred":
    """Each possible synapse present with probability ``p`` (drawn when the projection
    learns its populations' sizes); ``allow_self=False`` leaves out ``i → i``."""
    if not 0.0 <= float(p) <= 1.0:
        raise ValueError(f"p must be in [0, 1], got {p!r}")

    def build(n_pre, n_post):
        at = _bernoulli_positions(np.random.default_rng(seed), float(p), n_post * n_pre)
        post, pre = np.divmod(at, n_pre)
        if not allow_self:
            keep = pre != post
            pre, post = pre[keep], post[keep]
        return Sparse(pre, post, distinct=True)
    return _Deferred(build, f"fixed_probability({p!r}, seed={seed!r})")


def _bernoulli_positions(rng, p: float, size: int) -> np.ndarray:
    """The positions in ``[0, size)`` of the successes of ``size`` independent Bernoulli(p)
    trials, ascending: drawn as the geometric gaps between successes, so the cost follows
    the synapses present, not those possible."""
    if p <= 0.0 or size == 0:
        return np.zeros(0, np.int64)
    if p >= 1.0:
        return np.arange(size, dtype=np.int64)
    parts, last = [], -1
    batch = int(size * p + 6 * np.sqrt(size * p) + 64)
    while last < size - 1:
        at = last + np.cumsum(rng.geometric(p, batch))
        parts.append(at[at < size])
        last = int(at[-1])
        batch = max(64, batch // 8)
    return np.concatenate(parts)


def fixed_in_degree(k: int, seed: int = 0, allow_self: bool = True) -> "_Deferred":
    """Every postsynaptic neuron receives ``k`` synapses from distinct presynaptic neurons
    drawn at random."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 0:
        raise ValueError(f"k must be an integer >= 0, got {k!r}")

    def build(n_pre, n_post):
        available = n_pre - (0 if allow_self else 1)
        if k > available:
            raise ValueError(f"k = {k} exceeds the {available} presynaptic neurons available")
        rng = np.random.default_rng(seed)
        pre = np.empty((n_post, k), np.int64)
        for i in range(n_post):
            choices = np.arange(n_pre) if allow_self or i >= n_pre else np.delete(np.arange(n_pre), i)
            pre[i] = rng.choice(choices, size=k, replace=False)
        return Sparse(pre.ravel(), np.repeat(np.arange(n_post), k))
    return _Deferred(build, f"fixed_in_degree({k!r}, seed={seed!r})")


class _Deferred:
    """A connectivity drawn once the populations' sizes are known."""

    def __init__(self, build, text: str):
        self.build, self.text = build, text

    def bind(self, n_pre, n_post):
        return self.build(n_pre, n_post).bind(n_pre, n_post)

    def __repr__(self):
        return self.text


def resolve(connectivity: Any, n_pre: int, n_post: int) -> Connectivity:
    """A bound connectivity from what a projection was given (``"all"``, a mask, a
    :class:`Sparse`, a builder)."""
    if connectivity is None or (isinstance(connectivity, str) and connectivity == "all"):
        return AllToAll(n_pre, n_post)
    if isinstance(connectivity, (Connectivity, _Deferred)):
        return connectivity.bind(n_pre, n_post)
    if isinstance(connectivity, np.ndarray) or hasattr(connectivity, "__array__"):
        return Masked(connectivity).bind(n_pre, n_post)
    raise ValueError(f"connectivity must be 'all', a 0/1 mask, a Sparse or a builder such as "
                     f"fixed_probability(p), got {connectivity!r}")
