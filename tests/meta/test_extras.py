"""The extras (pyproject.toml): one per engine, ``all`` naming every engine's, ``dev`` every engine and the tools;
the install pages (README.md, docs/guide/quickstart.md) name each engine's extra. Adding an engine's extra
without listing it in ``all`` (what CI, the nightly and the README's install take) fails here."""

import re
import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[2]
TOOLS = {"test", "report", "lint", "docs"}
GROUPS = {"all", "dev"}


def _extras():
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]


def _named(requirement):
    found = re.fullmatch(r"gatecheck\[([a-z0-9,\-]+)\]", requirement)
    assert found, f"expected gatecheck[...], got {requirement!r}"
    return found.group(1).split(",")


def test_all_is_every_engine_and_dev_every_engine_and_tool():
    extras = _extras()
    engines = set(extras) - TOOLS - GROUPS
    (everything,) = extras["all"]
    assert sorted(_named(everything)) == sorted(engines)
    (dev,) = extras["dev"]
    assert set(_named(dev)) == {"all"} | TOOLS


def test_the_install_pages_name_every_engine_extra():
    engines = set(_extras()) - TOOLS - GROUPS
    for page in ("README.md", "docs/guide/quickstart.md"):
        text = (ROOT / page).read_text()
        missing = sorted(e for e in engines | GROUPS if f"`{e}`" not in text)
        assert not missing, f"{page} does not name the extras {missing}"
