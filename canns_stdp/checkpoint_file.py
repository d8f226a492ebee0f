"""Reading a checkpoint file as untrusted input: nothing in it is used before it is checked.

:func:`read_file` checks, in this order, and raises :class:`CheckpointError` naming the
file at the first failure:

1. the file's size against a limit (``canns_stdp.checkpoint.MAX_CHECKPOINT_BYTES``, or
   ``max_bytes=`` of the loaders);
2. the zip directory: every entry an uncompressed ``.npy`` (as ``numpy.savez`` writes
   them) lying inside the file, no name twice;
3. the metadata's schema: types, names, format name and version (:func:`check_meta`);
4. each array's ``.npy`` header against the metadata (dtype, shape, and the byte count
   against the entry's size) before its data is read, so a forged header cannot make
   it allocate more than the file holds;
5. each array's SHA-256, and that every floating-point array is finite.

Any other failure while parsing (a bit flipped anywhere, a truncated file) is reported
as a corrupted checkpoint, never as an exception of ``zipfile``, ``json`` or NumPy.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import zipfile
from pathlib import Path

import numpy as np

from ._validation import check_path

__all__ = ["CheckpointError", "FORMAT_NAME", "FORMAT_VERSION", "META", "as_path", "check_meta",
           "digest", "read_file"]

FORMAT_NAME = "canns_stdp-checkpoint"
FORMAT_VERSION = 1
META = "__meta__"
_PYTHON_TYPES = {"bool": "|b1", "int": "<i8", "float": "<f8"}  # "python" tag -> the dtype it is stored as
_ARRAY_KEYS = {"shape", "dtype", "sha256"}
_OPTIONAL_ARRAY_KEYS = {"key_impl", "python"}
_MAX_NDIM = 32  # NumPy's own limit on dimensions


class CheckpointError(ValueError):
    """A checkpoint file that cannot be read or does not fit what it is loaded into."""


CheckpointError.__module__ = "canns_stdp.checkpoint"


def as_path(path) -> Path:
    """``path`` as a :class:`~pathlib.Path`; a clear ``TypeError`` for anything else."""
    return check_path("path", path)


def digest(arr: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(arr).tobytes()).hexdigest()


def read_file(path, max_bytes: int):
    """``(meta, arrays)`` of a checkpoint file, every part checked (see the module doc)."""
    path = as_path(path)
    if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes <= 0:
        raise ValueError(f"max_bytes must be a positive integer, got {max_bytes!r}")
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at '{path}'")
    size = path.stat().st_size
    if size > max_bytes:
        raise CheckpointError(
            f"checkpoint '{path}' is {size} bytes, more than the limit of {max_bytes}: raise "
            "canns_stdp.checkpoint.MAX_CHECKPOINT_BYTES (or pass max_bytes=) to load it")
    if not zipfile.is_zipfile(path):
        raise CheckpointError(
            f"checkpoint '{path}' is truncated or corrupted, or not a checkpoint: it is not "
            "a complete .npz (zip) file")
    try:
        with zipfile.ZipFile(path) as archive:
            return _read_archive(archive, path, size)
    except CheckpointError:
        raise
    except Exception as err:  # any parse failure of untrusted bytes (zipfile, struct, json ...)
        raise CheckpointError(
            f"checkpoint '{path}' is truncated or corrupted: {type(err).__name__}: {err}") from None


def _read_archive(archive: zipfile.ZipFile, path: Path, size: int):
    def corrupted(what):
        return CheckpointError(f"checkpoint '{path}' is corrupted: {what}")

    entries = {}
    for entry in archive.infolist():
        name = entry.filename
        if not name.endswith(".npy") or name[:-4] in entries:
            raise corrupted(f"unexpected or repeated entry {name!r}")
        if entry.compress_type != zipfile.ZIP_STORED:
            raise corrupted(f"entry {name!r} is compressed (canns_stdp writes them uncompressed)")
        if entry.file_size != entry.compress_size:
            raise corrupted(f"entry {name!r} lists two sizes ({entry.file_size} and {entry.compress_size} bytes) "
                            "for uncompressed data")
        if entry.header_offset + entry.compress_size > size:
            raise corrupted(f"entry {name!r} declares {entry.file_size} bytes, past the file's end")
        entries[name[:-4]] = entry
    if META not in entries:
        raise CheckpointError(f"'{path}' is not a canns_stdp checkpoint (no {META} entry)")
    raw = _read_npy(archive, entries.pop(META), path, META, None)
    if raw.dtype != np.uint8 or raw.ndim != 1:
        raise corrupted(f"its {META} entry is not a byte string")
    try:
        meta = json.loads(raw.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as err:
        raise corrupted(f"its metadata is not JSON: {err}") from None
    check_meta(meta, path)
    declared = meta["arrays"]
    if set(entries) != set(declared):
        raise corrupted(f"arrays {sorted(entries)} do not match the listed {sorted(declared)}")
    arrays = {name: _read_npy(archive, entries[name], path, name, described) for name, described in declared.items()}
    return meta, arrays


def _read_npy(archive, entry, path: Path, name: str, described):
    """One ``.npy`` entry; its header is checked against ``described`` before the data is read."""
    def corrupted(what):
        return CheckpointError(f"checkpoint '{path}' is corrupted: array '{name}' {what}")

    with archive.open(entry) as f:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
        else:
            raise corrupted(f"has an unknown .npy version {version}")
        if dtype.hasobject:
            raise CheckpointError(f"'{path}' holds pickled Python objects in '{name}', which canns_stdp "
                                  "never writes and does not load (allow_pickle=False)")
        if not (np.issubdtype(dtype, np.number) or dtype == np.bool_):
            raise corrupted(f"has dtype {dtype}, not numbers")
        if described is not None and (list(shape) != described["shape"] or dtype.str != described["dtype"]):
            raise corrupted(f"has shape {shape} and dtype {dtype.str}, but the metadata lists "
                            f"{tuple(described['shape'])} and {described['dtype']}")
        nbytes = math.prod(shape) * dtype.itemsize  # Python integers: no overflow
        if nbytes != entry.file_size - f.tell():
            raise corrupted(f"declares shape {shape} of {dtype} ({nbytes} bytes), but its entry holds "
                            f"{entry.file_size - f.tell()} bytes")
        data = bytearray(f.read(nbytes))
    if len(data) != nbytes:
        raise corrupted(f"is truncated ({len(data)} of {nbytes} bytes)")
    arr = np.frombuffer(data, dtype).reshape(shape, order="F" if fortran else "C")
    if described is not None:
        if digest(arr) != described["sha256"]:
            raise corrupted("fails its checksum")
        if np.issubdtype(dtype, np.inexact) and not np.isfinite(arr).all():
            bad = tuple(int(i) for i in np.argwhere(~np.isfinite(arr))[0])
            raise CheckpointError(f"checkpoint '{path}': array {name} must be finite, got {arr[bad]} "
                                  f"at index {bad} (a checkpoint holds finite state only)")
    return arr


def check_meta(meta, path) -> None:
    """The metadata's schema: format, version, objects (role -> kind and config), arrays."""
    def invalid(what):
        return CheckpointError(f"checkpoint '{path}' is corrupted: its metadata {what}")

    if not isinstance(meta, dict) or meta.get("format") != FORMAT_NAME:
        raise CheckpointError(f"'{path}' is not a canns_stdp checkpoint")
    version = meta.get("format_version")
    if type(version) is not int or version < 1:
        raise CheckpointError(f"checkpoint '{path}' has an invalid format version {version!r}")
    library = meta.get("library_version", "?")
    if not isinstance(library, str):
        raise invalid(f"has library_version {library!r}, not a string")
    if version > FORMAT_VERSION:
        raise CheckpointError(
            f"checkpoint '{path}' has format version {version}, written by canns_stdp {library}; "
            f"this canns_stdp reads versions up to {FORMAT_VERSION}: upgrade canns_stdp to load it")
    objects, arrays = meta.get("objects"), meta.get("arrays")
    if not isinstance(objects, dict) or not isinstance(arrays, dict):
        raise invalid("is incomplete (objects and arrays must be mappings)")
    if not isinstance(meta.get("extra", {}), dict):
        raise invalid(f"has extra {meta.get('extra')!r}, not a mapping")
    for role, described in objects.items():
        if not re.fullmatch(r"[A-Za-z_]\w*", role):
            raise invalid(f"names an object role {role!r}")
        if not isinstance(described, dict) or not isinstance(described.get("kind"), str) \
                or not isinstance(described.get("config"), dict):
            raise invalid(f"describes the {role} as {described!r}, not {{'kind': str, 'config': dict}}")
    for name, described in arrays.items():
        _check_array_info(name, described, objects, invalid)


def _check_array_info(name, described, objects, invalid) -> None:
    role = name.split("/", 1)[0]
    if "/" not in name or role not in objects or name == META:
        raise invalid(f"lists an array {name!r} of no object (names are '<role>/<name>')")
    if not isinstance(described, dict) or not _ARRAY_KEYS <= set(described) \
            or set(described) - _ARRAY_KEYS - _OPTIONAL_ARRAY_KEYS:
        raise invalid(f"describes array {name!r} as {described!r}")
    shape = described["shape"]
    if not isinstance(shape, list) or len(shape) > _MAX_NDIM \
            or not all(type(n) is int and n >= 0 for n in shape):
        raise invalid(f"gives array {name!r} the shape {shape!r}")
    if not isinstance(described["dtype"], str) or not isinstance(described["sha256"], str) \
            or not re.fullmatch(r"[0-9a-f]{64}", described["sha256"]):
        raise invalid(f"gives array {name!r} the dtype {described['dtype']!r} and digest {described['sha256']!r}")
    if "python" in described and (_PYTHON_TYPES.get(described["python"]) != described["dtype"] or shape != []):
        raise invalid(f"tags array {name!r} of dtype {described['dtype']} and shape {shape} as a Python "
                      f"{described['python']!r}")
    if "key_impl" in described and (not isinstance(described["key_impl"], str) or described["dtype"] != "<u4"):
        raise invalid(f"tags array {name!r} of dtype {described['dtype']} as a key of {described['key_impl']!r}")
