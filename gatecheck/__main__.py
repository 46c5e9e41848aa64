"""python -m gatecheck: the command line (gatecheck.frontends.cli)."""

from gatecheck.frontends.cli import main

if __name__ == "__main__":
    main()
