"""The vanilla RNN end to end: the reference (reference.rnn; its finite-difference proof is
in tests/core/test_finite_differences.py), its argument checks, the remaps (oracles.rnn_layout), and the course-style RNN
(examples/course_rnn.py) with two of its classic bugs. The reference against the four RNN
oracles is the rnn family's part of the battery (tests/battery/test_battery.py)."""


import numpy as np
import pytest

from examples import course_rnn
from gatecheck.core import mutants
from gatecheck.core.candidate import CandidateError
from gatecheck.core.cases import Case
from gatecheck.core.compare import compare
from gatecheck.engines import ORACLES, battery_oracles
from gatecheck.engines.base import Oracle
from gatecheck.engines.frameworks import FRAMEWORKS
from gatecheck.engines.keras import rnn_layout
from gatecheck.engines.torch import rnn_layout as torch_rnn_layout
from gatecheck.families.rnn.record import RNN
from gatecheck.families.rnn.record import make_inputs as rnn_inputs
from gatecheck.reference import rnn
from gatecheck.run.battery import run_case
from gatecheck.run.grid import grid as family_grid
from gatecheck.truth.views import case_inputs, view

RNN_ORACLES = {name: ORACLES[name] for name in battery_oracles("rnn")}


class rb:  # the rnn family's battery, under the names these tests use
    make_inputs = staticmethod(rnn_inputs)

    @staticmethod
    def grid(dtypes=("f32", "f64")):
        return [c for c in family_grid("ci", RNN, dtypes=dtypes) if not c.options]  # the style has no option

    @staticmethod
    def run_case(case, oracle, candidate=None, name="reference"):
        return run_case(case, oracle, candidate, name)

    @staticmethod
    def case_inputs(case):
        return case_inputs(case, RNN)

FD_CASES = [Case("fd", *shape, "f64", seed, regime) for shape, seed, regime in RNN.fd_points]


# --- the reference on its own --------------------------------------------------------------


def test_forward_matches_the_equations():
    """Two steps written out from the canonical equations (B=2, T=2, D != H)."""
    inputs = rb.make_inputs(Case("-", 2, 2, 3, 4, "f64", 7))
    x, h0, W, U, b = (inputs[k] for k in ("x", "h0", "W", "U", "b"))
    h1 = np.tanh(x[:, 0] @ W + h0 @ U + b)
    h2 = np.tanh(x[:, 1] @ W + h1 @ U + b)
    out = rnn.run(**inputs)
    np.testing.assert_allclose(out["h"][:, 0], h1, rtol=1e-15, atol=1e-15)
    np.testing.assert_allclose(out["h"][:, 1], h2, rtol=1e-15, atol=1e-15)
    np.testing.assert_allclose(out["dz"], out["dh"] * (1 - out["h"] ** 2), rtol=1e-15, atol=1e-15)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_is_kept(dtype):
    inputs = {k: v.astype(dtype) for k, v in rb.make_inputs(FD_CASES[3]).items()}
    out = rnn.run(**inputs)
    assert {k: out[k].dtype for k in out} == {k: np.dtype(dtype) for k in out}
    assert set(rnn.CONTRACT_KEYS) <= set(out)


def _bad(**changes):
    inputs = rb.make_inputs(Case("-", 2, 3, 4, 5, "f64", 0))
    for k, fn in changes.items():
        inputs[k] = fn(inputs[k])
    return inputs


def _with(value, flat_index):
    def put(a):
        a = a.copy()
        a.flat[flat_index] = value
        return a

    return put


BAD_INPUTS = [
    ("W-ndim", _bad(W=lambda a: a[None]), ValueError, r"W: expected 2 dimensions, got 3"),
    ("U-shape", _bad(U=lambda a: a[:, :4]), ValueError, r"U: expected shape \(H, H\) = \(5, 5\), got \(5, 4\)"),
    ("b-shape", _bad(b=lambda a: a[:3]), ValueError, r"b: expected shape \(H,\) = \(5,\), got \(3,\)"),
    ("h0-batch", _bad(h0=lambda a: a[:1]), ValueError, r"h0: expected shape \(B, H\) = \(2, 5\), got \(1, 5\)"),
    ("gh-steps", _bad(gh=lambda a: a[:, :2]), ValueError, r"gh: expected shape \(B, T, H\) = \(2, 3, 5\)"),
    ("T-zero", _bad(x=lambda a: a[:, :0], gh=lambda a: a[:, :0]), ValueError, r"x: expected at least one time step"),
    ("mixed-dtype", _bad(U=lambda a: a.astype(np.float32)), TypeError, r"mixed dtypes: .*U=float32"),
    ("int-dtype", _bad(b=lambda a: a.astype(np.int64)), TypeError, r"b: expected dtype float32 or float64, got int64"),
    ("list", _bad(x=lambda a: a.tolist()), TypeError, r"x: expected a numpy.ndarray .* got list"),
    ("nan", _bad(gh=_with(np.nan, 3)), ValueError, r"gh: expected finite values, found nan at index \(0, 0, 3\)"),
    ("inf", _bad(h0=_with(np.inf, 6)), ValueError, r"h0: expected finite values, found inf at index \(1, 1\)"),
]


@pytest.mark.parametrize("inputs,exc,match", [b[1:] for b in BAD_INPUTS], ids=[b[0] for b in BAD_INPUTS])
def test_bad_argument_is_named(inputs, exc, match):
    with pytest.raises(exc, match=match):
        rnn.run(**inputs)


# --- remaps --------------------------------------------------------------------------------

REMAP_SHAPES = [(1, 1), (3, 2), (4, 5)]  # (D, H), D != H included


def _params(D, H, seed=0):
    p = rb.make_inputs(Case("-", 2, 3, D, H, "f64", seed))
    return {k: p[k] for k in ("W", "U", "b")}


@pytest.mark.parametrize("D,H", REMAP_SHAPES, ids=[f"D{d}-H{h}" for d, h in REMAP_SHAPES])
def test_keras_round_trip(D, H):
    p = _params(D, H)
    k = rnn_layout.to_keras(p)
    assert (k["kernel"].shape, k["recurrent_kernel"].shape, k["bias"].shape) == ((D, H), (H, H), (H,))
    assert np.array_equal(k["kernel"], p["W"]) and np.array_equal(k["recurrent_kernel"], p["U"])
    back = rnn_layout.from_keras(k)
    assert all(np.array_equal(back[n], p[n]) for n in p)
    grads = rnn_layout.grads_from_keras(k)
    assert all(np.array_equal(grads["d" + n], p[n]) for n in p)


@pytest.mark.parametrize("D,H", REMAP_SHAPES, ids=[f"D{d}-H{h}" for d, h in REMAP_SHAPES])
def test_torch_round_trip(D, H):
    p = _params(D, H)
    t = torch_rnn_layout.to_torch(p)
    assert (t["weight_ih"].shape, t["weight_hh"].shape) == ((H, D), (H, H))
    assert np.array_equal(t["weight_ih"], p["W"].T) and np.array_equal(t["weight_hh"], p["U"].T)
    assert np.array_equal(t["bias_ih"], p["b"] / 2) and np.array_equal(t["bias_hh"], p["b"] / 2)
    back = torch_rnn_layout.from_torch(t)
    assert all(np.array_equal(back[n], p[n]) for n in p)


def test_torch_gradients_map_back_by_the_chain_rule():
    """db averages the two bias gradients (b feeds each through a factor 1/2); each is
    also reported on its own."""
    g = _params(3, 2, seed=1)
    d_ih, d_hh = g["b"], -2 * g["b"]
    back = torch_rnn_layout.grads_from_torch(
        {"weight_ih": g["W"].T, "weight_hh": g["U"].T, "bias_ih": d_ih, "bias_hh": d_hh}
    )
    assert np.array_equal(back["dW"], g["W"]) and np.array_equal(back["dU"], g["U"])
    assert np.array_equal(back["db"], (d_ih + d_hh) / 2)
    assert np.array_equal(back["db_ih"], d_ih) and np.array_equal(back["db_hh"], d_hh)


def _fake_torch(delta):
    """An oracle that is the reference seen through the torch remap, with bias_ih's
    gradient off by +delta and bias_hh's by -delta: their average db stays exact."""
    def runner(inputs):
        r = rnn.run(**inputs)
        shift = delta * np.abs(r["db"]).max()
        grads = {"weight_ih": r["dW"].T, "weight_hh": r["dU"].T,
                 "bias_ih": r["db"] + shift, "bias_hh": r["db"] - shift}
        return dict(h=r["h"], dx=r["dx"], dh0=r["dh0"], **torch_rnn_layout.grads_from_torch(grads))

    return Oracle("fake-torch", "rnn", "numpy", "reference through the torch remap",
                  observes=RNN_ORACLES["torch-rnn-layer"].observes, runner=runner)


@pytest.mark.parametrize("delta", [0.0, 1e-3])
def test_each_torch_bias_gradient_is_checked(delta):
    assert {"db_ih", "db_hh"} <= set(RNN_ORACLES["torch-rnn-cell"].observes)
    assert {"db_ih", "db_hh"} <= set(RNN_ORACLES["torch-rnn-layer"].observes)
    report = rb.run_case(Case("fake-torch", 3, 7, 4, 5, "f64", 0), _fake_torch(delta))
    if delta == 0:
        assert report.ok, report.message()
    else:
        assert not report.ok
        assert {r.quantity for r in report.failures} == {"db_ih", "db_hh"}, report.message()
        assert "db" in report.message().split("matching: ")[1].split(", ")


# --- the battery, the reference as candidate -------------------------------------------------


def _param(case):
    marker = FRAMEWORKS[RNN_ORACLES[case.oracle].framework].marker
    return pytest.param(case, id=case.id, marks=getattr(pytest.mark, marker))


def _oracle(case, request):
    from conftest import require_framework

    oracle = RNN_ORACLES[case.oracle]
    require_framework(request.config, oracle.framework)
    return oracle


def test_case_ids_and_inputs_are_deterministic():
    case = Case("torch-rnn-cell", 3, 7, 4, 5, "f64", 0)
    assert case.id == "torch-rnn-cell-B3-T7-D4-H5-f64-s0"
    a, b = rb.make_inputs(case), rb.make_inputs(case._replace(oracle="keras-rnn-layer"))
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(a["W"], rb.make_inputs(case._replace(seed=1))["W"])
    zero, sat = rb.make_inputs(case._replace(regime="zero")), rb.make_inputs(case._replace(regime="sat"))
    assert not np.any(zero["h0"]) and np.any(a["h0"])
    assert np.abs(rnn.run(**sat)["h"]).mean() > np.abs(rnn.run(**a)["h"]).mean()
    with pytest.raises(ValueError, match=r"regime: expected one of \['sat', 'std', 'zero'\], got 'longmem'"):
        rb.make_inputs(case._replace(regime="longmem"))


@pytest.mark.parametrize("case", [_param(c) for c in rb.grid() if c.T == 3 and c.regime == "std"])
def test_oracle_keeps_the_input_dtype(case, request):
    out = _oracle(case, request).run(rb.case_inputs(case))
    assert {k: v.dtype for k, v in out.items()} == {k: case.np_dtype for k in out}


# --- the course style ----------------------------------------------------------------------


@pytest.mark.parametrize("case", [_param(c) for c in rb.grid(dtypes=("f64",))])
def test_course_style_matches_oracle(case, request):
    report = rb.run_case(case, _oracle(case, request), course_rnn.run, "examples.course_rnn:run")
    assert report.ok, report.message()


@pytest.mark.parametrize("case", [_param(c) for c in rb.grid(dtypes=("f32",)) if c.T == 7])
def test_course_sequence_adapter_matches_oracle(case, request):
    report = rb.run_case(case, _oracle(case, request), course_rnn.run_sequence,
                         "examples.course_rnn:run_sequence")
    assert report.ok, report.message()
    assert "dh" not in {r.quantity for r in report.results}  # declared unobservable


@pytest.mark.parametrize("dtype", ["f32", "f64"])
def test_course_sequence_functions_match_the_reference(dtype):
    """rnn_forward / rnn_backward on x (D, m, T), transposed back, against the reference in
    the same dtype under the battery's tolerance policy; y_pred is the column softmax."""
    case = Case("reference-lstm", 3, 9, 4, 5, dtype, 2)
    inputs, truth, yard = view(case, RNN)
    rng = np.random.default_rng(5)
    parameters = dict(course_rnn.to_style(inputs["W"], inputs["U"], inputs["b"]),
                      Wya=rng.standard_normal((6, 5)).astype(case.np_dtype),
                      by=rng.standard_normal((6, 1)).astype(case.np_dtype))
    a, y_pred, caches = course_rnn.rnn_forward(inputs["x"].transpose(2, 0, 1), inputs["h0"].T, parameters)
    g = course_rnn.rnn_backward(inputs["gh"].transpose(2, 0, 1), caches)
    actual = dict(h=a.transpose(1, 2, 0), dx=g["dx"].transpose(1, 2, 0), dh0=g["da0"].T,
                  dW=g["dWax"].T, dU=g["dWaa"].T, db=g["dba"][:, 0])
    assert {k: v.dtype for k, v in actual.items()} == {k: case.np_dtype for k in actual}
    report = compare(case.id, actual, rnn.run(**inputs), truth, yard, tuple(actual), case.np_dtype,
                     case.B, case.T, RNN, "course_rnn sequence functions", "reference")
    assert report.ok, report.message()
    z = np.einsum("vh,hmt->vmt", parameters["Wya"], a) + parameters["by"][:, :, None]
    expected_y = np.exp(z) / np.exp(z).sum(axis=0)
    # The same exp, sum and division, with and without the max shift: a few roundings apart.
    np.testing.assert_allclose(y_pred, expected_y, rtol=16 * np.finfo(case.np_dtype).eps, err_msg="y_pred")


def _variant(old, new):
    """The course style with one textual edit, loaded as its own module."""
    return mutants.edited(course_rnn, old, new, "course-rnn-variant")


@pytest.mark.parametrize("oracle_name", ["torch-rnn-layer", "keras-rnn-layer"])
def test_course_da0_none_is_caught(oracle_name, request):
    """The well-known slip: rnn_backward returns da0 = None instead of the gradient that
    flows out of step 0."""
    from conftest import precise_dtype

    case = Case(oracle_name, 3, 7, 4, 5, precise_dtype(RNN_ORACLES[oracle_name]), 0)
    variant = _variant("da0 = da_prevt", "da0 = None")
    with pytest.raises(CandidateError, match=r"course_rnn variant: 'dh0' is a NoneType; expected a numpy.ndarray"):
        rb.run_case(case, _oracle(case, request), variant.run_sequence, "course_rnn variant")


# (edit, adapter, first divergence in the report, the quantities it makes wrong)
GRADIENT_BUGS = [
    pytest.param(("gh[:, t] + da_prev.T", "gh[:, t]"), "run", "dh t=5:",
                 {"dh", "dx", "dh0", "dW", "dU", "db", "db_ih", "db_hh"}, id="da_prev-without-recurrent-term"),
    pytest.param(('dWaa += gradients["dWaa"]', 'dWaa = gradients["dWaa"]'), "run_sequence", "dU:",
                 {"dU"}, id="dWaa-from-last-step-only"),
]


@pytest.mark.parametrize("oracle_name", ["torch-rnn-cell", "keras-rnn-cell"])
@pytest.mark.parametrize("edit,adapter,first,wrong", GRADIENT_BUGS)
def test_course_gradient_bug_is_located(edit, adapter, first, wrong, oracle_name, request):
    """The battery names the first divergence (quantity and step) and nothing the bug
    leaves right: T = 7, so a missing recurrent term first shows in dh at t = 5 = T-2."""
    from conftest import precise_dtype

    case = Case(oracle_name, 3, 7, 4, 5, precise_dtype(RNN_ORACLES[oracle_name]), 0)
    oracle = _oracle(case, request)
    report = rb.run_case(case, oracle, getattr(_variant(*edit), adapter), "course_rnn variant")
    text = report.message()
    assert not report.ok
    assert f"first divergence: {first}" in text, text
    assert {r.quantity for r in report.failures} == wrong & set(oracle.observes), text
    assert "matching: h" in text, text
