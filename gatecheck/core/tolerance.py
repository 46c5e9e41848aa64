"""The tolerance policy: one table, keyed by dtype, with its reasons.

A fixed rtol per dtype does not work for recurrent nets: the rounding error of a
correct float32 BPTT grows with how long the cell remembers and how saturated its
gates are, and the reference's own float32 run shows the same growth. So the error
allowed on a case is measured on that case (``python benchmarks/error_table.py``
prints the measurements behind the numbers below):

    y      = max |ref_f32 - ref_f64| over the slice: the reference run on the case's
             inputs rounded to float32, in float32 and in float64 (the yardstick; the
             largest of five samples: the inputs nudged by 0, +1, -1 ulp, so that one
             lucky rounding does not set it, and the activations moved by +-4 ulps, as
             frameworks' float32 tanh and sigmoid are (gatecheck/reference/_numerics.py); for a
             float64 comparison y is scaled by eps64 / eps32)
    scale  = max |ref_f64| over the whole quantity
    atol   = factor * max(y, floor * eps * scale, sum_floor * sqrt(n) * eps * scale)
    allowed (element-wise) = atol + rtol * eps * |expected|

A slice is one time step of a per-step quantity (h, c, dh, dc, dx), one gate of a
parameter gradient (dW, dU, db), or the whole of cT, dh0, dc0, so the yardstick follows
conditioning backwards through time and per gate. n is the number of per-step terms
summed into each element: B*T for the parameter gradients, 1 otherwise.

Why each term is there:
- y: the case's own error amplification (long memory, saturation, T).
- floor (normwise, in eps of the whole quantity's scale): y is one sample of rounding
  error and can be near zero by luck on a slice of few elements; cancellation (1 - g^2
  for a saturated g) leaves errors of eps * the terms, not eps * the result.
- sum_floor: a framework may sum the B*T terms of dW, dU, db in another order (or less
  accurately) than NumPy's pairwise sum; the spread of such sums grows like sqrt(n).
"""

import math
from typing import NamedTuple

import numpy as np
import numpy.typing as npt


class Tolerance(NamedTuple):
    factor: float
    floor: float
    sum_floor: float
    rtol: float
    why: str


EPS: dict[np.dtype, float] = {
    np.dtype(np.float32): float(np.finfo(np.float32).eps),
    np.dtype(np.float64): float(np.finfo(np.float64).eps),
}

_WHY = (
    "two implementations in one dtype differ by the sum of their own rounding errors, each of "
    "the size of the yardstick, hence factor 8. The errors behind the terms are measured by "
    "benchmarks/error_table.py (long memory and saturated gates at T up to 1000); how much of this "
    "allowance each oracle uses in the committed nightly baseline, and its worst case, is "
    "docs/reference/headroom.md, generated from the baseline (no figure is restated here)"
)

TOLERANCES: dict[np.dtype, Tolerance] = {
    np.dtype(np.float32): Tolerance(factor=8.0, floor=16.0, sum_floor=1.0, rtol=4.0, why=_WHY),
    np.dtype(np.float64): Tolerance(
        factor=8.0, floor=16.0, sum_floor=1.0, rtol=4.0,
        why=_WHY + "; the float32 yardstick scaled to eps64 stands for the float64 error, since "
        "rounding error is linear in eps to first order",
    ),
}


def policy(dtype: npt.DTypeLike) -> Tolerance:
    dtype = np.dtype(dtype)
    if dtype not in TOLERANCES:
        raise ValueError(f"dtype: expected one of {[d.name for d in TOLERANCES]}, got {dtype}")
    return TOLERANCES[dtype]


def slice_atols(dtype: npt.DTypeLike, yard32: npt.ArrayLike, scale: float, n_terms: int = 1) -> np.ndarray:
    """Absolute allowance of each slice (see the module docstring), from the slices'
    float32 yardsticks (an array), the quantity's scale and its summation length."""
    dtype = np.dtype(dtype)
    tol = policy(dtype)
    eps = EPS[dtype]
    floor = max(tol.floor, tol.sum_floor * math.sqrt(n_terms)) * eps * scale
    return tol.factor * np.maximum(np.asarray(yard32, dtype=np.float64) * (eps / EPS[np.dtype(np.float32)]), floor)


def slice_rtol(dtype: npt.DTypeLike) -> float:
    dtype = np.dtype(dtype)
    return policy(dtype).rtol * EPS[dtype]


# The hand-derived BPTT formulas (tests/families/test_head.py) are evaluated in float64 from a
# framework's own float64 outputs and compared with the framework's gradient: both sides
# carry only rounding error (a few hundred eps at most for the short sequences used), so
# agreement to 1e-10 of the quantity's scale is required; a wrong formula is off by O(1).
FORMULA_RTOL = 1e-10

# The diagnosis (gatecheck.tools.diagnose, gatecheck.tools.localise) accepts a hypothesis only when it
# reproduces the candidate's float64 numbers to 1e-9 of their scale (normwise): far above
# the rounding of two float64 computations of the same thing (~1e-15 relative, times the
# few hundred eps a short sequence accumulates) and far below any real difference between
# two LSTM variants, which is O(1e-3) or more.
CLOSE = 1e-9

# The same acceptance once the diagnosis has found that the candidate computes (part of) its step in
# float32 (gatecheck.tools.diagnose): a float32 run of the reference differs from the float64 one by up
# to 2e-5 of a quantity's scale on the diagnosis' cases (T up to 100, saturated and long-memory regimes
# included: benchmarks/error_table.py's cases), so a hypothesis is tested to 1e-4 of the scale, five
# times that and still ten times below the O(1e-3) between two variants of a model.
CLOSE_F32 = 1e-4
