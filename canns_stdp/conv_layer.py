"""ConvSpikingLayer: a convolutional layer of LIF neurons with STDP traces."""

from __future__ import annotations

from typing import Callable, Optional, Sequence, Union

import jax.numpy as jnp
import numpy as np

from . import _validation as v
from .base import BrainInspiredModel
from .functional.synapses import Conv, int_tuple
from .layer import SpikingLayer, _forward, assign

__all__ = ["ConvSpikingLayer"]


class ConvSpikingLayer(SpikingLayer):
    """A convolutional layer of LIF neurons, channels first, trained by the same
    :class:`~canns_stdp.STDPTrainer` as :class:`~canns_stdp.SpikingLayer`.

    Every output position is a neuron with the step of docs/step.md; the synaptic map is a
    convolution shared over positions (PyTorch's cross-correlation):

        I[o, p] = Σ_{c, k} W[o, c, k] · x_pad[g(o)·C_in/groups + c, p·stride + k·dilation]

    and the weight change of step 6 of docs/step.md sums the per-position Hebbian terms
    (the weight-gradient of the map; :mod:`canns_stdp.functional.synapses`):

        dW = lr · (A+ f+(W) ⊙ H(s, P) − A− f−(W) ⊙ H(Q, x)),
        H(post, pre)[o, c, k] = Σ_p post[o, p] · pre_pad[g(o)·C_in/groups + c, p·stride + k·dilation]

    Inputs are ``(C_in, H, W)`` per step, or ``(B, C_in, H, W)`` for a batch (one
    membrane and trace per sample, ``W`` shared; the trainer's ``batch_reduction``
    sums or averages the per-sample changes). A 1-D ``input_shape=(L,)`` gives a
    1-D convolution, a ``(D, H, W)`` one a 3-D convolution.

    Args:
        in_channels, out_channels: ``C_in`` and ``C_out``.
        kernel_size: an int or one per spatial axis.
        input_shape: spatial shape of the input, ``(H, W)`` (or ``(L,)``, or ``(D, H, W)``).
        stride, padding, dilation: ints or one per spatial axis (``padding`` also
            as ``(lo, hi)`` pairs); zero padding.
        groups: ``C_in`` and ``C_out`` split into this many independent groups.
        threshold, v_reset, leak, trace_decay, dt, tau_m, tau_pre, tau_post, decay,
        trace_mode, a_pre, a_post: as for :class:`~canns_stdp.SpikingLayer`.
        W_init: array of shape ``(C_out, C_in/groups, kH, kW)`` (OIHW), a function
            of that shape, or ``None`` for ``0.05 * normal``.
        seed: integer seed for the default initial weights.

    State: ``W`` (OIHW); ``x`` and ``trace_pre`` ``(C_in, H, W)``; ``v``, ``spike``
    and ``trace_post`` ``(C_out, H_out, W_out)`` (with a leading ``B`` after a
    batched call; :meth:`reset_state` makes them unbatched again).

    Example:
        >>> import numpy as np
        >>> from canns_stdp import ConvSpikingLayer, STDPTrainer
        >>> layer = ConvSpikingLayer(1, 4, 3, input_shape=(8, 8), padding=1, seed=0)
        >>> X = (np.random.default_rng(0).random((20, 2, 1, 8, 8)) < 0.2).astype(np.float32)
        >>> STDPTrainer(layer, batch_reduction="mean").train(X)   # (T, B, C, H, W)
        >>> layer.W.value.shape
        (4, 1, 3, 3)
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: Union[int, Sequence[int]],
        input_shape: Optional[Sequence[int]] = None,
        stride: Union[int, Sequence[int]] = 1,
        padding: Union[int, Sequence] = 0,
        dilation: Union[int, Sequence[int]] = 1,
        groups: int = 1,
        threshold: float = 1.0,
        v_reset: float = 0.0,
        leak: float = 0.9,
        trace_decay: float = 0.95,
        dt: float = 1.0,
        *,
        tau_m: Optional[float] = None,
        tau_pre: Optional[float] = None,
        tau_post: Optional[float] = None,
        refractory: float = 0.0,
        decay: str = "exact",
        trace_mode: str = "cumulative",
        a_pre: float = 1.0,
        a_post: float = 1.0,
        W_init: Union[None, np.ndarray, Callable] = None,
        seed: Optional[int] = None,
        **kwargs,
    ):
        BrainInspiredModel.__init__(self, **kwargs)
        self.in_channels = v.check_positive_int("in_channels", in_channels)
        self.out_channels = v.check_positive_int("out_channels", out_channels)
        if input_shape is None or isinstance(input_shape, (int, np.integer)) or len(input_shape) not in (1, 2, 3):
            raise ValueError(f"input_shape must be the spatial shape (H, W) (or (L,), or (D, H, W)), got {input_shape!r}")
        n = len(input_shape)
        self.input_shape = int_tuple("input_shape", input_shape, n, 1)
        self.kernel_size = int_tuple("kernel_size", kernel_size, n, 1)
        self.stride = int_tuple("stride", stride, n, 1)
        self.dilation = int_tuple("dilation", dilation, n, 1)
        if isinstance(padding, (int, np.integer)) or all(isinstance(p, (int, np.integer)) for p in padding):
            pads = tuple((p, p) for p in int_tuple("padding", padding, n, 0))
        else:
            pads = tuple(int_tuple("padding", p, 2, 0) for p in padding)
            if len(pads) != n:
                raise ValueError(f"padding must be an int, {n} ints or {n} (lo, hi) pairs, got {padding!r}")
        self.padding = pads
        self.groups = v.check_positive_int("groups", groups)
        if self.in_channels % self.groups or self.out_channels % self.groups:
            raise ValueError(f"groups must divide in_channels={self.in_channels} and "
                             f"out_channels={self.out_channels}, got groups={self.groups}")
        self.synapse = Conv((self.in_channels,) + self.input_shape, self.kernel_size, self.stride,
                            self.padding, self.dilation, self.groups)
        out_spatial = self.synapse.out_spatial
        if min(out_spatial) < 1:
            raise ValueError(
                f"kernel_size={self.kernel_size} (dilation={self.dilation}) does not fit input_shape="
                f"{self.input_shape} with padding={padding!r}: output shape would be {out_spatial}")
        self.output_shape = out_spatial
        self.input_size = int(np.prod((self.in_channels,) + self.input_shape))
        self.output_size = int(np.prod((self.out_channels,) + out_spatial))
        self._init_dynamics(W_init, seed, threshold=threshold, v_reset=v_reset, leak=leak,
                            trace_decay=trace_decay, dt=dt, tau_m=tau_m, tau_pre=tau_pre, tau_post=tau_post,
                            refractory=refractory, decay=decay, trace_mode=trace_mode, a_pre=a_pre, a_post=a_post)

    _shapes_of_config = "conv_layer_shapes"

    _CONFIG = ("in_channels", "out_channels", "kernel_size", "input_shape", "stride", "dilation",
               "groups", "threshold", "v_reset", "leak", "trace_decay", "dt", "tau_pre", "tau_post",
               "decay", "trace_mode", "a_pre", "a_post")

    def checkpoint_config(self) -> dict:
        """Constructor arguments for :meth:`save`/:meth:`load` (weights are state)."""
        config = {name: getattr(self, name) for name in self._CONFIG}
        if self.tau_m is not None:
            config["tau_m"] = self.tau_m
        if self.refractory:
            config["refractory"] = self.refractory
        config = {k: list(v) if isinstance(v, tuple) else v for k, v in config.items()}
        config["padding"] = [list(p) for p in self.padding]
        return config

    @property
    def weight_shape(self) -> tuple:
        """``(C_out, C_in / groups) + kernel_size`` (OIHW)."""
        return self.synapse.weight_shape(self.out_channels)

    def sample_shapes(self) -> tuple:
        """``((C_in,) + input_shape, (C_out,) + output_shape)``."""
        return (self.in_channels,) + self.input_shape, (self.out_channels,) + self.output_shape

    def forward(self, x) -> jnp.ndarray:
        """Advance one step without plasticity; ``x`` is ``(C_in, H, W)`` or
        ``(B, C_in, H, W)``. Returns the spikes ``(C_out, H_out, W_out)`` (with ``B``)."""
        params = self.step_params()
        in_shape = self.sample_shapes()[0]
        arr = v._to_float_array("x", x)
        if arr.shape != in_shape and (arr.ndim != len(in_shape) + 1 or arr.shape[1:] != in_shape
                                      or arr.shape[0] == 0):
            raise ValueError(f"x must have shape {in_shape} or (B,) + {in_shape}, got shape {arr.shape}")
        v.check_finite("x", arr)
        batch = arr.shape[:arr.ndim - len(in_shape)]
        state = self.get_state(batch) if batch else self.get_state()
        x = jnp.asarray(arr)
        state, spikes = _forward(self.step_config(), params, state, x, None)
        self.set_state(state)
        assign(self, "x", x)
        return spikes
