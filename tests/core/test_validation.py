"""Bad input to the reference gets a clear error naming the argument."""

import numpy as np
import pytest

from gatecheck.core.cases import Case
from gatecheck.families.lstm.record import make_inputs
from gatecheck.reference import lstm


def good(dtype=np.float64):
    return {k: v.astype(dtype) for k, v in make_inputs(Case("-", 2, 3, 4, 5, "f64", 0)).items()}


def with_(name, value, dtype=np.float64):
    args = good(dtype)
    args[name] = value
    return args


BAD = [
    ("x-ndim", lambda: with_("x", np.zeros((2, 3))), ValueError, r"x: expected 3 dimensions"),
    ("h0-ndim", lambda: with_("h0", np.zeros((2, 5, 1))), ValueError, r"h0: expected 2 dimensions"),
    ("h0-batch", lambda: with_("h0", np.zeros((3, 5))), ValueError, r"h0: expected shape \(B, H\) = \(2, 5\)"),
    ("c0-hidden", lambda: with_("c0", np.zeros((2, 4))), ValueError, r"c0: expected shape \(B, H\) = \(2, 5\)"),
    ("W-gates", lambda: with_("W", np.zeros((3, 4, 5))), ValueError, r"W: expected the gate axis first with 4 gates"),
    ("W-input", lambda: with_("W", np.zeros((4, 3, 5))), ValueError, r"W: expected shape \(4, D, H\) = \(4, 4, 5\)"),
    ("U-gates", lambda: with_("U", np.zeros((5, 5, 5))), ValueError, r"U: expected shape \(4, H, H\)"),
    ("b-gates", lambda: with_("b", np.zeros((5, 4))), ValueError, r"b: expected shape \(4, H\) = \(4, 5\)"),
    ("b-flat", lambda: with_("b", np.zeros(20)), ValueError, r"b: expected 2 dimensions"),
    ("gh-time", lambda: with_("gh", np.zeros((2, 4, 5))), ValueError, r"gh: expected shape \(B, T, H\) = \(2, 3, 5\)"),
    ("gc-shape", lambda: with_("gc", np.zeros((2, 4))), ValueError, r"gc: expected shape \(B, H\)"),
    ("T0", lambda: with_("x", np.zeros((2, 0, 4))), ValueError, r"x: expected at least one time step"),
    ("mixed-dtype", lambda: with_("U", good()["U"].astype(np.float32)), TypeError, r"mixed dtypes: .*U=float32"),
    ("int-dtype", lambda: with_("x", np.zeros((2, 3, 4), dtype=np.int64)), TypeError, r"x: expected dtype float32 or float64"),
    ("float16", lambda: {k: v.astype(np.float16) for k, v in good().items()}, TypeError, r"x: expected dtype float32 or float64"),
    ("list", lambda: with_("h0", [[0.0] * 5] * 2), TypeError, r"h0: expected a numpy.ndarray"),
    ("nan", lambda: with_("x", np.full((2, 3, 4), np.nan)), ValueError, r"x: expected finite values, found nan at index \(0, 0, 0\)"),
    ("inf", lambda: with_("W", np.where(np.arange(80).reshape(4, 4, 5) == 7, np.inf, 0.0)), ValueError, r"W: expected finite values, found inf at index \(0, 1, 2\)"),
]


@pytest.mark.parametrize("make,exc,match", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_input_is_named(make, exc, match):
    with pytest.raises(exc, match=match):
        lstm.run(**make())


def test_good_input_runs_in_both_dtypes():
    for dtype in (np.float32, np.float64):
        assert lstm.run(**good(dtype))["h"].dtype == dtype
