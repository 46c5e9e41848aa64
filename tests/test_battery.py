"""The battery: the candidate (by default each family's reference) against every oracle of
its family, on every case of the profile, quantity by quantity (see gatecheck.run.battery and
gatecheck.core.compare). A failure names the first divergence; the terminal summary adds the
diagnosis of the first failing case (gatecheck.tools.diagnose)."""

import pytest

from gatecheck.truth import deviations
from gatecheck.run.battery import candidate_ok, explained, run_case
from gatecheck.truth.views import family_of
from gatecheck.core.candidate import CandidateError
from gatecheck.tools.check import rerun_command
from gatecheck.tools.results import summarize


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
    dev = report.deviation
    if dev is not None and fn is None:  # a known deviation: it must reproduce exactly as recorded
        outcome = deviations.outcome(report, dev)
        if outcome == "as recorded":
            if dev.explained_by is not None:  # the entry's model must explain the whole difference
                model = explained(case, oracle, dev)
                if not model.ok:
                    pytest.fail(model.message() + f"\non the inputs of the entry's model (explained_by), the "
                                f"{deviations.describe(dev)}: it does not explain the difference", pytrace=False)
            pytest.xfail(deviations.describe(dev))
        if outcome == "not reproduced":
            pytest.fail(f"{case.id}: matches, but {deviations.describe(dev)}; it did not reproduce: the engine "
                        f"changed, or the entry is too wide (bound its cases or its version range in "
                        f"gatecheck/truth/deviations.py)", pytrace=False)
        pytest.fail(report.message() + f"\nbeyond the {deviations.describe(dev)}", pytrace=False)
    if not candidate_ok(report):
        if fn is None:  # the reference failing: a framework changed; every detail counts
            pytest.fail(report.message(), pytrace=False)
        # A candidate's failure: the case and its first divergence (hundreds of cases may fail;
        # the summary diagnoses the first one).
        lines = report.message().splitlines()[:2]
        pytest.fail("\n".join(lines + [f"whole comparison: {rerun_command(spec, family, case)}"]), pytrace=False)
