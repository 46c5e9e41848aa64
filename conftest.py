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
