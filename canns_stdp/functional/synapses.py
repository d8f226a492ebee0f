"""Dense synaptic map and its Hebbian (outer-product) term.

``W`` has shape ``(n_out, n_in)``: row ``i`` is postsynaptic neuron ``i``.
The Hebbian term of a map is the weight-gradient of ``post . (W pre)``, which for a
dense map is the outer product ``post ⊗ pre``.
"""

from __future__ import annotations

__all__ = ["dense_current", "dense_hebbian"]


def dense_current(W, x):
    """Synaptic current ``W @ x`` of shape ``(n_out,)``."""
    return W @ x


def dense_hebbian(post, pre):
    """``post ⊗ pre`` of shape ``(n_out, n_in)``."""
    return post[:, None] * pre[None, :]
