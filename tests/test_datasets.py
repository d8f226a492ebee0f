"""IDX loading: round trip of files the test writes, and clear errors for bad files."""

import gzip
import struct

import numpy as np
import pytest

from canns_stdp.datasets import IDXError, load_idx, load_mnist


def write_idx(path, arr, compress=False, type_code=0x08):
    header = bytes([0, 0, type_code, arr.ndim]) + b"".join(struct.pack(">I", d) for d in arr.shape)
    raw = header + arr.astype(">u1" if type_code == 0x08 else arr.dtype).tobytes()
    path.write_bytes(gzip.compress(raw) if compress else raw)


@pytest.mark.parametrize("compress", [False, True])
def test_round_trip(tmp_path, rng, compress):
    images = rng.integers(0, 256, (7, 5, 4)).astype(np.uint8)
    labels = rng.integers(0, 10, 7).astype(np.uint8)
    suffix = ".gz" if compress else ""
    write_idx(tmp_path / f"t10k-images-idx3-ubyte{suffix}", images, compress)
    write_idx(tmp_path / f"t10k-labels-idx1-ubyte{suffix}", labels, compress)
    x, y = load_mnist(tmp_path)
    np.testing.assert_array_equal(x, images)
    np.testing.assert_array_equal(y, labels)


def test_int32_idx(tmp_path):
    a = np.arange(-6, 6, dtype=">i4").reshape(3, 4)
    write_idx(tmp_path / "a.idx", a, type_code=0x0C)
    np.testing.assert_array_equal(load_idx(tmp_path / "a.idx"), a.astype(np.int32))


def test_missing_files_name_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothere"):
        load_idx(tmp_path / "nothere.idx")
    with pytest.raises(FileNotFoundError, match="MNIST folder not found"):
        load_mnist(tmp_path / "nofolder")
    with pytest.raises(FileNotFoundError, match="t10k-images-idx3-ubyte"):
        load_mnist(tmp_path)


def test_corrupt_files_raise_idx_error(tmp_path, rng):
    images = rng.integers(0, 256, (3, 4, 4)).astype(np.uint8)
    write_idx(tmp_path / "ok", images)
    raw = (tmp_path / "ok").read_bytes()
    (tmp_path / "trunc").write_bytes(raw[:-5])
    with pytest.raises(IDXError, match="truncated or corrupt"):
        load_idx(tmp_path / "trunc")
    (tmp_path / "magic").write_bytes(b"PK\x03\x04" + raw[4:])
    with pytest.raises(IDXError, match="not an IDX file"):
        load_idx(tmp_path / "magic")
    (tmp_path / "badgz").write_bytes(gzip.compress(raw)[:-12])
    with pytest.raises(IDXError, match="corrupt or truncated gzip"):
        load_idx(tmp_path / "badgz")
    (tmp_path / "empty").write_bytes(b"")
    with pytest.raises(IDXError, match="not an IDX file"):
        load_idx(tmp_path / "empty")


def test_mismatched_images_and_labels(tmp_path, rng):
    write_idx(tmp_path / "t10k-images-idx3-ubyte", rng.integers(0, 256, (4, 3, 3)).astype(np.uint8))
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.zeros(5, np.uint8))
    with pytest.raises(IDXError, match="do not match"):
        load_mnist(tmp_path)


def test_dimensions_whose_product_wraps_to_zero_are_refused_naming_the_path(tmp_path):
    # 65536**4 = 2**64: a 64-bit product wraps to 0 and would match a file of only a header
    path = tmp_path / "wrap.idx"
    path.write_bytes(bytes([0, 0, 0x08, 4]) + struct.pack(">IIII", *[65536] * 4))
    with pytest.raises(IDXError, match=rf"{path.name}' has 20 bytes, its header \(shape \(65536, 65536, "
                                       r"65536, 65536\), uint8\) needs 18446744073709551636"):
        load_idx(path)


@pytest.mark.parametrize("call, match", [
    (lambda: load_idx(None), r"path must be a path \(str or os.PathLike\), got None"),
    (lambda: load_idx(3), r"path must be a path \(str or os.PathLike\), got 3"),
    (lambda: load_mnist(None), r"folder must be a path \(str or os.PathLike\), got None"),
])
def test_paths_that_are_not_paths_are_type_errors(call, match):
    with pytest.raises(TypeError, match=match):
        call()


def test_a_gzipped_idx_file_declaring_more_than_the_limit_is_refused_before_reading(tmp_path, monkeypatch):
    import gzip as gz

    from canns_stdp import datasets

    header = bytes([0, 0, 0x08, 3]) + np.array([60000, 28, 28], ">u4").tobytes()
    (tmp_path / "bomb.gz").write_bytes(gz.compress(header + bytes(1000)))
    monkeypatch.setattr(datasets, "MAX_IDX_BYTES", 1 << 20)
    with pytest.raises(datasets.IDXError, match=r"declares 47040016 bytes, more than MAX_IDX_BYTES = 1048576"):
        datasets.load_idx(tmp_path / "bomb.gz")
    longer = header[:4] + np.array([2, 2, 2], ">u4").tobytes() + bytes(9)  # one byte more than declared
    (tmp_path / "long.gz").write_bytes(gz.compress(longer))
    with pytest.raises(datasets.IDXError, match=r"has 25 bytes, its header"):
        datasets.load_idx(tmp_path / "long.gz")
