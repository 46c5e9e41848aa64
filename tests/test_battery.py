"""The battery: the candidate (by default each family's reference) against every oracle of
its family, on every case of the profile, quantity by quantity (see gatecheck.battery and
gatecheck.compare). A failure names the first divergence; the terminal summary adds the
diagnosis of the first failing case (gatecheck.diagnose)."""

import pytest

from gatecheck.battery import family_of, run_case
from gatecheck.candidate import CandidateError
from gatecheck.results import summarize


def test_candidate_matches_oracle(battery_case, oracle, candidate, record_property):
    case = battery_case
    fn, spec = candidate
    family = family_of(oracle)
    try:
        report = run_case(case, oracle, fn, candidate_name=spec)
    except CandidateError as exc:
        record_property("gatecheck", summarize(case, error=str(exc), family=family.name))
        pytest.fail(f"{case.id}: {exc}", pytrace=False)
    record_property("gatecheck", summarize(case, report, family=family.name))
    if not report.ok:
        pytest.fail(report.message(), pytrace=False)
