"""Checks run once at the public boundary; compiled code assumes valid input.

Every error names the parameter and the value it got.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import numbers
import operator
import os
import types
import weakref
from pathlib import Path

import jax
import numpy as np

from .host_memory import keeps_room

__all__ = [
    "check_positive_int",
    "check_nonnegative_int",
    "check_bool",
    "check_seed",
    "check_path",
    "check_number",
    "check_nonnegative",
    "check_positive",
    "check_decay",
    "check_unit_interval",
    "check_choice",
    "as_time_series",
    "as_sequence",
    "as_vector",
    "check_binary",
    "checked_range",
    "all_finite",
    "all_finite_together",
    "vouch_finite",
    "Settled",
]


_FLOAT32_MAX = float(np.finfo(np.float32).max)


def check_members(owner: str, name: str, members, cls, kind: str) -> list:
    """``members`` as a non-empty list of ``cls`` (an ensemble's ``name``, e.g. "trainers",
    each of the ``kind`` named in the error)."""
    members = list(members)
    if not members:
        raise ValueError(f"{owner} needs at least one {name[:-1]}, got none")
    for k, member in enumerate(members):
        if not isinstance(member, cls):
            raise TypeError(f"{name}[{k}] must be a {kind}, got {type(member).__name__}")
    return members


def check_positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def check_nonnegative_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        raise ValueError(f"{name} must be an integer >= 0, got {value!r}")
    return int(value)


def check_bool(name: str, value) -> bool:
    """``True`` or ``False`` (NumPy's too), never a truthy string or number."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def check_seed(name: str, value) -> int:
    """A random seed: an integer >= 0 (what ``numpy.random.default_rng`` takes)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer >= 0, got {value!r}")
    return check_nonnegative_int(name, value)


def check_path(name: str, value) -> Path:
    """A file or folder path (``str``, ``bytes`` or ``os.PathLike``)."""
    if not isinstance(value, (str, bytes, os.PathLike)):
        raise TypeError(f"{name} must be a path (str or os.PathLike), got {value!r}")
    return Path(os.fsdecode(value))


def check_number(name: str, value) -> float:
    """A finite real number."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        if not (isinstance(value, (np.ndarray, jax.Array)) and np.ndim(value) == 0):
            raise TypeError(f"{name} must be a real number, got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}")
    if abs(value) > _FLOAT32_MAX:  # the compiled code computes in float32
        raise ValueError(f"{name} must be finite in float32 (|{name}| <= {_FLOAT32_MAX:.4g}), got {value!r}")
    return value


def check_nonnegative(name: str, value) -> float:
    value = check_number(name, value)
    if value < 0:
        raise ValueError(f"{name} must be >= 0, got {value!r}")
    return value


def check_positive(name: str, value) -> float:
    value = check_number(name, value)
    if value <= 0:
        raise ValueError(f"{name} must be > 0, got {value!r}")
    return value


def check_decay(name: str, value) -> float:
    """A per-step decay factor in (0, 1]."""
    value = check_number(name, value)
    if not 0.0 < value <= 1.0:
        raise ValueError(f"{name} must be in (0, 1], got {value!r}")
    return value


def check_unit_interval(name: str, value) -> float:
    value = check_number(name, value)
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be in [0, 1], got {value!r}")
    return value


def check_choice(name: str, value, choices) -> str:
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {tuple(choices)}, got {value!r}")
    return value


def kept_on_device(data) -> bool:
    """Whether an input stays where it is, a JAX array on an accelerator: it is checked
    there (one reduction, two numbers fetched), where bringing it to the host and back
    would cost two copies of it at every call. On a CPU a JAX array is read in place."""
    return (isinstance(data, jax.Array) and _accelerated() and data.is_fully_addressable
            and any(device.platform != "cpu" for device in data.devices()))


@functools.lru_cache(maxsize=None)
def _accelerated() -> bool:
    """Whether JAX has an accelerator (its default backend is not the CPU): where it has
    none, no array can be on one, and asking each array costs a call a microsecond."""
    return jax.default_backend() != "cpu"


def _to_float_array(name: str, data, keep_device: bool = False) -> np.ndarray:
    if keep_device and kept_on_device(data):
        if data.dtype == np.float32:
            return data
        if data.dtype.kind in "biuf":
            return data.astype(np.float32)
        raise TypeError(f"{name} must hold real numbers, got dtype {data.dtype}")
    if type(data) is np.ndarray:
        arr = data
    elif isinstance(data, jax.Array) and data.dtype == np.float32:
        return np.asarray(data)
    else:
        if data is None:
            raise TypeError(f"{name} must be an array, got None")
        if not isinstance(data, (np.ndarray, jax.Array, list, tuple)):
            if hasattr(data, "__iter__") and not isinstance(data, (str, bytes, dict)):
                data = list(data)  # generators and other iterables of rows
            elif not hasattr(data, "__array__"):
                raise TypeError(f"{name} must be an array or a sequence of rows, got {type(data).__name__}")
        try:
            arr = np.asarray(data)
        except (ValueError, TypeError) as err:
            raise ValueError(f"{name} could not be read as one array (rows of different lengths?): {err}") from None
    kind = arr.dtype.kind
    if kind == "f" and arr.dtype == np.float32:
        return arr
    if kind not in "biuf":  # booleans, integers and reals pass the checks below: skip them
        if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_):
            raise TypeError(f"{name} must hold numbers, got dtype {arr.dtype}")
        if np.iscomplexobj(arr):
            raise TypeError(f"{name} must be real, got dtype {arr.dtype}")
    with np.errstate(over="ignore"):  # beyond float32 becomes inf, which the finiteness checks name
        return arr.astype(np.float32, copy=False)


_NATIVE_RANGE_MIN = 1 << 16  # entries from which a range is found in one native pass (below, NumPy's is as quick)
_LAST_CHECKED = None  # (a weak reference to the array check_finite passed last, its min, its max)


def check_finite(name: str, arr: np.ndarray) -> None:
    """Raise unless every entry of ``arr`` is finite. Its smallest and largest entries
    tell (both are NaN where one entry is, infinite where one is), and are kept for
    :func:`checked_range`: the kernels' choice reads them instead of another pass."""
    global _LAST_CHECKED
    if arr.size == 0:
        return
    lo, hi = _range(arr)
    if math.isfinite(lo) and math.isfinite(hi):
        try:
            _LAST_CHECKED = (weakref.ref(arr), lo, hi)
        except TypeError:  # (an array type without weak references: nothing kept)
            _LAST_CHECKED = None
        return
    arr = np.asarray(arr)  # (an array kept on its device: fetched to say where)
    bad = np.argwhere(~np.isfinite(arr))[0]
    raise ValueError(f"{name} must be finite, got {float(arr[tuple(bad)])} at index {tuple(int(i) for i in bad)}")


_FINITE_BLOCK = 1 << 16  # entries all_finite checks at a time


def all_finite(arr) -> bool:
    """``np.isfinite(arr).all()``, a block of entries at a time into one small mask used
    again: a mask as large as a weight matrix is new memory at every call, whose page
    faults cost several times the check (4096x4096: 21 ms a call in a training run, where
    the check itself takes 3). True at once for an array over the memory of one that
    :func:`vouch_finite` was told of. On an accelerator, one reduction on the device."""
    if kept_on_device(arr):  # checked where it is: fetching it would copy all of it
        return bool(_device_all_finite((arr,)))
    flat = np.asarray(arr).reshape(-1)
    if flat.size >= _FINITE_BLOCK and _vouched(flat):
        return True
    if flat.size <= _FINITE_BLOCK:
        return bool(np.isfinite(flat).all())
    mask = np.empty(_FINITE_BLOCK, bool)
    for start in range(0, flat.size, _FINITE_BLOCK):
        part = flat[start:start + _FINITE_BLOCK]
        if not np.isfinite(part, out=mask[:part.size]).all():
            return False
    return True


@jax.jit
def _device_all_finite(arrays):
    return jax.numpy.all(jax.numpy.stack([jax.numpy.isfinite(a).all() for a in arrays]))


def all_finite_together(arrays) -> bool:
    """Whether every entry of every array is finite: those on an accelerator checked in one
    reduction on the device (one number fetched for all of them), the others on the host
    by :func:`all_finite`."""
    on_device, on_host = [], []
    for a in arrays:
        (on_device if kept_on_device(a) else on_host).append(a)
    if not all([all_finite(a) for a in on_host]):
        return False
    return not on_device or bool(_device_all_finite(tuple(on_device)))


_VOUCHED: list = []  # the array vouch_finite was told of last, held (its memory is not used again while it is)


def vouch_finite(arr: np.ndarray) -> None:
    """Tell :func:`all_finite` that every entry of ``arr`` is finite, as the kernel that
    has just written it found (4096x4096: the check reads 64 MiB, 3 ms of a training
    call). Nothing may write to ``arr`` after (e.g. JAX takes it over). It is held until
    the next array is vouched for (or :func:`~canns_stdp.release_host_memory`), so that
    an array over the same memory is a view of it, not of memory used again."""
    _VOUCHED[:] = [arr]


@keeps_room
def _forget_vouched() -> int:
    _VOUCHED.clear()
    return 0  # (its memory, once free, is host_memory's to count)


def _vouched(flat: np.ndarray) -> bool:
    return any(vouched.dtype == flat.dtype and vouched.size == flat.size and vouched.ctypes.data == flat.ctypes.data
               for vouched in _VOUCHED)


def checked_range(arr: np.ndarray) -> tuple:
    """``(min, max)`` of a non-empty array: those :func:`check_finite` found, where it
    checked this very array last (a call validates its input, then plans from it), else
    computed."""
    global _LAST_CHECKED
    held, _LAST_CHECKED = _LAST_CHECKED, None
    if held is not None and held[0]() is arr:
        return held[1], held[2]
    return _range(arr)


@jax.jit
def _device_range(arr):
    return jax.numpy.min(arr), jax.numpy.max(arr)


def _range(arr: np.ndarray) -> tuple:
    if isinstance(arr, jax.Array):  # kept on its device (see kept_on_device)
        lo, hi = jax.device_get(_device_range(arr))
        return float(lo), float(hi)
    if arr.size >= _NATIVE_RANGE_MIN and arr.dtype == np.float32 and arr.flags.c_contiguous:
        from .kernels.native_range import native_range  # (one pass over the memory, where numba is installed)
        found = native_range(arr)
        if found is not None:
            return found
    return float(np.min(arr)), float(np.max(arr))


def as_time_series(name: str, data, width: int, keep_device: bool = False) -> np.ndarray:
    """``data`` as a finite float32 array of shape ``(T, width)`` with ``T >= 1``
    (``keep_device``: a JAX array on an accelerator stays there, see :func:`kept_on_device`)."""
    arr = _to_float_array(name, data, keep_device)
    if arr.ndim == 0 or arr.shape[0] == 0:
        raise ValueError(f"{name} is empty: need at least one time step of shape ({width},)")
    if arr.ndim != 2 or arr.shape[1] != width:
        hint = f"; for a single step use {name}[None]" if arr.shape == (width,) else ""
        raise ValueError(f"{name} must have shape (T, {width}), got shape {arr.shape}{hint}")
    check_finite(name, arr)
    return arr


def as_sequence(name: str, data, shape, keep_device: bool = False) -> np.ndarray:
    """``data`` as a finite float32 array ``(T,) + shape`` or ``(T, B) + shape``.

    For a 1-D ``shape`` anything but a 3-D array goes through :func:`as_time_series`
    (same checks, same messages as before batches existed).
    """
    shape = tuple(int(n) for n in shape)
    arr = _to_float_array(name, data, keep_device)
    if len(shape) == 1 and arr.ndim != 3:
        return as_time_series(name, arr, shape[0], keep_device)
    dims = ", ".join(str(n) for n in shape)
    if arr.ndim == 0 or arr.shape[0] == 0:
        raise ValueError(f"{name} is empty: need at least one time step of shape ({dims})")
    if arr.ndim not in (len(shape) + 1, len(shape) + 2) or arr.shape[arr.ndim - len(shape):] != shape:
        raise ValueError(f"{name} must have shape (T, {dims}) or (T, B, {dims}), got shape {arr.shape}")
    if arr.ndim == len(shape) + 2 and arr.shape[1] == 0:
        raise ValueError(f"{name} has an empty batch: got shape {arr.shape}")
    check_finite(name, arr)
    return arr


def as_vector(name: str, data, width: int) -> np.ndarray:
    """``data`` as a finite float32 array of shape ``(width,)``."""
    arr = _to_float_array(name, data)
    if arr.shape != (width,):
        raise ValueError(f"{name} must have shape ({width},), got shape {arr.shape}")
    check_finite(name, arr)
    return arr


@jax.jit
def _device_binary(arr):
    return jax.numpy.all((arr == 0.0) | (arr == 1.0))


def check_binary(name: str, arr: np.ndarray) -> np.ndarray:
    if isinstance(arr, jax.Array):  # kept on its device (see kept_on_device)
        if bool(_device_binary(arr)):
            return arr
        arr = np.asarray(arr)  # fetched to say which value
    if not np.isin(arr, (0.0, 1.0)).all():
        bad = arr[~np.isin(arr, (0.0, 1.0))][0]
        raise ValueError(f"{name} must hold spikes (0 or 1), got {float(bad)}")
    return arr


def as_per_step(name: str, value, T: int, batch_shape: tuple = ()) -> np.ndarray:
    """``value`` as a finite float32 array ``(T,)``, or ``(T, B)`` for a batch ``(B,)``
    (one number, or ``(T,)`` for a batch, is broadcast)."""
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a number or an array of numbers, got {value!r}")
    try:
        arr = np.asarray(value)
    except (ValueError, TypeError) as err:
        raise ValueError(f"{name} could not be read as an array: {err}") from None
    if arr.dtype == object or not np.issubdtype(arr.dtype, np.number) or np.iscomplexobj(arr):
        raise TypeError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    arr = arr.astype(np.float32)
    batch_shape = tuple(batch_shape)
    if arr.ndim == 0:
        arr = np.full((T,), arr, np.float32)
    elif arr.shape != (T,) and (not batch_shape or arr.shape != (T,) + batch_shape):
        per_sample = f" or {(T,) + batch_shape} (one value per step and sample)" if batch_shape else ""
        raise ValueError(f"{name} must be one number or have shape ({T},) (one value per step)"
                         f"{per_sample}, got shape {arr.shape}")
    if not np.isfinite(arr).all():
        where = tuple(int(k) for k in np.argwhere(~np.isfinite(arr))[0])
        at = f"step {where[0]}" + (f", sample {where[1]}" if len(where) > 1 else "")
        raise ValueError(f"{name} must be finite, got {float(arr[where])} at {at}")
    if batch_shape and arr.ndim == 1:
        arr = np.broadcast_to(arr[:, None], (T,) + batch_shape)
    return np.ascontiguousarray(arr)


# values that cannot change in place: the same object is the same value
_IMMUTABLE = (bool, int, float, str, bytes, type(None), np.generic, types.FunctionType, types.BuiltinFunctionType,
              types.MethodType)


def unchanging(value) -> bool:
    """Whether ``value`` cannot change in place: a number, a string, ``None``, a function,
    a JAX array, or a tuple or frozen dataclass (e.g. a rule) of such values."""
    if isinstance(value, _IMMUTABLE) or isinstance(value, jax.Array):
        return True
    if type(value) is tuple:
        return all(unchanging(item) for item in value)
    params = getattr(type(value), "__dataclass_params__", None)
    if params is not None and params.frozen:
        return all(unchanging(getattr(value, f.name)) for f in dataclasses.fields(value))
    return False


class Settled:
    """What was checked and derived from some settings, kept while every setting is the
    same object as then (compared by identity, never by value: ``1 == 1.0 == True``).

    Only settings that cannot change in place are kept (:func:`unchanging`), but for the
    first ``fixed`` ones of a key, which are compared by identity alone (e.g. the layer
    or the synaptic map, whose own settings are looked after elsewhere); anything else is
    checked again at every call. So a call whose settings are those of the last one
    repeats no check, and any new value (assigned, even an equal one) is checked as at the
    first call.
    """

    __slots__ = ("_key", "_value")

    def __init__(self):
        self._key, self._value = None, None

    def get(self, key: tuple):
        """The value stored with ``key``, or ``None``."""
        held = self._key
        if held is not None and len(held) == len(key) and all(map(operator.is_, held, key)):
            return self._value
        return None

    def put(self, key: tuple, value, fixed: int = 0):
        """Store ``value`` for ``key`` when ``key[fixed:]`` cannot change in place; return
        ``value``."""
        keep = all(unchanging(item) for item in key[fixed:])
        self._key, self._value = (key if keep else None), value
        return value
