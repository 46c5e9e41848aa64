"""pytest run in this process (``pytester.runpytest_inprocess``) for the tests of gatecheck's
pytest wiring that need no interpreter of their own: no interpreter start and no framework
import per run. A test that fakes a framework or watches a fresh process's output keeps
``runpytest_subprocess``.

The ``pytester`` fixture drops, when its test ends, the modules first imported during the
test; torch's compiled core cannot be imported twice in one process, so torch is imported here,
when the tests are collected."""

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

try:
    import torch  # noqa: F401
except ImportError as exc:
    TORCH_MISSING = f"the in-process runs select torch cases, and torch does not import: {exc}"
else:
    TORCH_MISSING = None


def runpytest(pytester, monkeypatch, *args, env=None):
    """pytest on ``args`` (paths in the repository) with the repository's rootdir, in this
    process; the settings that change the grid or the gating are cleared first, then ``env``
    is set."""
    if TORCH_MISSING:
        pytest.skip(TORCH_MISSING)
    for name in ("GATECHECK_REQUIRE", "GATECHECK_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in (env or {}).items():
        monkeypatch.setenv(name, value)
    return pytester.runpytest_inprocess(*args, "--rootdir", str(REPO), "-p", "no:cacheprovider")
