"""Weight dependence of STDP: the factors ``f+(W)`` (LTP) and ``f-(W)`` (LTD).

Every dependence is a pure function ``dep(W, bounds) -> (f_plus, f_minus)``
whose outputs broadcast against ``W`` (a scalar or an array of W's shape):

=============  ==========================  ==========================
name           f+(W)                       f-(W)
=============  ==========================  ==========================
``additive``   1                           1
``hard``       H(w_max - W)                H(W - w_min)
``soft``       relu(w_max - W)             relu(W - w_min)
``power``      relu(w_max - W) ** mu       relu(W - w_min) ** mu
=============  ==========================  ==========================

``H(u) = 1 if u > 0 else 0``: a weight at a bound no longer moves past it.
``soft`` is the multiplicative rule of van Rossum et al. (2000), ``power`` that of
Gütig et al. (2003) (``mu = 0`` is additive, ``mu = 1`` is ``soft``).

Example:
    >>> import jax.numpy as jnp
    >>> from canns_stdp.functional.dependence import WeightBounds, soft
    >>> fp, fm = soft(jnp.array([[0.25, 1.0]]), WeightBounds(0.0, 1.0, 1.0))
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp

__all__ = [
    "WeightBounds",
    "additive",
    "hard",
    "soft",
    "power",
    "UserDependence",
    "DEPENDENCES",
    "resolve_dependence",
    "check_dependence",
]


class WeightBounds(NamedTuple):
    """Bounds used by the weight dependence and by the clipping of step 7 of docs/step.md."""

    w_min: float = 0.0
    w_max: float = 1.0
    mu: float = 1.0


def additive(W, bounds: WeightBounds):
    """``f+ = f- = 1``: the change does not depend on the weight."""
    one = jnp.ones((), W.dtype)
    return one, one


def hard(W, bounds: WeightBounds):
    """Step functions: no LTP at or above ``w_max``, no LTD at or below ``w_min``."""
    return (
        (bounds.w_max - W > 0).astype(W.dtype),
        (W - bounds.w_min > 0).astype(W.dtype),
    )


def soft(W, bounds: WeightBounds):
    """Multiplicative (soft-bound) dependence, linear in the distance to a bound."""
    return jax.nn.relu(bounds.w_max - W), jax.nn.relu(W - bounds.w_min)


def power(W, bounds: WeightBounds):
    """Power-law dependence with exponent ``mu`` (Gütig et al. 2003)."""
    return (
        jnp.power(jax.nn.relu(bounds.w_max - W), bounds.mu),
        jnp.power(jax.nn.relu(W - bounds.w_min), bounds.mu),
    )


@dataclass(frozen=True)
class UserDependence:
    """Dependence from two user functions of ``W`` (SpikingJelly's ``f_post``/``f_pre``).

    Equal function pairs compare equal, so compiled code is reused between trainers.
    """

    f_plus: Callable
    f_minus: Callable

    def __call__(self, W, bounds: WeightBounds):
        return self.f_plus(W), self.f_minus(W)


DEPENDENCES: dict[str, Callable] = {
    "additive": additive,
    "hard": hard,
    "soft": soft,
    "power": power,
}


def resolve_dependence(given) -> Callable:
    """Turn a name, a ``(f_plus, f_minus)`` pair or a dependence function into one.

    Raises:
        ValueError: for an unknown name.
        TypeError: for anything that is neither a name, a pair of callables nor a
            callable.
    """
    if isinstance(given, str):
        try:
            return DEPENDENCES[given]
        except KeyError:
            raise ValueError(
                f"weight_dependence must be one of {tuple(DEPENDENCES)} or a pair "
                f"(f_plus, f_minus) of functions of W, got {given!r}"
            ) from None
    if isinstance(given, (tuple, list)):
        if len(given) != 2 or not all(callable(f) for f in given):
            raise TypeError(
                "weight_dependence as a pair must be (f_plus, f_minus), two functions "
                f"of W, got {given!r}"
            )
        return UserDependence(given[0], given[1])
    if callable(given):
        return given
    raise TypeError(
        f"weight_dependence must be a name, a pair (f_plus, f_minus) or a function "
        f"(W, bounds) -> (f_plus, f_minus), got {given!r}"
    )


def check_dependence(dependence: Callable, shape: tuple, bounds: WeightBounds) -> None:
    """Check that a user dependence runs on ``W`` of ``shape`` and returns factors that
    broadcast against it (built-in ones always do).

    Raises:
        ValueError: naming ``weight_dependence``, the shape and what went wrong.
    """
    if dependence in DEPENDENCES.values():
        return
    W = jax.ShapeDtypeStruct(tuple(shape), jnp.float32)
    try:
        outs = jax.eval_shape(dependence, W, bounds)
    except Exception as err:  # a user function that cannot run on W
        raise ValueError(f"weight_dependence failed on W of shape {tuple(shape)}: {err}") from err
    for name, out in zip(("f_plus", "f_minus"), outs):
        if out.shape not in ((), tuple(shape)):
            raise ValueError(f"weight_dependence {name} must return a scalar or shape {tuple(shape)}, "
                             f"got shape {out.shape}")
