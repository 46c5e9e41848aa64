"""The battery (gatecheck/frontends/pytest_battery.py: it ships in the package, for ``pytest
--gatecheck-candidate`` in any folder) in this suite, so that ``pytest tests/battery/test_battery.py`` and
a plain ``pytest`` run it: its test, the fixture it needs and the hook that gives it its cases."""

from gatecheck.frontends.pytest_battery import (  # noqa: F401
    candidate,
    pytest_generate_tests,
    test_candidate_matches_oracle,
)
