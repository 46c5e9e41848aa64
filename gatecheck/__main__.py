"""Command line.

    python -m gatecheck check MODULE:CALLABLE --family FAMILY [--profile ci|nightly] [--oracles A,B]
                                              [-n N|auto] [--verbose]
    python -m gatecheck verify MODULE:CALLABLE --family FAMILY [--oracle NAME] [--shape B,T,D,H]
                                               [--dtype f32|f64] [--seed N] [--regime R]
    python -m gatecheck kill-matrix [--family FAMILY] [--profile ci|nightly] [--oracles A,B] [--mutants X,Y]
    python -m gatecheck sensitivity [--family FAMILY] [--oracles A,B]
    python -m gatecheck specificity [--family FAMILY] [--seeds 1000] [--oracles A,B]
    python -m gatecheck drift RESULTS --baseline baselines/NAME.json [--factor 4]
    python -m gatecheck baseline RESULTS --name NAME
    python -m gatecheck merge OUTPUT SHARD_RESULTS...
    python -m gatecheck report RESULTS --out DIR [--baseline baselines/NAME.json]
    python -m gatecheck demo [--family lstm]

``check`` runs a family's whole battery (every oracle, both dtypes) for your code and
prints a short report that starts with the verdict; ``verify`` runs one case and prints
the comparison and, on a mismatch, the diagnosis; ``demo`` checks a correct and a buggy
implementation that ship with gatecheck (a first run with nothing of one's own).

Exit codes (every command):
"""

import argparse
import os
import sys

from gatecheck import candidate as cand
from gatecheck import check as chk
from gatecheck.cases import DTYPES, PROFILES, Case
from gatecheck.options import OPTIONS
from gatecheck.options import parse as parse_options
from gatecheck.families import FAMILIES
from gatecheck.families import get as get_family
from gatecheck import oracles
from gatecheck.oracles import battery_oracles, of_family, reference_oracle
from gatecheck.oracles.frameworks import Unavailable

__doc__ += "".join(f"    {code}  {meaning}\n" for code, meaning in chk.EXIT_CODES.items())


def _shape(text):
    try:
        dims = tuple(int(v) for v in text.split(","))
    except ValueError:
        dims = ()
    if len(dims) != 4 or min(dims) < 1:
        raise argparse.ArgumentTypeError(f"expected four positive integers B,T,D,H, got {text!r}")
    return dims


def _oracle_list(ap, text, family):
    """A comma list of the family's oracles (default: its battery oracles)."""
    names = [n for n in text.split(",") if n]
    valid = of_family(family.name)
    unknown = sorted(set(names) - set(valid))
    if unknown:
        ap.error(f"--oracles: unknown for the {family.name} family: {unknown}; expected names from {valid}")
    return names or battery_oracles(family.name)


def _load(ap, spec, family, timeout):
    """The candidate in a process of its own (gatecheck.isolation); a usage error if it does
    not load there."""
    from gatecheck.isolation import Isolated, timeout_value

    try:
        return Isolated(spec, family, timeout_value(timeout), what="MODULE:CALLABLE")
    except (ValueError, cand.CandidateError) as exc:
        ap.error(str(exc))


def cmd_check(ap, args):
    family = get_family(args.family)
    fn = _load(ap, args.candidate, family, args.timeout)
    try:
        n = chk.workers(args.n)
        cand.cannot_observe(fn, family)
    except (ValueError, cand.CandidateError) as exc:
        ap.error(str(exc))
    oracles = _oracle_list(ap, args.oracles, family)
    records = chk.battery(fn, args.candidate, family, args.profile, oracles, n, fn.timeout)

    def diagnosis(record):
        from gatecheck.diagnose import diagnose

        return diagnose(fn, Case(*record["case"]), family, args.candidate)[1]

    code, lines = chk.render(records, family, fn, args.candidate, args.profile, diagnosis, args.verbose, oracles)
    print("\n".join(lines))
    return code


def cmd_verify(ap, args):
    family = get_family(args.family)
    fn = _load(ap, args.candidate, family, args.timeout)
    name = args.oracle or reference_oracle(family.name).name
    if name not in of_family(family.name):
        ap.error(f"--oracle: {name!r} is not an oracle of the {family.name} family; expected one of "
                 f"{of_family(family.name)}")
    if args.regime not in family.regimes:
        ap.error(f"--regime: expected one of {sorted(family.regimes)} for the {family.name} family, got {args.regime!r}")
    oracle = oracles.ORACLES[name]
    try:
        case_options = parse_options(args.options)
    except ValueError as exc:
        ap.error(f"--options: {exc}")
    if not set(case_options) <= set(family.options):
        ap.error(f"--options: the {family.name} family defines {sorted(family.options) or 'no option'}, "
                 f"got {list(case_options)}")
    if not set(case_options) <= oracle.options:
        ap.error(f"--options: {name} does not offer {list(case_options)}; it offers {sorted(oracle.options) or 'none'}")
    declined = oracle.declined(case_options, args.dtype)
    if declined:
        ap.error(f"--options/--dtype: {name} does not run {args.dtype} with {list(case_options) or 'no options'}: "
                 f"{declined}")
    case = Case(name, *args.shape, args.dtype, args.seed, args.regime, case_options)
    records = chk.run_cases(fn, args.candidate, family, [case])
    record = records[0]
    if record["status"] == "unimplemented":
        print(f"{case.id}: not run: {record['reason']}", file=sys.stderr)
        return chk.USAGE
    if record["status"] == "skip":
        print(f"{name}: {record['reason']}", file=sys.stderr)
        return chk.USAGE
    if record["status"] == "error":
        print(f"{case.id}: {record['reason']}")
        return chk.FAIL
    if record["status"] == "unjudged":
        print(f"{case.id}: not judged: the {record['deviation']} covers every quantity {name} compares on this "
              f"case; choose another --oracle", file=sys.stderr)
        return chk.USAGE
    code, headline = chk.verdict(records, family, fn)
    if record["status"] == "pass":
        print(f"{case.id}: {args.candidate} matches {oracle.name} (worst {record['ratio']:.2g} of the allowance); "
              f"compared: {', '.join(record['compared'])}")
        if code == chk.FORWARD_ONLY:
            print(headline)
        for w in record["warnings"]:
            print(f"candidate warned: {w}")
        return code
    from gatecheck.diagnose import diagnose

    print(record["message"])
    print()
    print(diagnose(fn, case, family, args.candidate)[1])
    return chk.FAIL


def cmd_kill_matrix(ap, args):
    from gatecheck import killmatrix

    family = get_family(args.family)
    oracles = _oracle_list(ap, args.oracles, family)
    chosen = [n for n in args.mutants.split(",") if n]
    known = [m.name for _, m in killmatrix.catalogue(family)]
    unknown = sorted(set(chosen) - set(known))
    if unknown:
        ap.error(f"--mutants: unknown for the {family.name} family: {unknown}; expected names from {known}")
    try:
        return killmatrix.run(family, args.profile, oracles, chosen or None)
    except Unavailable as exc:
        print(f"kill-matrix: {exc}", file=sys.stderr)
        return 2


def cmd_power(ap, args):
    from gatecheck import power

    family = get_family(args.family)
    chosen = [oracles.ORACLES[n] for n in _oracle_list(ap, args.oracles, family)]
    try:
        if args.command == "sensitivity":
            return power.sensitivity(chosen, family)
        if args.seeds < 1:
            ap.error(f"--seeds: expected a positive integer, got {args.seeds}")
        return power.specificity(chosen, args.seeds, family)
    except Unavailable as exc:
        print(f"{args.command}: {exc}", file=sys.stderr)
        return 2


def _results_errors(command):
    """Run a results-file command; a file or path problem (a ResultsError, or an OSError
    that escaped one) is a one-line message and exit 2 (usage), never 1 (drift)."""
    from gatecheck.exit_codes import USAGE
    from gatecheck.results import ResultsError

    def wrap(fn):
        def run(ap, args):
            try:
                return fn(ap, args)
            except (ResultsError, OSError) as exc:
                print(f"{command}: {exc}", file=sys.stderr)
                return USAGE
        return run
    return wrap


@_results_errors("drift")
def cmd_drift(ap, args):
    from gatecheck import drift

    try:
        factor = drift.check_factor(args.factor)
    except ValueError as exc:
        ap.error(str(exc))
    return drift.report_drift(args.results, args.baseline, factor)


@_results_errors("baseline")
def cmd_baseline(ap, args):
    from gatecheck import drift
    from gatecheck.exit_codes import PASS

    print(f"baseline written: {drift.update(args.results, args.name, force=args.force)}")
    return PASS


@_results_errors("merge")
def cmd_merge(ap, args):
    from gatecheck.exit_codes import PASS
    from gatecheck.results import merge

    print(f"{merge(args.inputs, args.output)} cases written to {args.output}")
    return PASS


@_results_errors("report")
def cmd_report(ap, args):
    from gatecheck import report
    from gatecheck.exit_codes import PASS

    for path in report.build(args.results, args.out, args.baseline):
        print(f"written: {path}")
    return PASS


def cmd_demo(ap, args):
    from gatecheck import demo

    return demo.run(args.family)


def _family_option(p, required=False):
    p.add_argument("--family", required=required, default=None if required else "lstm", choices=sorted(FAMILIES),
                   help="the model your code implements (its contract: README, 'Contracts')"
                   + ("" if required else "; default lstm"))


def _timeout_option(p):
    from gatecheck.isolation import DEFAULT_TIMEOUT, LOAD_TIMEOUT

    p.add_argument("--timeout", default=str(DEFAULT_TIMEOUT), metavar="SECONDS",
                   help="the longest one call of your code may take (it runs in a process of its own); "
                   f"default {DEFAULT_TIMEOUT:g}; loading your module may take {LOAD_TIMEOUT:g} s or this if longer")


def parser():
    ap = argparse.ArgumentParser(prog="python -m gatecheck", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)
    c = sub.add_parser("check", help="run a family's whole battery for your code (the main job)",
                       description=chk.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    c.add_argument("candidate", metavar="MODULE:CALLABLE")
    _family_option(c, required=True)
    c.add_argument("--profile", default="ci", choices=sorted(PROFILES))
    c.add_argument("--oracles", default="", help="comma list of the family's oracles (default: its battery)")
    c.add_argument("-n", default="1", metavar="N|auto", help="processes to run the cases in (default 1)")
    c.add_argument("--verbose", action="store_true", help="the whole first failure and diagnosis, every failing case")
    _timeout_option(c)
    c.set_defaults(func=cmd_check)
    v = sub.add_parser("verify", help="one candidate on one case; the diagnosis of a failure")
    v.add_argument("candidate", metavar="MODULE:CALLABLE")
    _family_option(v)
    v.add_argument("--oracle", default=None, choices=sorted(oracles.ORACLES),
                   help="default: the family's reference, in float64")
    v.add_argument("--shape", type=_shape, default=(3, 7, 4, 5), metavar="B,T,D,H")
    v.add_argument("--dtype", default="f64", choices=sorted(DTYPES))
    v.add_argument("--seed", type=int, default=0)
    v.add_argument("--regime", default="std", help="an input regime of the family (default std)")
    v.add_argument("--options", default="", help="layer options, comma separated: " + "; ".join(
        f"{o.name} ({o.meaning})" for o in OPTIONS.values()) + " (default none)")
    _timeout_option(v)
    v.set_defaults(func=cmd_verify)
    k = sub.add_parser("kill-matrix", help="run every mutant of a family's catalogue through its battery")
    _family_option(k)
    k.add_argument("--profile", default="ci", choices=sorted(PROFILES))
    k.add_argument("--oracles", default="", help="comma list of oracle names (default: the family's battery)")
    k.add_argument("--mutants", default="", help="comma list of mutant names (default: all)")
    k.set_defaults(func=cmd_kill_matrix)
    for name, helptext in (("sensitivity", "smallest perturbation of a block the battery detects, per dtype"),
                           ("specificity", "the correct reference over many seeds: no failure, and the headroom")):
        p = sub.add_parser(name, help=helptext)
        _family_option(p)
        p.add_argument("--oracles", default="", help="comma list of oracle names (default: the family's battery)")
        if name == "specificity":
            p.add_argument("--seeds", type=int, default=1000)
        p.set_defaults(func=cmd_power)
    d = sub.add_parser("drift", help="compare a results file with a baseline and flag drift")
    d.add_argument("results")
    d.add_argument("--baseline", required=True)
    d.add_argument("--factor", type=float, default=4.0,
                   help="flag errors that grew by more than this (a finite number > 1; default 4)")
    d.set_defaults(func=cmd_drift)
    u = sub.add_parser("baseline", help="write baselines/NAME.json from a results file (explicit update)")
    u.add_argument("results")
    u.add_argument("--name", required=True, help="the file stem: letters, digits, '-', '_', and '.' between them")
    u.add_argument("--force", action="store_true",
                   help="replace an existing baseline of another profile, candidate or families, or with cases "
                   "the results lack")
    u.set_defaults(func=cmd_baseline)
    m = sub.add_parser("merge", help="merge the results files of a run's shards into one")
    m.add_argument("output")
    m.add_argument("inputs", nargs="+")
    m.set_defaults(func=cmd_merge)
    r = sub.add_parser("report", help="Markdown and HTML report with plots from a results file")
    r.add_argument("results")
    r.add_argument("--out", required=True, help="folder for report.md, report.html and the plots")
    r.add_argument("--baseline", default=None, help="a baseline to show drift against")
    r.set_defaults(func=cmd_report)
    from gatecheck import demo

    e = sub.add_parser("demo", help="check a correct and a buggy implementation that ship with gatecheck",
                       description=demo.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    e.add_argument("--family", default="lstm", choices=sorted(demo.DEMOS), help="default lstm")
    e.set_defaults(func=cmd_demo)
    return ap


def main(argv=None):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    ap = parser()
    args = ap.parse_args(argv)
    from gatecheck.exit_codes import USAGE
    from gatecheck.oracles.frameworks import threads

    try:  # the settings every command runs under, checked before any work
        threads()
    except ValueError as exc:
        print(f"{args.command}: {exc}", file=sys.stderr)
        return USAGE
    return args.func(ap, args)


def entry(argv=None):
    """``python -m gatecheck`` and the ``gatecheck`` console script: ``main``'s exit code."""
    try:
        code = main(argv)
        sys.stdout.flush()
    except BrokenPipeError:  # the reader left (`... | head`): the report could not be written; no traceback
        from gatecheck.exit_codes import USAGE

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # (the flush at exit meets no pipe)
        code = USAGE
    return code


if __name__ == "__main__":
    sys.exit(entry())
