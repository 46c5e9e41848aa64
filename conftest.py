"""pytest wiring for gatecheck's own suite: gatecheck's plugin (gatecheck.frontends.pytest_plugin: options,
markers, the case grid, framework gating, the summary) and pytester.

An installed gatecheck (``pip install -e .``) has pytest load the plugin from its ``pytest11``
entry point; from a checkout that is not installed, or installed before the entry point existed,
this file registers it, under the entry point's name, so it is never registered twice. The suite
opts in to the plugin with ``gatecheck = true`` (pyproject.toml); the helpers its tests import
from here (``require_framework`` ...) live in gatecheck.frontends.testing.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # before anything imports TensorFlow
# The suite's runs of check, verify and the Python API keep the cache of oracle outputs (gatecheck.run.cache) in a
# folder of this session's own, never in the user's cache folder; none is in use when a test starts.
if "PYTEST_XDIST_WORKER" not in os.environ:  # (the workers inherit the controller's)
    import atexit
    import shutil
    import tempfile

    os.environ["GATECHECK_CACHE_DIR"] = tempfile.mkdtemp(prefix="gatecheck-test-cache-")
    atexit.register(shutil.rmtree, os.environ["GATECHECK_CACHE_DIR"], ignore_errors=True)
os.environ.pop("GATECHECK_CACHE_IN_USE", None)

from gatecheck.frontends import pytest_plugin as _plugin
from gatecheck.frontends.pytest_plugin import battery_cases, group_scopes, xdist_scope  # noqa: F401
from gatecheck.frontends.testing import (  # noqa: F401
    precise_dtype,
    require_framework,
    skip_where_deviating,
)

pytest_plugins = ["pytester"]

ENTRY_POINT = "gatecheck"  # the plugin's name under pytest11 (pyproject.toml)


def pytest_addhooks(pluginmanager):
    """Register the plugin where pytest did not load it from the entry point (called once, when
    pytest registers this file)."""
    if not pluginmanager.is_registered(_plugin) and not pluginmanager.is_blocked(ENTRY_POINT):
        pluginmanager.register(_plugin, ENTRY_POINT)
