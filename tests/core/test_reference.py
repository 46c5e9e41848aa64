"""The LSTM reference on its own: the equations, dtypes, determinism, the identity-output
model and the activation perturbation (its finite-difference proof, with every other
family's: tests/core/test_finite_differences.py)."""

import numpy as np
import pytest

from gatecheck.core.cases import Case
from gatecheck.families.lstm.record import make_inputs
from gatecheck.reference import lstm

FD_CASES = [
    Case("fd", 1, 1, 1, 1, "f64", 0),
    Case("fd", 1, 1, 3, 2, "f64", 1),
    Case("fd", 2, 3, 4, 1, "f64", 2),
    Case("fd", 3, 5, 2, 4, "f64", 3),
    Case("fd", 2, 6, 3, 3, "f64", 4, "zero"),
    Case("fd", 2, 8, 3, 2, "f64", 5, "longmem"),
    Case("fd", 2, 4, 3, 3, "f64", 6, "sat"),
]
FD_PARAMS = [pytest.param(c, id=c.id[3:]) for c in FD_CASES]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_is_kept(dtype):
    inputs = {k: v.astype(dtype) for k, v in make_inputs(FD_CASES[3]).items()}
    out = lstm.run(**inputs)
    assert {k: out[k].dtype for k in out} == {k: np.dtype(dtype) for k in out}


def test_forward_matches_the_equations_at_one_step():
    """One step written out from the canonical equations, gate by gate (B=1, T=1)."""
    inputs = make_inputs(Case("-", 1, 1, 3, 2, "f64", 7))
    x, h0, c0, W, U, b = (inputs[k] for k in ("x", "h0", "c0", "W", "U", "b"))
    z = [x[:, 0] @ W[k] + h0 @ U[k] + b[k] for k in range(4)]
    sig = [1 / (1 + np.exp(-zk)) for zk in z]
    c1 = sig[1] * c0 + sig[0] * np.tanh(z[2])
    h1 = sig[3] * np.tanh(c1)
    out = lstm.run(**inputs)
    np.testing.assert_allclose(out["c"][:, 0], c1, rtol=1e-15, atol=1e-15)
    np.testing.assert_allclose(out["h"][:, 0], h1, rtol=1e-15, atol=1e-15)


def test_reference_is_bitwise_deterministic():
    inputs = make_inputs(FD_CASES[5])
    a, b = lstm.run(**inputs), lstm.run(**inputs)
    for k in a:
        assert np.array_equal(a[k], b[k]), k


def test_identity_output_is_a_different_model():
    inputs = make_inputs(FD_CASES[3])
    a, b = lstm.run(**inputs), lstm.run(**inputs, output="identity")
    assert np.array_equal(a["c"][:, 0], b["c"][:, 0]) and not np.allclose(a["h"][:, 0], b["h"][:, 0])
    np.testing.assert_allclose(b["h"], b["gates"][:, :, 3] * b["c"], rtol=1e-15)
    with pytest.raises(ValueError, match=r"output: expected one of \['tanh', 'identity'\], got 'relu'"):
        lstm.run(**inputs, output="relu")


def test_activation_jitter_is_an_argument_and_exact():
    """The yardstick's perturbation is passed in (no state in the reference): 0 is the exact
    reference, 4 moves every activation by exactly 4 ulps, alternately down and up."""
    from gatecheck.reference import _numerics

    a = np.linspace(-0.9, 0.9, 6, dtype=np.float32)
    assert np.array_equal(_numerics.jitter(a.copy()), a)
    moved = _numerics.jitter(a.copy(), 4)
    ulps = (moved - a) / np.abs(np.spacing(a))
    assert np.array_equal(ulps, np.array([-4, 4, -4, 4, -4, 4], dtype=np.float32))
    inputs = make_inputs(FD_CASES[3])
    plain = lstm.run(**inputs)
    shaken = lstm.run(**inputs, ulps=4)
    assert not np.array_equal(plain["h"], shaken["h"])
    np.testing.assert_allclose(shaken["h"], plain["h"], rtol=1e-13)  # a few ulps, in float64
    again = lstm.run(**inputs)  # nothing was left behind
    assert all(np.array_equal(again[k], plain[k]) for k in plain)
