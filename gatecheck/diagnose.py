"""What a failing candidate's failure looks like.

Besides the first divergence (``gatecheck.compare``), a failing candidate is examined in
float64 against its family's reference:

- which quantities match and from which time step each goes wrong;
- known bug shapes, each tested as a hypothesis on the candidate's own output: a gate
  order other than the family's (every permutation of ``Family.gates`` is tried, and with
  D == H also the two ``Family.swappable`` inputs exchanged, i.e. the other concatenation
  order), the family's own hypotheses (``Family.hypotheses``) and every mutant of its
  catalogue;
- when no known shape explains it, where the error is born (``gatecheck.localise``);
- a side-by-side table per time step (reference vs candidate) that fits a terminal.

A hypothesis is reported only when it explains the candidate's numbers to float64
precision (``gatecheck.tolerance.CLOSE``), never by pattern alone.
"""

import itertools

import numpy as np

from gatecheck import candidate as cand
from gatecheck import mutants
from gatecheck.battery import view
from gatecheck.compare import close, compare, contract_value, undefined_entries


def _permuted(inputs, family, order):
    """Inputs whose gate blocks are laid out as ``order`` (gate names, block by block)."""
    idx = [family.gates.index(name) for name in order]
    return dict(inputs, **{k: inputs[k][idx] for k in family.gated})


def _swapped(inputs, family):
    a, b = family.swappable
    return dict(inputs, **{a: inputs[b], b: inputs[a]})


def _unpermute_grads(result, family, order):
    """Candidate gradients of its own blocks -> canonical per-gate gradients."""
    out = dict(result)
    for key in ("d" + k for k in family.gated):
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


def gate_layout(candidate, inputs, ref, family):
    """Find a gate order (and, with D == H, the swapped concatenation) under which the
    candidate's forward pass matches. Returns a sentence, or None."""
    gates = family.gates
    square = bool(family.swappable) and inputs[family.swappable[0]].shape == inputs[family.swappable[1]].shape
    layouts = [(order, False) for order in itertools.permutations(gates)]
    if square:
        layouts += [(order, True) for order in itertools.permutations(gates)]
    for order, swap in layouts:
        if order == gates and not swap:
            continue
        fed = _permuted(_swapped(inputs, family) if swap else inputs, family, order)
        got = _try(candidate, fed, family)
        if got is None or not all(q in got and close(got[q], ref[q]) for q in family.forward):
            continue
        what = []
        if order != gates:
            what.append(f"your gates look ordered {','.join(order)} (canonical: {','.join(gates)})")
        if swap:
            what.append(
                "your code applies the input weights to h_{t-1} and the recurrent weights to x_t: "
                "the concatenation order looks swapped ([h; x] vs [x; h])"
            )
        back = _unpermute_grads(got, family, order)
        if swap:
            a, b = ("d" + k for k in family.swappable)
            back[a], back[b] = back[b], back[a]
        rest = [k for k in family.contract if k not in family.forward and k in back and not close(back[k], ref[k])]
        tail = "; with that layout every quantity matches" if not rest else (
            f"; with that layout the forward pass matches but {', '.join(rest)} still differ")
        return "; ".join(what) + tail
    return None


def known_bug(inputs, got, quantities, family, skip=()):
    """Mutants of the family's reference whose output the candidate reproduces, on every
    compared quantity, to float64 precision."""
    found = []
    for m in family.mutants:
        if m.name in skip or m.family == "gate-order":  # gate orders: see gate_layout
            continue
        try:
            mutated = mutants.candidate(family, m)(**inputs)
        except ValueError:  # this mutant cannot run on these shapes
            continue
        if all(close(contract_value(got, q, family.quantities), contract_value(mutated, q, family.quantities))
               for q in quantities):
            found.append(f"matches the known bug '{m.name}': {m.wrong} ({m.why})")
    return found


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
        if spec.phase == 0:
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


def diagnose(candidate, case, family, name="candidate", localise=True):
    """Examine ``candidate`` on the coordinates of ``case`` in float64 against ``family``'s
    reference; return (report, text)."""
    from gatecheck.oracles import reference_oracle

    from gatecheck.options import under

    oracle = reference_oracle(family.name)
    family = under(family, case.options)
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
    report = compare(case64.id, actual, expected, truth, yard, quantities, np.float64, case.B, case.T, family,
                     actual_name=name, expected_name="reference (float64)",
                     undefined=undefined_entries(family, inputs, quantities))
    if report.ok:
        return report, "diagnosis: in float64 the candidate matches the reference"
    findings = []
    if family.gates and any(table_[r.quantity].phase == 0 for r in report.failures):
        layout = gate_layout(candidate, inputs, ref, family)
        if layout:
            findings.append(layout)
    for hypothesis in family.hypotheses:
        try:
            found = hypothesis(inputs, ref, got)
        except KeyError:  # the candidate does not expose what this hypothesis needs
            continue
        if found:
            findings.append(found)
    findings += known_bug(inputs, got, quantities, family)
    lines = [f"diagnosis ({case64.id}, float64, against the reference):", "  " + pattern(report, case.T)]
    if findings:
        lines += [f"  - {f}" for f in findings]
    else:
        lines.append("  - no known bug shape explains it")
        if localise:
            from gatecheck import localise as loc

            lines += ["  " + line for line in loc.localise(candidate, case64, family, name)]
    lines.append(table(report, case.T))
    return report, "\n".join(lines)
