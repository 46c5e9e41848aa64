"""One outcome per case (gatecheck.run.outcome): ``decide``'s table, and every front end showing the same
status for the same cases: the pytest battery (the packaged plugin, run in a folder of its own, as a
user with no clone runs it) and its results file, ``check.run_cases``, ``verify`` and the kill
matrix, for a candidate that passes, one that fails on some cases, one that a known deviation leaves
unjudged, and the family's reference, which must reproduce that deviation as recorded."""

import importlib
import os
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from gatecheck.core.candidate import CandidateError
from gatecheck.core.cases import Case
from gatecheck.engines import ORACLES
from gatecheck.engines.frameworks import Unavailable
from gatecheck.families import FAMILIES
from gatecheck.frontends.cli import main
from gatecheck.frontends.pytest_plugin import counts
from gatecheck.run import outcome as oc
from gatecheck.run.battery import expected_of, judge
from gatecheck.run.grid import grid
from gatecheck.tools import check as chk
from gatecheck.tools import results as res
from gatecheck.tools.killmatrix import killed
from gatecheck.truth import deviations
from gatecheck.truth.views import view

REPO = Path(__file__).resolve().parents[2]

# --- decide's table ------------------------------------------------------------------------------------------

REFERENCE = ORACLES["reference-lstm"]
CASE = Case("reference-lstm", 2, 5, 3, 4, "f64", 0)


def _entry(**kw):
    fields = dict(oracle="reference-lstm", applies=lambda c: True, cases="every case", quantities=("dW",), dist="numpy",
                  since="0", until=None, cause="a made-up difference", upstream="none found: a test entry")
    return deviations.Deviation(**dict(fields, **kw))


def _report(bumped=(), deviation=None):
    """The reference judged against its own oracle, its output moved on the quantities ``bumped``."""
    family = FAMILIES["lstm"]
    v = view(CASE, family)

    def candidate(**inputs):
        out = dict(family.run(**inputs))
        for q in bumped:
            out[q] = out[q] + 1e-3 * (1 + np.abs(out[q]))
        return out

    report = judge(CASE, REFERENCE, v, expected_of(CASE, REFERENCE, family, v), candidate, "test", family)
    report.deviation = deviation
    return report


def _status(report, reference=False):
    return oc.decide(CASE, REFERENCE, report, reference).status


def test_without_a_deviation_the_comparison_decides():
    assert _status(_report()) == oc.MATCH
    assert _status(_report(["h"])) == oc.MISMATCH
    assert _status(_report(["h"]), reference=True) == oc.MISMATCH


def test_a_candidate_beside_a_deviation_is_judged_on_the_other_quantities():
    dev = _entry()
    assert _status(_report(["dW"], dev)) == oc.MATCH
    assert _status(_report(["dW", "dx"], dev)) == oc.MISMATCH
    every = _entry(quantities=tuple(q for q in FAMILIES["lstm"].quantities))
    o = oc.decide(CASE, REFERENCE, _report(["dW"], every))
    assert o.status == oc.NOT_JUDGED and "covers every quantity" in o.reason and o.ratio == 0.0


def test_the_reference_must_reproduce_a_deviation_exactly():
    dev = _entry()
    assert _status(_report(["dW"], dev), reference=True) == oc.AS_RECORDED
    assert _status(_report([], dev), reference=True) == oc.NOT_REPRODUCED
    assert _status(_report(["dW", "h"], dev), reference=True) == oc.BEYOND


def test_an_entry_whose_model_does_not_explain_the_difference_is_a_mismatch():
    """The model of the entry (``explained_by``) is checked on the case: the identity explains the
    reference oracle; a model that moves the inputs does not."""
    report = _report(["dW"])
    explains = _entry(explained_by=lambda inputs: inputs)
    report.deviation = explains
    assert _status(report, reference=True) == oc.AS_RECORDED
    report.deviation = explains._replace(explained_by=lambda inputs: dict(inputs, x=inputs["x"] * 2))
    o = oc.decide(CASE, REFERENCE, report, reference=True)
    assert o.status == oc.MISMATCH and "it does not explain the difference" in o.reason


def test_what_stopped_a_case_is_its_status():
    for error, status in ((CandidateError("raised"), oc.CANDIDATE_ERROR), (Unavailable("no torch"), oc.UNAVAILABLE),
                          (oc.Unimplemented("nobias"), oc.UNIMPLEMENTED), (oc.Declined("no f64"), oc.DECLINED)):
        o = oc.decide(CASE, REFERENCE, error)
        assert (o.status, o.reason, o.report) == (status, str(error), None)
    with pytest.raises(TypeError, match="result: expected a compare.Report"):
        oc.decide(CASE, REFERENCE, ValueError("an oracle's own bug"))


def test_run_decides_what_it_could_not_run():
    offered = frozenset()
    o = oc.run(CASE._replace(options=("nobias",)), REFERENCE, FAMILIES["lstm"].run, "mine", offered=offered)
    assert o.status == oc.UNIMPLEMENTED and "to run.options, e.g. run.options =" in o.reason
    assert oc.run(CASE, REFERENCE, FAMILIES["lstm"].run, "mine", offered=offered).status == oc.MATCH
    cache = {"numpy": "numpy is gone"}
    o = oc.run(CASE, REFERENCE, unavailable=cache)
    assert (o.status, o.reason) == (oc.UNAVAILABLE, "numpy is gone")


# --- every front end on the same cases ----------------------------------------------------------------------

def _lstm_cases():
    """Both dtypes, a standard case and its zero-state twin (where c0 = 0), on PyTorch's cell and layer."""
    return [c for c in grid("ci", FAMILIES["lstm"], ["torch-lstm-cell", "torch-lstm-layer"])
            if (c.B, c.T, c.seed) == (3, 7, 0) and c.regime in ("std", "zero") and not c.options]


def _gru_cases():
    """flax-gru: two float64 cases where its known deviation shows, and one where it does not."""
    cases = [c for c in grid("ci", FAMILIES["gru"], ["flax-gru"]) if not c.options]
    shows = [c for c in cases if c.dtype == "f64" and deviations.for_case(c)][:2]
    return shows + [next(c for c in cases if not deviations.for_case(c))]


# name: (candidate spec or None for the family's reference, family, cases, the statuses the scenario is for)
SCENARIOS = {
    "passing": ("examples.course:run", "lstm", _lstm_cases, {oc.MATCH}),
    "failing": ("examples.buggy.sequence_c0_zero:run", "lstm", _lstm_cases, {oc.MATCH, oc.MISMATCH}),
    "deviation": ("examples.course_gru:run", "gru", _gru_cases, {oc.MATCH, oc.NOT_JUDGED}),
    "reference": (None, "gru", _gru_cases, {oc.MATCH, oc.AS_RECORDED}),
}
# How pytest shows each status (gatecheck.frontends.pytest_plugin.show), as junit XML records it.
PYTEST = {oc.MATCH: "passed", oc.MISMATCH: "failed", oc.CANDIDATE_ERROR: "failed", oc.NOT_REPRODUCED: "failed",
          oc.BEYOND: "failed", oc.AS_RECORDED: "xfailed", oc.NOT_JUDGED: "skipped", oc.UNAVAILABLE: "skipped"}


def _plugin_args():
    """``-p gatecheck.frontends.pytest_plugin`` where pytest would not load the plugin from its entry point
    (a checkout not installed); nothing where it would (loading it twice is an error)."""
    from importlib.metadata import entry_points

    autoload = not os.environ.get("PYTEST_DISABLE_PLUGIN_AUTOLOAD") and any(
        ep.value == "gatecheck.frontends.pytest_plugin" for ep in entry_points(group="pytest11"))
    return [] if autoload else ["-p", "gatecheck.frontends.pytest_plugin"]


def _under_pytest(folder, spec, family, cases):
    """The battery on ``cases`` in ``folder``, outside the repository, in a fresh interpreter (no
    pytester: it would drop the frameworks this process imported): ({case id: pytest's outcome},
    {case id: status in the results file}, stdout)."""
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k not in ("GATECHECK_REQUIRE", "GATECHECK_PROFILE")}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])
    what = ["--gatecheck-candidate", spec] if spec else ["--pyargs", "gatecheck.frontends.pytest_battery"]
    argv = [sys.executable, "-m", "pytest", *_plugin_args(), *what, "--gatecheck-family", family,
            "--gatecheck-results", "results.json", "--junitxml", "junit.xml", "-p", "no:cacheprovider",
            "-k", " or ".join(f"[{c.id}]" for c in cases)]
    done = subprocess.run(argv, cwd=folder, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert (folder / "junit.xml").exists(), done.stdout[-3000:] + done.stderr[-3000:]
    shown = {}
    for test in ET.parse(folder / "junit.xml").iter("testcase"):
        case_id = test.get("name").split("[", 1)[1][:-1]
        kinds = {child.tag: child for child in test}
        skipped = kinds.get("skipped")
        shown[case_id] = ("failed" if "failure" in kinds or "error" in kinds else
                          "xfailed" if skipped is not None and skipped.get("type") == "pytest.xfail" else
                          "skipped" if skipped is not None else "passed")
    written = {c["id"]: c["status"] for c in res.load(str(folder / "results.json"))["cases"]}
    return shown, written, done.stdout


def _verify_status(spec, family, case, capsys):
    """The status ``verify`` shows for one case, read from its exit code and words."""
    code = main(["verify", spec, "--family", family, "--oracle", case.oracle, "--shape",
                 f"{case.B},{case.T},{case.D},{case.H}", "--dtype", case.dtype, "--seed", str(case.seed),
                 "--regime", case.regime])
    out, err = capsys.readouterr()
    if code == chk.PASS and f"{case.id}: {spec} matches {case.oracle}" in out:
        return oc.MATCH
    if code == chk.FAIL and f"{case.id}: {spec} differs from {case.oracle}" in out:
        return oc.MISMATCH
    if code == chk.USAGE and f"{case.id}: not judged: " in err:
        return oc.NOT_JUDGED
    return f"exit {code}: {out[:300]} {err[:300]}"


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_every_front_end_shows_the_same_status(scenario, tmp_path, capsys, request):
    from gatecheck.frontends.testing import require_framework

    spec, family_name, cases_of, intended = SCENARIOS[scenario]
    cases = cases_of()
    for framework in dict.fromkeys(ORACLES[c.oracle].framework for c in cases):
        require_framework(request.config, framework)
    family = FAMILIES[family_name]
    if spec is None:  # the reference: the one decision, taken directly, is what pytest and the file must show
        status = {c.id: oc.run(c, ORACLES[c.oracle]).status for c in cases}
    else:
        module, name = spec.split(":")
        fn = getattr(importlib.import_module(module), name)
        records = chk.run_cases(fn, spec, family, cases)
        status = {r["id"]: r["status"] for r in records}
        for c in cases:  # the kill matrix kills a candidate exactly where its outcome is a failure
            kill = killed(c, ORACLES[c.oracle], [(spec, fn)], family)[spec]
            assert (kill is not None) == (status[c.id] in oc.FAILING), (c.id, status[c.id], kill)
    assert set(status.values()) == intended, status  # the scenario has the statuses it is for
    shown, written, stdout = _under_pytest(tmp_path, spec, family_name, cases)
    assert written == status
    assert shown == {k: PYTEST[s] for k, s in status.items()}
    by_words = [dict(status=s) for s in status.values()]
    assert f"{len(cases)} battery cases: {counts(by_words)}" in stdout, stdout[-3000:]
    if spec is not None:
        for s in sorted(set(status.values())):  # verify on one case of each status
            case = next(c for c in cases if status[c.id] == s)
            assert _verify_status(spec, family_name, case, capsys) == s, case.id
