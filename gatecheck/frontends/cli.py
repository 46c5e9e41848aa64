"""Command line.

    python -m gatecheck check MODULE:CALLABLE --family FAMILY [--profile ci|nightly] [--oracles A,B]
                                              [--options none,nobias,bi+L2] [--dtype f32|f64]
                                              [-n N|auto] [--verbose] [--cache-dir DIR | --no-cache]
    python -m gatecheck verify MODULE:CALLABLE --family FAMILY [--oracle NAME] [--shape B,T,D,H]
                                               [--dtype f32|f64] [--seed N] [--regime R] [--options bi+L2]
                                               [--cache-dir DIR | --no-cache]
    python -m gatecheck kill-matrix [--family FAMILY] [--profile ci|nightly] [--oracles A,B] [--mutants X,Y]
    python -m gatecheck sensitivity [--family FAMILY] [--oracles A,B]
    python -m gatecheck specificity [--family FAMILY] [--seeds 1000] [--oracles A,B] [--diagnosis]
    python -m gatecheck drift RESULTS --baseline baselines/NAME.jsonl [--factor 4]
    python -m gatecheck baseline RESULTS --name NAME
    python -m gatecheck baseline --convert OLD.json
    python -m gatecheck merge OUTPUT SHARD_RESULTS...
    python -m gatecheck report RESULTS --out DIR [--baseline baselines/NAME.jsonl]
    python -m gatecheck demo [--family lstm]
    python -m gatecheck docs [--check] [--root DIR]
    python -m gatecheck cache info|clear [--cache-dir DIR]

``check`` runs a family's whole battery (every oracle, both dtypes) for your code and
prints a short report that starts with the verdict; ``verify`` runs one case and prints
the comparison and, on a mismatch, the diagnosis; ``demo`` checks a correct and a buggy
implementation that ship with gatecheck (a first run with nothing of one's own).

Exit codes (every command):
"""

import argparse
import os
import sys
from pathlib import Path

from gatecheck import engines as oracles
from gatecheck.core import candidate as cand
from gatecheck.core.cases import DTYPES, PROFILES, Case
from gatecheck.core.exit_codes import PASS, USAGE
from gatecheck.engines import of_family, reference_oracle
from gatecheck.engines.frameworks import Unavailable, threads
from gatecheck.families import FAMILIES
from gatecheck.families import get as get_family
from gatecheck.frontends import demo
from gatecheck.model import options as opts
from gatecheck.model.options import OPTIONS
from gatecheck.model.options import parse as parse_options
from gatecheck.run import cache
from gatecheck.run import outcome as oc
from gatecheck.run.grid import grid
from gatecheck.run.isolation import (
    DEFAULT_TIMEOUT,
    LOAD_TIMEOUT,
    Isolated,
    timeout_value,
)
from gatecheck.tools import baseline_file, docs, drift, killmatrix, power, report
from gatecheck.tools import check as chk
from gatecheck.tools.diagnose import diagnose
from gatecheck.tools.results import ResultsError, merge

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
    try:
        return chk.oracle_names([n for n in text.split(",") if n], family)
    except ValueError as exc:
        ap.error(f"--{exc}")


def _load(ap, spec, family, timeout):
    """The candidate in a process of its own (gatecheck.run.isolation); a usage error if it does
    not load there."""

    try:
        return Isolated(spec, family, timeout_value(timeout), what="MODULE:CALLABLE")
    except (ValueError, cand.CandidateError) as exc:
        ap.error(str(exc))


def cmd_check(ap, args):
    family = get_family(args.family)
    oracles = _oracle_list(ap, args.oracles, family)
    option_sets = None if args.options is None else args.options.split(",")
    dtypes = None if args.dtype is None else args.dtype.split(",")
    try:  # the selection is checked before the candidate loads: a bad one is a usage error naming the valid values
        selected = chk.select(grid(args.profile, family, oracles), option_sets, dtypes)
        n = chk.workers(args.n)
    except ValueError as exc:
        ap.error(f"--{exc}" if str(exc).startswith(("options:", "dtype:")) else str(exc))
    fn = _load(ap, args.candidate, family, args.timeout)
    try:
        opts.declared(fn, family)
    except cand.CandidateError as exc:
        ap.error(str(exc))
    if option_sets is not None:
        try:
            chk.declares_some(fn, selected)
        except ValueError as exc:
            ap.error(f"--{exc}")
    with cache.using(_cache_of(args)):
        records = chk.battery(fn, args.candidate, family, args.profile, oracles, n, fn.timeout, option_sets, dtypes)

    def diagnosis(record):

        return diagnose(fn, Case(*record["case"]), family, args.candidate)[1]

    profile = args.profile + "".join(f"; {name} {value}" for name, value in (("options", args.options),
                                                                           ("dtype", args.dtype)) if value)
    code, lines = chk.render(records, family, fn, args.candidate, profile, diagnosis, args.verbose, oracles,
                             chk.unexercised(fn, family, records, args.profile, option_sets))
    print("\n".join(lines))
    return code


def verify_case(ap, args):
    """(family, case) of verify's arguments: every set of layer options the family's record can be
    put under (its own and the structural ones, combined as ``gatecheck.model.options.under`` allows),
    that the oracle runs in the dtype; a usage error naming the valid values otherwise."""
    family = get_family(args.family)
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
    defined = opts.defined(family)
    if not set(case_options) <= set(defined):
        ap.error(f"--options: the {family.name} family defines {list(defined) or 'no option'}, "
                 f"got {list(case_options)}")
    try:
        opts.under(family, case_options)
    except ValueError as exc:  # a combination that is not defined
        ap.error(f"--options: {exc}")
    if not set(case_options) <= oracle.options:
        ap.error(f"--options: {name} does not offer {list(case_options)}; it offers {sorted(oracle.options) or 'none'}")
    declined = oracle.declined(case_options, args.dtype)
    if declined:
        ap.error(f"--options/--dtype: {name} does not run {args.dtype} with {list(case_options) or 'no options'}: "
                 f"{declined}")
    return family, Case(name, *args.shape, args.dtype, args.seed, args.regime, case_options)


def cmd_verify(ap, args):
    family, case = verify_case(ap, args)
    name, oracle = case.oracle, oracles.ORACLES[case.oracle]
    fn = _load(ap, args.candidate, family, args.timeout)
    with cache.using(_cache_of(args)):
        records = chk.run_cases(fn, args.candidate, family, [case])
    record = records[0]
    if record["status"] in (oc.UNIMPLEMENTED, oc.DECLINED):
        print(f"{case.id}: not run: {record['reason']}", file=sys.stderr)
        return chk.USAGE
    if record["status"] == oc.UNAVAILABLE:
        print(f"{name}: {record['reason']}", file=sys.stderr)
        return chk.USAGE
    if record["status"] == oc.CANDIDATE_ERROR:
        print(f"{case.id}: {record['reason']}")
        return chk.FAIL
    if record["status"] == oc.NOT_JUDGED:
        print(f"{case.id}: not judged: the {record['deviation']} covers every quantity {name} compares on this "
              f"case; choose another --oracle", file=sys.stderr)
        return chk.USAGE
    code, headline = chk.verdict(records, family, fn)
    if record["status"] == oc.MATCH:
        print(f"{case.id}: {args.candidate} matches {oracle.name} (worst {record['ratio']:.2g} of the allowance); "
              f"compared: {', '.join(record['compared'])}")
        if code == chk.FORWARD_ONLY:
            print(headline)
        for w in record["warnings"]:
            print(f"candidate warned: {w}")
        return code

    print(record["message"])
    print()
    print(diagnose(fn, case, family, args.candidate)[1])
    return chk.FAIL


def cmd_kill_matrix(ap, args):

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

    family = get_family(args.family)
    chosen = [oracles.ORACLES[n] for n in _oracle_list(ap, args.oracles, family)]
    try:
        if args.command == "sensitivity":
            return power.sensitivity(chosen, family)
        if args.seeds < 1:
            ap.error(f"--seeds: expected a positive integer, got {args.seeds}")
        try:
            options = parse_options(args.options)
            power.points(family, options)
            if not any(o.offers(options) for o in chosen):
                raise ValueError(f"--options: none of the oracles {[o.name for o in chosen]} runs {args.options}")
        except ValueError as exc:
            ap.error(str(exc) if str(exc).startswith("--") else f"--options: {exc}")
        if args.diagnosis:
            return power.diagnosis_specificity(args.seeds, family, options=options)
        return power.specificity(chosen, args.seeds, family, options=options)
    except Unavailable as exc:
        print(f"{args.command}: {exc}", file=sys.stderr)
        return 2


def _results_errors(command):
    """Run a results-file command; a file or path problem (a ResultsError, or an OSError
    that escaped one) is a one-line message and exit 2 (usage), never 1 (drift)."""

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

    try:
        factor = drift.check_factor(args.factor)
    except ValueError as exc:
        ap.error(str(exc))
    return drift.report_drift(args.results, args.baseline, factor)


@_results_errors("baseline")
def cmd_baseline(ap, args):

    if args.convert is not None:
        if args.results is not None or args.name is not None:
            ap.error("--convert: expected an old single-JSON baseline alone, without RESULTS or --name")
        path, n = baseline_file.convert(args.convert, force=args.force)
        print(f"baseline written: {path} ({n} cases, from {args.convert})")
        return PASS
    if args.results is None or args.name is None:
        ap.error("expected RESULTS and --name NAME (or --convert OLD.json)")
    path = drift.update(args.results, args.name, force=args.force)
    print(f"baseline written: {path}")
    old = path[:-len(baseline_file.SUFFIX)] + baseline_file.OLD_SUFFIX
    if os.path.lexists(old):
        print(f"(the baseline {old} of the old format is left: remove it)")
    return PASS


@_results_errors("merge")
def cmd_merge(ap, args):

    print(f"{merge(args.inputs, args.output)} cases written to {args.output}")
    return PASS


@_results_errors("report")
def cmd_report(ap, args):

    for path in report.build(args.results, args.out, args.baseline):
        print(f"written: {path}")
    return PASS


def _cache_of(args):
    """The cache of oracle outputs for a run that judges a candidate (gatecheck.run.cache): --cache-dir, else the
    default folder; off with --no-cache."""
    return False if args.no_cache else args.cache_dir


def cmd_cache(ap, args):
    """``cache info``: the folder, its entries and size; ``cache clear``: remove them."""
    path = Path(args.cache_dir) if args.cache_dir else cache.default_dir()
    if args.action == "clear":
        print(f"cache {path}: {cache.clear(path)} entries removed")
        return PASS
    found = cache.info(path)
    print(f"cache {found['directory']}: {found['entries']} entries, {found['bytes'] / 2**20:.1f} MiB on disk")
    return PASS


def cmd_demo(ap, args):

    return demo.run(args.family)


def cmd_docs(ap, args):
    """Write the generated docs (``--check``: say which are out of date, exit 1 if any)."""
    try:
        if args.check:
            found = docs.stale(args.root, parser())
            for rel in found:
                print(f"out of date: {rel}")
            print("docs: " + (f"{len(found)} file(s) out of date; run `python -m gatecheck docs`" if found
                              else "every generated page and region is current"))
            return chk.FAIL if found else PASS
        docs.write(args.root, parser())
    except (docs.DocsError, ResultsError) as exc:
        print(f"docs: {exc}", file=sys.stderr)
        return USAGE
    return PASS


def _family_option(p, required=False):
    p.add_argument("--family", required=required, default=None if required else "lstm", choices=sorted(FAMILIES),
                   help="the model your code implements (its contract: docs/guide/contracts.md)"
                   + ("" if required else "; default lstm"))


def _cache_options(p):

    p.add_argument("--cache-dir", default=None, metavar="DIR",
                   help="the cache of the oracles' outputs (default: the platform's cache folder, "
                   "`python -m gatecheck cache info` names it); a re-run reads the engines' outputs from it")
    p.add_argument("--no-cache", action="store_true",
                   help="compute every oracle's output afresh, and store none")


def _timeout_option(p):

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
    c.add_argument("--options", default=None, metavar="SETS",
                   help="run only the cases of these sets of layer options, comma separated: 'none' (the cases "
                   "without options), an option name, or a combination spelled 'bi+L2' (default: every set)")
    c.add_argument("--dtype", default=None, metavar="f32|f64",
                   help="run only the cases in this dtype (default: both)")
    c.add_argument("--verbose", action="store_true", help="the whole first failure and diagnosis, every failing case, every declared combination not run")
    _timeout_option(c)
    _cache_options(c)
    c.set_defaults(func=cmd_check)
    v = sub.add_parser("verify", help="one candidate on one case; the diagnosis of a failure")
    v.add_argument("candidate", metavar="MODULE:CALLABLE")
    _family_option(v)
    v.add_argument("--oracle", default=None, type=oracles.current, choices=sorted(oracles.ORACLES),
                   help="default: the family's reference, in float64")
    v.add_argument("--shape", type=_shape, default=(3, 7, 4, 5), metavar="B,T,D,H")
    v.add_argument("--dtype", default="f64", choices=sorted(DTYPES))
    v.add_argument("--seed", type=int, default=0)
    v.add_argument("--regime", default="std", help="an input regime of the family (default std)")
    v.add_argument("--options", default="", help="the case's set of layer options, 'nobias' or a combination "
                   "spelled 'bi+L2' (or 'bi,L2'): " + "; ".join(f"{o.name} ({o.meaning})" for o in OPTIONS.values())
                   + " (default none)")
    _timeout_option(v)
    _cache_options(v)
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
            p.add_argument("--options", default="", help="a set of layer options, 'relu' or 'bi+L2' (default none): "
                           "its cases on the family's grid points of that set")
            p.add_argument("--diagnosis", action="store_true", help="instead: the diagnosis on correct code (the "
                           "reference, near-identical runs, correct examples), float64: no hypothesis named")
        p.set_defaults(func=cmd_power)
    d = sub.add_parser("drift", help="compare a results file with a baseline and flag drift")
    d.add_argument("results")
    d.add_argument("--baseline", required=True)
    d.add_argument("--factor", type=float, default=4.0,
                   help="flag errors that grew by more than this (a finite number > 1; default 4)")
    d.set_defaults(func=cmd_drift)
    u = sub.add_parser("baseline", help="write baselines/NAME.jsonl from a results file (explicit update)",
                       description=baseline_file.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    u.add_argument("results", nargs="?", help="the results file (with --name)")
    u.add_argument("--name", help="the file stem: letters, digits, '-', '_', and '.' between them")
    u.add_argument("--convert", metavar="OLD.json", help="instead: write a single-JSON baseline (the format before "
                   "JSON Lines) as OLD.jsonl, beside it")
    u.add_argument("--force", action="store_true",
                   help="replace an existing baseline of another profile, candidate or families, or with cases "
                   "the results lack (with --convert: an existing OLD.jsonl)")
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

    e = sub.add_parser("demo", help="check a correct and a buggy implementation that ship with gatecheck",
                       description=demo.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    e.add_argument("--family", default="lstm", choices=sorted(demo.DEMOS), help="default lstm")
    e.set_defaults(func=cmd_demo)
    h = sub.add_parser("cache", help="the cache of oracle outputs that check, verify and the Python API read: its "
                       "size, or clear it", description=cache.__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    h.add_argument("action", choices=("info", "clear"))
    h.add_argument("--cache-dir", default=None, metavar="DIR", help="default: the platform's cache folder")
    h.set_defaults(func=cmd_cache)
    g = sub.add_parser("docs", help="write the docs' reference pages, pictures and command output from the registries",
                       description=docs.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    g.add_argument("--check", action="store_true", help="write nothing: list the files out of date (exit 1 if any)")
    g.add_argument("--root", default=None, help="the checkout to write into (default: the one gatecheck runs from)")
    g.set_defaults(func=cmd_docs)
    return ap


def main(argv=None):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    ap = parser()
    args = ap.parse_args(argv)

    try:  # the settings every command runs under, checked before any work
        threads()
    except ValueError as exc:
        print(f"{args.command}: {exc}", file=sys.stderr)
        return USAGE
    return args.func(ap, args)


def entry(argv=None):
    """The command (``gatecheck`` and ``python -m gatecheck``): ``main``, and a reader that leaves early
    (``... | head``) ends it quietly with USAGE (the report could not be written), never a traceback."""
    try:
        code = main(argv)
        sys.stdout.flush()
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # (the flush at exit meets no pipe)
        code = USAGE
    return code
