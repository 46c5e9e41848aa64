"""Command line: verify an LSTM without pytest.

    python -m gatecheck verify MODULE:CALLABLE [--oracle NAME] [--shape B,T,D,H]
                                               [--dtype f32|f64] [--seed N] [--regime R]

runs the candidate and one oracle (default: the float64 reference; or keras-cell,
keras-layer, torch-cell, torch-layer) on one case, prints the comparison, and on failure
the diagnosis: what matches, known bug shapes that explain the numbers, and a table per
time step. Exit status 0 when the candidate matches, 1 when it does not, 2 on bad usage.
"""

import argparse
import os
import sys

from gatecheck import candidate as cand
from gatecheck.battery import run_case
from gatecheck.cases import DTYPES, REGIMES, Case
from gatecheck.diagnose import REFERENCE, diagnose
from oracles import ORACLES
from oracles._frameworks import Unavailable


def _shape(text):
    try:
        dims = tuple(int(v) for v in text.split(","))
    except ValueError:
        dims = ()
    if len(dims) != 4 or min(dims) < 1:
        raise argparse.ArgumentTypeError(f"expected four positive integers B,T,D,H, got {text!r}")
    return dims


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m gatecheck", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)
    v = sub.add_parser("verify", help="verify one candidate on one case and diagnose a failure")
    v.add_argument("candidate", metavar="MODULE:CALLABLE")
    v.add_argument("--oracle", default="reference", choices=["reference"] + sorted(ORACLES))
    v.add_argument("--shape", type=_shape, default=(3, 7, 4, 5), metavar="B,T,D,H")
    v.add_argument("--dtype", default="f64", choices=sorted(DTYPES))
    v.add_argument("--seed", type=int, default=0)
    v.add_argument("--regime", default="std", choices=sorted(REGIMES))
    args = ap.parse_args(argv)

    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, "")
    try:
        fn = cand.load(args.candidate, what="MODULE:CALLABLE")
    except cand.CandidateError as exc:
        ap.error(str(exc))
    oracle = REFERENCE if args.oracle == "reference" else ORACLES[args.oracle]
    case = Case(args.oracle, *args.shape, args.dtype, args.seed, args.regime)
    try:
        report = run_case(case, oracle, fn, candidate_name=args.candidate)
    except Unavailable as exc:
        print(f"{args.oracle}: {exc}", file=sys.stderr)
        return 2
    except cand.CandidateError as exc:
        print(f"{case.id}: {exc}")
        return 1
    if report.ok:
        print(f"{case.id}: {args.candidate} matches {oracle.name} "
              f"(worst {report.worst_ratio():.2g} of the allowance)")
        return 0
    print(report.message())
    print()
    print(diagnose(fn, case, args.candidate)[1])
    return 1


if __name__ == "__main__":
    sys.exit(main())
