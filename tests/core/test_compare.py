"""The comparison helper itself: it finds planted errors, says where, and points at the
first divergence; broken references (mutants) are reported at the right quantity and step."""

import re

import numpy as np
import pytest

from gatecheck.core import mutants
from gatecheck.core.cases import Case
from gatecheck.core.compare import compare, contract_value
from gatecheck.engines import ORACLES
from gatecheck.families.lstm.record import LSTM, QUANTITIES
from gatecheck.reference import lstm
from gatecheck.run.battery import run_case
from gatecheck.truth.views import case_inputs

CASE = Case("reference-lstm", 2, 5, 3, 4, "f64", 0)


def reference_view(case=CASE):
    inputs = case_inputs(case, LSTM)
    out = lstm.run(**inputs)
    names = [q for q in QUANTITIES if q not in ("db_ih", "db_hh")]
    values = {q: contract_value(out, q, QUANTITIES) for q in names}
    yard = {q: np.zeros_like(v) for q, v in values.items()}
    return names, values, yard


def run_compare(actual, expected, names, yard, case=CASE):
    return compare(case.id, actual, expected, expected, yard, names, case.np_dtype, case.B, case.T, LSTM)


def test_identical_results_match():
    names, values, yard = reference_view()
    report = run_compare(values, values, names, yard)
    assert report.ok and report.worst_ratio() == 0.0
    assert "matching: c, h, cT, dh, dc, dx, dh0, dc0, dW, dU, db" in report.message()


def test_planted_error_is_located():
    names, values, yard = reference_view()
    actual = {k: v.copy() for k, v in values.items()}
    actual["dU"][2, 1, 3] += 1e-6
    report = run_compare(actual, values, names, yard)
    assert not report.ok
    first = report.failures[0]
    assert (first.quantity, first.label, first.index, first.n_bad) == ("dU", "gate g", (2, 1, 3), 1)
    msg = report.message()
    assert msg.startswith(f"{CASE.id}: candidate differs from oracle")
    assert "first divergence: dU gate g: 1/16 mismatched" in msg
    assert "at [gate=g, k=1, j=3]" in msg and "allowed" in msg and "rel " in msg


def test_first_divergence_follows_computation_order():
    """Backward errors at t=1 and t=3: the first divergence is t=3 (BPTT runs from T-1),
    a forward error at t=4 comes before both, and parameters come last."""
    names, values, yard = reference_view()
    actual = {k: v.copy() for k, v in values.items()}
    actual["dc"][0, 1, 0] += 1.0
    actual["dc"][1, 3, 2] += 1.0
    actual["dW"][0, 0, 0] += 1.0
    assert run_compare(actual, values, names, yard).failures[0].label == "t=3"
    actual["h"][0, 4, 1] += 1.0
    report = run_compare(actual, values, names, yard)
    assert [(f.quantity, f.label) for f in report.failures] == [
        ("h", "t=4"), ("dc", "t=3"), ("dc", "t=1"), ("dW", "gate i")]
    assert "dc    2 of 5 steps: t=1,3" in report.message()


def test_nan_is_a_mismatch():
    names, values, yard = reference_view()
    actual = {k: v.copy() for k, v in values.items()}
    actual["dh0"][1, 2] = np.nan
    report = run_compare(actual, values, names, yard)
    assert [(f.quantity, f.index) for f in report.failures] == [("dh0", (1, 2))]


def test_shape_mismatch_is_reported():
    names, values, yard = reference_view()
    actual = dict(values, db=values["db"][:, :2])
    report = run_compare(actual, values, names, yard)
    assert not report.ok
    assert report.problems == ["db: shape (4, 2), expected (4, 4)"]
    assert "  db: shape (4, 2), expected (4, 4)" in report.message()


def test_tolerance_scales_with_the_yardstick():
    """An error 4x the yardstick passes (factor 8); one 16x fails."""
    names, values, _ = reference_view()
    yard = {q: np.full_like(v, 1e-3) for q, v in values.items()}
    for bump, ok in ((4e-3 * 2**-29, True), (16e-3 * 2**-29, False)):
        actual = {k: v.copy() for k, v in values.items()}
        actual["c"][0, 2, 1] += bump
        # yardstick is float32-based: scaled by eps64/eps32 = 2**-29 for a float64 comparison
        assert run_compare(actual, values, names, yard).ok is ok


def _resolve(first, T):
    """'dh t=T-2' -> 'dh t=5' for T = 7."""
    return re.sub(r"T-(\d+)", lambda m: str(T - int(m.group(1))), first)


LOCATED = [m for m in LSTM.mutants if m.first and m.family != "gate-order"] + [LSTM.mutants_by_name["gate-order-ifog"]]


def _case_for(mutant, base):
    return base._replace(T=25) if mutant.needs == "T>20" else base


@pytest.mark.parametrize("mutant", LOCATED, ids=lambda m: m.name)
def test_mutant_is_located_against_the_reference(mutant):
    case = _case_for(mutant, CASE)
    names, values, yard = reference_view(case)
    broken = mutants.candidate(LSTM, mutant)(**case_inputs(case, LSTM))
    report = run_compare({q: contract_value(broken, q, QUANTITIES) for q in names}, values, names, yard, case)
    first = report.failures[0]
    assert f"{first.quantity} {first.label}" == _resolve(mutant.first, case.T), report.message()


@pytest.mark.torch
@pytest.mark.parametrize("dtype", ["f32", "f64"])
@pytest.mark.parametrize("mutant", LOCATED, ids=lambda m: m.name)
def test_mutant_is_located_against_torch(mutant, dtype, request):
    from conftest import require_framework

    require_framework(request.config, "torch")
    case = _case_for(mutant, Case("torch-lstm-cell", 3, 7, 4, 5, dtype, 0))
    report = run_case(case, ORACLES["torch-lstm-cell"], mutants.candidate(LSTM, mutant), mutant.name)
    first = report.failures[0]
    assert f"{first.quantity} {first.label}" == _resolve(mutant.first, case.T), report.message()
    assert report.message().startswith(f"{case.id}: {mutant.name} differs from torch-lstm-cell")


def test_every_tolerance_entry_has_its_reason():
    from gatecheck.core.tolerance import TOLERANCES

    for dtype, tol in TOLERANCES.items():
        assert tol.factor > 1 and tol.floor > 0 and tol.rtol > 0, dtype
        # the measurements behind it, and where the figures it leads to are computed (never restated)
        assert "benchmarks/error_table.py" in tol.why and "docs/reference/headroom.md" in tol.why, dtype


def test_a_reverse_direction_is_ordered_as_it_computes():
    """A reverse direction computes t = T-1 first (forward) and t = 0 last, so its backward pass starts
    at t = 0: a quantity of it (Quantity.reverse: a reverse layer's, a bidirectional layer's _r ones) has
    its slices in that order, and the first divergence of an error at every step is named there."""
    from gatecheck.core.compare import slices
    from gatecheck.model import options as opts

    bi = opts.under(LSTM, ("bi",))
    assert bi.quantities["h_r"].reverse and not bi.quantities["h"].reverse
    assert [t for _, t, _, _ in slices("h_r", 4, bi.quantities)] == [3, 2, 1, 0]
    assert [t for _, t, _, _ in slices("dh_r", 4, bi.quantities)] == [0, 1, 2, 3]
    assert [t for _, t, _, _ in slices("h", 4, bi.quantities)] == [0, 1, 2, 3]
    rev = opts.under(LSTM, ("rev",))
    assert all(q.reverse for q in rev.quantities.values())

    def wrong_everywhere(**kw):  # h off at every step
        out = rev.run(**kw)
        return dict(out, h=out["h"] + 1.0)

    case = Case("reference-lstm", 2, 5, 3, 4, "f64", 0, "std", ("rev",))
    report = run_case(case, ORACLES["reference-lstm"], wrong_everywhere, "wrong")
    assert report.failures[0].describe().startswith("h t=4")


def test_a_stacks_second_layer_is_ordered_after_the_first_forward_and_before_it_backward():
    """A stack computes its first layer whole (both directions), then its second; backward the other way round.
    A first layer whose forward direction goes wrong from t=2 on, and a second layer that consumes it, diverge
    first at the first layer's t=2, not at the second layer's reverse direction, whose first step (t=T-1)
    already reads the wrong output."""
    from gatecheck.core.compare import slices
    from gatecheck.model import options as opts

    stack = opts.under(LSTM, ("bi", "L2"))
    assert (stack.quantities["h_r_l1"].layer, stack.quantities["h_r"].layer) == (1, 0)
    key = {(name, t): k for name in ("h", "h_r_l1", "dh", "dh_r_l1") for k, t, _, _ in slices(name, 5, stack.quantities)}
    assert key["h", 4] < key["h_r_l1", 4] and key["dh_r_l1", 4] < key["dh", 4]
    layer = opts.under(LSTM, ("bi",))

    def wrong_from_t2(**kw):  # the first layer's forward output off from t=2, and the second layer reading it
        out = dict(stack.run(**kw))
        H = kw["h0"].shape[-1]
        out["h"] = out["h"].copy()
        out["h"][:, 2:] += 0.5
        out["y"] = np.concatenate([out["h"], out["h_r"]], axis=-1)
        second = layer.run(**{k[:-3]: v for k, v in kw.items() if k.endswith("_l1")}, x=out["y"], gh=kw["gh"])
        assert second["h"].shape[-1] == H
        return dict(out, **{k + "_l1": v for k, v in second.items() if k != "dx"})

    case = Case("reference-lstm", 2, 5, 3, 4, "f64", 0, "std", ("bi", "L2"))
    report = run_case(case, ORACLES["reference-lstm"], wrong_from_t2, "wrong")
    assert report.failures[0].describe().startswith(("c t=2", "h t=2")), report.message()
