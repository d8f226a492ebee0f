"""Spatial pooling of channels-first maps (a stateless stage between spiking layers).

    max: y[..., c, p] = max_{k} x[..., c, p·stride + k]     (on spikes: logical OR)
    avg: y[..., c, p] = mean_{k} x[..., c, p·stride + k]

over the last ``len(window)`` axes, no padding (PyTorch's ``MaxPool2d``/``AvgPool2d``
with their default ``floor`` output size).

Example:
    >>> import jax.numpy as jnp
    >>> from canns_stdp.functional.pooling import Pool
    >>> Pool((2, 2))(jnp.ones((3, 4, 6, 6))).shape       # (B, C, H, W)
    (3, 4, 3, 3)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple

import jax
import jax.numpy as jnp

__all__ = ["Pool", "pool"]


def pool(x, window: Tuple[int, ...], stride: Optional[Tuple[int, ...]] = None, kind: str = "max"):
    """Pool the last ``len(window)`` axes of ``x``; ``stride`` defaults to ``window``."""
    window = tuple(window)
    stride = window if stride is None else tuple(stride)
    lead = x.ndim - len(window)
    dims, strides = (1,) * lead + window, (1,) * lead + stride
    if kind == "max":
        return jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, dims, strides, "VALID")
    if kind == "avg":
        total = jax.lax.reduce_window(x, 0.0, jax.lax.add, dims, strides, "VALID")
        size = 1
        for w in window:
            size *= w
        return total / size
    raise ValueError(f"kind must be 'max' or 'avg', got {kind!r}")


@dataclass(frozen=True)
class Pool:
    """A pooling stage (static, hashable): ``Pool(window, stride=None, kind="max")(x)``."""

    window: Tuple[int, ...]
    stride: Optional[Tuple[int, ...]] = None
    kind: str = "max"

    def __post_init__(self):
        if self.kind not in ("max", "avg"):
            raise ValueError(f"kind must be 'max' or 'avg', got {self.kind!r}")
        for name in ("window", "stride"):
            value = getattr(self, name)
            if value is not None and (not value or any(not isinstance(n, int) or n < 1 for n in value)):
                raise ValueError(f"{name} must be a tuple of ints >= 1, got {value!r}")

    def output_shape(self, shape: Tuple[int, ...]) -> Tuple[int, ...]:
        """Shape after pooling an input of shape ``shape``."""
        n = len(self.window)
        stride = self.stride or self.window
        return tuple(shape[:-n]) + tuple((s - w) // st + 1 for s, w, st in zip(shape[-n:], self.window, stride))

    def __call__(self, x):
        return pool(x, self.window, self.stride, self.kind)
