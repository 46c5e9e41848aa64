"""Central finite differences of a family's loss, used to prove its reference's backward
pass independently of any framework (float64 only).

A family supplies two hooks (``Family.fd_loss``, ``Family.fd_state_loss``): its loss from
the forward pass alone, and that loss with one step's state moved and the sequence run on
from there. Everything else here is generic.
"""

from collections.abc import Callable
from typing import Any

import numpy as np

from gatecheck.core.family import Arrays, Family

# Central differences: truncation error ~ STEP^2 * |L'''| and rounding error
# ~ eps64 * |L| / STEP; STEP = 1e-6 balances both near 1e-10 relative to the loss's scale.
STEP = 1e-6
# Allowed |fd - analytic| <= RTOL * |analytic| + ROUNDING * eps64 * |L| / STEP: the relative
# term is four orders above the truncation error and still 1e-3 of the smallest effect of
# any real gradient bug; the absolute term is the rounding error of the two losses'
# difference, with a factor 16 of headroom. A small directional derivative (a GRU's reset
# gate, whose effect passes through the candidate's recurrent term: 1e-4 of |L|) is
# measured to that rounding error only (seen at 3e-6 relative, about eps64 * |L| / STEP).
RTOL = 1e-6
ROUNDING = 16


def directions(case: Any, name: str, shape: tuple[int, ...], n: int = 2) -> list[np.ndarray]:
    """``n`` random directions in which to differentiate with respect to ``name``: a function of
    the case's seed and the name, so every run probes the same directions."""
    rng = np.random.default_rng([case.seed, len(name), sum(map(ord, name))])
    return [rng.standard_normal(shape) for _ in range(n)]


def directional(loss_of: Callable[[np.ndarray], float], direction: np.ndarray) -> float:
    """(L(+STEP * direction) - L(-STEP * direction)) / (2 STEP) for ``loss_of(offset)``."""
    return (loss_of(STEP * direction) - loss_of(-STEP * direction)) / (2 * STEP)


def wrt_input(family: Family, inputs: Arrays, name: str, direction: np.ndarray) -> float:
    """Directional derivative of the family's loss with respect to input ``name``."""
    loss = family.hook("fd_loss")
    return directional(lambda offset: loss(dict(inputs, **{name: inputs[name] + offset})), direction)


def wrt_state(family: Family, inputs: Arrays, t: int, which: str, direction: np.ndarray) -> float:
    """Directional derivative of the loss with respect to state ``which`` at step t (the
    state is moved and the sequence continues from there: the total derivative)."""
    state_loss = family.hook("fd_state_loss")
    return directional(lambda offset: state_loss(inputs, t, which, offset), direction)


def loss_scale(family: Family, inputs: Arrays) -> float:
    """The scale of the loss's rounding error: the magnitude of its terms (``Family.fd_scale``,
    where they can cancel: a sum of products of two directions' outputs can be far smaller than
    its terms), else |L|."""
    return family.fd_scale(inputs) if family.fd_scale else abs(family.hook("fd_loss")(inputs))


def check(fd: float, analytic: float, scale_loss: float, what: str) -> None:
    """Raise AssertionError naming ``what`` unless fd and analytic agree."""
    __tracebackhide__ = True
    allowed = RTOL * abs(analytic) + ROUNDING * np.finfo(np.float64).eps * abs(scale_loss) / STEP
    if not abs(fd - analytic) <= allowed:
        raise AssertionError(
            f"{what}: finite difference {float(fd)!r} vs backward {float(analytic)!r}: "
            f"diff {abs(fd - analytic):.3g} > allowed {allowed:.3g}"
        )
