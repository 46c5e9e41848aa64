"""The battery as a pytest test: the candidate (by default each family's reference) against every
oracle of its family, on every case of the profile, quantity by quantity (gatecheck.run.battery,
gatecheck.core.compare). Each case's outcome is decided by gatecheck.run.outcome and shown by the plugin
(gatecheck.frontends.pytest_plugin.show); the terminal summary counts the outcomes and adds the diagnosis of
the first mismatching case (gatecheck.tools.diagnose).

The module is collected by the plugin when ``--gatecheck-candidate`` is given (in any folder), by
``pytest --pyargs gatecheck.frontends.pytest_battery``, or from a test module that imports its three names
(gatecheck's own ``tests/battery/test_battery.py``). Its name matches none of pytest's default test-file
patterns, so an installed gatecheck is never collected by accident.
"""

import pytest

from gatecheck.engines import ORACLES
from gatecheck.frontends import pytest_plugin
from gatecheck.run import outcome
from gatecheck.tools.results import summarize
from gatecheck.truth.views import family_of


def pytest_generate_tests(metafunc):
    pytest_plugin.parametrize(metafunc)


@pytest.fixture
def candidate(request):
    """(callable or None for the family's reference, name) of the implementation under test;
    fails the test if it did not load."""
    if request.config.gatecheck_candidate_error:
        pytest.fail(request.config.gatecheck_candidate_error, pytrace=False)
    return request.config.gatecheck_candidate, request.config.gatecheck_candidate_spec or "reference"


def test_candidate_matches_oracle(battery_case, candidate, record_property, request):

    fn, spec = candidate
    oracle = ORACLES[battery_case.oracle]
    o = outcome.run(battery_case, oracle, fn, spec)  # fn None: the reference, which must reproduce a deviation
    record_property("gatecheck", summarize(o))
    pytest_plugin.show(o, oracle, request.config, family_of(oracle))
