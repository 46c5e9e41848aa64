"""A candidate module that parses the command line at import, as a script would."""
import argparse

parser = argparse.ArgumentParser()
parser.add_argument("--epochs", type=int, default=1)
ARGS = parser.parse_args()  # under pytest the command line holds pytest's options


def run(**kw):
    from gatecheck.reference import lstm

    return lstm.run(**kw)
