"""Command line: verify an LSTM without pytest.

    python -m gatecheck verify MODULE:CALLABLE [--oracle NAME] [--shape B,T,D,H]
                                               [--dtype f32|f64] [--seed N] [--regime R]
    python -m gatecheck kill-matrix [--profile ci|nightly] [--oracles A,B] [--mutants X,Y]
    python -m gatecheck sensitivity [--oracles A,B]
    python -m gatecheck specificity [--seeds 1000] [--oracles A,B]
    python -m gatecheck drift RESULTS --baseline baselines/NAME.json [--factor 4]
    python -m gatecheck baseline RESULTS --name NAME
    python -m gatecheck merge OUTPUT SHARD_RESULTS...
    python -m gatecheck report RESULTS --out DIR [--baseline baselines/NAME.json]

runs the candidate and one oracle (default: the float64 reference; or keras-cell,
keras-layer, torch-cell, torch-layer) on one case, prints the comparison, and on failure
the diagnosis: what matches, known bug shapes that explain the numbers, and a table per
time step. Exit status 0 when the candidate matches, 1 when it does not, 2 on bad usage.

``kill-matrix`` runs every mutant of gatecheck.mutants (and the correct reference) through
the battery of a profile and prints which cases kill each; exit status 0 when every
mutant is killed and the reference by nothing.
"""

import argparse
import os
import sys

from gatecheck import candidate as cand
from gatecheck.battery import run_case
from gatecheck.cases import DTYPES, PROFILES, REGIMES, Case
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
    k = sub.add_parser("kill-matrix", help="run every mutant of gatecheck.mutants through the battery")
    k.add_argument("--profile", default="ci", choices=sorted(PROFILES))
    k.add_argument("--oracles", default="", help="comma list of oracle names (default: all)")
    k.add_argument("--mutants", default="", help="comma list of mutant names (default: all)")
    for name, helptext in (("sensitivity", "smallest perturbation of a block the battery detects, per dtype"),
                           ("specificity", "the correct reference over many seeds: no failure, and the headroom")):
        p = sub.add_parser(name, help=helptext)
        p.add_argument("--oracles", default="", help="comma list of oracle names (default: all)")
        if name == "specificity":
            p.add_argument("--seeds", type=int, default=1000)
    d = sub.add_parser("drift", help="compare a results file with a baseline and flag drift")
    d.add_argument("results")
    d.add_argument("--baseline", required=True)
    d.add_argument("--factor", type=float, default=4.0, help="flag errors that grew by more than this")
    u = sub.add_parser("baseline", help="write baselines/NAME.json from a results file (explicit update)")
    u.add_argument("results")
    u.add_argument("--name", required=True)
    m = sub.add_parser("merge", help="merge the results files of a run's shards into one")
    m.add_argument("output")
    m.add_argument("inputs", nargs="+")
    r = sub.add_parser("report", help="Markdown and HTML report with plots from a results file")
    r.add_argument("results")
    r.add_argument("--out", required=True, help="folder for report.md, report.html and the plots")
    r.add_argument("--baseline", default=None, help="a baseline to show drift against")
    args = ap.parse_args(argv)
    if args.command == "report":
        from gatecheck import report
        from gatecheck.results import ResultsError

        try:
            for path in report.build(args.results, args.out, args.baseline):
                print(f"written: {path}")
            return 0
        except ResultsError as exc:
            print(f"report: {exc}", file=sys.stderr)
            return 2
    if args.command == "merge":
        from gatecheck.results import ResultsError, merge

        try:
            print(f"{merge(args.inputs, args.output)} cases written to {args.output}")
            return 0
        except ResultsError as exc:
            print(f"merge: {exc}", file=sys.stderr)
            return 2
    if args.command in ("drift", "baseline"):
        from gatecheck import drift
        from gatecheck.results import ResultsError

        try:
            if args.command == "baseline":
                print(f"baseline written: {drift.update(args.results, args.name)}")
                return 0
            if args.factor <= 1:
                ap.error(f"--factor: expected a number > 1, got {args.factor}")
            return drift.report_drift(args.results, args.baseline, args.factor)
        except ResultsError as exc:
            print(f"{args.command}: {exc}", file=sys.stderr)
            return 2
    if args.command in ("sensitivity", "specificity"):
        from gatecheck import power

        names = [n for n in args.oracles.split(",") if n] or sorted(ORACLES)
        unknown = sorted(set(names) - set(ORACLES))
        if unknown:
            ap.error(f"--oracles: unknown {unknown}; expected names from {sorted(ORACLES)}")
        if args.command == "specificity" and args.seeds < 1:
            ap.error(f"--seeds: expected a positive integer, got {args.seeds}")
        chosen = [ORACLES[n] for n in names]
        try:
            if args.command == "sensitivity":
                return power.sensitivity(chosen)
            return power.specificity(chosen, args.seeds)
        except Unavailable as exc:
            print(f"{args.command}: {exc}", file=sys.stderr)
            return 2
    if args.command == "kill-matrix":
        from gatecheck import killmatrix, mutants

        oracles = [n for n in args.oracles.split(",") if n]
        chosen = [n for n in args.mutants.split(",") if n]
        unknown = sorted(set(oracles) - set(ORACLES)) + sorted(set(chosen) - set(mutants.BY_NAME))
        if unknown:
            ap.error(f"unknown oracle or mutant names {unknown}; oracles: {sorted(ORACLES)}; "
                     f"mutants: python -c 'import gatecheck.mutants as m; print(list(m.BY_NAME))'")
        try:
            return killmatrix.run(args.profile, oracles or None, chosen or None)
        except Unavailable as exc:
            print(f"kill-matrix: {exc}", file=sys.stderr)
            return 2

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
