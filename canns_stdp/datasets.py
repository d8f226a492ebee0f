"""Data sets: IDX files (MNIST), scikit-learn's bundled digits.

IDX format (LeCun): big-endian header ``0x00 0x00 <type> <ndim>``, then ``ndim``
uint32 sizes, then the data. Files may be gzipped (detected by their magic bytes,
not their name).

Example:
    >>> from canns_stdp.datasets import load_mnist
    >>> images, labels = load_mnist("/path/to/mnist", split="t10k")   # doctest: +SKIP
"""

from __future__ import annotations

import gzip
import math
import os
import pathlib

import numpy as np

from ._validation import check_path

__all__ = ["IDXError", "load_idx", "load_mnist", "load_digits"]

_IDX_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
              0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}


class IDXError(ValueError):
    """A file that is not a valid IDX file (corrupt, truncated or another format)."""


def load_idx(path) -> np.ndarray:
    """Read an IDX file (gzipped or not) into an array of its declared shape.

    Raises:
        FileNotFoundError: when ``path`` does not exist.
        IDXError: when the file is not valid IDX (bad magic, truncated, bad gzip).
    """
    path = check_path("path", path)
    if not path.is_file():
        raise FileNotFoundError(f"IDX file not found: {str(path)!r}")
    with open(path, "rb") as f:
        gzipped = f.read(2) == b"\x1f\x8b"
    if gzipped:
        raw = _gunzip_within(path, MAX_IDX_BYTES)
    else:
        raw = path.read_bytes()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_TYPES or raw[3] == 0:
        raise IDXError(f"{str(path)!r} is not an IDX file (magic bytes {raw[:4].hex() or 'missing'})")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise IDXError(f"{str(path)!r} is truncated: header needs {header} bytes, file has {len(raw)}")
    shape = tuple(int(d) for d in np.frombuffer(raw, ">u4", ndim, 4))
    dtype = np.dtype(_IDX_TYPES[raw[2]])
    expected = header + math.prod(shape) * dtype.itemsize  # Python integers: no wrap-around
    if len(raw) != expected:
        raise IDXError(f"{str(path)!r} has {len(raw)} bytes, its header (shape {shape}, "
                       f"{dtype}) needs {expected}: truncated or corrupt")
    return np.frombuffer(raw, dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


#: The largest IDX file (uncompressed) :func:`load_idx` reads; raise it for larger data sets.
MAX_IDX_BYTES = 1 << 32


def _gunzip_within(path, most: int) -> bytes:
    """A gzipped file's content, read a piece at a time and refused once it exceeds what
    its IDX header declares (or ``most`` bytes): a small file cannot make it allocate more."""
    try:
        with gzip.open(path, "rb") as f:
            head = f.read(4)
            ndim = head[3] if len(head) == 4 else 0
            head += f.read(4 * ndim)
            declared = len(head)
            if len(head) == 4 + 4 * ndim and head[2] in _IDX_TYPES:
                shape = np.frombuffer(head, ">u4", ndim, 4)
                declared += math.prod(int(d) for d in shape) * np.dtype(_IDX_TYPES[head[2]]).itemsize
            if declared > most:
                raise IDXError(f"{str(path)!r} declares {declared} bytes, more than MAX_IDX_BYTES = {most}")
            body = f.read(declared - len(head) + 1)  # one byte more: a longer content is corrupt
    except (OSError, EOFError, gzip.BadGzipFile) as err:
        raise IDXError(f"{str(path)!r} is a corrupt or truncated gzip file: {err}") from None
    return head + body


def _find(folder: pathlib.Path, stem: str) -> pathlib.Path:
    for name in (stem, stem + ".gz", stem.replace("-idx", ".idx"), stem.replace("-idx", ".idx") + ".gz"):
        if (folder / name).is_file():
            return folder / name
    raise FileNotFoundError(f"no {stem}[.gz] in {str(folder)!r} (files there: "
                            f"{sorted(os.listdir(folder)) if folder.is_dir() else 'folder missing'})")


def load_mnist(folder, split: str = "t10k"):
    """``(images uint8 (N, 28, 28), labels uint8 (N,))`` of an MNIST split.

    Args:
        folder: directory holding ``{split}-images-idx3-ubyte[.gz]`` and
            ``{split}-labels-idx1-ubyte[.gz]``.
        split: ``"t10k"`` (the 10k test set) or ``"train"``.
    """
    if split not in ("t10k", "train"):
        raise ValueError(f"split must be 't10k' or 'train', got {split!r}")
    folder = check_path("folder", folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"MNIST folder not found: {str(folder)!r}")
    images = load_idx(_find(folder, f"{split}-images-idx3-ubyte"))
    labels = load_idx(_find(folder, f"{split}-labels-idx1-ubyte"))
    if images.ndim != 3 or labels.ndim != 1 or images.shape[0] != labels.shape[0]:
        raise IDXError(f"MNIST images {images.shape} and labels {labels.shape} in {str(folder)!r} "
                       "do not match (expected (N, rows, cols) and (N,))")
    return images, labels


def load_digits():
    """scikit-learn's bundled 8x8 digits: ``(images float (1797, 8, 8) in [0, 16], labels)``."""
    try:
        from sklearn.datasets import load_digits as _load
    except ImportError:
        raise ImportError("the digits task needs scikit-learn: pip install 'canns_stdp[digits]'") from None
    d = _load()
    return d.images.astype(np.float32), d.target.astype(np.int64)
