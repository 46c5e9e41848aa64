"""The main job for people with their own code: a family's whole battery for a candidate,
and a short report that starts with the verdict.

    python -m gatecheck check MODULE:CALLABLE --family lstm [--profile ci] [--oracles A,B] [-n N|auto]
                              [--options none,nobias,bi+L2] [--dtype f32|f64]

``select`` keeps the cases of some sets of layer options and dtypes (the command's --options
and --dtype, and the Python API's); the headline counts the cases with layer options.

Its exit codes, like every command's, are the table of ``gatecheck.core.exit_codes``: forward
only (3) and partial (4) are never a plain pass (0).
"""

import os
from collections import defaultdict

from gatecheck.core import candidate as cand
from gatecheck.core.cases import DTYPES, Case
from gatecheck.core.exit_codes import (  # noqa: F401 (re-exported)
    EXIT_CODES,
    FAIL,
    FORWARD_ONLY,
    PARTIAL,
    PASS,
    USAGE,
)
from gatecheck.engines import ORACLES, battery_oracles, current, of_family
from gatecheck.families import get
from gatecheck.model import options
from gatecheck.run import outcome as oc
from gatecheck.run.grid import grid, shard
from gatecheck.run.isolation import DEFAULT_TIMEOUT, Isolated
from gatecheck.run.outcome import unimplemented_reason
from gatecheck.truth import deviations


def quantity_table(family):
    """The family's quantities, then those its options add (proj: dWr; bi: h_r, y, ...), in order."""
    return options.every_quantity(family)


def run_cases(fn, spec, family, cases):
    """Run ``cases`` (their oracles from the registry) with candidate ``fn``: a record per case, showing
    its outcome (gatecheck.run.outcome: the status is decided there, never here)."""

    records, unavailable = [], {}
    try:
        offered, bad = options.implemented(fn), None
    except ValueError as exc:
        offered, bad = frozenset(), str(exc)
    for case in cases:
        oracle = ORACLES[case.oracle]
        if bad and case.options:
            o = oc.decide(case, oracle, cand.CandidateError(f"{spec}: {bad}"))
        else:
            o = oc.run(case, oracle, fn, spec, reference=False, offered=offered, unavailable=unavailable)
        records.append(record_of(o))
    return records


def record_of(outcome):
    """A case's record (plain data: it travels between processes) from its ``Outcome``."""
    case = outcome.case
    record = dict(id=case.id, oracle=case.oracle, dtype=case.dtype, case=tuple(case), status=outcome.status,
                  reason=outcome.reason)
    if outcome.status == oc.UNIMPLEMENTED:
        record["options"] = list(case.options)
    if outcome.report is not None:
        record.update(ratio=outcome.ratio, compared=list(outcome.compared), warnings=list(outcome.warnings),
                      message=outcome.reason if outcome.failed else None)
    if outcome.deviation is not None:
        record["deviation"] = deviations.describe(outcome.deviation)
    return record


def _worker(spec, family_name, cases, timeout):
    """One process's share of the cases (plain tuples in, records out); the candidate runs
    in a process of its own, as in the parent."""

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


def _sets_text(sets):
    return ", ".join(options.NONE if not s else options.label(s) for s in sets)


def oracle_names(names, family):
    """The oracles a run is given (``names``: a list; empty: the family's battery oracles), each one
    of the family's; an id from before every id named its family (``engines.ALIASES``) is read as
    the id of now. A ValueError names the unknown ones and the valid ones."""
    names = [current(n) for n in names]
    valid = of_family(family.name)
    unknown = sorted(set(names) - set(valid))
    if unknown:
        raise ValueError(f"oracles: unknown for the {family.name} family: {unknown}; expected names from {valid}")
    return names or battery_oracles(family.name)


def select(cases, option_sets=None, dtypes=None):
    """The cases whose set of layer options is one of ``option_sets`` and whose dtype is one of
    ``dtypes`` (None: any), in their order: code that implements only no bias, or only float32,
    is checked alone. A set is 'none' or () (the cases without options), an option name, a
    combination spelled 'bi+L2', or a tuple of names; a dtype 'f32' or 'f64'. A set or dtype
    that none of ``cases`` has, or a selection that leaves no case, is a ValueError naming the
    valid values (the argument first: 'options: ...', 'dtype: ...')."""

    present = list(dict.fromkeys(c.options for c in cases))
    if option_sets is not None:
        if isinstance(option_sets, str):
            option_sets = option_sets.split(",")
        wanted = []
        for s in option_sets:
            try:
                wanted.append(options.parse_set(s) if isinstance(s, str) else options.canonical(s))
            except (TypeError, ValueError) as exc:
                raise ValueError(f"{exc if str(exc).startswith('options:') else f'options: {exc}'}; the sets of "
                                 f"these cases: {_sets_text(present)}") from None
        absent = [s for s in wanted if s not in present]
        if absent or not wanted:
            raise ValueError(f"options: no case has the set {_sets_text(absent) or '(none given)'}; expected sets from: "
                             f"{_sets_text(present)} (comma separated, combinations spelled 'bi+L2', "
                             f"{options.NONE!r} for the cases without options)")
        cases = [c for c in cases if c.options in wanted]
    if dtypes is not None:
        if isinstance(dtypes, str):
            dtypes = dtypes.split(",")
        dtypes = [d.strip() for d in dtypes]
        have = list(dict.fromkeys(c.dtype for c in cases))
        unknown = [d for d in dtypes if d not in DTYPES]
        if unknown or not dtypes:
            raise ValueError(f"dtype: expected {' or '.join(DTYPES)} (comma separated), got {','.join(dtypes)!r}")
        absent = [d for d in dtypes if d not in have]
        if absent:
            raise ValueError(f"dtype: no case{' of the sets selected' if option_sets is not None else ''} is in "
                             f"{', '.join(absent)}; expected dtypes from: "
                             f"{', '.join(have)}")
        cases = [c for c in cases if c.dtype in dtypes]
    return cases


def declares_some(fn, selected):
    """A selection of option sets must hold a case the candidate declares (``run.options``), else
    nothing would run: a ValueError naming what it declares (a malformed declaration is left to each
    case, which reports it)."""
    try:
        declared = options.implemented(fn)
    except ValueError:
        return
    if not any(options.implements(declared, c.options) for c in selected):
        sets = ", ".join(dict.fromkeys(options.label(c.options) for c in selected))
        raise ValueError(f"options: the candidate declares none of the sets selected ({sets}); it declares "
                         f"{', '.join(sorted(options.label(s) for s in declared)) or 'none'} "
                         f"(run.options; docs/guide/contracts.md)")


def battery(fn, spec, family, profile="ci", oracles=None, n=1, timeout=None, option_sets=None, dtypes=None):
    """Every case of the family's profile for the candidate (those ``select`` keeps of them: its
    ``option_sets`` and ``dtypes``); records in grid order. With n > 1 the cases run in n
    processes, shards that keep each traced graph in one process."""
    cases = select(grid(profile, family, oracles), option_sets, dtypes)
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
    return f"{n:,} case" + ("" if n == 1 else "s")


def _options_of(record):
    """A record's set of layer options: its ``options`` field, else its case's (a record with neither: none)."""
    if "options" in record:
        return tuple(record["options"])
    return Case(*record["case"]).options if "case" in record else ()


def _split(ran, bad=()):
    """How many of the cases that ran (``ran``) had layer options, in words ('' when none had):
    '860 without layer options, 324 with them'; with ``bad`` (the failing ones among them), how
    many of each differ: '1 of the 860 without layer options, 2 of the 324 with them'."""
    base = [r for r in ran if not _options_of(r)]
    if len(base) == len(ran) or len(ran) < 2:  # (one case: its id names its options)
        return ""
    if not bad:
        return f"{len(base):,} without layer options, {len(ran) - len(base):,} with them"
    bad_base = sum(1 for r in bad if not _options_of(r))
    return (f"{bad_base:,} of the {len(base):,} without layer options, {len(bad) - bad_base:,} of the "
            f"{len(ran) - len(base):,} with them")


def option_counts(records, statuses=(oc.MATCH,) + oc.FAILING):
    """{set of layer options: records with it} of the records whose status is one of ``statuses``
    (those that ran), the sets in the records' order; the cases without options are left out."""
    counts = defaultdict(list)
    for r in records:
        if r["status"] in statuses and _options_of(r):
            counts[_options_of(r)].append(r)
    return counts


def unexercised(fn, family, records, profile, option_sets=None):
    """The combinations of options the candidate declares (``run.options``; every combination of its
    options that the family defines: ``gatecheck.model.options.combinations``) that no case of the run
    had, with why: [(set, why)], why one of ``IN_PROFILE`` (the profile has it, none of its cases ran),
    a profile's name (only that profile has it), ``NO_GRID`` (no grid has it) or ``UNDEFINED`` (a
    declared option the family does not define). A pass must not imply them: ``verdict`` makes it a
    partial pass, and every report names them. With a selection of sets (``option_sets``, which
    ``select`` checks to hold cases) the sets left out were left out on purpose: none."""
    if option_sets is not None:
        return []
    try:
        declared = options.implemented(fn)
    except ValueError:
        return []  # (a malformed declaration is each case's candidate error)
    have = {_options_of(r) for r in records}
    found = [((name,), UNDEFINED) for name in options.OPTIONS
             if any(name in s for s in declared) and name not in options.defined(family)]
    for s in options.combinations(family, declared):
        if s in have:
            continue
        profiles = [p for p, blocks in family.profiles.items()
                    if any(options.canonical(b.get("options", ())) == s for b in blocks)]
        found.append((s, IN_PROFILE if profile in profiles else profiles[0] if profiles else NO_GRID))
    return found


IN_PROFILE, NO_GRID, UNDEFINED = "in-profile", "no-grid", "undefined"


def unexercised_lines(sets, family, profile, spec="MODULE:CALLABLE", verbose=False):
    """The report's lines for the declared combinations no case ran (``unexercised``), one line per
    reason, each with how to get them run: up to 6 combinations named (all with ``verbose``)."""
    groups = defaultdict(list)
    for s, why in sets:
        groups[why].append(s)
    lines = []
    first = (UNDEFINED, IN_PROFILE)  # then another profile's, then those no grid has
    for why, found in sorted(groups.items(), key=lambda g: (g[0] not in first, g[0] == NO_GRID, first.index(g[0])
                                                             if g[0] in first else 0)):
        named = [options.label(s) for s in found]
        shown = ", ".join(named if verbose or len(named) <= 6 else named[:6])
        if len(named) > 6 and not verbose:
            shown += f" and {len(named) - 6} more (--verbose lists them)"
        many = len(found) > 1
        what = (f"{len(found)} declared combinations of options" if many else "declared combination of options")
        if why == UNDEFINED:
            lines.append(f"not run: declared option{'s' if many else ''} {shown}: the {family.name} family does not "
                         f"define {'them' if many else 'it'} (gatecheck.model.options.defined); remove "
                         f"{'them' if many else 'it'} from run.options")
        elif why == IN_PROFILE:
            lines.append(f"not run: {what} {shown}: the {profile} profile has "
                         f"{'them' if many else 'it'}, but none of {'their' if many else 'its'} cases ran (no "
                         f"oracle run offers {'them' if many else 'it'}, or they were deselected)")
        elif why == NO_GRID:
            example = found[0]
            lines.append(f"not run: {what} {shown}: in no grid of gatecheck, so nothing checks "
                         f"{'them' if many else 'it'}; one case against the reference: python -m gatecheck verify "
                         f"{spec} --family {family.name} --options {options.label(example)}")
        else:
            lines.append(f"not run: {what} {shown}: not in the {profile} profile; the {why} profile has "
                         f"{'them' if many else 'it'} (--profile {why})")
    return lines


def verdict(records, family, fn, not_run_sets=()):
    """(exit code, headline) of a set of records; ``not_run_sets``: the declared option sets no case
    ran (``unexercised``): a pass becomes a partial pass."""
    by = defaultdict(list)
    for r in records:
        by[r["status"]].append(r)
    unjudged = by[oc.NOT_JUDGED]
    ran = len(records) - sum(len(by[s]) for s in oc.NOT_RUN) - len(unjudged)
    if not ran and unjudged:
        return USAGE, (f"NOT JUDGED: on each of the {_cases(len(unjudged))} run, the oracle's known deviation "
                       f"covers every quantity compared (choose other oracles)")
    if not records:
        return USAGE, "NOT RUN: no case was selected"
    if not ran and not by[oc.UNAVAILABLE]:  # (a selection of sets the candidate declares none of)
        return USAGE, (f"NOT RUN: the candidate implements none of the option sets of the cases selected "
                       f"({', '.join(dict.fromkeys(options.label(_options_of(r)) for r in by[oc.UNIMPLEMENTED]))})")
    if not ran:
        why = by[oc.UNAVAILABLE][0]["reason"]
        return USAGE, f"NOT RUN: no oracle of the {family.name} family could run ({why})"
    code, headline = _verdict(by, ran, family, fn)
    if not_run_sets and code == PASS:
        code = PARTIAL
        many = len(not_run_sets) > 1
        headline = ("PARTIAL " + headline + f"; {len(not_run_sets)} declared combination"
                    + ("s of options were" if many else " of options was") + " not run"
                    + (": " + ", ".join(options.label(s) for s, _ in not_run_sets) if len(not_run_sets) <= 3 else
                       " (the lines 'not run: ... declared' below)"))
    if unjudged:
        headline += (f"; {_cases(len(unjudged))} not judged (a known deviation covers every quantity an "
                     f"oracle compares there)")
    return code, headline


def _verdict(by, ran, family, fn):
    records = [r for s in (oc.MATCH,) + tuple(oc.FAILING) for r in by[s]]
    failing = [r for s in oc.FAILING for r in by[s]]
    differ = sum(len(by[s]) for s in oc.FAILING if s != oc.CANDIDATE_ERROR)
    errors = len(by[oc.CANDIDATE_ERROR])
    if differ or errors:
        what = []
        if differ:
            what.append(f"{differ:,} of {_cases(ran)} differ" if ran > 1 else "the case differs")
        if errors:
            what.append(f"{errors:,} of {_cases(ran)} are candidate errors" if ran > 1 else "a candidate error")
        split = _split(records, failing)
        return FAIL, f"FAIL: {' and '.join(what)}" + (f" ({split})" if split else "")
    backward = any(quantity_table(family)[q].phase > 0 for r in by[oc.MATCH] for q in r["compared"])
    worst = max(r["ratio"] for r in by[oc.MATCH])
    split = _split(records)
    split = f"{split}; " if split else ""
    if not backward:
        return FORWARD_ONLY, (f"FORWARD ONLY: {'all ' + _cases(ran) if ran > 1 else 'the case'} match"
                              f"{'' if ran > 1 else 'es'}{f' ({split[:-2]})' if split else ''}, but no gradient was "
                              f"compared ({_why_forward(by, family, fn)})")
    if by[oc.UNAVAILABLE]:
        return PARTIAL, (f"PARTIAL PASS: all {_cases(ran)} that ran match ({split}worst {worst:.2g} of the "
                         f"allowance); {_cases(len(by[oc.UNAVAILABLE]))} could not run")
    return PASS, f"PASS: all {_cases(ran)} match ({split}worst {worst:.2g} of the allowance)"


def _why_forward(by, family, fn):
    """Why the cases that ran compared no gradient: the candidate declares every backward quantity
    unobservable, or the oracles run (inference engines) observe none."""

    backward = {q.source for q in family.quantities.values() if q.phase > 0}
    if backward <= set(options.declared(fn, family)):
        return "the candidate declares every backward quantity unobservable"
    ran = dict.fromkeys(r["oracle"] for r in by[oc.MATCH])
    blind = [o for o in ran if backward <= set(ORACLES[o].cannot_observe)]
    return (f"the oracles run observe no gradient: {', '.join(blind)}" if blind else
            "no gradient the candidate returns is observed by the oracles run")


def rerun_command(spec, family, case):
    """The command that reruns one case alone, with the whole comparison and the diagnosis."""
    return (f"python -m gatecheck verify {spec} --family {family.name} --oracle {case.oracle} "
            f"--shape {case.B},{case.T},{case.D},{case.H} --dtype {case.dtype} --seed {case.seed} "
            f"--regime {case.regime}" + (f" --options {options.label(case.options)}" if case.options else ""))


def table(records):
    """{oracle: {dtype: {status: count}}} of a set of records (every count 0 where absent)."""
    cells = defaultdict(lambda: defaultdict(lambda: defaultdict(int)))
    for r in records:
        cells[r["oracle"]][r["dtype"]][r["status"]] += 1
    return cells


def cell(counts, oracle, dtype):
    """The report's words for one oracle and dtype, from its ``counts`` of each status: '42/43 match
    (1 mismatch)', 'declined', 'not run', '11 not judged'."""
    c = defaultdict(int, counts)
    total = sum(c.values()) - c[oc.UNIMPLEMENTED]
    # nothing ran in a dtype it declines (a set it runs there may be one the candidate does not implement)
    if not total and ORACLES[oracle].declined((), dtype):
        return "declined"
    if not total:
        return "not implemented"
    if c[oc.UNAVAILABLE] == total:
        return "not run"
    if c[oc.NOT_JUDGED] == total:
        return f"{c[oc.NOT_JUDGED]} {oc.NOT_JUDGED}"
    text = f"{c[oc.MATCH]}/{total - c[oc.UNAVAILABLE] - c[oc.NOT_JUDGED]} {oc.MATCH}"
    extra = [f"{c[k]} {k}" for k in oc.FAILING if c[k]]
    extra += [f"{c[oc.NOT_JUDGED]} {oc.NOT_JUDGED}"] if c[oc.NOT_JUDGED] else []
    return text + (f" ({', '.join(extra)})" if extra else "")


def unimplemented_lines(counts):
    """The report's lines for the cases not run because the candidate does not declare their set of
    layer options (``counts``: set -> number of cases): a line per set, or one line for many sets."""
    if len(counts) <= 2:
        return [f"not run: {_cases(n)} with option {options.label(opts)}: {unimplemented_reason(opts)}"
                for opts, n in counts.items()]
    each = ", ".join(f"{options.label(opts)} {n:,}" for opts, n in counts.items())
    like = list(dict.fromkeys(name for opts in counts for name in opts))[:3]
    return [f"not run: {_cases(sum(counts.values()))} with layer options the candidate does not implement ({each}); "
            f"declare the options it implements as run.options = {{{', '.join(repr(n) for n in like)}, ...}}: "
            f"declaring options declares every combination of them (docs/guide/contracts.md)"]


def render(records, family, fn, spec, profile, diagnosis=None, verbose=False, asked=(), not_run_sets=()):
    """(exit code, lines): the verdict first, then the table and what was (not) compared. ``asked``:
    the oracles the run was given; one of them with no case at all is named with the reason;
    ``not_run_sets``: the declared option sets no case ran (``unexercised``)."""
    code, headline = verdict(records, family, fn, not_run_sets)
    oracles = list(dict.fromkeys(r["oracle"] for r in records))
    dtypes = list(dict.fromkeys(r["dtype"] for r in records))
    lines = [headline, f"  {spec} as the {family.name} family ({family.description}); profile {profile}"]
    per_set = option_counts(records)
    if per_set:  # the cases run under each set of layer options, and how many of them differ
        lines.append("  with layer options: " + ", ".join(
            f"{options.label(s)} {len(rs):,}" + (f" ({n:,} differ)" if n else "")
            for s, rs in per_set.items() for n in [sum(1 for r in rs if r["status"] != oc.MATCH)]))
    lines.append("")

    cells = table(records)
    width = max(len(o) for o in oracles) + 2
    rows = [(o, [cell(cells[o][d], o, d) for d in dtypes]) for o in oracles]
    col = max([len(d) for d in dtypes] + [len(cell) for _, row in rows for cell in row]) + 3
    lines.append(f"  {'oracle':<{width}}" + "".join(f"{d:<{col}}" for d in dtypes).rstrip())
    lines += [f"  {o:<{width}}" + "".join(f"{cell:<{col}}" for cell in row).rstrip() for o, row in rows]
    compared = [q for q in quantity_table(family) if any(q in r.get("compared", ()) for r in records)]
    if compared:
        lines.append("")
        lines.append("  compared: " + ", ".join(compared))
    declared = options.declared(fn, family)
    for key, why in declared.items():
        lines.append(f"  not compared: {key} (the candidate cannot observe it: {why})")
    blind = {}
    for o in oracles:
        for key, why in ORACLES[o].cannot_observe.items():
            if not cand.covers(declared, key):  # (a key the candidate declared is reported once, as declared)
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
        if r["status"] == oc.UNAVAILABLE:
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
        if r["status"] == oc.UNIMPLEMENTED:
            unimplemented[tuple(r["options"])] += 1
    lines += ["  " + line for line in unimplemented_lines(unimplemented)]
    lines += ["  " + line for line in unexercised_lines(not_run_sets, family, profile.split(";")[0], spec, verbose)]
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
    failing = [r for r in records if r["status"] in oc.FAILING]
    if failing:
        first = failing[0]
        lines += ["", f"first failing case ({len(failing)} in all; --verbose lists them):"]
        body = first.get("message") or f"{first['id']}: {first['reason']}"
        body_lines = body.splitlines()
        lines += ["  " + line for line in (body_lines if verbose else body_lines[:14])]
        if len(body_lines) > 14 and not verbose:
            lines.append(f"  ... ({len(body_lines) - 14} more lines with --verbose)")
        if diagnosis and first["status"] != oc.CANDIDATE_ERROR:  # a candidate error says it all already
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
