"""Large host arrays whose memory is used again: never while anything references it."""

import gc

import jax
import numpy as np
import pytest

from canns_stdp import SpikingLayer, STDPTrainer, host_memory
from canns_stdp.host_memory import host_empty, release_host_memory
from canns_stdp.loops import _joined

BIG = (1024, 1536)  # 6 MiB: from host_memory._RECYCLED_FROM


@pytest.fixture(autouse=True)
def no_kept_buffers():
    release_host_memory()
    yield
    release_host_memory()


def test_an_array_is_aligned_and_of_the_shape_and_type_asked_for():
    for shape, dtype in ((BIG, np.float32), ((3, 5), np.float32), ((7,), np.int32)):
        a = host_empty(shape, dtype)
        assert a.shape == shape and a.dtype == dtype and a.flags.c_contiguous and a.flags.writeable
        assert a.ctypes.data % host_memory.ALIGNMENT == 0


def test_memory_is_used_again_only_once_nothing_references_it():
    a = host_empty(BIG)
    address = a.ctypes.data
    a[:] = 1.0
    taken = jax.device_put(a, may_alias=True)  # (as the trainer hands a layer's weights to JAX)
    view = np.asarray(taken)[2:]
    del a, taken
    gc.collect()
    b = host_empty(BIG)  # a view of its memory lives: new memory
    assert not np.shares_memory(b, view)
    b[:] = 2.0
    np.testing.assert_array_equal(view, 1.0)
    del view, b
    gc.collect()
    c = host_empty(BIG)  # the same size, free again: its memory once more
    assert c.ctypes.data == address and len(host_memory._buffers) == 2  # (the oldest free one)
    d = host_empty((BIG[0] + 1, BIG[1]))  # another size: new memory
    assert not np.shares_memory(c, d)


def test_at_most_a_few_free_buffers_are_kept_and_they_can_be_released():
    kept = host_memory._KEPT_FREE
    for rows in range(1, 2 * kept + 2):  # each a size of its own, dropped at once
        host_empty((BIG[0] + rows, BIG[1]))
    gc.collect()
    assert len(host_memory._buffers) == len(host_memory._free()) == kept
    held = host_empty(BIG)  # a new size: the oldest free buffer goes
    newest = range(2 * kept + 1 - (kept - 2), 2 * kept + 2)  # (the rows of the kept - 1 still kept)
    assert release_host_memory() == sum((BIG[0] + rows) * BIG[1] * 4 + host_memory.ALIGNMENT for rows in newest)
    assert len(host_memory._buffers) == 1 and host_memory._buffers[0] is held.base


def test_rows_of_one_aligned_array_are_joined_without_a_copy():
    rows = host_empty((10, 4))
    rows[:] = np.arange(40, dtype=np.float32).reshape(10, 4)
    parts = [rows[:3], rows[3:7], rows[7:]]
    joined = _joined(*parts)
    assert np.shares_memory(joined, rows) and joined.shape == (10, 4) and joined.flags.writeable
    np.testing.assert_array_equal(joined, np.arange(40, dtype=np.float32).reshape(10, 4))
    partial = _joined(rows[:3], rows[3:7])  # not all of its rows: a copy
    assert not np.shares_memory(partial, rows)
    np.testing.assert_array_equal(partial, np.arange(28, dtype=np.float32).reshape(7, 4))


def test_weights_and_spikes_a_user_holds_are_never_written_by_later_calls(rng):
    """Calls of a layer whose weights and spikes are large enough to use memory again:
    every earlier result a user holds keeps its values, and the weights equal a run of
    fresh arrays (the same layer trained with nothing kept between calls)."""
    pytest.importorskip("numba")  # (the native kernel's calls make such arrays)
    n_in, n_out, T = 1024, 1024, 1100  # W 4 MiB, spikes 4.3 MiB
    xs = (rng.random((3, T, n_in)) < 0.02).astype(np.float32)
    W0 = rng.uniform(0.0, 0.05, (n_out, n_in)).astype(np.float32)
    layer = SpikingLayer(n_in, n_out, threshold=1.0, W_init=W0)
    trainer = STDPTrainer(layer)
    held = []
    for x in xs:
        spikes = trainer.train(x, return_spikes=True)
        held.append((layer.W.value, spikes, np.array(layer.W.value), spikes.copy()))
        gc.collect()
    assert any(b.nbytes >= T * n_out * 4 for b in host_memory._buffers)  # (memory it could use again)
    for W, spikes, W_then, spikes_then in held:
        np.testing.assert_array_equal(np.asarray(W), W_then)
        np.testing.assert_array_equal(spikes, spikes_then)
    fresh = SpikingLayer(n_in, n_out, threshold=1.0, W_init=W0)
    fresh_trainer = STDPTrainer(fresh)
    for x in xs:
        release_host_memory()
        fresh_trainer.train(x)
    np.testing.assert_array_equal(np.asarray(fresh.W.value), np.asarray(layer.W.value))


def test_releasing_drops_the_kernels_room_too(rng):
    pytest.importorskip("numba")
    import canns_stdp
    from canns_stdp.kernels import native_pair

    xs = (rng.random((300, 1024)) < 0.02).astype(np.float32)
    STDPTrainer(SpikingLayer(1024, 1024, threshold=1.0)).train(xs)
    rooms = [room for _, room in native_pair._ROOMS.values()]
    assert rooms and canns_stdp.release_host_memory() >= sum(native_pair._nbytes(r) for r in rooms)
    assert not native_pair._ROOMS
