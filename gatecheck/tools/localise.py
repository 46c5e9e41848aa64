"""Where an unexplained error is born: the candidate rerun on isolating cases.

When no known bug shape explains a failure, the candidate is rerun in float64 on

- the family's isolating cases (``Family.isolating``: for the LSTM one step, one sequence,
  both, and no initial state), each compared with the reference on the same inputs; at
  T = 1 a gate-split gradient wrong for some gates only points at those gates' local
  derivatives;
- each step alone (``Family.step_parts``: T = 1, fed the reference's state before the step
  and the reference's deltas arriving at it), which separates an error inside a step (its
  local derivatives, or the deltas it passes back: dh0, dc0 of the one-step run) from one in
  what is carried between steps or in code that runs only inside the whole sequence;
- on the widest one-step case whose forward pass is right, each gate's local derivative
  (``Family.local``: its dL/dz as a product of factors, each with its usual slips), said in words
  gate by gate (``local_derivatives``).

Every statement is a comparison to float64 precision (``gatecheck.core.compare.close``; float32
precision where the diagnosis found the candidate computing in float32) slice by
slice (a time step, a gate, or a whole quantity); a slice that equals the reference's times
a constant says so. Nothing here names a model: the family record supplies the cases.
"""

import functools
import itertools
from typing import NamedTuple

import numpy as np

from gatecheck.core import candidate as cand
from gatecheck.core.compare import close, ranges, slices
from gatecheck.truth.views import case_inputs

MAX_DETAILS = 3  # detail lines for isolating cases
# The local-derivative tests need this many entries of a gate's dL/dz (B * H) at least: on fewer, a
# constant factor explains anything (one entry: any ratio is a constant), so no slip is named.
MIN_LOCAL = 4


class Wrong(NamedTuple):
    key: tuple  # divergence order (gatecheck.core.compare.slices)
    quantity: str
    step: object  # int or None
    gate: object  # str or None
    scale: str  # "" or what the slice equals, in words: "the reference's value divided by B=3", "all zeros", ...


def _call(candidate, inputs, family, name):
    try:
        return cand.call(candidate, inputs, family, name), None
    except cand.CandidateError as exc:
        text = str(exc)
        return None, text if len(text) <= 120 else text[:117] + "..."


def _sizes(inputs, family):
    """(B, T) of the family's first input, the sequence (B, T, ...)."""
    return inputs[family.inputs[0]].shape[:2]


def _scale(a, e, B, T):
    """What slice ``a`` is in terms of the reference's ``e`` when it is a constant multiple."""
    if not np.any(a):
        return "all zeros"
    ee = float(np.vdot(e, e))
    if ee == 0.0:
        return ""
    c = float(np.vdot(a, e)) / ee
    if not close(a, c * e):
        return ""
    if abs(c + 1) < 1e-9:
        return "the reference's value negated"
    for n, what in ((B, "B"), (T, "T"), (B * T, "B*T")):
        if n > 1 and abs(c * n - 1) < 1e-9:
            return f"the reference's value divided by {what}={n}"
    return f"{_factor(c)} times the reference's value"


def _factor(c):
    """A factor in the fewest significant digits (3 at least) that do not read as exactly 1
    (a slice 1.000001 times the reference's is not the reference's)."""
    for digits in range(3, 17):
        text = f"{c:.{digits}g}"
        if abs(float(text)) != 1.0:
            return text
    return repr(c)


def _wrong(got, ref, family, B, T):
    """Every slice of the candidate's output that differs from the reference's, in the
    order the computation runs."""
    table = family.quantities
    out = []
    for name, q in table.items():
        if q.source != name or name not in got or name not in ref:
            continue
        for key, step, gate, index in slices(name, T, table, family.gates):
            a, e = np.asarray(got[name][index], np.float64), np.asarray(ref[name][index], np.float64)
            if not close(a, e):
                out.append(Wrong(key, name, step, gate, _scale(a, e, B, T)))
    return sorted(out)


def _rerun(candidate, inputs, family, name):
    """(wrong slices, or None, error text) of the candidate against the reference on ``inputs``."""
    got, error = _call(candidate, inputs, family, name)
    if got is None:
        return None, error
    B, T = _sizes(inputs, family)
    return _wrong(got, family.run(**inputs), family, B, T), ""


def _join(names):
    names = list(names)
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _gate_words(gates, family):
    if len(gates) == len(family.gates):
        return "of every gate"
    return f"of gate {gates[0]} only" if len(gates) == 1 else f"of gates {', '.join(gates)} only"


def _signature(wrong):
    return frozenset((w.quantity, w.gate, w.scale) for w in wrong)


def _describe(wrong, family):
    """One run's wrong slices (a one-step run: no step indices) in a phrase."""
    table = family.quantities
    forward = [q for q in table if any(w.quantity == q and table[q].phase == 0 for w in wrong)]
    parts = ["forward right" if not forward else f"forward wrong ({', '.join(forward)})"]
    plain = [q for q in table if table[q].phase > 0 and any(w.quantity == q and w.gate is None for w in wrong)]
    gated = {}
    for w in wrong:
        if w.gate is not None:
            gated.setdefault(w.quantity, []).append(w)
    groups = {}
    for q, ws in gated.items():
        groups.setdefault(tuple(w.gate for w in ws), []).append(q)
    items = [q + _notes([w for w in wrong if w.quantity == q and w.gate is None]) for q in plain]
    for gates, qs in groups.items():
        ws = [w for q in qs for w in gated[q]]
        items.append(f"{_join(qs)} {_gate_words(list(gates), family)}" + _notes(ws))
    if items:
        parts.append("wrong: " + ", ".join(items))
    text = "; ".join(parts)
    # One gate set, no scale: the error sits in those gates' dL/dz (at T=1 a gate's dW, dU, db
    # are made of its dz alone).
    sets = {tuple(w.gate for w in ws) for ws in gated.values()}
    if not forward and len(sets) == 1 and not any(w.scale for w in wrong):
        (gates,) = sets
        if len(gates) < len(family.gates):
            which = f"gate {gates[0]}'s" if len(gates) == 1 else f"gates {', '.join(gates)}'"
            text += f": {which} dL/dz (the local derivative) is wrong, the other gates' right"
    return text


def _notes(ws):
    """" (12.8 times the reference's value in gate z (dW, dU, dbx))" for slices that are a constant
    multiple of the reference's: where every slice of ``ws`` is, the multiple alone; else the
    multiple with the gates and quantities it holds in."""
    scales = {}
    for w in ws:
        if w.scale:
            scales.setdefault(w.scale, []).append(w)
    out = []
    for scale, held in scales.items():
        if len(held) == len(ws):
            out.append(scale)
            continue
        gates = list(dict.fromkeys(w.gate for w in held if w.gate is not None))
        quantities = list(dict.fromkeys(w.quantity for w in held))
        where = f" in gate{'s' if len(gates) > 1 else ''} {', '.join(gates)}" if gates else ""
        steps = sorted({w.step for w in held if w.step is not None})
        where += f" at t={ranges(steps)}" if steps and not gates else ""
        named = len({w.quantity for w in ws}) > 1  # (one quantity: the phrase is about it already)
        out.append(f"{scale}{where}" + (f" ({_join(quantities)})" if named else ""))
    return f" ({'; '.join(out)})" if out else ""


def _at(t, T):
    return f"t={t} ({'T-1' if t == T - 1 else f'T-{T - t}'})"


def _carried(family):
    """Per-step backward quantities whose value at step t-1 a one-step run returns as its
    initial-state gradient: dh -> dh0, dc -> dc0."""
    return {q: q + "0" for q, spec in family.quantities.items()
            if spec.split == "time" and spec.phase == 1 and q + "0" in family.contract}


def _full_run(wrong, family, T, compared):
    """Where the whole sequence goes wrong when every step alone is right."""
    if not wrong:
        return "the full run matches in float64"
    first = wrong[0]
    spec = family.quantities[first.quantity]
    q = first.quantity
    if spec.phase == 0 and first.step is not None:
        return (f"in the full run {q} is first wrong at {_at(first.step, T)}: the error is in the state carried "
                "between steps (or in code that runs only inside the whole sequence)")
    if spec.phase == 1 and first.step is not None:
        t = first.step
        per_step = [c for c, spec_c in family.quantities.items()
                    if spec_c.split == "time" and spec_c.phase == 1 and c != q and c in compared]
        right = [f"{c}_{t}" for c in per_step if not any(w.quantity == c and w.step == t for w in wrong)]
        also = f", {_join(right)} right" if right else ""
        if t == T - 1:
            return (f"in the full run {q} is first wrong at {_at(t, T)}{also}, though step {t} alone is right: "
                    "code that runs only inside the whole sequence (depending on t or T)")
        return (f"in the full run {q} is first wrong at {_at(t, T)}{also}, every later step right: with each step "
                f"alone right, the error is in what is carried from step {t + 1} into step {t}, or in code that "
                "runs only inside the whole sequence (depending on t or T, or on values an earlier pass of the "
                "loop left behind)")
    if spec.phase == 1:
        return (f"in the full run {q} is the first wrong (every per-step quantity right): what leaves "
                "step 0 is wrong")
    qs = list(dict.fromkeys(w.quantity for w in wrong))
    return (f"in the full run every per-step quantity is right and {_join(qs)} {'is' if len(qs) == 1 else 'are'} "
            "wrong: the error is in how the per-step contributions are summed over steps")


# --- local derivatives: what each gate's dL/dz gets wrong, on a one-step case ------------------------------

def _amount(c, B):
    """A constant factor of a gradient in words (None: 1)."""
    if abs(c - 1) < 1e-6:
        return None
    if abs(c) < 1e-9:
        return "is missing (zero)"
    if abs(c + 1) < 1e-6:
        return "has the wrong sign (negated)"
    if abs(c - 2) < 1e-6:
        return "is counted twice"
    if B > 1 and abs(c * B - 1) < 1e-6:
        return f"is divided by B={B} (averaged over the batch instead of summed)"
    if abs(c - 0.5) < 1e-6:
        return "is halved"
    return f"is {_factor(c)} times the right value"


def _fit(got, want):
    """The constant c with ``got`` == c * ``want`` on every block (to the precision in force), or None."""
    ee = sum(float(np.vdot(w, w)) for w in want.values())
    if ee == 0.0:
        return None
    c = sum(float(np.vdot(got[k], want[k])) for k in want) / ee
    return c if all(close(got[k], c * want[k]) for k in want) else None


def _clauses(got, model, B):
    """Clauses saying what a gate's blocks get wrong (its dL/dz's slips, a constant factor, its bias
    gradient's factor), the fewest slips first; None where nothing here explains them."""
    keys = list(model.blocks(np.ones_like(model.factors[0].value)))
    mine = {k: np.asarray(got[k], np.float64) for k in keys if k in got}
    weights = {k for k in mine if not k.startswith("db")}
    options = [(f, slip) for f in range(len(model.factors)) for slip in model.factors[f].slips]
    for n in range(3):
        for combo in itertools.combinations(options, n):
            if len({f for f, _ in combo}) < n:
                continue
            values = [f.value for f in model.factors]
            for f, (_, value) in combo:
                values[f] = value
            want = model.blocks(functools.reduce(np.multiply, values))
            fits = [_fit({k: mine[k] for k in group}, {k: want[k] for k in group})
                    for group in (weights, set(mine) - weights) if group]
            if any(c is None for c in fits):
                continue
            words = [slip[0] for _, slip in combo]
            c_w = fits[0] if weights else 1.0
            c_b = fits[-1] if set(mine) - weights else c_w
            if abs(c_w - c_b) < 1e-6 * max(1.0, abs(c_w)):
                amount = _amount(c_w, B)
                if amount:
                    words.append(f"its dL/dz {amount}")
            else:
                for group, c in ((sorted(weights), c_w), (sorted(set(mine) - weights), c_b)):
                    amount = _amount(c, B)
                    if amount:
                        words.append(f"{_join(group)} {amount}")
            if words:
                return words
    return None


def local_derivatives(got, inputs, ref, family):
    """Lines saying, gate by gate, what the candidate's local derivative gets wrong on a one-step case
    (``inputs``: T = 1) whose forward pass is right: each gate's dL/dz is the product of the factors
    the family states (``Family.local``), each with its usual slips (a wrong operand, a derivative
    taken otherwise, a term missing); its blocks of the parameter gradients are tried under no slip,
    one or two, each possibly times a constant (a wrong sign, a term counted twice, a batch mean of the
    bias gradient). Gates whose blocks are right are not named; a clause several gates share is said
    once for them all. Nothing is said on fewer than ``MIN_LOCAL`` entries of dL/dz."""
    models = family.local(inputs, ref)
    B = _sizes(inputs, family)[0]
    if min(m.factors[0].value.size for m in models.values()) < MIN_LOCAL:
        return []
    said = {}
    for k, gate in enumerate(family.gates):
        model = models[gate]
        blocks = {key: got[key][k] for key in model.blocks(np.ones_like(model.factors[0].value)) if key in got}
        right = model.blocks(functools.reduce(np.multiply, [f.value for f in model.factors]))
        wrong = [key for key in blocks if not close(blocks[key], right[key])]
        if not wrong:
            continue
        clauses = _clauses(blocks, model, B) or [f"{_join(wrong)} wrong in a way no known slip of its local "
                                                 "derivative explains"]
        for clause in clauses:
            said.setdefault(clause, []).append(gate)
    merged = {}  # clauses several gates share, per set of gates
    for clause, gates in said.items():
        merged.setdefault(tuple(gates), []).append(clause)
    lines = []
    for gates, clauses in merged.items():
        clause = "; ".join(clauses)
        who = "every gate" if len(gates) == len(family.gates) and len(gates) > 1 else \
            f"gate {gates[0]}" if len(gates) == 1 else f"gates {_join(gates)}"
        lines.append(f"{who}: {clause}")
    return lines


def _local_lines(candidate, runs, family, name):
    """The local-derivative lines on the widest one-step isolating case whose forward pass is right."""
    if family.local is None:
        return []
    table = family.quantities
    for label, sub in runs:
        if _sizes(sub, family)[1] != 1:
            continue
        got, _ = _call(candidate, sub, family, name)
        if got is None:
            continue
        ref = family.run(**sub)
        if any(not close(got[q], ref[q]) for q in got if q in table and table[q].phase == 0 and q in ref):
            continue
        lines = local_derivatives(got, sub, ref, family)
        if lines:
            return [f"what each gate's local derivative gets wrong ({label}: one step, each gate's dL/dz from its "
                    "blocks of the parameter gradients):"] + [f"  {line}" for line in lines]
        return []
    return []


def localise(candidate, case, family, name="candidate"):
    """Lines (at most ~8, and one per gate whose local derivative is wrong) saying where the candidate's
    error is born, for a failing case."""
    if family.isolating is None and family.step_parts is None:
        return []
    inputs = case_inputs(case, family)
    ref = family.run(**inputs)
    B, T = _sizes(inputs, family)
    lines = ["where the error is born (the candidate rerun in float64 on smaller cases):"]

    subs = family.isolating(inputs, ref) if family.isolating else []
    runs = [(label, *_rerun(candidate, sub, family, name)) for label, sub in subs]
    right = [label for label, wrong, _ in runs if wrong == []]
    bad = [label for label, wrong, _ in runs if wrong != []]
    if runs:
        said = []
        if right:
            said.append("right with " + ", ".join(right))
        if bad:
            said.append("wrong with " + ", ".join(bad))
        lines.append("  " + "; ".join(said))
    shown = {}
    for label, wrong, error in runs:
        if len(shown) == MAX_DETAILS or wrong == []:
            continue
        text = f"the candidate fails: {error}" if wrong is None else _describe(wrong, family)
        sig = None if wrong is None else _signature(wrong)
        if sig is not None and sig in shown.values():
            continue
        shown[label] = sig
        lines.append(f"  {label}: {text}")
    if any(wrong for _, wrong, _ in runs):
        one_step = sorted(subs, key=lambda s: -_sizes(s[1], family)[0])  # the widest batch first: it shows a mean
        lines += ["  " + line for line in _local_lines(candidate, one_step, family, name)]

    if family.step_parts is None or T < 2:
        return lines
    steps = [(t, *_rerun(candidate, family.step_parts(inputs, ref, t), family, name)) for t in reversed(range(T))]
    head = "  one step at a time (T=1, fed the reference's state and the deltas arriving at the step): "
    failed = [(t, error) for t, wrong, error in steps if wrong is None]
    if failed:
        lines.append(head + f"the candidate fails at {_at(failed[0][0], T)}: {failed[0][1]}")
        return lines
    wrong_steps = [(t, wrong) for t, wrong, _ in steps if wrong]
    if not wrong_steps:
        got, _ = _call(candidate, inputs, family, name)
        lines.append(head + f"every step is right, including what it passes back "
                            f"({', '.join(_carried(family).values())})")
        if got is not None:
            lines.append("  " + _full_run(_wrong(got, ref, family, B, T), family, T, set(got)))
        return lines
    sigs = {_signature(wrong) for _, wrong in wrong_steps}
    same = len(sigs) == 1
    ts = sorted(t for t, _ in wrong_steps)
    like = [label for label, wrong, _ in runs if wrong and sigs == {_signature(wrong)}]
    if len(wrong_steps) == T:
        what = f"the same way as {like[0]}" if like and same else f"({_describe(wrong_steps[0][1], family)})"
        lines.append(head + f"every step is wrong {what}; the error is inside a "
                            "step, not in what is carried between steps")
    else:
        where = _at(ts[0], T) if len(ts) == 1 else f"t={ranges(ts)}"
        what = _describe(wrong_steps[0][1], family)
        lines.append(head + f"wrong at {where} only ({what}), right at every other step: the error is born "
                            f"inside step{'s' if len(ts) > 1 else ''} {ranges(ts)}")
    return lines
