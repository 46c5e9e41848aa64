"""The battery: the candidate (by default the reference) against every oracle, on every
case of the profile, quantity by quantity (see gatecheck.battery and gatecheck.compare).
A failure carries the diagnosis (gatecheck.diagnose) after the first divergence."""

import pytest

from gatecheck.battery import run_case
from gatecheck.candidate import CandidateError
from gatecheck.diagnose import diagnose
from gatecheck.results import summarize


def test_candidate_matches_oracle(battery_case, oracle, candidate, record_property):
    case = battery_case
    fn, spec = candidate
    try:
        report = run_case(case, oracle, fn, candidate_name=spec)
    except CandidateError as exc:
        record_property("gatecheck", summarize(case, error=str(exc)))
        pytest.fail(f"{case.id}: {exc}", pytrace=False)
    record_property("gatecheck", summarize(case, report))
    if not report.ok:
        pytest.fail(report.message() + "\n\n" + diagnose(fn, case, spec)[1], pytrace=False)
