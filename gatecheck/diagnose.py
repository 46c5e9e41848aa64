"""What a failing candidate's failure looks like.

Besides the first divergence (``gatecheck.compare``), a failing candidate is examined in
float64 against the reference:

- which quantities match and from which time step each goes wrong;
- known bug shapes, each tested as a hypothesis on the candidate's own output: a gate
  order other than (i, f, g, o) (all 23 others are tried, and with D == H also the
  input and recurrent weights swapped, i.e. the other concatenation order), a missing
  output tanh, a missing recurrent term in dh, dc not multiplied by f, parameter
  gradients from the last step only or averaged over the batch, dh0 / dc0 dropped;
- a side-by-side table per time step (reference vs candidate) that fits a terminal.

A hypothesis is reported only when it explains the candidate's numbers to float64
precision (``CLOSE``), never by pattern alone.
"""

import itertools

import numpy as np

from gatecheck import candidate as cand
from gatecheck.battery import _reference_view, comparable
from gatecheck.compare import QUANTITIES, compare, contract_value
from oracles.base import Oracle
from reference import lstm
from reference.lstm import CONTRACT_KEYS, GATES

# Relative (normwise) agreement required for a hypothesis to count, in float64: far above
# rounding (~1e-15) and far below any real difference between two LSTM variants.
CLOSE = 1e-9

REFERENCE = Oracle(
    name="reference",
    framework="numpy",
    description="the NumPy reference itself (reference.lstm.run)",
    observes=tuple(q for q in QUANTITIES if q not in ("cT", "db_ih", "db_hh")),
    runner=lambda inputs: lstm.run(**inputs),
)
REFERENCE_IDENTITY = Oracle(
    name="reference-identity",
    framework="numpy",
    description="the reference's identity-output variant, h_t = o_t * c_t (reference.lstm.run(output='identity'))",
    observes=REFERENCE.observes,
    runner=lambda inputs: lstm.run(**inputs, output="identity"),
)
_FORWARD = ("c", "h")
_STEPWISE = ("h", "c", "dh", "dc", "dx")


def close(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape:
        return False
    scale = max(float(np.max(np.abs(b))) if b.size else 0.0, np.finfo(np.float64).tiny)
    return bool(np.all(np.isfinite(a))) and float(np.max(np.abs(a - b))) <= CLOSE * scale


def _permuted(inputs, order):
    """Inputs whose gate blocks are laid out as ``order`` (gate names, block by block)."""
    idx = [GATES.index(name) for name in order]
    return dict(inputs, W=inputs["W"][idx], U=inputs["U"][idx], b=inputs["b"][idx])


def _swapped(inputs):
    return dict(inputs, W=inputs["U"], U=inputs["W"])


def _unpermute_grads(result, order):
    """Candidate gradients of its own blocks -> canonical per-gate gradients."""
    out = dict(result)
    for key in ("dW", "dU", "db"):
        canon = np.empty_like(result[key])
        for j, name in enumerate(order):
            canon[GATES.index(name)] = result[key][j]
        out[key] = canon
    return out


def _try(candidate, inputs):
    try:
        return cand.call(candidate, inputs)
    except cand.CandidateError:
        return None


def gate_layout(candidate, inputs, ref):
    """Find a gate order (and, with D == H, the swapped concatenation) under which the
    candidate's forward pass matches. Returns a sentence, or None."""
    D, H = inputs["x"].shape[2], inputs["h0"].shape[1]
    layouts = [(order, False) for order in itertools.permutations(GATES)]
    if D == H:
        layouts += [(order, True) for order in itertools.permutations(GATES)]
    for order, swap in layouts:
        if order == GATES and not swap:
            continue
        fed = _permuted(_swapped(inputs) if swap else inputs, order)
        got = _try(candidate, fed)
        if got is None or not all(close(got[q], ref[q]) for q in _FORWARD):
            continue
        what = []
        if order != GATES:
            what.append(f"your gates look ordered {','.join(order)} (canonical: {','.join(GATES)})")
        if swap:
            what.append(
                "your code applies the input weights to h_{t-1} and the recurrent weights to x_t: "
                "the concatenation order looks swapped ([h; x] vs [x; h])"
            )
        back = _unpermute_grads(got, order)
        if swap:
            back["dW"], back["dU"] = back["dU"], back["dW"]
        rest = [k for k in CONTRACT_KEYS if k not in _FORWARD and k in back and not close(back[k], ref[k])]
        tail = "; with that layout every quantity matches" if not rest else (
            f"; with that layout the forward pass matches but {', '.join(rest)} still differ")
        return "; ".join(what) + tail
    return None


def _missing_output_tanh(inputs, ref, got):
    c0_ok = close(got["c"][:, 0], ref["c"][:, 0])
    o0 = ref["gates"][:, 0, 3]
    if c0_ok and not close(got["h"][:, 0], ref["h"][:, 0]) and close(got["h"][:, 0], o0 * got["c"][:, 0]):
        return "h diverges at t=0 while c_0 matches; consistent with a missing output tanh (h_t = o_t * c_t)"
    return None


def _missing_recurrent_dh(inputs, ref, got):
    T = inputs["x"].shape[1]
    if T > 1 and close(got["dh"][:, -1], ref["dh"][:, -1]) and close(got["dh"][:, :-1], inputs["gh"][:, :-1]) \
            and not close(got["dh"][:, :-1], ref["dh"][:, :-1]):
        return (f"dh_t equals the upstream gradient alone from t=T-2={T - 2} back: "
                "the recurrent term dz_{t+1} @ U^T of dh looks missing")
    return None


def _dc_without_forget(inputs, ref, got):
    T = inputs["x"].shape[1]
    if T < 2 or close(got["dc"], ref["dc"]):
        return None
    tanh_c = np.tanh(ref["c"])
    o = ref["gates"][:, :, 3]
    local = got["dh"] * o * (1 - tanh_c**2)
    if close(got["dc"][:, :-1], local[:, :-1] + got["dc"][:, 1:]):
        return "dc_t looks accumulated without the forget gate: dc_{t+1} is not multiplied by f_{t+1}"
    return None


def _last_step_only(inputs, ref, got):
    x, h0 = inputs["x"], inputs["h0"]
    dz_last = ref["dz"][:, -1]  # (B, 4, H)
    h_prev = ref["h"][:, -2] if x.shape[1] > 1 else h0
    last = {
        "dW": np.einsum("bd,bkh->kdh", x[:, -1], dz_last),
        "dU": np.einsum("bj,bkh->kjh", h_prev, dz_last),
        "db": dz_last.sum(axis=0),
    }
    hits = [k for k, v in last.items() if not close(got[k], ref[k]) and close(got[k], v)]
    if hits and x.shape[1] > 1:
        verb = "matches" if len(hits) == 1 else "match"
        return (f"{', '.join(hits)} {verb} only the last step's contribution: "
                "the per-step gradients look assigned instead of accumulated over time")
    return None


def _batch_mean(inputs, ref, got):
    B = inputs["x"].shape[0]
    hits = [k for k in ("dW", "dU", "db") if B > 1 and not close(got[k], ref[k]) and close(got[k], ref[k] / B)]
    if hits:
        return f"{', '.join(hits)} equal the reference divided by B={B}: averaged over the batch instead of summed"
    return None


def _dropped_initial(inputs, ref, got):
    hits = [k for k in ("dh0", "dc0") if not close(got[k], ref[k]) and not np.any(got[k])]
    if hits:
        return f"{', '.join(hits)} are zero: the gradient flowing out of step 0 is dropped"
    return None


HYPOTHESES = (_missing_output_tanh, _missing_recurrent_dh, _dc_without_forget, _last_step_only,
              _batch_mean, _dropped_initial)


def known_bug(inputs, got, quantities, skip=()):
    """Mutants of the reference (gatecheck.mutants) whose output the candidate reproduces,
    on every compared quantity, to float64 precision."""
    from gatecheck import mutants

    found = []
    for m in mutants.MUTANTS:
        if m.name in skip or m.family == "gate-order":  # gate orders: see gate_layout
            continue
        try:
            mutated = mutants.candidate(m)(**inputs)
        except ValueError:  # this mutant cannot run on these shapes
            continue
        if all(close(contract_value(got, q), contract_value(mutated, q)) for q in quantities):
            found.append(f"matches the known bug '{m.name}': {m.wrong} ({m.why})")
    return found


def pattern(report, T):
    """One line: what matches, and from which step each per-step quantity goes wrong."""
    bad = {}
    for r in report.failures:
        bad.setdefault(r.quantity, []).append(r)
    parts = []
    fwd_bad = [q for q in ("c", "h") if q in bad]
    if not fwd_bad:
        parts.append("forward matches")
    for q in ("c", "h", "dh", "dc", "dx"):
        if q in bad:
            ts = sorted(int(r.label[2:]) for r in bad[q])
            if QUANTITIES[q].phase == 0:
                parts.append(f"{q} wrong from t={ts[0]} on")
            else:
                first = ts[-1]
                rel = "T-1" if first == T - 1 else f"T-{T - first}"
                parts.append(f"{q} wrong from t={first} ({rel}) back")
    params = [q for q in ("dh0", "dc0", "dW", "dU", "db") if q in bad]
    if params:
        parts.append("wrong: " + ", ".join(params))
    compared = {r.quantity for r in report.results}
    good = [q for q in ("dh", "dc", "dx", "dh0", "dc0", "dW", "dU", "db") if q in compared and q not in bad]
    if fwd_bad or not good:
        return "; ".join(parts)
    return "; ".join(parts) + "; right: " + ", ".join(good)


def table(report, T, max_rows=12):
    """Side-by-side per step: the worst relative difference of candidate vs reference."""
    cell = {}
    for r in report.results:
        cell[(r.quantity, r.label)] = "ok" if r.ok else f"x {r.rel_err:.1e}"
    cols = [q for q in _STEPWISE if any(k[0] == q for k in cell)]
    steps = list(range(T))
    if T > max_rows:
        steps = steps[: max_rows // 2] + [None] + steps[-(max_rows // 2):]
    lines = ["   t | " + " | ".join(f"{q:<10}" for q in cols)]
    for t in steps:
        if t is None:
            lines.append("  .. |")
            continue
        lines.append(f"{t:4d} | " + " | ".join(f"{cell.get((q, f't={t}'), '-'):<10}" for q in cols))
    rest = []
    for q in ("dh0", "dc0", "dW", "dU", "db"):
        entries = [(label, v) for (qq, label), v in cell.items() if qq == q]
        if entries:
            shown = ", ".join(f"{label.replace('gate ', '')}: {v}" if label else v for label, v in entries)
            rest.append(f"{q} {shown}")
    return "\n".join(lines + ["      " + "; ".join(rest)]) + \
        "\n(ok: within tolerance; x: mismatched, worst relative difference)"


def diagnose(candidate, case, name="candidate"):
    """Examine ``candidate`` on the coordinates of ``case`` in float64 against the
    reference; return (report, text)."""
    case64 = case._replace(oracle="reference", dtype="f64")
    inputs, truth, yard = _reference_view(*_key64(case64))
    ref = lstm.run(**inputs)
    try:
        got = cand.call(candidate, inputs, name)
    except cand.CandidateError as exc:
        return None, f"diagnosis: {exc}"
    quantities = comparable(REFERENCE.observes, candidate)
    actual = {q: contract_value(got, q) for q in quantities}
    expected = {q: contract_value(ref, q) for q in quantities}
    report = compare(case64.id, actual, expected, truth, yard, quantities, np.float64,
                     case.B, case.T, actual_name=name, expected_name="reference (float64)")
    if report.ok:
        return report, "diagnosis: in float64 the candidate matches the reference"
    findings = []
    if any(r.quantity in _FORWARD for r in report.failures):
        layout = gate_layout(candidate, inputs, ref)
        if layout:
            findings.append(layout)
    for hypothesis in HYPOTHESES:
        try:
            found = hypothesis(inputs, ref, got)
        except KeyError:  # the candidate does not expose what this hypothesis needs
            continue
        if found:
            findings.append(found)
    findings += known_bug(inputs, got, quantities)
    lines = [f"diagnosis ({case64.id}, float64, against the reference):", "  " + pattern(report, case.T)]
    lines += [f"  - {f}" for f in findings] or ["  - no known bug shape explains it; see the first divergence"]
    lines.append(table(report, case.T))
    return report, "\n".join(lines)


def _key64(case):
    return (case.B, case.T, case.D, case.H, case.seed, case.regime, "float64")

