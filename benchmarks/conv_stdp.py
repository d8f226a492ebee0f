"""Throughput of conv and batched dense STDP, and the dense Hebbian: outer product vs generic vjp.

Run:  python benchmarks/conv_stdp.py        (numbers depend on the machine; never asserted)
"""

import time

import jax
import jax.numpy as jnp
import numpy as np

from canns_stdp import ConvSpikingLayer, SpikingLayer, STDPTrainer
from canns_stdp.functional.synapses import Dense, LinearMap


def timed(fn, repeat=3):
    fn()  # compile
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def main():
    rng = np.random.default_rng(0)
    T, B = 200, 32
    X = (rng.random((T, B, 1, 28, 28)) < 0.1).astype(np.float32)
    conv = ConvSpikingLayer(1, 16, 5, input_shape=(28, 28), padding=2, seed=0)
    tr = STDPTrainer(conv, batch_reduction="mean")
    t = timed(lambda: tr.train(X))
    print(f"conv 1→16, 5×5, 28×28, B={B}: {T * B / t:,.0f} sample-steps/s ({T / t:,.0f} steps/s)")

    Xd = (rng.random((T, B, 784)) < 0.1).astype(np.float32)
    dense = SpikingLayer(784, 100, seed=0)
    trd = STDPTrainer(dense)
    t = timed(lambda: trd.train(Xd))
    print(f"dense 784→100, B={B}: {T * B / t:,.0f} sample-steps/s")

    W = jnp.asarray(rng.random((100, 784)), jnp.float32)
    post, pre = jnp.asarray(rng.random((B, 100)), jnp.float32), jnp.asarray(rng.random((B, 784)), jnp.float32)
    outer = jax.jit(lambda W, a, b: Dense().hebbian(W, a, b))
    vjp = jax.jit(lambda W, a, b: LinearMap.hebbian(Dense(), W, a, b))
    for name, fn in (("outer", outer), ("vjp", vjp)):
        t = timed(lambda: [fn(W, post, pre).block_until_ready() for _ in range(200)])
        print(f"dense Hebbian ({name}), B={B}: {t / 200 * 1e6:.1f} µs per call")
    for name, fn in (("outer", outer), ("vjp", vjp)):
        t = timed(lambda: [fn(W, post[0], pre[0]).block_until_ready() for _ in range(200)])
        print(f"dense Hebbian ({name}), unbatched: {t / 200 * 1e6:.1f} µs per call")


if __name__ == "__main__":
    main()
