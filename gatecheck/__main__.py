"""python -m gatecheck: the command line (gatecheck.frontends.cli)."""

import sys

from gatecheck.frontends.cli import entry

if __name__ == "__main__":
    sys.exit(entry())
