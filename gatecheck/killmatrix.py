"""The kill matrix: every mutant of a family's catalogue through its battery, and which
cases kill it. A mutant is killed by a case when the comparison fails or the candidate
breaks the contract (raises, wrong shapes...). The correct reference runs through the same
path and must be killed by nothing.

    python -m gatecheck kill-matrix [--family lstm] [--profile ci] [--oracles NAMES] [--mutants NAMES]
"""

import time
from collections import defaultdict

from gatecheck import candidate as cand
from gatecheck import mutants as mut
from gatecheck.battery import judge, view

REFERENCE_ROW = "(reference, correct)"

# The slice the test suite runs (tests/test_mutants.py): two cases that between them kill
# every LSTM mutant, as the full ci matrix does (the command prints both to show it).
CI_SLICE = ("torch-cell-B3-T64-D4-H5-f32-s0", "torch-cell-B3-T64-D4-H5-f64-s0")


def killed(case, oracle, candidates, family):
    """{name: reason or None} for each (name, callable) on one case; the oracle runs once."""
    v = view(case, family)
    expected = oracle.run({k: a.copy() for k, a in v[0].items()})
    out = {}
    for name, fn in candidates:
        try:
            report = judge(case, oracle, v, expected, fn, name, family)
        except cand.CandidateError as exc:
            out[name] = f"contract: {exc}"
            continue
        out[name] = None if report.ok else report.failures[0].describe() if report.failures else "shape"
    return out


def matrix(cases, oracles, mutant_list, family, progress=None):
    """{candidate name: [killing case ids]} including the correct reference's row."""
    candidates = [(REFERENCE_ROW, family.run)] + [(m.name, mut.candidate(family, m)) for m in mutant_list]
    kills = defaultdict(list)
    for n, case in enumerate(cases, 1):
        for name, reason in killed(case, oracles[case.oracle], candidates, family).items():
            if reason is not None:
                kills[name].append(case.id)
        if progress and (n % 25 == 0 or n == len(cases)):
            progress(n, len(cases))
    return {name: kills.get(name, []) for name, _ in candidates}


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
    from gatecheck.cases import grid
    from gatecheck.oracles import ORACLES, battery_oracles

    if not family.mutants:
        out(f"family {family.name} has no mutant catalogue: nothing to kill")
        return 1
    names = oracle_names or battery_oracles(family.name)
    chosen = [family.mutants_by_name[n] for n in mutant_names] if mutant_names else list(family.mutants)
    cases = grid(profile, family, oracles=[n for n in battery_oracles(family.name) if n in names])
    t0 = time.perf_counter()
    result = matrix(cases, ORACLES, chosen, family,
                    progress=lambda n, total: print(f"# {n}/{total} cases, {time.perf_counter() - t0:.0f}s", flush=True))
    out(render(result, cases))
    survivors = [m.name for m in chosen if not result[m.name]]
    false = result[REFERENCE_ROW]
    in_slice = {n for n, ids in result.items() if set(ids) & set(CI_SLICE)}
    out(f"\n{len(chosen) - len(survivors)}/{len(chosen)} {family.name} mutants killed over {len(cases)} cases "
        f"({profile} profile, oracles {', '.join(names)}); survivors: {survivors or 'none'}")
    out(f"the correct reference was killed by {len(false)} cases" + (f": {false}" if false else " (no false alarm)"))
    slice_kills = sorted(in_slice - {REFERENCE_ROW})
    full_kills = sorted(n for n in result if result[n] and n != REFERENCE_ROW)
    if set(CI_SLICE) <= {c.id for c in cases}:
        same = "the same set" if slice_kills == full_kills else f"a different set (missing {sorted(set(full_kills) - set(slice_kills))})"
        out(f"the test suite's slice {list(CI_SLICE)} kills {len(slice_kills)} mutants: {same} as the full matrix")
    return 0 if not survivors and not false else 1
