"""The kill matrix: every mutant of a family's catalogue through its battery, and which
cases kill it. A mutant is killed by a case when the comparison fails or the candidate
breaks the contract (raises, wrong shapes...), judged as the battery judges a candidate: the
quantities of the oracle's known deviation on the case (gatecheck.truth.deviations) are not held against it. The correct reference runs through the same
path and must be killed by nothing. A layer option's mutants (``Variant.mutants``,
gatecheck.model.options) run on that option's cases, the family's own on the cases without options.

    python -m gatecheck kill-matrix [--family lstm] [--profile ci] [--oracles NAMES] [--mutants NAMES]
"""

import time
from collections import defaultdict

from gatecheck.core import candidate as cand
from gatecheck.core import mutants as mut
from gatecheck.engines import ORACLES, battery_oracles
from gatecheck.model import options as opts
from gatecheck.run import outcome as oc
from gatecheck.run.battery import expected_of, judge
from gatecheck.run.grid import grid
from gatecheck.truth import deviations
from gatecheck.truth.views import view

REFERENCE_ROW = "(reference, correct)"

# The slice the test suite runs (tests/families/test_mutants.py): two cases that between them kill
# every LSTM mutant, as the full ci matrix does (the command prints both to show it).
CI_SLICE = ("torch-lstm-cell-B3-T64-D4-H5-f32-s0", "torch-lstm-cell-B3-T64-D4-H5-f64-s0")


def killed(case, oracle, candidates, family):
    """{name: reason or None} for each (name, callable) on one case; the oracle runs once. A candidate
    is killed where its outcome (gatecheck.run.outcome, judged as a candidate's) is a failure."""
    v = view(case, family)
    expected = expected_of(case, oracle, family, v)
    out = {}
    for name, fn in candidates:
        try:
            result = judge(case, oracle, v, expected, fn, name, family)
        except cand.CandidateError as exc:
            result = exc
        o = oc.decide(case, oracle, result)
        if not o.failed:
            out[name] = None
        elif o.status == oc.CANDIDATE_ERROR:
            out[name] = f"contract: {o.reason}"
        else:
            judged = sorted((r for r in deviations.judged(o.report) if not r.ok), key=lambda r: r.key)
            out[name] = judged[0].describe() if judged else "shape"
    return out


def catalogue(family):
    """Every mutant a family's kill matrix runs: (options, mutant), its own first (no options),
    then each option's (its own options one by one, then every other set its grids have)."""
    sets = dict.fromkeys([(name,) for name in family.options] + opts.grid_sets(family))
    return [((), m) for m in family.mutants] + [(s, m) for s in sets for m in opts.under(family, s).mutants]


def row(options, mutant):
    """A mutant's row in the matrix: its name, and the options where one name serves several sets
    (a bidirectional layer's mutants under each merge mode: ``bi-dx-forward-only [bisum]``)."""
    if not any(opts.OPTIONS[o].structural for o in options):
        return mutant.name
    return f"{mutant.name} [{','.join(options)}]"


def matrix(cases, oracles, mutant_list, family, progress=None):
    """{candidate name: [killing case ids]} including the correct reference's row; each case
    runs the mutants of its own options (``mutant_list``: (options, mutant) pairs, or plain
    mutants of the family's own catalogue)."""
    mutant_list = [((), m) if isinstance(m, mut.Mutant) else m for m in mutant_list]
    rows = {}
    for case_options in dict.fromkeys(c.options for c in cases):
        f = opts.under(family, case_options)
        rows[case_options] = [(REFERENCE_ROW, f.run)] + [
            (row(o, m), mut.candidate(f, m)) for o, m in mutant_list if o == case_options]
    kills = defaultdict(list)
    for n, case in enumerate(cases, 1):
        for name, reason in killed(case, oracles[case.oracle], rows[case.options], family).items():
            if reason is not None:
                kills[name].append(case.id)
        if progress and (n % 25 == 0 or n == len(cases)):
            progress(n, len(cases))
    names = [REFERENCE_ROW] + [row(o, m) for o, m in mutant_list]
    return {name: kills.get(name, []) for name in names}


def render(result, cases):
    """The matrix as text: per candidate, kills per oracle x dtype column, and in total."""
    cols = sorted({(c.oracle, c.dtype) for c in cases})
    totals = {col: sum(1 for c in cases if (c.oracle, c.dtype) == col) for col in cols}
    by_id = {c.id: (c.oracle, c.dtype) for c in cases}
    width = max(len(n) for n in result) + 2
    head = "".join(f"{o[:11]:>12}" for o, _ in cols)
    head2 = "".join(f"{d + ' /' + str(totals[(o, d)]):>12}" for o, d in cols)
    lines = [f"{'candidate':<{width}}{head}{'total':>8}", f"{'':<{width}}{head2}{'/' + str(len(cases)):>8}"]
    for name, ids in result.items():
        counts = defaultdict(int)
        for case_id in ids:
            counts[by_id[case_id]] += 1
        lines.append(f"{name:<{width}}" + "".join(f"{counts[col]:>12}" for col in cols) + f"{len(ids):>8}")
    return "\n".join(lines)


def run(family, profile="ci", oracle_names=None, mutant_names=None, out=print):

    every = catalogue(family)
    if not every:
        out(f"family {family.name} has no mutant catalogue: nothing to kill")
        return 1
    names = oracle_names or battery_oracles(family.name)
    chosen = [(o, m) for o, m in every if not mutant_names or m.name in mutant_names or row(o, m) in mutant_names]
    cases = grid(profile, family, oracles=[n for n in battery_oracles(family.name) if n in names])
    # An option's mutants run on that option's cases only: where the chosen oracles offer none
    # (PyTorch has no reverse layer), they are not run, and the summary says so.
    present = {c.options for c in cases}
    absent = list(dict.fromkeys(o for o, _ in chosen if o not in present))
    chosen = [(o, m) for o, m in chosen if o in present]
    if mutant_names:  # the chosen mutants' cases only (the correct reference's row is over those too)
        cases = [c for c in cases if c.options in {o for o, _ in chosen}]
    names = list(dict.fromkeys([*names, *(c.oracle for c in cases)]))  # (the reference, where it backstops)
    if not chosen:
        out(f"no case of oracles {', '.join(names)} has the options of the chosen mutants: nothing to kill")
        return 1
    t0 = time.perf_counter()
    result = matrix(cases, ORACLES, chosen, family,
                    progress=lambda n, total: print(f"# {n}/{total} cases, {time.perf_counter() - t0:.0f}s", flush=True))
    out(render(result, cases))
    survivors = [row(o, m) for o, m in chosen if not result[row(o, m)]]
    false = result[REFERENCE_ROW]
    in_slice = {n for n, ids in result.items() if set(ids) & set(CI_SLICE)}
    out(f"\n{len(chosen) - len(survivors)}/{len(chosen)} {family.name} mutants killed over {len(cases)} cases "
        f"({profile} profile, oracles {', '.join(names)}); survivors: {survivors or 'none'}")
    out(f"the correct reference was killed by {len(false)} cases" + (f": {false}" if false else " (no false alarm)"))
    for o in absent:
        offered = any(ORACLES[n].offers(o) for n in names)
        out(f"not run: the mutants of option {opts.label(o)}: no case with it " + (
            f"in the {profile} profile's grid" if offered else f"(the oracles {', '.join(names)} do not offer it)"))
    own = {m.name for o, m in chosen if not o}  # the slice has no option cases: tests/model/test_options.py has theirs
    slice_kills = sorted(in_slice & own)
    full_kills = sorted(n for n in result if result[n] and n in own)
    if set(CI_SLICE) <= {c.id for c in cases}:
        same = "the same set" if slice_kills == full_kills else f"a different set (missing {sorted(set(full_kills) - set(slice_kills))})"
        out(f"the test suite's slice {list(CI_SLICE)} kills {len(slice_kills)} mutants: {same} as the full matrix")
    return 0 if not survivors and not false else 1
