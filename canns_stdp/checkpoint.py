"""Checkpoints: every state array plus the configuration, atomically, without pickle.

A checkpoint is one ``.npz`` file (a zip of ``.npy`` arrays, read with
``allow_pickle=False``) holding

* the state arrays, named ``"<role>/<name>"`` (``model/W``, ``trainer/key`` ...), and
* ``__meta__``: UTF-8 JSON (stored as a ``uint8`` array) with the format name and
  version, the library version, for each role the object's class (``kind``) and its
  JSON configuration, and for each array its shape, dtype and SHA-256.

Writes are atomic (:func:`atomic_write`): the file is written under a temporary
name in the same folder, flushed, ``fsync``-ed and renamed over the target, so a
crash or a kill mid-save leaves the previous file intact.

The protocol (:class:`Checkpointable`; :class:`~canns_stdp.base.BrainInspiredModel`
and :class:`~canns_stdp.base.Trainer` inherit it, so new models and trainers only
add :meth:`Checkpointable.checkpoint_config`):

* ``checkpoint_config() -> dict``: JSON-able constructor arguments. Values that
  are not JSON (e.g. a user function) are stored as a placeholder and must be
  passed again at load time (``STDPTrainer.load(path, weight_dependence=...)``).
* ``from_checkpoint_config(config, **context)``: rebuilds the object; the
  default is ``cls(**config)`` for models and ``cls(model, **config)`` for
  trainers.
* ``checkpoint_state() -> dict[str, array]``: by default every ``bm.Variable``
  of the object (BrainPy's relative names) and every attribute named in the class
  attribute ``checkpoint_attrs`` (NumPy/JAX arrays, Python ints/floats such as a
  step counter, JAX typed PRNG keys; raw ``uint32`` keys are plain arrays).
* ``restore_checkpoint_state(arrays)``: writes them back (default: the inverse).

Loading treats the file as untrusted input (:mod:`canns_stdp.checkpoint_file`): its size,
zip directory, metadata and array headers are checked before anything is read or built,
and a library layer's declared sizes are compared with the file's arrays before the
layer is built (:meth:`Checkpointable.checkpoint_shapes`). It then rebuilds the object
from its configuration; the fresh object's own
``checkpoint_state()`` gives the expected names, shapes and dtypes, so a file
whose arrays disagree with its configuration is refused with an error naming the
array. Nothing is modified unless every check passes.

Example:
    >>> from canns_stdp import SpikingLayer, STDPTrainer
    >>> layer = SpikingLayer(4, 2, seed=0)
    >>> layer.save("layer.npz")
    PosixPath('layer.npz')
    >>> same = SpikingLayer.load("layer.npz")
    >>> trainer = STDPTrainer(layer); path = trainer.save("run.npz")
    >>> trainer = STDPTrainer.load(path)  # model included
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any, Callable, Dict, Optional

import brainpy.math as bm
import jax
import numpy as np

from .checkpoint_file import FORMAT_NAME, FORMAT_VERSION, CheckpointError, as_path, read_file
from .checkpoint_file import META as _META
from .checkpoint_file import digest as _digest

__all__ = [
    "FORMAT_VERSION",
    "MAX_CHECKPOINT_BYTES",
    "CheckpointError",
    "Checkpointable",
    "PeriodicCheckpoint",
    "atomic_write",
    "load_model",
    "load_trainer",
    "read_checkpoint",
    "save_model",
    "save_trainer",
    "write_checkpoint",
]

#: The largest checkpoint file the loaders read (bytes); raise it to load larger files, or
#: pass ``max_bytes=`` to :func:`read_checkpoint`, :func:`load_model` or :func:`load_trainer`.
MAX_CHECKPOINT_BYTES = 8 * 2**30
_UNSERIALIZABLE = "__unserializable__"
_REGISTRY: Dict[str, type] = {}
_UMASK = os.umask(0o022)
os.umask(_UMASK)


# -- atomic files ------------------------------------------------------------------------
@contextlib.contextmanager
def atomic_write(path):
    """Open a temporary binary file next to ``path``; on success, fsync and rename it.

    If the block raises (or the process dies), ``path`` is untouched and the
    temporary file is removed (or, after a kill, left as a hidden ``.tmp`` file).
    """
    path = as_path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise FileNotFoundError(f"cannot write '{path}': folder '{folder}' does not exist")
    if path.is_dir():
        raise IsADirectoryError(f"cannot write '{path}': it is a folder")
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes it 0600; give it a normal file's mode
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError):  # make the rename itself durable
        dir_fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


# -- arrays and JSON -------------------------------------------------------------------------
def _is_key(value) -> bool:
    dtype = getattr(value, "dtype", None)
    return dtype is not None and jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key)


def _to_numpy(value):
    """``(array, extra_meta)`` for a state value: arrays, scalars, typed PRNG keys."""
    if isinstance(value, bm.Variable):
        value = value.value
    if _is_key(value):
        return np.asarray(jax.random.key_data(value)), {"key_impl": str(jax.random.key_impl(value))}
    if isinstance(value, bool):
        return np.asarray(value), {"python": "bool"}
    if isinstance(value, int):
        return np.asarray(value, np.int64), {"python": "int"}
    if isinstance(value, float):
        return np.asarray(value, np.float64), {"python": "float"}
    arr = np.asarray(value)
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_):
        raise TypeError(f"checkpoint state must be numeric arrays, got dtype {arr.dtype}")
    return arr, {}


def _from_numpy(arr: np.ndarray, info: dict, name: str, path):
    if "key_impl" in info:
        try:
            return jax.random.wrap_key_data(arr, impl=info["key_impl"])
        except (ValueError, TypeError, KeyError) as err:
            raise CheckpointError(f"checkpoint '{path}': array '{name}' is not a PRNG key of "
                                  f"{info['key_impl']!r}: {err}") from None
    python = info.get("python")
    if python is not None:
        return {"bool": bool, "int": int, "float": float}[python](arr.item())
    return arr


def _jsonable(value, where: str):
    """``value`` as JSON types; non-JSON objects become a named placeholder."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
        value = value.item() if isinstance(value, np.generic) else value
        if isinstance(value, float) and not np.isfinite(value):
            return {_UNSERIALIZABLE: repr(value)}
        return value
    if isinstance(value, (list, tuple)):
        return [_jsonable(v, where) for v in value]
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {k: _jsonable(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, (np.ndarray, jax.Array)) and np.ndim(value) == 0:
        return _jsonable(np.asarray(value).item(), where)
    return {_UNSERIALIZABLE: repr(value)}


def _has_placeholder(value) -> bool:
    if isinstance(value, dict):
        return set(value) == {_UNSERIALIZABLE} or any(_has_placeholder(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_placeholder(v) for v in value)
    return False


def _config_json(config: dict) -> dict:
    """A configuration as JSON; an argument with any non-JSON part becomes one placeholder."""
    out = {}
    for name, value in config.items():
        as_json = _jsonable(value, name)
        out[name] = {_UNSERIALIZABLE: repr(value)} if _has_placeholder(as_json) else as_json
    return out


def _placeholders(config: dict):
    return {k: v[_UNSERIALIZABLE] for k, v in config.items()
            if isinstance(v, dict) and set(v) == {_UNSERIALIZABLE}}


# -- the file format --------------------------------------------------------------------------
def write_checkpoint(path, objects: Dict[str, dict], arrays: Dict[str, Any],
                     extra: Optional[dict] = None) -> Path:
    """Write one checkpoint atomically.

    Args:
        path: target file (``.npz`` is customary; the name is used as given).
        objects: ``{role: {"kind": str, "config": dict}}``.
        arrays: ``{"role/name": value}``; see :func:`_to_numpy` for accepted values.
        extra: small JSON-able metadata (e.g. ``{"step": 1000}``).
    """
    from . import __version__

    path = as_path(path)
    stored, info = {}, {}
    for name, value in arrays.items():
        arr, meta = _to_numpy(value)
        stored[name] = arr
        info[name] = {"shape": list(arr.shape), "dtype": arr.dtype.str, "sha256": _digest(arr), **meta}
    meta = {
        "format": FORMAT_NAME, "format_version": FORMAT_VERSION, "library_version": __version__,
        "objects": {role: {"kind": o["kind"], "config": _config_json(o["config"])}
                    for role, o in objects.items()},
        "arrays": info, "extra": _jsonable(extra or {}, "extra"),
    }
    stored[_META] = np.frombuffer(json.dumps(meta).encode("utf-8"), np.uint8)
    with atomic_write(path) as f:
        np.savez(f, **stored)
    return path


def read_checkpoint(path, *, max_bytes: Optional[int] = None):
    """Read and verify a checkpoint: ``(meta, arrays)``.

    The file is untrusted input: its size, zip directory, metadata, every array's
    header, checksum and finiteness are checked before anything is built from it
    (see :mod:`canns_stdp.checkpoint_file`).

    Args:
        path: the file.
        max_bytes: the largest file accepted (default :data:`MAX_CHECKPOINT_BYTES`).

    Raises:
        TypeError: ``path`` is not a path.
        FileNotFoundError: no such file.
        CheckpointError: not a checkpoint, too large, truncated or corrupted, or written
            by a newer format version than this library reads.
    """
    return read_file(path, MAX_CHECKPOINT_BYTES if max_bytes is None else max_bytes)


# -- the protocol ---------------------------------------------------------------------------------
def _kind(cls) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def register_kind(kind: str, cls) -> None:
    """Load files that name ``kind`` (e.g. where a class was defined before) as ``cls``."""
    _REGISTRY[kind] = cls


class Checkpointable:
    """Mixin: what an object must provide to be saved and loaded (see module doc)."""

    #: Attributes saved besides ``bm.Variable``s (arrays, ints, floats, PRNG keys).
    checkpoint_attrs: tuple = ()
    #: State entries a file may hold or lack (names starting with it), shapes unchecked:
    #: ``restore_checkpoint_state`` receives them as stored and checks them itself.
    optional_checkpoint_prefix: Optional[str] = None

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        _REGISTRY[_kind(cls)] = cls

    def checkpoint_config(self) -> dict:
        """JSON-able arguments that rebuild an equivalent object (without its state)."""
        raise NotImplementedError(
            f"{type(self).__name__} cannot be checkpointed: it defines no checkpoint_config()"
        )

    @classmethod
    def from_checkpoint_config(cls, config: dict, **context):
        """Rebuild from :meth:`checkpoint_config`'s output (``context``: e.g. ``model``)."""
        if "model" in context:
            return cls(context["model"], **config)
        return cls(**config)

    @classmethod
    def checkpoint_shapes(cls, config: dict) -> Optional[Dict[str, tuple]]:
        """The shapes of the state an object built from ``config`` holds, computed without
        building it, or ``None`` when unknown. Loaders compare a file's arrays with them
        before building, so a forged size cannot make them allocate (the library's layers
        say theirs, from :mod:`canns_stdp.checkpoint_shapes`). Default: unknown."""
        return None

    def _checkpoint_variables(self) -> Dict[str, bm.Variable]:
        if hasattr(self, "vars") and callable(self.vars):
            found = self.vars(method="relative")
            return {name: var for name, var in found.items() if isinstance(var, bm.Variable)}
        return {k: val for k, val in vars(self).items() if isinstance(val, bm.Variable)}

    def checkpoint_state(self) -> Dict[str, Any]:
        """Every ``bm.Variable`` and every attribute in ``checkpoint_attrs``."""
        state = {name: var.value for name, var in self._checkpoint_variables().items()}
        for name in self.checkpoint_attrs:
            state[name] = getattr(self, name)
        return state

    def restore_checkpoint_state(self, arrays: Dict[str, Any]) -> None:
        """Write back arrays already checked against :meth:`checkpoint_state`."""
        variables = self._checkpoint_variables()
        for name, value in arrays.items():
            if name in variables:
                variables[name].value = jax.numpy.asarray(value)
            else:
                setattr(self, name, value)

    # -- convenience methods -------------------------------------------------------------
    def save(self, path) -> Path:
        """Save to ``path`` atomically (models: :func:`save_model`; trainers: :func:`save_trainer`)."""
        if getattr(self, "_checkpoint_role", "model") == "trainer":
            return save_trainer(self, path)
        return save_model(self, path)

    @classmethod
    def load(cls, path, **kwargs):
        """Load an object of this class saved with :meth:`save` (or a trainer's file for a
        model); ``max_bytes=`` raises the size limit (:data:`MAX_CHECKPOINT_BYTES`)."""
        loader = load_trainer if getattr(cls, "_checkpoint_role", "model") == "trainer" else load_model
        return loader(path, cls=cls, **kwargs)


def _describe(obj) -> dict:
    return {"kind": _kind(type(obj)), "config": obj.checkpoint_config()}


def _expected(obj, role: str, arrays: dict, path):
    """The file's ``role/`` arrays and ``obj``'s own (reference) arrays, same names checked."""
    optional = obj.optional_checkpoint_prefix
    want = {name: _to_numpy(value) for name, value in obj.checkpoint_state().items()
            if not (optional and name.startswith(optional))}
    prefix = f"{role}/"
    have = {k[len(prefix):]: a for k, a in arrays.items()
            if k.startswith(prefix) and not (optional and k[len(prefix):].startswith(optional))}
    if set(have) != set(want):
        missing, unexpected = sorted(set(want) - set(have)), sorted(set(have) - set(want))
        raise CheckpointError(
            f"checkpoint '{path}' does not fit a {type(obj).__name__} with its configuration: "
            f"{role} arrays missing {missing}, unexpected {unexpected}"
        )
    return have, want


def _convert(obj, role, arrays, meta, path):
    """``(values, batches)``: the file's ``role/`` values as ``obj`` stores them, and the
    batch size of each array held with a leading batch axis."""
    have, want = _expected(obj, role, arrays, path)
    out, batches = {}, {}
    batchable = getattr(obj, "batchable_state", ())
    for name, arr in have.items():
        ref, ref_info = want[name]
        batched = name in batchable and arr.ndim == ref.ndim + 1 and arr.shape[1:] == ref.shape
        if (arr.shape != ref.shape and not batched) or arr.dtype != ref.dtype:
            raise CheckpointError(
                f"checkpoint '{path}': {role} array '{name}' has shape {arr.shape} and dtype "
                f"{arr.dtype}, but the configuration {obj.checkpoint_config()} needs shape "
                f"{ref.shape} and dtype {ref.dtype}"
            )
        if batched:
            batches[f"{role}/{name}"] = arr.shape[0]
        out[name] = _from_numpy(arr, meta["arrays"][f"{role}/{name}"], f"{role}/{name}", path)
    optional = obj.optional_checkpoint_prefix
    if optional:
        prefix = f"{role}/{optional}"
        out.update({k[len(role) + 1:]: _from_numpy(a, meta["arrays"][k], k, path)
                    for k, a in arrays.items() if k.startswith(prefix)})
    return out, batches


def _held_together(obj, role: str) -> list:
    """The ``role/`` names of the arrays ``obj`` holds batched all together or not at all."""
    return [f"{role}/{name}" for name in getattr(obj, "batched_together", ())]


def _check_batches(batches: Dict[str, int], path, together=(), *groups) -> None:
    """Arrays held per sample of a batch must agree on its size (and it is not empty); of
    the arrays named in ``together`` (a rule's state), and in each of ``groups`` (a layer's
    state), all or none are batched."""
    for group in groups:
        _check_batches(batches, path, group)
    sizes = sorted(set(batches.values()))
    if sizes and (len(sizes) > 1 or sizes[0] == 0):
        raise CheckpointError(
            f"checkpoint '{path}' holds state for batches of different or empty sizes: "
            + ", ".join(f"{name} {size}" for name, size in sorted(batches.items())))
    batched = [name for name in together if name in batches]
    if batched and len(batched) != len(together):
        raise CheckpointError(
            f"checkpoint '{path}' holds {sorted(batched)} for a batch but "
            f"{sorted(set(together) - set(batched))} without one: they are held per sample of a batch "
            "all together or not at all")


def _check_declared_shapes(meta, role, klass, config, path) -> None:
    """The file's ``role`` arrays against the shapes ``config`` gives, before building."""
    expected = klass.checkpoint_shapes(config)
    if expected is None:
        return
    batchable = getattr(klass, "batchable_state", ())
    batchable = batchable if isinstance(batchable, (tuple, list, set, frozenset)) else ()
    for name, shape in expected.items():
        declared = meta["arrays"].get(f"{role}/{name}")
        if declared is None:
            raise CheckpointError(f"checkpoint '{path}' does not fit a {klass.__name__} with its "
                                  f"configuration: {role} array '{name}' is missing")
        held = tuple(declared["shape"])
        if held != tuple(shape) and not (name in batchable and held[1:] == tuple(shape)):
            raise CheckpointError(
                f"checkpoint '{path}': {role} array '{name}' has shape {held}, but its configuration "
                f"{_summary(config)} needs shape {tuple(shape)}; nothing was built")


def _summary(config: dict) -> str:
    return "{" + ", ".join(f"{k}={v!r}" for k, v in config.items() if isinstance(v, (int, float, str)))[:300] + "}"


def _build(meta, role, cls, path, overrides, **context):
    objects = meta["objects"]
    if role not in objects:
        raise CheckpointError(f"checkpoint '{path}' holds no {role} (it holds {sorted(objects)})")
    kind = objects[role]["kind"]
    klass = _REGISTRY.get(kind)
    if klass is None:
        raise CheckpointError(
            f"checkpoint '{path}' holds a {kind}, which is not defined: import the module "
            "that defines it before loading"
        )
    if cls is not None and not issubclass(klass, cls):
        raise CheckpointError(f"checkpoint '{path}' holds a {kind}, not a {_kind(cls)}")
    config = dict(objects[role]["config"])
    config.update(overrides)
    missing = _placeholders(config)
    if missing:
        name, text = next(iter(missing.items()))
        raise CheckpointError(
            f"checkpoint '{path}': {role} argument {name}={text} is not storable; pass it "
            f"again when loading, e.g. {klass.__name__}.load(path, {name}=...)"
        )
    _check_declared_shapes(meta, role, klass, config, path)
    try:
        return klass.from_checkpoint_config(config, **context)
    except (TypeError, ValueError, KeyError, AttributeError, IndexError) as err:
        raise CheckpointError(
            f"checkpoint '{path}': its {role} configuration is invalid for {klass.__name__}: {err}"
        ) from err


# -- public functions -----------------------------------------------------------------------------
def save_model(model, path, *, state: Optional[dict] = None, extra: Optional[dict] = None) -> Path:
    """Save a model's configuration and state (``state`` overrides some of its arrays)."""
    arrays = {**model.checkpoint_state(), **(state or {})}
    return write_checkpoint(path, {"model": _describe(model)},
                            {f"model/{k}": a for k, a in arrays.items()}, extra)


def load_model(path, cls=None, *, max_bytes: Optional[int] = None):
    """Rebuild a model from a model or trainer checkpoint (checked against ``cls`` if given;
    ``max_bytes``: see :func:`read_checkpoint`)."""
    meta, arrays = read_checkpoint(path, max_bytes=max_bytes)
    model = _build(meta, "model", cls, path, {})
    values, batches = _convert(model, "model", arrays, meta, path)
    _check_batches(batches, path, (), _held_together(model, "model"))
    model.restore_checkpoint_state(values)
    return model


def save_trainer(trainer, path, *, model_state: Optional[dict] = None,
                 trainer_state: Optional[dict] = None, extra: Optional[dict] = None) -> Path:
    """Save a trainer, its model, and their states in one file.

    ``model_state``/``trainer_state`` override arrays of the objects' current
    state (used to save an intermediate state of a running loop); an override of
    ``None`` leaves the entry out.
    """
    model = trainer.model
    m = {**model.checkpoint_state(), **(model_state or {})}
    t = {**trainer.checkpoint_state(), **(trainer_state or {})}
    t = {k: a for k, a in t.items() if a is not None}  # an override of None drops an entry
    arrays = {**{f"model/{k}": a for k, a in m.items()}, **{f"trainer/{k}": a for k, a in t.items()}}
    return write_checkpoint(path, {"model": _describe(model), "trainer": _describe(trainer)},
                            arrays, extra)


def load_trainer(path, cls=None, *, model=None, max_bytes: Optional[int] = None, **overrides):
    """Rebuild a trainer (and its model, unless ``model`` is given) from a checkpoint.

    With ``model=``, the file's model state is written into that model (after every
    check has passed; a failure leaves it as it was). ``overrides`` replace stored
    trainer arguments, and are required for arguments that could not be stored (user
    functions). ``max_bytes``: see :func:`read_checkpoint`.
    """
    meta, arrays = read_checkpoint(path, max_bytes=max_bytes)
    if model is None:
        model = _build(meta, "model", None, path, {})
    model_arrays, model_batches = _convert(model, "model", arrays, meta, path)
    trainer = _build(meta, "trainer", cls, path, overrides, model=model)
    trainer_arrays, trainer_batches = _convert(trainer, "trainer", arrays, meta, path)
    rule_state = [f"trainer/{name}" for name in getattr(trainer, "batchable_state", ())
                  if f"trainer/{name}" in arrays]
    _check_batches({**model_batches, **trainer_batches}, path, rule_state, _held_together(model, "model"))
    before = model.checkpoint_state()
    try:
        model.restore_checkpoint_state(model_arrays)
        trainer.restore_checkpoint_state(trainer_arrays)  # checks the run.* entries
    except BaseException:
        model.restore_checkpoint_state(before)
        raise
    return trainer


# -- periodic checkpoints ----------------------------------------------------------------------------
class PeriodicCheckpoint:
    """Save a trainer every ``every`` steps during ``train()``, keeping the last ``keep_last``.

    The compiled loop runs in chunks and saves at the first chunk boundary at or
    after each multiple of ``every`` (choose ``chunk_size`` dividing ``every`` for
    exact steps); the Python loop saves at the same steps. Files are named
    ``{prefix}-{step:010d}.npz``, ``step`` counting every step this object has seen
    (start it at ``step=`` when resuming). Each file is a trainer checkpoint:
    ``STDPTrainer.load(ckpt.latest())`` or ``SpikingLayer.load(...)``.

    Example:
        >>> ckpt = PeriodicCheckpoint("runs/a", every=10_000, keep_last=3)
        >>> trainer.train(patterns, checkpoint=ckpt)  # doctest: +SKIP
    """

    def __init__(self, directory, every: int, keep_last: Optional[int] = 3, *,
                 prefix: str = "checkpoint", step: int = 0):
        from ._validation import check_path, check_positive_int

        self.directory = check_path("directory", directory)
        self.every = check_positive_int("every", every)
        self.keep_last = None if keep_last is None else check_positive_int("keep_last", keep_last)
        if not isinstance(prefix, str) or not re.fullmatch(r"[A-Za-z0-9_.-]+", prefix):
            raise ValueError(f"prefix must be a plain file name part, got {prefix!r}")
        self.prefix = prefix
        if isinstance(step, bool) or not isinstance(step, int) or step < 0:
            raise ValueError(f"step must be an integer >= 0, got {step!r}")
        self.step = step
        self.directory.mkdir(parents=True, exist_ok=True)

    def _pattern(self):
        return re.compile(rf"{re.escape(self.prefix)}-(\d+)\.npz")

    def files(self):
        """This checkpointer's files in the folder, oldest first."""
        found = []
        for p in self.directory.iterdir():
            m = self._pattern().fullmatch(p.name)
            if m:
                found.append((int(m.group(1)), p))
        return [p for _, p in sorted(found)]

    def latest(self) -> Optional[Path]:
        """The newest file, or ``None``."""
        files = self.files()
        return files[-1] if files else None

    def callback(self, save: Callable[[Path, int, Any], None]):
        """A loop callback ``(steps_done, state)`` that calls ``save(path, step, state)`` when due.

        ``steps_done`` counts from the start of the current run; :attr:`step` advances
        with it.
        """
        start = self.step

        def on_boundary(done: int, state) -> None:
            total = start + done
            if total // self.every > self.step // self.every:  # crossed a multiple of every
                self.write(save, total, state)
            self.step = total

        return on_boundary

    def write(self, save, total: int, state) -> Path:
        """Save now as step ``total``, then delete all but the newest ``keep_last`` files."""
        path = self.directory / f"{self.prefix}-{total:010d}.npz"
        save(path, total, state)
        if self.keep_last is not None:
            for old in self.files()[: -self.keep_last]:
                with contextlib.suppress(OSError):
                    old.unlink()
        return path
