"""What a failing candidate's failure looks like.

Besides the first divergence (``gatecheck.core.compare``), a failing candidate is examined in
float64 against its family's reference:

- which quantities match and from which time step each goes wrong;
- known bug shapes, each tested as a hypothesis on the candidate's own output: a gate
  order other than the family's (every permutation of ``Family.gates`` is tried, and with
  D == H also the two ``Family.swappable`` inputs exchanged, i.e. the other concatenation
  order), the family's own hypotheses (``Family.hypotheses``) and every mutant of its
  catalogue;
- hypotheses about what real code computes, tested tolerantly (``gatecheck.tools.variants``):
  quantities held in float32 in a float64 run (then every other hypothesis is tested again to
  float32 precision where none holds to float64's), and the semantic variants of a masked model;
- when no known shape explains it, the shapes that explain some of the wrong quantities, ranked,
  and where the error is born (``gatecheck.tools.localise``), down to what each gate's local
  derivative gets wrong;
- a side-by-side table per time step (reference vs candidate) that fits a terminal.

A hypothesis is reported only when it explains the candidate's numbers to float64
precision (``gatecheck.core.tolerance.CLOSE``; ``CLOSE_F32`` for a candidate found computing in
float32), never by pattern alone. ``examine`` decides; ``diagnose`` renders (every front end shows
its text), and ``gatecheck.tools.power.diagnosis_specificity`` runs ``examine`` on correct code.

Under layer options the family's hypotheses and mutants are tried on each part of the case
(``gatecheck.model.parts``: the whole layer under no bias or reverse, each direction and layer of a
bidirectional layer or a stack) that differs from its own reference, as cases of the family's own
model, and each finding names its part; the gate orders are tried on every part at once, then on
each part whose forward pass differs; the options' own mutants on the whole contract.
"""

import contextlib
import itertools
from typing import Any, NamedTuple

import numpy as np

from gatecheck.core import candidate as cand
from gatecheck.core import mutants
from gatecheck.core.compare import at_float32, close, compare, contract_value, undefined_entries
from gatecheck.engines import reference_oracle
from gatecheck.model import parts
from gatecheck.model.options import under
from gatecheck.tools import localise as loc
from gatecheck.tools import variants as var
from gatecheck.truth.views import view


def _permuted(inputs, family, gated, order):
    """Inputs whose ``gated`` blocks are laid out as ``order`` (gate names, block by block)."""
    idx = [family.gates.index(name) for name in order]
    return dict(inputs, **{k: inputs[k][idx] for k in gated})


def _swapped(inputs, swaps):
    out = dict(inputs)
    for a, b in swaps:
        out[a], out[b] = inputs[b], inputs[a]
    return out


def _unpermute_grads(result, family, gated, order):
    """Candidate gradients of its own blocks -> canonical per-gate gradients."""
    out = dict(result)
    for key in ("d" + k for k in gated):
        if key in result:
            canon = np.empty_like(result[key])
            for j, name in enumerate(order):
                canon[family.gates.index(name)] = result[key][j]
            out[key] = canon
    return out


def _try(candidate, inputs, family):
    try:
        return cand.call(candidate, inputs, family)
    except cand.CandidateError:
        return None


def gate_layout(candidate, inputs, ref, family, scope=None):
    """Find a gate order (and, where its swappable inputs are square, the swapped concatenation)
    of ``scope``'s inputs (``gatecheck.model.parts.Scope``; default the family's gated inputs) under which
    the candidate's forward pass (the scope's) matches. Returns a sentence, or None."""
    scope = scope or parts.Scope("", family.gated, (family.swappable,) if family.swappable else (), family.forward)
    gates = family.gates
    square = bool(scope.swaps) and all(inputs[a].shape == inputs[b].shape for a, b in scope.swaps)
    layouts = [(order, False) for order in itertools.permutations(gates)]
    if square:
        layouts += [(order, True) for order in itertools.permutations(gates)]
    for order, swap in layouts:
        if order == gates and not swap:
            continue
        fed = _permuted(_swapped(inputs, scope.swaps) if swap else inputs, family, scope.gated, order)
        got = _try(candidate, fed, family)
        if got is None or not all(q in got and close(got[q], ref[q]) for q in scope.forward):
            continue
        what = []
        if order != gates:
            what.append(f"your gates look ordered {','.join(order)} (canonical: {','.join(gates)})")
        if swap:
            what.append(
                "your code applies the input weights to h_{t-1} and the recurrent weights to x_t: "
                "the concatenation order looks swapped ([h; x] vs [x; h])"
            )
        back = _unpermute_grads(got, family, scope.gated, order)
        if swap:
            for a, b in scope.swaps:
                a, b = "d" + a, "d" + b
                back[a], back[b] = back[b], back[a]
        rest = [k for k in family.contract if k not in scope.forward and k in back and not close(back[k], ref[k])]
        its = "its" if scope.label else "the"
        tail = "; with that layout every quantity matches" if not rest else (
            f"; with that layout {its} forward pass matches but {', '.join(rest)} still differ")
        return (f"{scope.label}: " if scope.label else "") + "; ".join(what) + tail
    return None


def layouts(candidate, inputs, ref, got, family, options):
    """Gate layouts under ``options`` (``family``: its own record): the whole layer's; for a layer
    structure, every part's at once, else each part's whose forward pass differs alone."""
    record = under(family, options)
    tried = parts.scopes(family, options)
    found = gate_layout(candidate, inputs, ref, record, tried[0])
    if found or len(tried) == 1:
        return [found] if found else []
    wrong = [s for s in tried[1:] if any(not close(got[k], ref[k]) for k in s.forward if k in got)]
    return [f for f in (gate_layout(candidate, inputs, ref, record, s) for s in wrong) if f]


def known_bug(inputs, got, quantities, family, skip=(), explained=None):
    """Mutants of the family's reference whose output the candidate reproduces, on every
    compared quantity, to the precision in force (``gatecheck.core.compare.close``: float64, or
    float32 once the candidate is found computing in float32); a mutant the reference itself
    reproduces on these inputs is left out: it explains nothing (mask-initial-output where h0 = 0).
    ``explained``, a list, receives
    (words, the quantities each mutant explains) for the ranking of partial explanations."""
    found = []
    open_ = undefined_entries(family, inputs, quantities) or {}  # entries the contract leaves open: not compared

    def same(q, mutated, a):
        a, b = contract_value(a, q, family.quantities), contract_value(mutated, q, family.quantities)
        return close(np.where(open_[q], b, a) if q in open_ else a, b)

    ref = family.run(**inputs)
    for m in family.mutants:
        if m.name in skip or m.family == "gate-order":  # gate orders: see gate_layout
            continue
        try:
            mutated = mutants.candidate(family, m)(**inputs)
        except ValueError:  # this mutant cannot run on these shapes
            continue
        if all(same(q, mutated, ref) for q in quantities):  # the reference itself on these inputs
            continue
        hits = [q for q in quantities if same(q, mutated, got)]
        if explained is not None:
            explained.append((f"the known bug '{m.name}' ({m.wrong})", hits))
        if len(hits) == len(quantities):
            found.append(f"matches the known bug '{m.name}': {m.wrong} ({m.why})")
    return found


def _hypotheses(hypotheses, inputs, ref, got):
    found = []
    for hypothesis in hypotheses:
        try:
            sentence = hypothesis(inputs, ref, got)
        except KeyError:  # the candidate (or the part) does not expose what this hypothesis needs
            continue
        if sentence:
            found.append(sentence)
    return found


def part_findings(part, family, explained=None):
    """``family``'s hypotheses and mutants on one part of a case (``gatecheck.model.parts``) that differs
    from its reference, each finding named by the part (a reversed part's steps in processing order)."""
    if not parts.differs(part):
        return []
    steps = part.label
    if part.reversed:  # t in a hypothesis' sentence counts the steps processed
        steps = f"{part.label}, steps in processing order" if part.label else \
            "steps in processing order (t = 0 is the step on x[:, T-1])"
    named = [f"{steps}: {f}" if steps else f for f in _hypotheses(family.hypotheses, part.inputs, part.ref, part.got)]
    compared = [q for q, spec in family.quantities.items() if spec.source in part.got]
    return named + [f"{part.label}: {f}" if part.label else f
                    for f in known_bug(part.inputs, part.got, compared, family,
                                       explained=explained if not part.suffix else None)]


def pattern(report, T):
    """One line: what matches, and from which step each per-step quantity goes wrong."""
    table = report.table
    bad = {}
    for r in report.failures:
        bad.setdefault(r.quantity, []).append(r)
    parts = []
    forward = [q for q, spec in table.items() if spec.phase == 0 and spec.split == "time"]
    fwd_bad = [q for q in forward if q in bad]
    if not fwd_bad:
        parts.append("forward matches")
    for q, spec in table.items():
        if spec.split != "time" or q not in bad:
            continue
        ts = sorted(r.step for r in bad[q])
        if spec.reverse:  # its direction computes t = T-1 .. 0 forward, t = 0 .. T-1 backward
            parts.append(f"{q} wrong from t={ts[-1]} down" if spec.phase == 0 else f"{q} wrong from t={ts[0]} up")
        elif spec.phase == 0:
            parts.append(f"{q} wrong from t={ts[0]} on")
        else:
            first = ts[-1]
            rel = "T-1" if first == T - 1 else f"T-{T - first}"
            parts.append(f"{q} wrong from t={first} ({rel}) back")
    whole = [q for q, spec in table.items() if spec.phase > 0 and spec.split != "time"
             and spec.source == q]  # the contract's own keys, not per-framework extras
    params = [q for q in whole if q in bad]
    if params:
        parts.append("wrong: " + ", ".join(params))
    compared = {r.quantity for r in report.results}
    good = [q for q, spec in table.items() if spec.phase > 0 and spec.source == q and q in compared and q not in bad]
    if fwd_bad or not good:
        return "; ".join(parts)
    return "; ".join(parts) + "; right: " + ", ".join(good)


def table(report, T, max_rows=12):
    """Side-by-side per step: the worst relative difference of candidate vs reference."""
    cell = {}
    for r in report.results:
        cell[(r.quantity, r.step, r.gate)] = "ok" if r.ok else f"x {r.rel_err:.1e}"
    spec = report.table
    cols = [q for q, s in spec.items() if s.split == "time" and any(k[0] == q for k in cell)]
    steps = list(range(T))
    if T > max_rows:
        steps = steps[: max_rows // 2] + [None] + steps[-(max_rows // 2):]
    lines = ["   t | " + " | ".join(f"{q:<10}" for q in cols)]
    for t in steps:
        if t is None:
            lines.append("  .. |")
            continue
        lines.append(f"{t:4d} | " + " | ".join(f"{cell.get((q, t, None), '-'):<10}" for q in cols))
    rest = []
    for q, s in spec.items():
        if s.split == "time" or s.phase == 0 or s.source != q:
            continue
        entries = [(gate, v) for (qq, _, gate), v in cell.items() if qq == q]
        if entries:
            shown = ", ".join(f"{gate}: {v}" if gate else v for gate, v in entries)
            rest.append(f"{q} {shown}")
    return "\n".join(lines + ["      " + "; ".join(rest)]) + \
        "\n(ok: within tolerance; x: mismatched, worst relative difference)"


class Examined(NamedTuple):
    report: Any  # gatecheck.core.compare.Report of the candidate against the float64 reference
    precise: str  # the precision finding ("computes (part of) the step in float32: ..."), or ""
    whole: bool  # float32 rounding explains every difference
    findings: list  # the named hypotheses (tested to float32 precision after a precision finding)
    notes: list  # what was not tried, and why
    partial: list  # where nothing is named: the hypotheses that explain some wrong quantities, ranked


def examine(candidate, case, family, name="candidate"):
    """The hypotheses on ``candidate`` at the coordinates of ``case`` in float64, whether or not it
    fails there: an ``Examined``, or (None, error text) where the candidate cannot be called.
    Every front end's diagnosis is ``diagnose``'s rendering of this; ``gatecheck.tools.power``
    runs it on correct code."""
    oracle = reference_oracle(family.name)
    own, family = family, under(family, case.options)
    case64 = case._replace(oracle=oracle.name, dtype="f64")
    inputs, truth, yard = view(case64, family)
    ref = family.run(**inputs)
    try:
        got = cand.call(candidate, inputs, family, name)
        quantities = cand.comparable(oracle.observing(family), candidate, family)
    except cand.CandidateError as exc:
        return None, f"diagnosis: {exc}"
    table_ = family.quantities
    actual = {q: contract_value(got, q, table_) for q in quantities}
    expected = {q: contract_value(ref, q, table_) for q in quantities}
    undefined = undefined_entries(family, inputs, quantities)
    report = compare(case64.id, actual, expected, truth, yard, quantities, np.float64, case.B, case.T, family,
                     actual_name=name, expected_name="reference (float64)", undefined=undefined)
    precise = var.in_float32(got, ref, quantities, family)

    def hypotheses():
        findings, notes, explained = [], [], []
        if family.gates and any(table_[r.quantity].phase == 0 for r in report.failures):
            findings += layouts(candidate, inputs, ref, got, own, case.options)
        if family is not own:  # hypotheses an option states for its own contract (none so far)
            findings += _hypotheses(family.hypotheses, inputs, ref, got)
        split, not_split = parts.split(own, case.options, inputs, ref, got)
        if not_split:
            notes.append(not_split)
        for part in split:
            findings += part_findings(part, own, explained)
            if part.withheld:
                notes.append(f"{part.label}: {part.withheld}")
        if family is not own:  # the option's own mutants, on the whole contract
            findings += known_bug(inputs, got, quantities, family, explained=explained)
        for variant, hits in var.tested(var.mask_variants(own, case.options), inputs, got, quantities, family, ref,
                                        undefined):
            if len(hits) == len(quantities):
                findings.append(f"{variant.words}: every quantity compared matches that model")
            explained.append((variant.words, hits))
        return findings, notes, explained

    # Every hypothesis to float64 precision first (a float32 mutant of the catalogue is named exactly); where
    # none holds and float32 rounding leaves differences, again to float32 precision.
    findings, notes, explained = hypotheses()
    if precise and not findings and not precise[1]:
        with at_float32():
            findings, notes, explained = hypotheses()
        findings = [f"{f} (to float32 precision)" for f in findings]
    partial = [] if findings or (precise and precise[1]) else \
        var.ranked(explained, list(dict.fromkeys(r.quantity for r in report.failures)))
    return Examined(report, precise[0] if precise else "", bool(precise and precise[1]), findings, notes, partial)


def diagnose(candidate, case, family, name="candidate", localise=True):
    """Examine ``candidate`` on the coordinates of ``case`` in float64 against ``family``'s
    reference; return (report, text)."""
    examined = examine(candidate, case, family, name)
    if examined[0] is None:
        return examined
    report, precise, whole, findings, notes, partial = examined
    case64 = case._replace(oracle=reference_oracle(family.name).name, dtype="f64")
    if report.ok:
        return report, "diagnosis: in float64 the candidate matches the reference"
    lines = [f"diagnosis ({case64.id}, float64, against the reference):", "  " + pattern(report, case.T)]
    lines += [f"  - {f}" for f in ([precise] if precise else []) + findings]
    unexplained = not findings and not whole
    if unexplained:
        lines.append("  - no other known bug shape explains what float32 rounding does not" if precise else
                     "  - no known bug shape explains it")
    if unexplained and partial:
        lines.append("  nearest explanations (none explains every quantity):")
        lines += [f"    {p}" for p in partial]
    lines += [f"  ({note})" for note in notes]
    if unexplained and localise:
        with at_float32() if precise else contextlib.nullcontext():
            lines += ["  " + line for line in loc.localise(candidate, case64, under(family, case.options), name)]
    lines.append(table(report, case.T))
    return report, "\n".join(lines)
