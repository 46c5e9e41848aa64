"""Hand-written LSTM styles (reference/styles/): their own functions against the
reference, and their adapters through the battery against the frameworks."""

import inspect

import numpy as np
import pytest

from gatecheck import diagnose as dg
from gatecheck.battery import case_inputs, run_case
from gatecheck.cases import Case, grid
from oracles import ORACLES
from reference import lstm
from reference.styles import assignment

STYLE_CASES = [c for c in grid("ci") if c.seed == 0 and c.T in (1, 7, 64) and c.regime in ("std", "zero")]


@pytest.mark.parametrize("case", STYLE_CASES, ids=lambda c: "assignment-" + c.id)
def test_assignment_style_matches_oracle(case, request):
    from conftest import require_framework

    oracle = ORACLES[case.oracle]
    require_framework(request.config, oracle.framework)
    report = run_case(case, oracle, assignment.run, "reference.styles.assignment:run")
    assert report.ok, report.message()
    assert {r.quantity for r in report.results}.isdisjoint({"dc"})  # declared unobservable


def test_assignment_layout_is_i_f_o_g():
    inputs = case_inputs(Case("-", 2, 3, 4, 5, "f64", 0))
    Wx, Wh, b = assignment.to_style(inputs["W"], inputs["U"], inputs["b"])
    H = 5
    for block, gate in enumerate(("i", "f", "o", "g")):
        k = lstm.GATES.index(gate)
        assert np.array_equal(Wx[:, block * H:(block + 1) * H], inputs["W"][k])
        assert np.array_equal(Wh[:, block * H:(block + 1) * H], inputs["U"][k])
        assert np.array_equal(b[block * H:(block + 1) * H], inputs["b"][k])
    back = assignment.from_style(Wx, Wh, b)
    assert all(np.array_equal(a, inputs[k]) for a, k in zip(back, ("W", "U", "b"), strict=True))


@pytest.mark.parametrize("dtype", ["f32", "f64"])
def test_assignment_sequence_functions_match_the_reference(dtype):
    """forward(x, h0, ...) starts from c0 = 0 and backward(dh, cache) takes the upstream
    gradient of every h_t: the reference's zero regime (c0 = 0, gc = 0)."""
    case = Case("-", 3, 9, 4, 5, dtype, 2, "zero")
    inputs = case_inputs(case)
    ref = lstm.run(**inputs)
    Wx, Wh, b = assignment.to_style(inputs["W"], inputs["U"], inputs["b"])
    h, cache = assignment.forward(inputs["x"], inputs["h0"], Wx, Wh, b)
    dx, dh0, dWx, dWh, db = assignment.backward(inputs["gh"], cache)
    dW, dU, dbc = assignment.from_style(dWx, dWh, db)
    rtol = 1e-12 if dtype == "f64" else 1e-4  # same arithmetic, another summation order
    for name, got in dict(h=h, dx=dx, dh0=dh0, dW=dW, dU=dU, db=dbc).items():
        np.testing.assert_allclose(got, ref[name], rtol=rtol, atol=rtol * np.abs(ref[name]).max(), err_msg=name)


def _variant(old, new):
    """The assignment style with one textual edit, loaded as its own module."""
    import types

    src = inspect.getsource(assignment)
    assert src.count(old) == 1, old
    module = types.ModuleType("assignment_variant")
    exec(compile(src.replace(old, new), "<assignment variant>", "exec"), module.__dict__)
    return module


def test_assignment_with_o_and_g_swapped_in_the_forward_is_diagnosed():
    """A classic slip: the forward slices g before o while the adapter (and backward)
    follow i, f, o, g."""
    variant = _variant(
        "    o = sigmoid(a[:, 2 * H : 3 * H])\n    g = np.tanh(a[:, 3 * H :])",
        "    g = np.tanh(a[:, 2 * H : 3 * H])\n    o = sigmoid(a[:, 3 * H :])",
    )
    _, text = dg.diagnose(variant.run, Case("-", 3, 7, 4, 5, "f64", 0), "variant")
    assert "your gates look ordered i,f,g,o (canonical: i,f,g,o)" not in text
    assert "with that layout the forward pass matches but" in text, text


def test_assignment_without_the_forget_factor_on_dprev_c_is_diagnosed():
    variant = _variant("return da @ Wx.T, da @ Wh.T, dc * f,", "return da @ Wx.T, da @ Wh.T, dc,")
    report, text = dg.diagnose(variant.run, Case("-", 3, 7, 4, 5, "f64", 0), "variant")
    assert not report.ok
    assert "forward matches; dh wrong from t=4 (T-3) back; dx wrong from t=5 (T-2) back; " \
           "wrong: dh0, dc0, dW, dU, db" in text, text
    assert "right:" not in text  # dc is not observable in this style, so nothing is right
