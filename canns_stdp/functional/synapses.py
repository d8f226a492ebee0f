"""Linear synaptic maps (dense, masked, convolutional) and their Hebbian terms.

A synaptic map is linear in both the weights and the input: ``I = M(W, x)``. Its
Hebbian term is the weight-gradient of ``post · M(W, pre)``,

    H(post, pre) = ∂/∂W [ Σ post ⊙ M(W, pre) ] = vjp of M(·, pre) at W with cotangent post,

which for a dense map is the outer product ``post ⊗ pre`` and for a convolution
the sum over output positions of ``post`` times the input patch under each
kernel offset. STDP (step 6 of docs/step.md) only ever needs ``H(s, P)`` (LTP) and
``H(Q, x)`` (LTD), so a new map needs no new plasticity code: it only defines
``current``. With a batch axis in front, ``H`` sums over the batch.

Maps are frozen dataclasses (hashable, static under ``jit``). Inputs have shape
``in_shape`` or ``(B,) + in_shape``.

Example:
    >>> import jax.numpy as jnp
    >>> from canns_stdp.functional.synapses import Conv
    >>> conv = Conv.create(in_shape=(1, 5, 5), kernel_size=3, padding=1)
    >>> W, x = jnp.ones((2, 1, 3, 3)), jnp.ones((1, 5, 5))
    >>> conv.current(W, x).shape
    (2, 5, 5)
    >>> conv.hebbian(W, jnp.ones((2, 5, 5)), x).shape   # same shape as W
    (2, 1, 3, 3)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence, Tuple, Union

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["dense_current", "dense_hebbian", "LinearMap", "Dense", "MaskedDense", "Conv",
           "conv_output_shape"]


def dense_current(W, x):
    """Synaptic current ``W @ x`` of shape ``(n_out,)``."""
    return W @ x


def dense_hebbian(post, pre):
    """``post ⊗ pre`` of shape ``(n_out, n_in)``."""
    return post[:, None] * pre[None, :]


class LinearMap:
    """Base of the synaptic maps: subclasses define ``in_shape`` and ``current``.

    ``hebbian`` is derived from ``current`` by a vector-Jacobian product, so every
    map gets its plasticity terms for free.
    """

    in_shape: Tuple[int, ...]

    def current(self, W, x):  # pragma: no cover - abstract
        raise NotImplementedError

    def batch_size(self, x) -> int:
        """``B`` for a batched input ``(B,) + in_shape``, ``1`` for an unbatched one."""
        return x.shape[0] if x.ndim > len(self.in_shape) else 1

    def hebbian(self, W, post, pre):
        """``∂/∂W Σ post ⊙ current(W, pre)`` (summed over a batch axis), shaped like ``W``."""
        _, pullback = jax.vjp(lambda w: self.current(w, pre), W)
        return pullback(post.astype(W.dtype))[0]

    def keep_absent(self, W_old, W_new):
        """``W_new`` with the synapses the map does not have left at ``W_old`` (every
        synapse exists in a dense or conv map)."""
        return W_new


@dataclass(frozen=True)
class Dense(LinearMap):
    """All-to-all map ``I = W x``, ``W`` of shape ``(n_out, n_in)``.

    ``n_in`` is only used to tell batched from unbatched inputs (any rank-1 input
    is one sample). Its Hebbian term is the outer product (summed over a batch),
    which equals the generic vjp and is cheaper.
    """

    in_shape: Tuple[int, ...] = (-1,)

    def current(self, W, x):
        if x.ndim == 1:
            return dense_current(W, x)
        return x @ W.T

    def hebbian(self, W, post, pre):
        if pre.ndim == 1:
            return dense_hebbian(post, pre)
        return post.T @ pre


class MaskedDense(LinearMap):
    """Sparse dense map ``I = (mask ⊙ W) x``: absent synapses never carry current
    nor change (their Hebbian term is ``mask ⊙ (post ⊗ pre)``).

    Hashable by the mask's contents, so layers with equal masks share compiled code.
    """

    def __init__(self, mask):
        mask = np.asarray(mask, np.float32)
        if mask.ndim != 2 or not np.isin(mask, (0.0, 1.0)).all():
            raise ValueError(f"mask must be a 2-D array of 0/1, got shape {mask.shape}")
        self.mask = mask
        self.in_shape = (mask.shape[1],)
        self._key = (mask.shape, mask.tobytes())

    def __hash__(self):
        return hash(self._key)

    def __eq__(self, other):
        return isinstance(other, MaskedDense) and self._key == other._key

    def current(self, W, x):
        Wm = W * jnp.asarray(self.mask, W.dtype)
        return Wm @ x if x.ndim == 1 else x @ Wm.T

    def keep_absent(self, W_old, W_new):
        """Absent synapses keep their value whatever a rule or the clipping would do."""
        return jnp.where(jnp.asarray(self.mask) > 0, W_new, W_old)


def int_tuple(name: str, value, n: int, minimum: Optional[int] = None) -> Tuple[int, ...]:
    """``value`` (an int, or ``n`` ints) as ``n`` ints, each ``>= minimum`` when given."""
    is_int = isinstance(value, (int, np.integer)) and not isinstance(value, bool)
    try:
        vals = (value,) * n if is_int else tuple(value)
    except TypeError:
        raise ValueError(f"{name} must be an int or {n} ints, got {value!r}") from None
    if (len(vals) != n or any(isinstance(v, bool) or not isinstance(v, (int, np.integer)) for v in vals)
            or (minimum is not None and any(v < minimum for v in vals))):
        wanted = "an int or {n} ints" if minimum is None else "an int >= {m} or {n} such ints"
        raise ValueError(f"{name} must be {wanted.format(n=n, m=minimum)}, got {value!r}")
    return tuple(int(v) for v in vals)


def conv_output_shape(spatial, kernel, stride, padding, dilation) -> Tuple[int, ...]:
    """``floor((n + lo + hi - dilation·(k - 1) - 1) / stride) + 1`` per spatial axis."""
    return tuple((n + lo + hi - d * (k - 1) - 1) // s + 1
                 for n, k, s, (lo, hi), d in zip(spatial, kernel, stride, padding, dilation))


@dataclass(frozen=True)
class Conv(LinearMap):
    """N-d convolution (cross-correlation, as PyTorch), channels first.

    ``W`` has shape ``(C_out, C_in / groups) + kernel`` (PyTorch's OIHW in 2-D);
    inputs ``(C_in,) + spatial`` or ``(B, C_in) + spatial``; the current is
    ``(C_out,) + out_spatial``:

        I[o, p] = Σ_{c, k} W[o, c, k] · x_pad[g(o)·C_in/groups + c, p·stride + k·dilation]

    Build one with :meth:`create`.
    """

    in_shape: Tuple[int, ...]
    kernel_size: Tuple[int, ...]
    stride: Tuple[int, ...]
    padding: Tuple[Tuple[int, int], ...]
    dilation: Tuple[int, ...]
    groups: int = 1

    @classmethod
    def create(cls, in_shape: Sequence[int], kernel_size: Union[int, Sequence[int]], stride=1,
               padding=0, dilation=1, groups: int = 1) -> "Conv":
        """A convolution over an input of shape ``in_shape = (C_in,) + spatial``.

        ``kernel_size``, ``stride``, ``dilation`` and ``padding`` are an int or one
        per spatial axis (``padding`` also as ``(lo, hi)`` pairs).
        """
        in_shape = tuple(int(n) for n in in_shape)
        n = len(in_shape) - 1
        if n not in (1, 2, 3):
            raise ValueError(f"in_shape must be (C, L), (C, H, W) or (C, D, H, W), got {in_shape!r}")
        if isinstance(padding, (int, np.integer)) or all(isinstance(p, (int, np.integer)) for p in padding):
            pad = tuple((p, p) for p in int_tuple("padding", padding, n))
        else:
            pad = tuple(int_tuple("padding", p, 2) for p in padding)
            if len(pad) != n:
                raise ValueError(f"padding must be an int, {n} ints or {n} pairs, got {padding!r}")
        return cls(in_shape, int_tuple("kernel_size", kernel_size, n), int_tuple("stride", stride, n),
                   pad, int_tuple("dilation", dilation, n), int(groups))

    @property
    def out_spatial(self) -> Tuple[int, ...]:
        return conv_output_shape(self.in_shape[1:], self.kernel_size, self.stride, self.padding,
                                 self.dilation)

    def weight_shape(self, out_channels: int) -> Tuple[int, ...]:
        return (out_channels, self.in_shape[0] // self.groups) + self.kernel_size

    def current(self, W, x):
        batched = x.ndim > len(self.in_shape)
        xb = x if batched else x[None]
        spatial = "DHW"[-len(self.kernel_size):]
        dn = ("NC" + spatial, "OI" + spatial, "NC" + spatial)
        y = jax.lax.conv_general_dilated(
            xb, W, window_strides=self.stride, padding=self.padding, rhs_dilation=self.dilation,
            dimension_numbers=dn, feature_group_count=self.groups,
            precision=jax.lax.Precision.HIGHEST)
        return y if batched else y[0]
