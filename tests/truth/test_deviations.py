"""Known deviations (gatecheck/truth/deviations.py): the table is well formed, an entry applies only in
its version range and condition, and a comparison with a deviating oracle is judged by what
failed: exactly the entry's quantities, nothing (not reproduced), or more (beyond)."""

import dataclasses

import numpy as np
import pytest

from gatecheck.core.cases import Case
from gatecheck.engines import ORACLES
from gatecheck.families import get
from gatecheck.run import outcome as oc
from gatecheck.run.battery import expected_of, judge
from gatecheck.truth import deviations
from gatecheck.truth.views import view
from tests import inprocess  # (at collection: it imports torch, which pytester must not drop)

TORCH_CELL = ORACLES["torch-lstm-cell"]
CASE = Case("reference-lstm", 2, 5, 3, 4, "f64", 0)


def entry(**kw):
    fields = dict(oracle="reference-lstm", applies=lambda c: c.T == 5, cases="T = 5", quantities=("dW",), dist="numpy",
                  since="0", until=None, cause="a made-up difference", upstream="none found: a test entry")
    fields.update(kw)
    return deviations.Deviation(**fields)


def test_the_table_is_well_formed():
    deviations.check_table()


def test_malformed_entries_are_named():
    with pytest.raises(ValueError, match="oracle 'nope' is not registered"):
        deviations.check_table([entry(oracle="nope")])
    with pytest.raises(ValueError, match="quantities"):
        deviations.check_table([entry(quantities=())])
    with pytest.raises(ValueError, match="upstream: expected a sentence"):
        deviations.check_table([entry(upstream=" ")])
    with pytest.raises(ValueError, match="when_text"):
        deviations.check_table([entry(when=lambda: True)])


def test_an_entry_applies_in_its_cases_range_and_condition_only():
    versions = {"numpy": "2.4.6"}
    assert deviations.for_case(CASE, versions, [entry()]) is not None
    assert deviations.for_case(CASE._replace(T=6), versions, [entry()]) is None
    assert deviations.for_case(CASE, versions, [entry(since="2.5")]) is None
    assert deviations.for_case(CASE, versions, [entry(until="2.4.6")]) is None
    assert deviations.for_case(CASE, versions, [entry(until="2.4.7")]) is not None
    assert deviations.for_case(CASE, {"numpy": "not installed"}, [entry()]) is None
    assert deviations.for_case(CASE, versions, [entry(when=lambda: False, when_text="never")]) is None
    with pytest.raises(ValueError, match="2 deviations apply"):
        deviations.for_case(CASE, versions, [entry(), entry()])


def _report(change):
    """The reference against its own oracle, with the candidate's output changed by ``change``."""
    family = get("lstm")
    v = view(CASE, family)
    expected = expected_of(CASE, ORACLES["reference-lstm"], family, v)

    def candidate(**inputs):
        out = dict(family.run(**inputs))
        change(out)
        return out

    return judge(CASE, ORACLES["reference-lstm"], v, expected, candidate, "test", family)


def _bump(*names):
    def change(out):
        for n in names:
            out[n] = out[n] + 1e-3 * (1 + np.abs(out[n]))
    return change


def test_outcome_is_judged_by_what_failed():
    dev = entry(quantities=("dW", "dU"))
    assert deviations.outcome(_report(_bump("dW")), dev) == "as recorded"
    assert deviations.outcome(_report(_bump("dW", "dU")), dev) == "as recorded"
    assert deviations.outcome(_report(_bump()), dev) == "not reproduced"
    assert deviations.outcome(_report(_bump("dW", "h")), dev) == "beyond"


def test_a_candidate_is_not_judged_on_the_deviating_quantities_only():
    def status(report):
        return oc.decide(CASE, ORACLES["reference-lstm"], report).status

    report = _report(_bump("dW"))
    assert report.deviation is None and status(report) == oc.MISMATCH
    report.deviation = entry()
    assert status(report) == oc.MATCH
    beyond = _report(_bump("dW", "dx"))
    beyond.deviation = entry()
    assert status(beyond) == oc.MISMATCH


def test_describe_names_oracle_quantities_versions_and_issue():
    text = deviations.describe(entry(since="1.2", until="1.4", when=lambda: True, when_text="on backend X"))
    for part in ("reference", "dW", "T = 5", "numpy 1.2 and later, before numpy 1.4", "on backend X",
                 "a made-up difference", "[none found: a test entry]"):
        assert part in text


# --- the battery with a deviation: expected failure as recorded, a failure when it does not reproduce ---------

def _battery(pytester, monkeypatch, table, oracle_change=None):
    monkeypatch.setattr(deviations, "DEVIATIONS", tuple(table))
    o = TORCH_CELL

    def runner(inputs, options=()):
        out = o.runner(inputs, options)
        oracle_change(out)
        return out

    monkeypatch.setitem(ORACLES, "torch-lstm-cell", dataclasses.replace(o, runner=runner) if oracle_change else o)
    return inprocess.runpytest(pytester, monkeypatch, str(inprocess.REPO / "tests" / "battery" / "test_battery.py"), "-ra",
                               "-k", "torch-lstm-cell-B3-T7-D4-H5-f64-s0 and not sat and not zero and not longmem and not nobias")


def test_battery_expects_a_recorded_deviation_and_fails_when_it_does_not_reproduce(pytester, monkeypatch):
    dev = entry(oracle="torch-lstm-cell", applies=lambda c: c.T == 7 and c.dtype == "f64", cases="T = 7, float64",
                quantities=("dW",), dist="torch")
    result = _battery(pytester, monkeypatch, [dev], _bump("dW"))
    result.assert_outcomes(xfailed=1)
    assert "known deviation of torch-lstm-cell on dW" in result.stdout.str()
    assert "1 battery cases: 1 as recorded" in result.stdout.str()

    result = _battery(pytester, monkeypatch, [dev])  # the engine matches: the entry is stale
    result.assert_outcomes(failed=1)
    assert "it did not reproduce" in result.stdout.str()

    result = _battery(pytester, monkeypatch, [dev], _bump("dW", "dU"))  # more than recorded
    result.assert_outcomes(failed=1)
    assert "beyond the known deviation" in result.stdout.str()


def test_check_reports_the_worst_ratio_of_what_it_judged(monkeypatch):
    """A candidate that passes beside a deviating oracle: its record passes, and its worst fraction of
    the allowance (the PASS headline's) leaves the deviation's quantities out, as its verdict does."""
    from gatecheck.tools import check as chk

    family = get("lstm")

    def candidate(**inputs):
        out = dict(family.run(**inputs))
        _bump("dW")(out)
        return out

    monkeypatch.setattr(deviations, "DEVIATIONS", (entry(),))
    (record,) = chk.run_cases(candidate, "test", family, [CASE])
    assert record["status"] == "match" and "known deviation of reference-lstm on dW" in record["deviation"]
    assert record["ratio"] < 1, record["ratio"]
    report = _report(_bump("dW"))
    assert {r.quantity for r in deviations.judged(report)} == {r.quantity for r in report.results} - {"dW"}
    report.deviation = None
    assert deviations.judged(report) == report.results  # no entry: every result


def test_malformed_models_are_named():
    with pytest.raises(ValueError, match="explained_by: expected a function"):
        deviations.check_table([entry(explained_by="bh[n] = 0")])


_MODELLED = [d for d in deviations.DEVIATIONS if d.explained_by is not None]


@pytest.mark.parametrize("dev", _MODELLED, ids=[d.oracle for d in _MODELLED])
def test_an_entry_model_explains_its_cases_and_a_model_that_explains_nothing_fails(dev, request):
    """On the first ci case an entry with a model covers (else the first nightly case: an entry of rare cases),
    the oracle matches the reference on the model's inputs and options or record (gatecheck.run.battery.explained),
    and does not with a model that changes nothing."""
    from conftest import require_framework
    from gatecheck.run.battery import explained
    from gatecheck.run.grid import grid
    from gatecheck.truth.views import family_of

    oracle = ORACLES[dev.oracle]
    require_framework(request.config, oracle.framework)
    case = next(c for profile in ("ci", "nightly") for c in grid(profile, family_of(oracle), [oracle.name])
                if dev.applies(c))
    assert deviations.for_case(case) == dev
    assert explained(case, oracle, dev).ok, explained(case, oracle, dev).message()
    assert not explained(case, oracle, dev._replace(explained_by=lambda inputs: inputs, computes=None, model=None)).ok


@pytest.mark.parametrize("name", ["keras-lstm-cell", "flax-lstm"])
def test_the_flush_model_explains_a_cell_state_subnormal_in_float32(name, request):
    """A case (found by specificity at 1000 seeds) whose cell state is 2.1e-39 on one unit: a float32 subnormal that
    the engine flushes to 0 (relu's slope 0) while NumPy's float32 keeps it (slope 1). The entry's model, relu with
    the kink moved to float32's smallest normal number, explains it when it is run with its own activation, not
    the case's relu (what a model called with the case's keywords computed: the difference left unexplained)."""
    from conftest import require_framework
    from gatecheck.core.cases import Case
    from gatecheck.run.battery import explained

    oracle = ORACLES[name]
    require_framework(request.config, oracle.framework)
    case = Case(name, 2, 16, 6, 6, "f32", 356, "std", ("relu",))
    dev = deviations.for_case(case)
    assert dev is not None and dev.applies(case)
    assert explained(case, oracle, dev).ok, explained(case, oracle, dev).message()
    assert not explained(case, oracle, dev._replace(model=None)).ok
