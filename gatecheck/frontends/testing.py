"""Helpers for tests that run engines under pytest: a framework's import gated (a skip with the
reason, or a failure where GATECHECK_REQUIRE requires it), the most precise dtype an oracle runs,
and a skip where an oracle has a known deviation. gatecheck's own suite imports them; so may a
user's tests of their own engines."""

import pytest

from gatecheck.frontends.pytest_plugin import require_framework  # noqa: F401 (the gate the battery's plugin uses)
from gatecheck.truth import deviations


def precise_dtype(oracle, options=()):
    """The most precise dtype an oracle runs a set of options in: "f64", or "f32" where it declines float64
    (the Keras oracles on JAX and PyTorch: gatecheck.engines.keras.backends). A test of a mechanism that
    shows in either dtype (a layout, a flip, a gross bug) takes it."""
    return "f64" if oracle.offers(options, "f64") else "f32"


def skip_where_deviating(case):
    """Skip a test of an oracle's exact agreement on a case where the oracle has a known deviation
    (gatecheck.truth.deviations: on this backend or version it differs there), with the entry as the reason."""

    found = deviations.for_case(case)
    if found:
        pytest.skip(f"{case.id}: {deviations.describe(found)}")
