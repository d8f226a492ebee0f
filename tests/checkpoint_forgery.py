"""Forged and corrupted checkpoints, written with numpy, json, hashlib and zipfile only
(independently of the library's reader), for the hostile-input and fuzz tests."""

import hashlib
import io
import json
import zipfile

import numpy as np


def read_parts(path):
    """``(meta, arrays)`` of a checkpoint file, read with numpy and json."""
    with np.load(path, allow_pickle=False) as npz:
        arrays = {name: npz[name] for name in npz.files}
    meta = json.loads(arrays.pop("__meta__").tobytes().decode("utf-8"))
    return meta, arrays


def write_parts(path, meta, arrays, fix_digests=True):
    """Write ``meta`` and ``arrays`` as a checkpoint; digests recomputed for listed arrays."""
    if fix_digests:
        for name, arr in arrays.items():
            entry = meta.get("arrays", {}).get(name) if isinstance(meta, dict) else None
            if isinstance(entry, dict):
                entry["sha256"] = hashlib.sha256(np.ascontiguousarray(arr).tobytes()).hexdigest()
    stored = dict(arrays, __meta__=np.frombuffer(json.dumps(meta).encode("utf-8"), np.uint8))
    np.savez(path, **stored)
    return path


def replace_entry(path, out, entry, data: bytes, compress_type=zipfile.ZIP_STORED):
    """Copy the zip ``path`` to ``out`` with the bytes of ``entry`` replaced by ``data``."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(buffer, "w") as target:
        for info in source.infolist():
            content = data if info.filename == entry else source.read(info.filename)
            info.compress_type = compress_type if info.filename == entry else info.compress_type
            target.writestr(info, content)
    out.write_bytes(buffer.getvalue())
    return out


def npy_header(shape, descr="<f4") -> bytes:
    """A ``.npy`` version 1.0 header declaring ``shape`` and ``descr``."""
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": descr, "fortran_order": False, "shape": shape})
    return header.getvalue()
