"""Diagnosis hypotheses of the LSTM families: known bug shapes, each tested on the
candidate's own float64 output against the reference's (``fn(inputs, ref, got)`` returns a
sentence, or None), and the isolating cases that localise what no known shape explains."""

import functools
import itertools

import numpy as np

from gatecheck.core.compare import close
from gatecheck.core.family import Factor, Local
from gatecheck.reference import head as head_reference
from gatecheck.reference import lstm as lstm_reference

GATES = lstm_reference.GATES


def _missing_output_tanh(inputs, ref, got):
    c0_ok = close(got["c"][:, 0], ref["c"][:, 0])
    o0 = ref["gates"][:, 0, 3]
    if c0_ok and not close(got["h"][:, 0], ref["h"][:, 0]) and close(got["h"][:, 0], o0 * got["c"][:, 0]):
        return ("h diverges at t=0 while c_0 matches; consistent with a missing output tanh (h_t = o_t * c_t); "
                "if that is the model you mean, check it with --family lstm-identity")
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
    hits = [k for k, v in last.items() if k in got and not close(got[k], ref[k]) and close(got[k], v)]
    if hits and x.shape[1] > 1:
        verb = "matches" if len(hits) == 1 else "match"
        return (f"{', '.join(hits)} {verb} only the last step's contribution: "
                "the per-step gradients look assigned instead of accumulated over time")
    return None


def _batch_mean(inputs, ref, got):
    B = inputs["x"].shape[0]
    hits = [k for k in ("dW", "dU", "db") if B > 1 and k in got and not close(got[k], ref[k])
            and close(got[k], ref[k] / B)]
    if hits:
        return f"{', '.join(hits)} equal the reference divided by B={B}: averaged over the batch instead of summed"
    return None


def _dropped_initial(inputs, ref, got):
    hits = [k for k in ("dh0", "dc0") if not close(got[k], ref[k]) and not np.any(got[k])]
    if hits:
        return f"{', '.join(hits)} are zero: the gradient flowing out of step 0 is dropped"
    return None


def _extra_output_tanh(inputs, ref, got):
    o0 = ref["gates"][:, 0, 3]
    if close(got["c"][:, 0], ref["c"][:, 0]) and not close(got["h"][:, 0], ref["h"][:, 0]) \
            and close(got["h"][:, 0], o0 * np.tanh(got["c"][:, 0])):
        return ("h diverges at t=0 while c_0 matches; h_t = o_t * tanh(c_t): this is the canonical LSTM, "
                "not the identity-output model; check it with --family lstm")
    return None


# --- hypotheses that rerun the reference on changed inputs -------------------------------


def _agrees(got, other, skip=()):
    """Every quantity the candidate returned equals ``other``'s, to float64 precision."""
    return all(close(got[k], other[k]) for k in got if k in other and k not in skip)


def _differs(got, ref):
    return not _agrees(got, ref)


_STATES = {
    "h0": "the initial hidden state",
    "c0": "the initial cell state",
    "gc": "the upstream gradient of the final cell state C_T",
}


def _join(names):
    names = list(names)
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def ignored_inputs(run):
    """h0, c0 or gc ignored: the candidate equals ``run`` (the family's reference) rerun with
    one or more of them set to zero (the smallest such set is named)."""

    def _state_ignored(inputs, ref, got):
        names = [k for k in _STATES if k in inputs and np.any(inputs[k])]
        if not names or _agrees(got, ref):
            return None
        for n in range(1, len(names) + 1):
            for subset in itertools.combinations(names, n):
                alt = run(**dict(inputs, **{k: np.zeros_like(inputs[k]) for k in subset}))
                # The gradient of an ignored initial state may come back as zero.
                zeroed = [g for g in ("d" + k for k in subset if k != "gc")
                          if g in got and g in alt and not np.any(got[g]) and not close(got[g], alt[g])]
                if not _agrees(got, alt, skip=zeroed):
                    continue
                verb = "looks" if n == 1 else "look"
                text = (f"{_join(subset)} {verb} ignored: every quantity compared matches the reference run with "
                        f"{_join(k + ' = 0' for k in subset)} ({_join(_STATES[k] for k in subset)} "
                        f"{'is' if n == 1 else 'are'} not used)")
                if set(subset) == {"c0", "gc"}:
                    text += "; a sequence API that starts from c = 0 and takes no gradient of C_T does this"
                if zeroed:
                    text += f"; {_join(zeroed)} {'is' if len(zeroed) == 1 else 'are'} returned as zero"
                return text
        return None

    return _state_ignored


def last_upstream_only(run):
    """Only the last step's upstream gradient used: the candidate equals the reference rerun
    with gh_t = 0 for t < T-1 (and, for a many-to-one loss, gc = 0 as well)."""

    def _only_last_upstream(inputs, ref, got):
        gh = inputs["gh"]  # KeyError where the family has no upstream gradient of h
        T = gh.shape[1]
        if T < 2 or not np.any(gh[:, :-1]) or _agrees(got, ref):
            return None
        last = np.zeros_like(gh)
        last[:, -1] = gh[:, -1]
        text = ("only the last step's upstream gradient is used: every quantity compared matches the reference "
                f"run with gh_t = 0 for t < T-1 = {T - 1} (gh[:, :-1] treated as zero)")
        if _agrees(got, run(**dict(inputs, gh=last))):
            return text
        if "gc" in inputs and np.any(inputs["gc"]) \
                and _agrees(got, run(**dict(inputs, gh=last, gc=np.zeros_like(inputs["gc"])))):
            return text[:-1] + " and gc = 0: gc looks ignored too)"
        return None

    return _only_last_upstream


# --- hypotheses on the candidate's own numbers ----------------------------------------------


def _copied_gate_grad(inputs, ref, got):
    """A gate block of dW, dU or db equal to another gate's block of the reference, while the
    other blocks of that gradient match."""
    copies = {}  # (gate, source gate) -> [gradient names]
    for key in (k for k in ("dW", "dU", "db") if k in got):  # no db under no bias
        g, r = got[key], ref[key]
        wrong = [k for k in range(len(GATES)) if not close(g[k], r[k])]
        pairs = []
        for k in wrong:
            sources = [j for j in range(len(GATES)) if j != k and np.any(r[j]) and close(g[k], r[j])]
            if not sources:
                break
            pairs.append((k, sources[0]))
        else:
            for pair in pairs:
                copies.setdefault(pair, []).append(key)
    if not copies:
        return None
    parts, done = [], set()
    for (k, j), keys in copies.items():
        if (k, j) in done:
            continue
        names = _join(keys)
        if copies.get((j, k)) == keys:
            done.add((j, k))
            first, second = sorted((j, k))
            parts.append(f"{names} of gates {GATES[first]} and {GATES[second]} are exchanged (each is the other's)")
        else:
            parts.append(f"{names} of gate {GATES[k]} {'is' if len(keys) == 1 else 'are'} gate {GATES[j]}'s (copied)")
    keys = _join(sorted({key for ks in copies.values() for key in ks}, key=("dW", "dU", "db").index))
    return "; ".join(parts) + f"; the other gates of {keys} match"


def _scaled_gradients(inputs, ref, got):
    """Parameter gradients divided by T or B*T (a mean over time, or over batch and time),
    or any gradient negated (a descent direction returned for the gradient)."""
    B, T = inputs["x"].shape[:2]
    found = []
    # (n = B: see _batch_mean; a divisor that equals another is left out as ambiguous)
    divisors = [(T, f"T={T}: averaged over time")] if 1 < T != B else []
    divisors += [(B * T, f"B*T={B * T}: averaged over batch and time")] if B > 1 and T > 1 else []
    for n, what in divisors:
        hits = [k for k in ("dW", "dU", "db") if k in got and not close(got[k], ref[k])
                and close(got[k], ref[k] / n)]
        if hits:
            found.append(f"{_join(hits)} {'equals' if len(hits) == 1 else 'equal'} the reference divided by "
                         f"{what} instead of summed")
    negated = [k for k in got if k.startswith("d") and k in ref and np.any(ref[k]) and close(got[k], -ref[k])]
    if negated:
        found.append(f"{_join(negated)} {'is' if len(negated) == 1 else 'are'} the reference negated: "
                     "the descent direction -dL/d(.) is returned instead of the gradient")
    return "; ".join(found) or None


def _delta_conventions(inputs, ref, got):
    """dh or dc returned in another convention than the contract's totals: dh without the
    upstream gh_t, dh_t holding what step t passes back (dz_t @ U^T), dc_t holding dc_t * f_t."""
    found = []
    gh = inputs["gh"]
    if not close(got["dh"], ref["dh"]) and np.any(gh):
        passed_back = np.concatenate([ref["dh0"][:, None], (ref["dh"] - gh)[:, :-1]], axis=1)
        if close(got["dh"], ref["dh"] - gh):
            found.append("dh_t is the total dL/dh_t less the upstream gh_t: it holds only what step t+1 passes back "
                         "(dz_{t+1} @ U^T), while the contract's dh is the total gh_t + dz_{t+1} @ U^T")
        elif close(got["dh"], passed_back):
            found.append("dh_t holds what step t passes back to h_{t-1} (dz_t @ U^T), "
                         "not the total dL/dh_t of the contract")
    if "dc" in got and not close(got["dc"], ref["dc"]):
        f = ref["gates"][:, :, 1]
        if close(got["dc"], ref["dc"] * f):
            found.append("dc_t holds dL/dc_t * f_t (what step t passes back to c_{t-1}), "
                         "not the total dL/dc_t of the contract")
    return "; ".join(found) or None


_COMMON = (_missing_recurrent_dh, _dc_without_forget, _last_step_only, _batch_mean, _dropped_initial,
           _copied_gate_grad, _scaled_gradients, _delta_conventions)


def hypotheses(run, first=(_missing_output_tanh,)):
    """The hypotheses of an LSTM family whose reference is ``run``."""
    return tuple(first) + _COMMON + (ignored_inputs(run), last_upstream_only(run))


HYPOTHESES = hypotheses(lstm_reference.run)
HYPOTHESES_IDENTITY = hypotheses(functools.partial(lstm_reference.run, output="identity"),
                                 first=(_extra_output_tanh,))
# The head sets gh and gc itself: hypotheses on them find no "gh" in the inputs and are skipped.
HYPOTHESES_HEAD = hypotheses(head_reference.run)


# --- localisation (gatecheck.tools.localise) ------------------------------------------------------

_BATCH_TIME = ("x", "gh")  # (B, T, ...)
_BATCH = ("h0", "c0", "gc")  # (B, ...)


def _cut(inputs, batch=slice(None), time=slice(None)):
    out = dict(inputs)
    for k in _BATCH_TIME:
        if k in out:
            out[k] = np.ascontiguousarray(out[k][batch, time])
    for k in _BATCH:
        if k in out:
            out[k] = np.ascontiguousarray(out[k][batch])
    return out


def isolating(inputs, ref):
    """Smaller cases on which a local error shows alone: one step (T=1: db of a gate is then
    the batch sum of its dz), one sequence (B=1), both, and no initial state nor gc."""
    B, T = inputs["x"].shape[:2]
    cases = []
    if B > 1 and T > 1:
        cases.append(("B=1 T=1", _cut(inputs, slice(0, 1), slice(0, 1))))
    if T > 1:
        cases.append(("T=1", _cut(inputs, time=slice(0, 1))))
    if B > 1:
        cases.append(("B=1", _cut(inputs, batch=slice(0, 1))))
    zeroed = [k for k in _BATCH if k in inputs and np.any(inputs[k])]
    if zeroed:
        label = "=".join(zeroed) + "=0"
        cases.append((label, dict(inputs, **{k: np.zeros_like(inputs[k]) for k in zeroed})))
    return cases


def step_parts(inputs, ref, t):
    """Step t alone (T=1), fed the reference's state h_{t-1}, c_{t-1} and the reference's
    deltas arriving at step t: gh = dL/dh_t (total), gc = dc_{t+1} * f_{t+1} (the cell's
    carry; gc itself at the last step). The reference on these inputs gives step t's local
    derivatives; its dh0, dc0 are what step t passes back."""
    T = inputs["x"].shape[1]
    h_prev = ref["h"][:, t - 1] if t > 0 else inputs["h0"]
    c_prev = ref["c"][:, t - 1] if t > 0 else inputs["c0"]
    out = dict(inputs, x=inputs["x"][:, t:t + 1], h0=h_prev, c0=c_prev)
    if "gh" in inputs:
        out["gh"] = ref["dh"][:, t:t + 1]
        out["gc"] = ref["dc"][:, t + 1] * ref["gates"][:, t + 1, 1] if t < T - 1 else inputs["gc"]
    return {k: np.ascontiguousarray(v) for k, v in out.items()}


# --- local derivatives (gatecheck.tools.localise) ----------------------------------------------------


def _sigmoid_slips(s, name):
    return ((f"the sigmoid's derivative is taken as (1 - {name}) instead of {name} (1 - {name})", 1 - s),
            (f"the sigmoid's derivative is taken as {name} instead of {name} (1 - {name})", s),
            (f"the sigmoid's derivative {name} (1 - {name}) is missing", np.ones_like(s)))


def local(inputs, ref):
    """Each gate's dL/dz on a one-step case (T = 1) as a product of factors with their usual slips:
    dL/dc_t (shared by i, f, g), the gate's operand, its activation's derivative."""
    x, h0, c0 = inputs["x"][:, 0], inputs["h0"], inputs["c0"]
    dh, gc = inputs["gh"][:, 0], inputs["gc"]
    i, f, g, o = (ref["gates"][:, 0, k] for k in range(4))
    c = ref["c"][:, 0]
    tc = np.tanh(c)
    through_h = dh * o * (1 - tc**2)
    dc_slips = [
        ("dL/dc_t misses the output tanh's derivative: dh_t o_t instead of dh_t o_t (1 - tanh^2(c_t))", gc + dh * o),
        ("the output tanh's derivative is taken at c_t: dh_t o_t (1 - c_t^2) instead of dh_t o_t (1 - tanh^2(c_t))",
         gc + dh * o * (1 - c**2)),
        ("the output tanh's derivative is taken as (1 - tanh(c_t)) instead of (1 - tanh^2(c_t))",
         gc + dh * o * (1 - tc)),
        ("dL/dc_t misses the output gate: dh_t (1 - tanh^2(c_t)) instead of dh_t o_t (1 - tanh^2(c_t))",
         gc + dh * (1 - tc**2)),
        ("dL/dc_t misses its term through h_t, dh_t o_t (1 - tanh^2(c_t))", gc + 0 * dh),
    ]
    if np.any(gc):
        dc_slips.append(("dL/dc_t misses the gradient arriving from the next step's cell (dc_{t+1} f_{t+1}; here gc)",
                         through_h))
    dc = Factor("dL/dc_t", gc + through_h, tuple(dc_slips))

    def blocks(dz):
        return {"dW": x.T @ dz, "dU": h0.T @ dz, "db": dz.sum(axis=0)}

    return {
        "i": Local((dc, Factor("its operand g_t", g, (("its operand is c_{t-1} where g_t belongs", c0),
                                                      ("its operand is c_t where g_t belongs", c))),
                    Factor("the sigmoid's derivative", i * (1 - i), _sigmoid_slips(i, "i_t"))), blocks),
        "f": Local((dc, Factor("its operand c_{t-1}", c0, (("its operand is c_t where c_{t-1} belongs", c),
                                                          ("its operand is g_t where c_{t-1} belongs", g))),
                    Factor("the sigmoid's derivative", f * (1 - f), _sigmoid_slips(f, "f_t"))), blocks),
        "g": Local((dc, Factor("its operand i_t", i, (("its operand is f_t where i_t belongs", f),
                                                      ("its operand i_t is missing", np.ones_like(i)))),
                    Factor("the tanh's derivative", 1 - g**2,
                           (("the tanh's derivative is taken as (1 - g_t) instead of (1 - g_t^2)", 1 - g),
                            ("the tanh's derivative (1 - g_t^2) is missing", np.ones_like(g))))), blocks),
        "o": Local((Factor("dL/dh_t", dh), Factor("its operand tanh(c_t)", tc, (
                        ("its operand is c_t where tanh(c_t) belongs", c),
                        ("its operand is (1 - tanh^2(c_t)) where tanh(c_t) belongs", 1 - tc**2))),
                    Factor("the sigmoid's derivative", o * (1 - o), _sigmoid_slips(o, "o_t"))), blocks),
    }
