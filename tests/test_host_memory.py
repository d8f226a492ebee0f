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


def test_weights_and_spikes_a_user_holds_are_never_written_by_later_calls(monkeypatch, rng):
    """Calls whose every host array takes memory used before: every earlier result a user
    holds keeps its values, memory is used again, and the run gives the NumPy
    reference's weights and spikes."""
    pytest.importorskip("numba")  # (the native kernel's calls make such arrays)
    from canns_stdp.kernels import pair_layer

    import reference

    import canns_stdp.layer

    monkeypatch.setattr(host_memory, "_RECYCLED_FROM", 0)  # (every array, small as this layer's are ...)
    monkeypatch.setattr(canns_stdp.layer, "_TAKEN_OVER", 0)  # (... and JAX takes the weights over as they are)
    monkeypatch.setattr(pair_layer, "NATIVE_MIN_SYNAPSES", 0)
    addresses, original = [], host_memory._buffer

    def buffer(nbytes):  # (its address only: a reference kept here would keep it from being used again)
        given = original(nbytes)
        addresses.append(given.ctypes.data)
        return given
    monkeypatch.setattr(host_memory, "_buffer", buffer)
    xs = (rng.random((1300, 200)) < 0.05).astype(np.float32)
    W0 = rng.uniform(0.0, 0.3, (70, 200)).astype(np.float32)
    layer = SpikingLayer(200, 70, W_init=W0, threshold=2.0)
    trainer = STDPTrainer(layer, learning_rate=0.2, chunk_size=1100)
    held = []
    for a, b in ((0, 325), (325, 650), (650, 975), (975, 1300)):  # (spikes of one size: memory to use again)
        spikes = trainer.train(xs[a:b], return_spikes=True)
        held.append((layer.W.value, spikes, np.array(layer.W.value), spikes.copy()))
        gc.collect()
    assert len(set(addresses)) < len(addresses)  # (memory used again)
    for W, spikes, W_then, spikes_then in held:
        np.testing.assert_array_equal(np.asarray(W), W_then)
        np.testing.assert_array_equal(spikes, spikes_then)
    W_ref, *_, s_ref = reference.run(W0, xs, threshold=2.0, lr=0.2)
    np.testing.assert_array_equal(np.concatenate([spikes for _, spikes, _, _ in held]), s_ref)
    np.testing.assert_allclose(np.asarray(layer.W.value), W_ref, atol=2e-5)
    assert np.abs(W_ref - W0).max() > 0.05


def test_releasing_drops_the_kernels_room_too(rng):
    pytest.importorskip("numba")
    import canns_stdp
    from canns_stdp.kernels import native_pair

    xs = (rng.random((300, 1024)) < 0.02).astype(np.float32)
    STDPTrainer(SpikingLayer(1024, 1024, threshold=1.0)).train(xs)
    rooms = [room for _, _, room in native_pair._ROOMS.values()]
    assert rooms and canns_stdp.release_host_memory() >= sum(native_pair._nbytes(r) for r in rooms)
    assert not native_pair._ROOMS
