"""Checkpoints of an ensemble's state written and read shard by shard (orbax-checkpoint).

:func:`save_sharded` writes the state of an :class:`~canns_stdp.Ensemble` (or of a
:class:`~canns_stdp.Trainer`, an ensemble of one) as one folder: every array stacked over
the members and placed as a call on the ensemble's mesh places it (members along
``member_axis``, a dense layer's neurons along ``neuron_axis``), so that each device's
part is written by the process that holds it, once (replicas are written once). Nothing
is gathered to one host. :func:`restore_sharded` reads it into an ensemble of the same
members on any mesh, or none: each process reads the parts of its own devices, so a
folder written on 8 devices loads on 2 or on 1.

It needs ``orbax-checkpoint`` (``pip install "canns_stdp[orbax]"``), imported only when
one of them is called. The one-file format of :mod:`canns_stdp.checkpoint`
(``trainer.save``/``Trainer.load``) needs nothing more and loads on any device count too;
it holds one member, written whole by one process.

A folder holds the arrays (orbax's own files) and a JSON description: the format and
its version, each member's layer and trainer (their classes and configurations, as the
one-file format stores them), and for each array its name, shape, dtype and, for each
member, a checksum (two sums of its 32-bit words modulo 2**32, the second weighted by
position: exact on any device count, computed where the parts lie). Restoring checks,
before anything is read, that the folder's members, classes, configurations, array
names, shapes and dtypes are the ensemble's; after reading, every checksum and that
every float is finite; only then is any member written. A failure raises
:class:`~canns_stdp.checkpoint.CheckpointError` naming what does not fit, and changes
no member.
"""

from __future__ import annotations

import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec, SingleDeviceSharding

from .checkpoint import CheckpointError, _check_batches, _config_json, _describe, _held_together, _is_key
from .checkpoint_file import as_path
from .rule_state import leaf_names

__all__ = ["FORMAT_NAME", "FORMAT_VERSION", "restore_sharded", "save_sharded"]

FORMAT_NAME = "canns_stdp-sharded-checkpoint"
FORMAT_VERSION = 1
_ARRAYS, _DESCRIPTION = "arrays", "description"
_INSTALL = ('sharded checkpoints need orbax-checkpoint, which is not installed: '
            'pip install "canns_stdp[orbax]" (or pip install orbax-checkpoint)')
_LAYER_NEURON_DIMS = {"W": -2, "v": -1, "spike": -1, "trace_post": -1}  # counted from the end


def _orbax():
    try:
        import orbax.checkpoint as ocp
    except ImportError as err:
        raise ImportError(_INSTALL) from err
    return ocp


def _ensemble_of(target):
    from .ensemble import Ensemble
    from .trainer import Trainer

    if isinstance(target, Ensemble):
        return target
    if isinstance(target, Trainer):
        return target._on_mesh() if target.mesh is not None else Ensemble([target])
    raise TypeError(f"target must be a canns_stdp.Ensemble or Trainer, got {type(target).__name__}")


# -- what a member holds ----------------------------------------------------------------------
def _held(trainer) -> dict:
    """``{"model/<name>" or "trainer/<name>": value}``: every array and number of the member's
    layer and trainer, as their one-file checkpoints hold them."""
    return {**{f"model/{k}": v for k, v in trainer.model.checkpoint_state().items()},
            **{f"trainer/{k}": v for k, v in trainer.checkpoint_state().items()}}


def _as_array(value):
    """``(array, info)``: a typed PRNG key as its data, Python numbers as NumPy scalars."""
    value = getattr(value, "value", value)  # a bm.Variable
    if _is_key(value):
        return jax.random.key_data(value), {"key_impl": str(jax.random.key_impl(value))}
    for kind, dtype in ((bool, np.bool_), (int, np.int64), (float, np.float64)):
        if isinstance(value, kind):
            return np.asarray(value, dtype), {"python": kind.__name__}
    return value, {}


def _words(a):
    """An array's contents as 32-bit words, per member: ``(K, words)`` uint32."""
    a = jnp.asarray(a)
    if a.dtype == jnp.bool_:
        a = a.astype(jnp.uint32)
    if a.dtype.itemsize == 4:
        words = jax.lax.bitcast_convert_type(a, jnp.uint32)
    elif a.dtype.itemsize < 4:
        words = jax.lax.bitcast_convert_type(a, jnp.uint16 if a.dtype.itemsize == 2 else jnp.uint8).astype(jnp.uint32)
    else:  # 8 bytes: two words each
        words = jax.lax.bitcast_convert_type(a, jnp.uint32)
    return words


@jax.jit
def _checksums(arrays: dict) -> dict:
    """For each array ``(K, ...)``: ``(K, 2)`` uint32, the sum of each member's words and
    their sum weighted by position (1, 2, ...), both modulo 2**32 (exact, whatever order
    the devices add them in)."""
    def sums(a):
        w = _words(a)
        if w.ndim == 1:
            w = w[:, None]
        flat = jnp.zeros(w.shape[1:], jnp.uint32)
        stride = 1
        for d in range(w.ndim - 1, 0, -1):
            flat = flat + jax.lax.broadcasted_iota(jnp.uint32, w.shape[1:], d - 1) * jnp.uint32(stride)
            stride *= w.shape[d]
        axes = tuple(range(1, w.ndim))
        weighted = (w * (flat + 1)[None]).sum(axis=axes, dtype=jnp.uint32)
        return jnp.stack([w.sum(axis=axes, dtype=jnp.uint32), weighted], 1)
    return {name: sums(a) for name, a in arrays.items()}


@jax.jit
def _finite(arrays: dict) -> dict:
    return {name: jnp.isfinite(a).reshape(a.shape[0], -1).all(axis=1) for name, a in arrays.items()}


def _on_host(tree):
    """Small per-member results as NumPy on every process."""
    from .sharding import gathered

    return jax.tree_util.tree_map(np.asarray, gathered(tree))


def _neuron_dims(ensemble) -> dict:
    """The dimension of the output neurons (from the end) of each name a member holds,
    where the ensemble splits its neurons; names not listed are not split."""
    sharding = ensemble.sharding
    if sharding is None or sharding.neuron_axis is None:
        return {}
    first = ensemble.trainers[0]
    rule = first.current_rule()
    in_shape, out_shape = first.model.sample_shapes()
    weight_shape = tuple(first.weight_shape())

    def state(n_out):
        return jax.eval_shape(lambda: rule.init_state(tuple(in_shape), (n_out,), (n_out,) + weight_shape[1:], ()))
    names, small, _ = leaf_names(state(out_shape[0]))
    _, grown, _ = leaf_names(state(out_shape[0] + 1))
    dims = {f"model/{first.weight_attr if k == 'W' else k}": d for k, d in _LAYER_NEURON_DIMS.items()}
    for name, a, b in zip(names, small, grown):
        changed = [d for d, (x, y) in enumerate(zip(a.shape, b.shape)) if x != y]
        if changed:
            dims[f"trainer/{name}"] = changed[0] - len(a.shape)
    return dims


def _shardings(ensemble, shapes: dict) -> dict:
    """Where each stacked array ``(K, ...)`` lives: as a call places the state, or on this
    process's first device without a mesh."""
    sharding = ensemble.sharding
    if sharding is None:
        one = SingleDeviceSharding(jax.local_devices()[0])
        return {name: one for name in shapes}
    dims = _neuron_dims(ensemble)
    out = {}
    for name, shape in shapes.items():
        axes = [sharding.member_axis] + [None] * (len(shape) - 1)
        d = dims.get(name)
        if d is not None and len(shape) + d >= 1 and shape[d] % sharding.size(sharding.neuron_axis) == 0:
            axes[d] = sharding.neuron_axis
        out[name] = NamedSharding(sharding.mesh, PartitionSpec(*axes))
    return out


def _stacked(ensemble):
    """``(arrays, infos, own, own_infos)``: the arrays every member holds alike (same name,
    shape and dtype, one JAX keeps as it is; not the run's entries), stacked over the
    members as jax arrays on this process's first device, and their ``key_impl``/``python``
    tags; each member's other entries (the step count, a chunk left open) as NumPy, and
    their tags."""
    held = [{name: _as_array(v) for name, v in _held(t).items()} for t in ensemble.trainers]
    first = held[0]

    def alike(name):
        a = first[name][0]
        return not name.startswith("trainer/run.") and jax.dtypes.canonicalize_dtype(a.dtype) == a.dtype and all(
            name in h and np.shape(h[name][0]) == np.shape(a) and h[name][0].dtype == a.dtype
            and h[name][1] == first[name][1] for h in held)
    names = [n for n in first if alike(n)]
    device = jax.local_devices()[0]
    arrays = {n: jax.device_put(jnp.stack([jnp.asarray(h[n][0]) for h in held]), device) for n in names}
    own = [{n: np.asarray(v) for n, (v, _) in h.items() if n not in arrays} for h in held]
    own_infos = [{n: info for n, (_, info) in h.items() if n not in arrays} for h in held]
    return arrays, {n: first[n][1] for n in names}, own, own_infos


def _members_described(ensemble) -> list:
    return [{"model": _json(_describe(t.model)), "trainer": _json(_describe(t))} for t in ensemble.trainers]


def _json(described: dict) -> dict:
    return {"kind": described["kind"], "config": _config_json(described["config"])}


# -- saving ---------------------------------------------------------------------------------
def save_sharded(target, directory) -> Path:
    """Write the state of ``target`` (an :class:`~canns_stdp.Ensemble`, or a
    :class:`~canns_stdp.Trainer`, with or without a mesh) to the new folder ``directory``,
    each device's part by the process that holds it. On several processes every process
    calls it, with one folder that all of them reach (a shared file system).

    Raises:
        ImportError: orbax-checkpoint is not installed (the message says what to install).
        FileExistsError: ``directory`` exists (a folder is written once; name each one,
            e.g. by its step).
    """
    ocp = _orbax()
    ensemble = _ensemble_of(target)
    directory = as_path(directory).absolute()
    if directory.exists():
        raise FileExistsError(f"cannot write a sharded checkpoint to '{directory}': it exists (a checkpoint "
                              "folder is written once: give each a new name, e.g. with its step)")
    if not directory.parent.is_dir():
        raise FileNotFoundError(f"cannot write '{directory}': folder '{directory.parent}' does not exist")
    from . import __version__
    from .sharding import put

    arrays, infos, own, own_infos = _stacked(ensemble)
    shardings = _shardings(ensemble, {n: a.shape for n, a in arrays.items()})
    placed = {n: put(a, shardings[n]) for n, a in arrays.items()}
    sums = _on_host(_checksums(placed))  # K pairs per array come back
    keys = {name: f"a{i}" for i, name in enumerate(placed)}
    tree = {keys[n]: a for n, a in placed.items()}
    for k, entries in enumerate(own):
        for name, value in entries.items():
            keys[(k, name)] = f"m{k}_{len(keys)}"
            tree[keys[(k, name)]] = value
    description = {
        "format": FORMAT_NAME, "format_version": FORMAT_VERSION, "library_version": __version__,
        "members": _members_described(ensemble),
        "arrays": {name: {"key": keys[name], "shape": list(a.shape), "dtype": a.dtype.str,
                          "checksums": sums[name].tolist(), **infos[name]} for name, a in placed.items()},
        "own": [{name: {"key": keys[(k, name)], "shape": list(np.shape(v)), "dtype": np.asarray(v).dtype.str,
                        **own_infos[k][name]} for name, v in entries.items()} for k, entries in enumerate(own)],
        "layout": None if ensemble.sharding is None else {
            "mesh": {str(a): int(s) for a, s in ensemble.sharding.mesh.shape.items()},
            "member_axis": ensemble.sharding.member_axis, "neuron_axis": ensemble.sharding.neuron_axis},
    }
    with ocp.Checkpointer(ocp.CompositeCheckpointHandler()) as checkpointer:
        checkpointer.save(directory, ocp.args.Composite(**{_ARRAYS: ocp.args.PyTreeSave(tree),
                                                           _DESCRIPTION: ocp.args.JsonSave(description)}))
    return directory


# -- restoring ------------------------------------------------------------------------------
def restore_sharded(target, directory) -> None:
    """Read a folder written by :func:`save_sharded` into ``target`` (an
    :class:`~canns_stdp.Ensemble` or :class:`~canns_stdp.Trainer` of the same members:
    the same number, classes and configurations; any mesh, or none), each process reading
    the parts of its own devices. The members then hold their whole state, as after a call.

    Raises:
        ImportError: orbax-checkpoint is not installed.
        FileNotFoundError: no such folder.
        CheckpointError: the folder is not a sharded checkpoint, is corrupted, or does
            not fit ``target`` (the message names what); no member was changed.
    """
    ocp = _orbax()
    ensemble = _ensemble_of(target)
    directory = as_path(directory).absolute()
    if not directory.is_dir():
        raise FileNotFoundError(f"no sharded checkpoint at '{directory}'")
    description = _read_description(ocp, directory)
    arrays, infos, own, _ = _stacked(ensemble)  # what the members hold now: the reference
    _check_fits(description, ensemble, arrays, infos, own, directory)
    described = description["arrays"]
    shapes = {n: tuple(described[n]["shape"]) for n in arrays}  # checked: the members' or with a batch axis
    shardings = _shardings(ensemble, shapes)
    abstract = {described[n]["key"]: jax.ShapeDtypeStruct(shapes[n], a.dtype, sharding=shardings[n])
                for n, a in arrays.items()}
    restore_args = {key: ocp.ArrayRestoreArgs(sharding=s.sharding, global_shape=s.shape, dtype=s.dtype)
                    for key, s in abstract.items()}
    for k, entries in enumerate(description["own"]):
        for name, info in entries.items():
            abstract[info["key"]] = np.zeros(info["shape"], np.dtype(info["dtype"]))
            restore_args[info["key"]] = ocp.RestoreArgs(restore_type=np.ndarray)
    try:
        with ocp.Checkpointer(ocp.CompositeCheckpointHandler()) as checkpointer:
            tree = checkpointer.restore(directory, ocp.args.Composite(**{_ARRAYS: ocp.args.PyTreeRestore(
                abstract, restore_args=restore_args)}))[_ARRAYS]
    except Exception as err:  # orbax's and tensorstore's many failures on damaged files
        raise CheckpointError(f"sharded checkpoint '{directory}' is corrupted or incomplete: its arrays could "
                              f"not be read ({type(err).__name__}: {str(err)[:300]}); no member was changed") from None
    restored = {n: tree[described[n]["key"]] for n in arrays}
    _check_contents(restored, described, directory)
    _write_members(ensemble, restored, description, tree, directory)


def _read_description(ocp, directory: Path) -> dict:
    try:
        with ocp.Checkpointer(ocp.CompositeCheckpointHandler()) as checkpointer:
            description = checkpointer.restore(directory, ocp.args.Composite(
                **{_DESCRIPTION: ocp.args.JsonRestore()}))[_DESCRIPTION]
    except Exception as err:
        raise CheckpointError(f"'{directory}' is not a readable sharded checkpoint: its description could not be "
                              f"read ({type(err).__name__}: {str(err)[:300]})") from None
    if not isinstance(description, dict) or description.get("format") != FORMAT_NAME:
        raise CheckpointError(f"'{directory}' is not a canns_stdp sharded checkpoint")
    version = description.get("format_version")
    if type(version) is not int or version < 1 or version > FORMAT_VERSION:
        raise CheckpointError(f"sharded checkpoint '{directory}' has format version {version!r}; this canns_stdp "
                              f"reads versions 1 to {FORMAT_VERSION}")
    shapes_ok = isinstance(description.get("members"), list) and isinstance(description.get("arrays"), dict) \
        and isinstance(description.get("own"), list)
    if not shapes_ok:
        raise CheckpointError(f"sharded checkpoint '{directory}' is corrupted: its description is incomplete")
    return description


def _check_fits(description: dict, ensemble, arrays: dict, infos: dict, own: list, directory: Path) -> None:
    """The folder's members and arrays against the ensemble's, before anything is read."""
    where = f"sharded checkpoint '{directory}'"
    K = len(ensemble.trainers)
    members = description["members"]
    if len(members) != K or len(description["own"]) != K:
        raise CheckpointError(f"{where} holds {len(members)} members, the ensemble has {K}")
    for k, (saved, now) in enumerate(zip(members, _members_described(ensemble))):
        for role in ("model", "trainer"):
            if not isinstance(saved, dict) or not isinstance(saved.get(role), dict):
                raise CheckpointError(f"{where} is corrupted: member {k} has no {role}")
            if saved[role].get("kind") != now[role]["kind"]:
                raise CheckpointError(f"{where}: member {k}'s {role} is a {saved[role].get('kind')}, the ensemble's "
                                      f"is a {now[role]['kind']}")
            config, held = saved[role].get("config"), now[role]["config"]
            if not isinstance(config, dict):
                raise CheckpointError(f"{where} is corrupted: member {k}'s {role} has no configuration")
            for name in sorted(set(config) | set(held)):
                if json.dumps(config.get(name), sort_keys=True) != json.dumps(held.get(name), sort_keys=True):
                    raise CheckpointError(f"{where}: member {k}'s {role} has {name}={config.get(name)!r}, the "
                                          f"ensemble's has {name}={held.get(name)!r}")
    described = description["arrays"]
    first = ensemble.trainers[0]
    batchable = {f"{role}/{n}" for role, obj in (("model", first.model), ("trainer", first))
                 for n in getattr(obj, "batchable_state", ())}
    batches = {}
    if set(described) != set(arrays):
        raise CheckpointError(f"{where} holds the arrays {sorted(described)}, the ensemble's members hold "
                              f"{sorted(arrays)}")
    for name, a in arrays.items():
        info = described[name]
        if not isinstance(info, dict) or not isinstance(info.get("key"), str):
            raise CheckpointError(f"{where} is corrupted: array {name!r} is described as {info!r}")
        shape = info.get("shape")
        batched = name in batchable and isinstance(shape, list) and len(shape) == a.ndim + 1 \
            and shape[:1] + shape[2:] == list(a.shape)
        if (shape != list(a.shape) and not batched) or info.get("dtype") != a.dtype.str:
            needs = f"shape {tuple(a.shape)}" + (f" (or {(K, 'batch') + tuple(a.shape[1:])})" if name in batchable
                                                 else "")
            raise CheckpointError(f"{where}: array {name!r} has shape {tuple(shape or ())} and dtype "
                                  f"{info.get('dtype')}, the ensemble's members need {needs} and dtype {a.dtype.str}")
        if batched:
            batches[name] = shape[1]
        sums = info.get("checksums")
        if not (isinstance(sums, list) and len(sums) == K and all(
                isinstance(s, list) and len(s) == 2 and all(type(x) is int for x in s) for s in sums)):
            raise CheckpointError(f"{where} is corrupted: array {name!r} has no checksum per member")
        if {key: v for key, v in info.items() if key in ("key_impl", "python")} != infos[name]:
            raise CheckpointError(f"{where}: array {name!r} is stored as {info}, the ensemble holds {infos[name]}")
    rule_state = [f"trainer/{n}" for n in first.batchable_state if f"trainer/{n}" in arrays]
    _check_batches(batches, directory, rule_state, _held_together(first.model, "model"))
    for k, entries in enumerate(description["own"]):
        if not isinstance(entries, dict) or not all(
                isinstance(i, dict) and isinstance(i.get("key"), str) and isinstance(i.get("shape"), list)
                and isinstance(i.get("dtype"), str) for i in entries.values()):
            raise CheckpointError(f"{where} is corrupted: member {k}'s own entries are described as {entries!r}")
        unknown = sorted(n for n in entries if not n.startswith("trainer/run.") and n not in own[k])
        if unknown:
            raise CheckpointError(f"{where}: member {k} holds {unknown}, which the ensemble's member does not")


def _check_contents(restored: dict, described: dict, directory: Path) -> None:
    """Every member's checksum of every array, and that its floats are finite."""
    sums = _on_host(_checksums(restored))
    for name, got in sums.items():
        want = np.asarray(described[name]["checksums"], np.uint32)
        bad = np.flatnonzero((got != want).any(axis=1))
        if bad.size:
            raise CheckpointError(f"sharded checkpoint '{directory}' is corrupted: array {name!r} of member "
                                  f"{int(bad[0])} fails its checksum; no member was changed")
    floats = {n: a for n, a in restored.items() if jnp.issubdtype(a.dtype, jnp.floating)}
    for name, ok in _on_host(_finite(floats)).items():
        if not ok.all():
            raise CheckpointError(f"sharded checkpoint '{directory}': array {name!r} of member "
                                  f"{int(np.flatnonzero(~ok)[0])} is not finite; no member was changed")


def _value(a, info: dict):
    if "key_impl" in info:
        return jax.random.wrap_key_data(a, impl=info["key_impl"])
    if "python" in info:
        return {"bool": bool, "int": int, "float": float}[info["python"]](np.asarray(a).item())
    return a


def _write_members(ensemble, restored: dict, description: dict, tree: dict, directory: Path) -> None:
    """Each member's arrays (gathered to this process's first device), written to every
    member, or to none if any refuses them."""
    from .sharding import gathered

    whole = gathered(restored)
    K = len(ensemble.trainers)
    described = description["arrays"]
    values = [{} for _ in range(K)]
    for name, a in whole.items():
        for k in range(K):
            values[k][name] = _value(a[k], described[name])
    for k, entries in enumerate(description["own"]):
        for name, info in entries.items():
            values[k][name] = _value(np.asarray(tree[info["key"]]), info)
    before = [(t.model.checkpoint_state(), t.checkpoint_state(), t.steps_trained, t._open_chunk)
              for t in ensemble.trainers]
    try:
        for t, v in zip(ensemble.trainers, values):
            t.model.restore_checkpoint_state({n[len("model/"):]: a for n, a in v.items() if n.startswith("model/")})
            trainer = {n[len("trainer/"):]: a for n, a in v.items() if n.startswith("trainer/")}
            trainer.setdefault("run.steps", np.asarray(0, np.int64))
            t.restore_checkpoint_state(trainer)
    except BaseException as err:
        for t, (model, trainer, steps, open_chunk) in zip(ensemble.trainers, before):
            t.model.restore_checkpoint_state(model)
            t.restore_checkpoint_state({n: a for n, a in trainer.items() if not n.startswith("run.")})
            t.steps_trained, t._open_chunk = steps, open_chunk
        if isinstance(err, CheckpointError):
            raise CheckpointError(f"sharded checkpoint '{directory}': {err}; no member was changed") from None
        raise

