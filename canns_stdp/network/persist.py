"""Saving and loading a :class:`~canns_stdp.network.Network`: its structure (populations,
projections with their rules and drawn connectivity) and its whole state, in one
checkpoint file of the library's format (atomic, checksummed, checked on load)."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from ..checkpoint import CheckpointError, read_checkpoint, write_checkpoint
from ..rules.base import rule_config, rule_from_config
from . import populations as population_types
from .connectivity import AllToAll, Masked, Sparse
from .projection import Projection

__all__ = ["load", "save"]

KIND = "canns_stdp.network.Network"
_POPULATIONS = {cls.__name__: cls for cls in (population_types.SpikeInput, population_types.PoissonInput,
                                              population_types.LayerLIF, population_types.LIF,
                                              population_types.Izhikevich)}
_PROJECTION_FIELDS = ("pre", "post", "receptor", "learning_rate", "w_min", "w_max", "hardbound", "tau_pre",
                      "tau_post", "d_pre", "d_post", "a_pre", "a_post", "trace_mode", "name")


def _plain(value):
    arr = np.asarray(value)
    return arr.item() if arr.ndim == 0 else arr.tolist()


def _state_arrays(net) -> dict:
    s = net._state
    arrays = {"state/t": np.asarray(s.t), "state/seed": np.asarray(s.seed)}
    for name, pop_state, hist in zip(net.populations, s.pops, s.history):
        arrays.update({f"state/pop/{name}/{k}": np.asarray(a) for k, a in pop_state._asdict().items()})
        if hist is not None:
            arrays[f"state/history/{name}"] = np.asarray(hist)
    for proj, st in zip(net.projections, s.projs):
        arrays[f"state/proj/{proj.name}/W"] = np.asarray(st.W)
        if st.trace_pre is not None:
            arrays[f"state/proj/{proj.name}/trace_pre"] = np.asarray(st.trace_pre)
            arrays[f"state/proj/{proj.name}/trace_post"] = np.asarray(st.trace_post)
        for i, leaf in enumerate(jax.tree_util.tree_leaves(st.rule)):
            arrays[f"state/proj/{proj.name}/rule/{i}"] = np.asarray(leaf)
    return arrays


def save(net, path):
    """Write ``net`` to ``path``; returns the path."""
    pops = {name: {"type": type(p).__name__,
                   "fields": {f.name: _plain(getattr(p, f.name)) for f in dataclasses.fields(p)}}
            for name, p in net.populations.items()}
    projections, arrays = [], _state_arrays(net)
    for proj, conn, (delay, per_synapse) in zip(net.projections, net._bound, net._delays):
        entry = {f: getattr(proj, f) for f in _PROJECTION_FIELDS}
        entry["rule"] = None if proj.rule is None else rule_config(proj.rule)
        entry["connectivity"] = type(conn).__name__
        entry["delay"] = delay
        if isinstance(conn, Masked):
            arrays[f"structure/{proj.name}/mask"] = conn.mask.astype(np.uint8)
        elif isinstance(conn, Sparse):
            arrays[f"structure/{proj.name}/pre"] = conn.pre
            arrays[f"structure/{proj.name}/post"] = conn.post
        if per_synapse is not None:
            arrays[f"structure/{proj.name}/delay"] = per_synapse
        projections.append(entry)
    config = {"populations": pops, "projections": projections, "dt": net.dt, "seed": net.seed,
              "compiled": net.compiled, "chunk_size": net.chunk_size, "native": net.native, "steps_run": net.steps_run}
    arrays = {f"network/{k}": a for k, a in arrays.items()}
    return write_checkpoint(path, {"network": {"kind": KIND, "config": config}}, arrays)


def _fail(path, what):
    raise CheckpointError(f"checkpoint '{path}': {what}")


def load(path, network_cls, mesh=None, neuron_axis=None):
    """The network saved in ``path`` (structure and state), every part checked first; its
    neurons split over ``mesh`` along ``neuron_axis`` when given (whatever the mesh it was
    saved from: a checkpoint holds the state whole)."""
    meta, arrays = read_checkpoint(path)
    obj = meta.get("objects", {}).get("network")
    if not isinstance(obj, dict) or obj.get("kind") != KIND or not isinstance(obj.get("config"), dict):
        _fail(path, "it holds no network")
    config = obj["config"]
    arrays = {k[len("network/"):]: a for k, a in arrays.items() if k.startswith("network/")}
    _check_sizes(path, config, arrays)
    try:
        pops = {}
        for name, description in config["populations"].items():
            cls = _POPULATIONS.get(description["type"])
            if cls is None:
                _fail(path, f"population {name!r} has an unknown type {description['type']!r}")
            pops[name] = cls(**description["fields"])
        projections = []
        for entry in config["projections"]:
            entry = dict(entry)
            name, kind = entry["name"], entry.pop("connectivity")
            rule = entry.pop("rule")
            delay = entry.pop("delay")
            if f"structure/{name}/delay" in arrays:
                delay = np.asarray(arrays[f"structure/{name}/delay"])
            if kind == "Masked":
                connectivity = Masked(arrays[f"structure/{name}/mask"])
            elif kind == "Sparse":
                connectivity = Sparse(arrays[f"structure/{name}/pre"], arrays[f"structure/{name}/post"])
            elif kind == AllToAll.__name__:
                connectivity = "all"
            else:
                _fail(path, f"projection {name!r} has an unknown connectivity {kind!r}")
            projections.append(Projection(connectivity=connectivity, delay=delay, weights=0.0,
                                          rule=None if rule is None else rule_from_config(rule), **entry))
        net = network_cls(pops, projections, dt=config["dt"], seed=config["seed"], compiled=config["compiled"],
                          chunk_size=config["chunk_size"], native=config.get("native"), mesh=mesh,
                          neuron_axis=neuron_axis)
    except CheckpointError:
        raise
    except (KeyError, TypeError, ValueError) as err:
        _fail(path, f"its network description is invalid: {err!r}")
    want = _state_arrays(net)
    have = {k: a for k, a in arrays.items() if k.startswith("state/")}
    if set(have) != set(want):
        _fail(path, f"its state does not fit the network it describes: missing {sorted(set(want) - set(have))}, "
                    f"unexpected {sorted(set(have) - set(want))}")
    for key, ref in want.items():
        arr = np.asarray(have[key])
        if arr.shape != ref.shape or arr.dtype != ref.dtype:
            _fail(path, f"state {key} has shape {arr.shape} and dtype {arr.dtype}, the network needs "
                        f"{ref.shape} {ref.dtype}")
        if np.issubdtype(arr.dtype, np.floating) and not np.isfinite(arr).all():
            _fail(path, f"state {key} holds non-finite values")
    steps = config.get("steps_run")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0 or steps != int(have["state/t"]):
        _fail(path, f"steps_run {steps!r} does not match the state's step count {int(have['state/t'])}")
    net._state = _restored(net, have)
    net.steps_run = steps
    return net


def _check_sizes(path, config, arrays) -> None:
    """The sizes the description declares against the arrays the file holds, before any
    population or projection is built (a forged description cannot make it allocate)."""
    try:
        sizes = {name: description["fields"]["n"] for name, description in config["populations"].items()}
        for name, n in sizes.items():
            spike = arrays.get(f"state/pop/{name}/spike")
            if isinstance(n, bool) or not isinstance(n, int) or spike is None or spike.shape != (n,):
                _fail(path, f"population {name!r} declares n={n!r}, its stored spikes have shape "
                            f"{None if spike is None else spike.shape}")
        for entry in config["projections"]:
            name, W = entry["name"], arrays.get(f"state/proj/{entry['name']}/W")
            kind = entry["connectivity"]
            if kind == "Sparse":
                pre = arrays.get(f"structure/{name}/pre")
                want = None if pre is None else pre.shape
            else:
                want = (sizes[entry["post"]], sizes[entry["pre"]])
            if W is None or W.shape != want:
                _fail(path, f"projection {name!r}: stored weights of shape {None if W is None else W.shape}, "
                            f"its description needs {want}")
    except CheckpointError:
        raise
    except (KeyError, TypeError, AttributeError) as err:
        _fail(path, f"its network description is invalid: {err!r}")


def _restored(net, arrays):
    s = net._state
    pops = tuple(type(st)(**{k: jnp.asarray(arrays[f"state/pop/{name}/{k}"]) for k in st._fields})
                 for name, st in zip(net.populations, s.pops))
    history = tuple(None if h is None else jnp.asarray(arrays[f"state/history/{name}"])
                    for name, h in zip(net.populations, s.history))
    projs = []
    for proj, st in zip(net.projections, s.projs):
        prefix = f"state/proj/{proj.name}/"
        leaves, tree = jax.tree_util.tree_flatten(st.rule)
        rule_state = jax.tree_util.tree_unflatten(tree, [jnp.asarray(arrays[f"{prefix}rule/{i}"])
                                                         for i in range(len(leaves))])
        pre = None if st.trace_pre is None else jnp.asarray(arrays[prefix + "trace_pre"])
        post = None if st.trace_post is None else jnp.asarray(arrays[prefix + "trace_post"])
        projs.append(st._replace(W=jnp.asarray(arrays[prefix + "W"]), trace_pre=pre, trace_post=post, rule=rule_state))
    return s._replace(t=jnp.asarray(arrays["state/t"]), seed=jnp.asarray(arrays["state/seed"]), pops=pops,
                      history=history, projs=tuple(projs))
