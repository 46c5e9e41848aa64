"""The main job for people with their own code: a family's whole battery for a candidate,
and a short report that starts with the verdict.

    python -m gatecheck check MODULE:CALLABLE --family lstm [--profile ci] [--oracles A,B] [-n N|auto]

Its exit codes, like every command's, are the table of ``gatecheck.exit_codes``: forward
only (3) and partial (4) are never a plain pass (0).
"""

import os
import sys
from collections import defaultdict

from gatecheck import candidate as cand
from gatecheck import options
from gatecheck import deviations
from gatecheck.battery import candidate_ok, expected_of, judge, view
from gatecheck.cases import Case, grid, shard
from gatecheck.exit_codes import EXIT_CODES, FAIL, FORWARD_ONLY, PARTIAL, PASS, USAGE  # noqa: F401 (re-exported)


def quantity_table(family):
    """The family's quantities, then those its options add (proj: dWr; bi: h_r, y, ...), in order."""
    return options.every_quantity(family)


def run_cases(fn, spec, family, cases):
    """Run ``cases`` (their oracles from the registry) with candidate ``fn``: a record per case."""
    from gatecheck.oracles import ORACLES
    from gatecheck.oracles.frameworks import FRAMEWORKS, Unavailable

    records, unavailable, ready = [], {}, set()
    try:
        offered, bad = options.implemented(fn), None
    except ValueError as exc:
        offered, bad = frozenset(), str(exc)
    for case in cases:
        oracle = ORACLES[case.oracle]
        record = dict(id=case.id, oracle=case.oracle, dtype=case.dtype, case=tuple(case))
        if bad and case.options:
            records.append(dict(record, status="error", reason=f"{spec}: {bad}"))
            continue
        if not set(case.options) <= offered:
            records.append(dict(record, status="unimplemented", options=list(case.options),
                                reason=unimplemented_reason(case.options)))
            continue
        if oracle.framework in unavailable:
            records.append(dict(record, status="skip", reason=unavailable[oracle.framework]))
            continue
        try:
            if oracle.framework not in ready:  # imported (or found missing) once per framework
                FRAMEWORKS[oracle.framework].importer()
                ready.add(oracle.framework)
            v = view(case, family)
            expected = expected_of(case, oracle, family, v)
        except Unavailable as exc:
            unavailable[oracle.framework] = str(exc)
            records.append(dict(record, status="skip", reason=str(exc)))
            continue
        try:
            report = judge(case, oracle, v, expected, fn, spec, family)
        except cand.CandidateError as exc:
            records.append(dict(record, status="error", reason=str(exc)))
            continue
        compared = sorted({r.quantity for r in report.results}, key=list(quantity_table(family)).index)
        ok = candidate_ok(report)
        judged = deviations.judged(report)
        worst = max((r.ratio for r in judged), default=0.0)  # (not on a deviation's quantities)
        # a case on which the oracle's known deviation covers every quantity compared judged nothing: not a match
        status = "fail" if not ok else "pass" if judged or not report.deviation else "unjudged"
        records.append(dict(record, status=status, ratio=worst,
                            compared=compared, warnings=list(report.warnings),
                            message=None if ok else report.message(),
                            **({"deviation": deviations.describe(report.deviation)} if report.deviation else {})))
    return records


def unimplemented_reason(case_options):
    """Why a case with layer options was not run: the candidate does not declare them."""
    return (f"the candidate does not implement {options.label(case_options)} (declare it as "
            f"run.options = {set(case_options)!r} once it does; README, Contracts)")


def _worker(spec, family_name, cases, timeout):
    """One process's share of the cases (plain tuples in, records out); the candidate runs
    in a process of its own, as in the parent."""
    from gatecheck.families import get
    from gatecheck.isolation import DEFAULT_TIMEOUT, Isolated

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    family = get(family_name)
    fn = Isolated(spec, family, timeout or DEFAULT_TIMEOUT)
    try:
        return run_cases(fn, spec, family, [Case(*c) for c in cases])
    finally:
        fn.close()


def workers(text):
    """'auto' (the cores available) or a positive integer."""
    if text == "auto":
        return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)
    try:
        n = int(text)
    except (TypeError, ValueError):
        n = 0
    if n < 1:
        raise ValueError(f"-n: expected a positive integer or 'auto', got {text!r}")
    return n


def battery(fn, spec, family, profile="ci", oracles=None, n=1, timeout=None):
    """Every case of the family's profile for the candidate; records in grid order. With
    n > 1 the cases run in n processes, shards that keep each traced graph in one process."""
    cases = grid(profile, family, oracles)
    if n <= 1 or len(cases) < 2:
        return run_cases(fn, spec, family, cases)
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    parts = [shard(cases, i, n) for i in range(1, n + 1)]
    with ProcessPoolExecutor(n, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = [pool.submit(_worker, spec, family.name, [tuple(c) for c in part], timeout)
                   for part in parts if part]
        done = {r["id"]: r for f in futures for r in f.result()}
    return [done[c.id] for c in cases]


def _cases(n):
    return f"{n} case" + ("" if n == 1 else "s")


def verdict(records, family, fn):
    """(exit code, headline) of a set of records."""
    by = defaultdict(list)
    for r in records:
        by[r["status"]].append(r)
    ran = len(records) - len(by["skip"]) - len(by["unimplemented"]) - len(by["unjudged"])
    if not ran and by["unjudged"]:
        return USAGE, (f"NOT JUDGED: on each of the {_cases(len(by['unjudged']))} run, the oracle's known deviation "
                       f"covers every quantity compared (choose other oracles)")
    if not ran:
        return USAGE, f"NOT RUN: no oracle of the {family.name} family could run ({by['skip'][0]['reason']})"
    code, headline = _verdict(by, ran, family, fn)
    if by["unjudged"]:
        headline += (f"; {_cases(len(by['unjudged']))} not judged (a known deviation covers every quantity an "
                     f"oracle compares there)")
    return code, headline


def _verdict(by, ran, family, fn):
    bad = len(by["fail"]) + len(by["error"])
    if bad:
        what = []
        if by["fail"]:
            what.append(f"{len(by['fail'])} of {_cases(ran)} differ" if ran > 1 else "the case differs")
        if by["error"]:
            what.append(f"{len(by['error'])} of {_cases(ran)} are candidate errors" if ran > 1 else "a candidate error")
        return FAIL, f"FAIL: {' and '.join(what)}"
    backward = any(quantity_table(family)[q].phase > 0 for r in by["pass"] for q in r["compared"])
    worst = max(r["ratio"] for r in by["pass"])
    if not backward:
        return FORWARD_ONLY, (f"FORWARD ONLY: {'all ' + _cases(ran) if ran > 1 else 'the case'} match"
                              f"{'' if ran > 1 else 'es'}, but no gradient was compared ({_why_forward(by, family, fn)})")
    if by["skip"]:
        return PARTIAL, (f"PARTIAL PASS: all {_cases(ran)} that ran match (worst {worst:.2g} of the allowance); "
                         f"{_cases(len(by['skip']))} could not run")
    return PASS, f"PASS: all {_cases(ran)} match (worst {worst:.2g} of the allowance)"


def _why_forward(by, family, fn):
    """Why the cases that ran compared no gradient: the candidate declares every backward quantity
    unobservable, or the oracles run (inference engines) observe none."""
    from gatecheck.oracles import ORACLES

    backward = {q.source for q in family.quantities.values() if q.phase > 0}
    if backward <= set(cand.cannot_observe(fn, family)):
        return "the candidate declares every backward quantity unobservable"
    ran = dict.fromkeys(r["oracle"] for r in by["pass"])
    blind = [o for o in ran if backward <= set(ORACLES[o].cannot_observe)]
    return (f"the oracles run observe no gradient: {', '.join(blind)}" if blind else
            "no gradient the candidate returns is observed by the oracles run")


def rerun_command(spec, family, case):
    """The command that reruns one case alone, with the whole comparison and the diagnosis."""
    return (f"python -m gatecheck verify {spec} --family {family.name} --oracle {case.oracle} "
            f"--shape {case.B},{case.T},{case.D},{case.H} --dtype {case.dtype} --seed {case.seed} "
            f"--regime {case.regime}" + (f" --options {','.join(case.options)}" if case.options else ""))


def render(records, family, fn, spec, profile, diagnosis=None, verbose=False, asked=()):
    """(exit code, lines): the verdict first, then the table and what was (not) compared. ``asked``:
    the oracles the run was given; one of them with no case at all is named with the reason."""
    code, headline = verdict(records, family, fn)
    oracles = list(dict.fromkeys(r["oracle"] for r in records))
    dtypes = list(dict.fromkeys(r["dtype"] for r in records))
    lines = [headline,
             f"  {spec} as the {family.name} family ({family.description}); profile {profile}", ""]
    from gatecheck.oracles import ORACLES

    cells = defaultdict(lambda: defaultdict(int))
    for r in records:
        cells[(r["oracle"], r["dtype"])][r["status"]] += 1
    width = max(len(o) for o in oracles) + 2
    rows = []
    for o in oracles:
        row = []
        for d in dtypes:
            c = cells[(o, d)]
            total = sum(c.values()) - c["unimplemented"]
            # nothing ran in a dtype it declines (a set it runs there may be one the candidate does not implement)
            if not total and ORACLES[o].declined((), d):
                row.append("declined")
            elif c["skip"] == total:
                row.append("not run")
            elif c["unjudged"] == total:
                row.append(f"{c['unjudged']} not judged")
            else:
                text = f"{c['pass']}/{total - c['skip'] - c['unjudged']} match"
                extra = [f"{c[k]} {k}" for k in ("fail", "error") if c[k]]
                extra += [f"{c['unjudged']} not judged"] if c["unjudged"] else []
                row.append(text + (f" ({', '.join(extra)})" if extra else ""))
        rows.append((o, row))
    col = max([len(d) for d in dtypes] + [len(cell) for _, row in rows for cell in row]) + 3
    lines.append(f"  {'oracle':<{width}}" + "".join(f"{d:<{col}}" for d in dtypes).rstrip())
    lines += [f"  {o:<{width}}" + "".join(f"{cell:<{col}}" for cell in row).rstrip() for o, row in rows]
    compared = [q for q in quantity_table(family) if any(q in r.get("compared", ()) for r in records)]
    if compared:
        lines.append("")
        lines.append("  compared: " + ", ".join(compared))
    declared = cand.cannot_observe(fn, family)
    for key, why in declared.items():
        lines.append(f"  not compared: {key} (the candidate cannot observe it: {why})")
    blind = {}
    for o in oracles:
        for key, why in ORACLES[o].cannot_observe.items():
            if key not in declared:
                blind.setdefault(key, []).append(o)
    unobserved, by_oracles = [], defaultdict(list)  # quantities that go unobserved by the same oracles: one line
    for key, names in blind.items():
        if any(key in r.get("compared", ()) for r in records):
            by_oracles[tuple(names)].append(key)
        else:
            unobserved.append(key)
    for names, keys in by_oracles.items():
        lines.append(f"  not observed by {', '.join(names)}: {', '.join(keys)} (compared by the other oracles)")
    for key in unobserved:
        lines.append(f"  not compared: {key} (no oracle here observes it)")
    skipped = {}
    for r in records:
        if r["status"] == "skip":
            skipped.setdefault(r["reason"], []).append(r["oracle"])
    for reason, names in skipped.items():
        lines.append(f"  not run: {', '.join(dict.fromkeys(names))}: {reason}")
    for o in asked:
        if o not in oracles:  # no case of the profile at all: it declines every set it offers, in every dtype
            why = ORACLES[o].declined(()) or ORACLES[o].declined((), "f32") or ORACLES[o].declined((), "f64")
            lines.append(f"  not run: {o}: it has no case in the {profile} profile"
                         + (f" (declined: {why})" if why else ""))
    for o in oracles:
        for d in ("f32", "f64"):
            why = ORACLES[o].declined((), d) if ORACLES[o].offers(()) else None
            if why:
                lines.append(f"  not run: {o} in {d} (declined): {why}")
    unimplemented = defaultdict(int)
    for r in records:
        if r["status"] == "unimplemented":
            unimplemented[tuple(r["options"])] += 1
    if len(unimplemented) <= 2:
        for opts, n in unimplemented.items():
            lines.append(f"  not run: {_cases(n)} with option {options.label(opts)}: {unimplemented_reason(opts)}")
    else:  # one line for many sets: each set and its count
        each = ", ".join(f"{options.label(opts)} {n}" for opts, n in unimplemented.items())
        lines.append(f"  not run: {_cases(sum(unimplemented.values()))} with layer options the candidate does not "
                     f"implement ({each}); declare those it implements as run.options = {{...}} (README, Contracts)")
    deviating = defaultdict(int)
    for r in records:
        if r.get("deviation"):
            deviating[r["deviation"]] += 1
    for text, n in deviating.items():
        lines.append(f"  not judged in {_cases(n)}: the {text}")
    warned = defaultdict(int)
    for r in records:
        for w in r.get("warnings", ()):
            warned[w] += 1
    for w, n in list(warned.items())[:5]:
        lines.append(f"  candidate warned (in {n} case{'' if n == 1 else 's'}): {w}")
    failing = [r for r in records if r["status"] in ("fail", "error")]
    if failing:
        first = failing[0]
        lines += ["", f"first failing case ({len(failing)} in all; --verbose lists them):"]
        body = first.get("message") or f"{first['id']}: {first['reason']}"
        body_lines = body.splitlines()
        lines += ["  " + line for line in (body_lines if verbose else body_lines[:14])]
        if len(body_lines) > 14 and not verbose:
            lines.append(f"  ... ({len(body_lines) - 14} more lines with --verbose)")
        if diagnosis and first["status"] == "fail":  # a candidate error says it all already
            diag = diagnosis(first).splitlines()
            lines += [""] + ["  " + line for line in (diag if verbose else diag[:24])]
            if len(diag) > 24 and not verbose:
                lines.append(f"  ... ({len(diag) - 24} more lines with --verbose)")
        lines += ["", "rerun that case alone: " + rerun_command(spec, family, Case(*first["case"]))]
        if verbose:
            lines += ["", "every failing case:"] + [
                f"  {r['id']}: " + ((r.get("message") or "").splitlines()[1:2] or [r.get("reason", "")])[0]
                for r in failing]
    return code, lines


class _CallableModule(type(os)):
    """This module, callable: ``gatecheck.check(fn, family="lstm", ...)`` is the Python API
    (``gatecheck.api.check``, for notebooks), under the name of the command it runs."""

    def __call__(self, fn, *args, **kwargs):
        from gatecheck.api import check

        return check(fn, *args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
