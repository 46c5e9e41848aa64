"""Diagnosis hypotheses of the GRU families: known bug shapes, each tested on the candidate's
own float64 output against the reference's (``fn(inputs, ref, got)`` returns a sentence, or
None), and the isolating cases that localise what no known shape explains.

Targeted (each has its own sentence): the other reset convention (whole model, or the
backward only), the update mix the other way round (whole model, or the forward only), the
two biases merged (bh[n] outside r_t, reset-after), a missing recurrent term in dh,
dropped dh0, parameter gradients from the last step only or averaged over the batch (or
time), and, shared with the LSTM, ignored h0 or upstream gradients and delta conventions.
Gate orders are tried by the engine (``gatecheck.tools.diagnose.gate_layout``); every mutant of
the catalogue is also matched by name (``gatecheck.tools.diagnose.known_bug``).
"""

import functools

import numpy as np

from gatecheck.core.compare import close
from gatecheck.core.family import Factor, Local
from gatecheck.families.lstm import diagnosis as ld
from gatecheck.reference import gru

_PARAMS = ("dW", "dU", "dbx", "dbh")
_OTHER = {"after": "before", "before": "after"}
_FAMILY = {"after": "gru", "before": "gru-reset-before"}
_N = {"after": "n_t = tanh(x W[n] + bx[n] + r_t * (h_{t-1} U[n] + bh[n]))",
      "before": "n_t = tanh(x W[n] + bx[n] + (r_t * h_{t-1}) U[n] + bh[n])"}


def _forward_matches(got, other):
    return close(got["h"], other["h"])


def _rest_matches(got, other):
    return all(close(got[k], other[k]) for k in got if k.startswith("d") and k in other)


def other_convention(reset):
    """The candidate computes the other reset convention's candidate gate: forward and
    backward (a different model: the other family), or the backward only."""
    other = _OTHER[reset]

    def _other_convention(inputs, ref, got):
        if _forward_matches(got, ref):
            fwd = gru.forward_tm(*(inputs[k] for k in ("x", "h0", "W", "U", "bx", "bh")), reset=reset)
            mixed = gru.backward(fwd, *(inputs[k] for k in ("x", "h0", "W", "U", "gh")), reset=other)
            if not _rest_matches(got, ref) and _rest_matches(got, mixed):
                return (f"the forward pass is reset-{reset} but the backward differentiates the reset-{other} "
                        f"candidate ({_N[other]}): the two conventions are mixed")
            return None
        alt = gru.run(**inputs, reset=other)
        if not _forward_matches(got, alt):
            return None
        tail = ("with it every quantity matches" if _rest_matches(got, alt) else
                "with it the forward pass matches but the gradients do not")
        return (f"h matches the reset-{other} convention ({_N[other]}), {tail}; if that is the model you mean, "
                f"check it with --family {_FAMILY[other]}")

    return _other_convention


def _negated_z(inputs):
    out = dict(inputs)
    for k in ("W", "U", "bx", "bh"):
        out[k] = inputs[k].copy()
        out[k][1] *= -1
    return out


def mix_swapped(reset):
    """h_t = z_t n_t + (1 - z_t) h_{t-1}: the reference with every z block negated
    (1 - sigmoid(a) = sigmoid(-a)); its gradients are the reference's there, z blocks negated back."""
    def _mix_swapped(inputs, ref, got):
        if _forward_matches(got, ref):
            return None
        alt = gru.run(**_negated_z(inputs), reset=reset)
        if not _forward_matches(got, alt):
            return None
        for k in ("dW", "dU", "dbx", "dbh"):
            alt[k] = alt[k].copy()
            alt[k][1] *= -1
        tail = ("consistently: with it every quantity matches; to check that model as it is, give it the "
                "contract's weights with W[z], U[z], bx[z] and bh[z] negated and negate their gradients back "
                "(docs/guide/reading-a-failure.md, other conventions)" if _rest_matches(got, alt) else
                "in the forward pass only: the gradients are not that model's")
        return ("the update gate mixes the other way round, h_t = z_t * n_t + (1 - z_t) * h_{t-1} (the contract: "
                f"(1 - z_t) * n_t + z_t * h_{{t-1}}), {tail}")

    return _mix_swapped


def _biases_merged(inputs, ref, got):
    """Reset-after with bh[n] added outside r_t: the reference with bx[n] + bh[n] as the input
    bias and no recurrent bias of n (what one merged bias, bx + bh, does in a reset-after step)."""
    if _forward_matches(got, ref) or not np.any(inputs["bh"][2]):
        return None
    bx, bh = inputs["bx"].copy(), inputs["bh"].copy()
    bx[2] += bh[2]
    bh[2] = 0
    if _forward_matches(got, gru.run(**dict(inputs, bx=bx, bh=bh), reset="after")):
        return ("bh[n] looks added outside r_t (n_t = tanh(x W[n] + bx[n] + bh[n] + r_t * h_{t-1} U[n])): "
                "the two biases merged into one, as in a reset_after=False layout")
    return None


def last_step_only(reset):
    """dW, dU, dbx or dbh equal to the last step's contribution alone."""
    def _last_step_only(inputs, ref, got):
        x = inputs["x"]
        if x.shape[1] < 2:
            return None
        dzx, dzh = ref["dzx"][:, -1], ref["dzh"][:, -1]  # (B, 3, H)
        h_in = np.repeat(ref["h"][:, -2][:, None], 3, axis=1)
        if reset == "before":
            h_in[:, 2] *= ref["gates"][:, -1, 0]
        last = {
            "dW": np.einsum("bd,bkh->kdh", x[:, -1], dzx),
            "dU": np.einsum("bkj,bkh->kjh", h_in, dzh),
            "dbx": dzx.sum(axis=0),
            "dbh": dzh.sum(axis=0),
        }
        hits = [k for k, v in last.items() if k in got and not close(got[k], ref[k]) and close(got[k], v)]
        if hits:
            verb = "matches" if len(hits) == 1 else "match"
            return (f"{ld._join(hits)} {verb} only the last step's contribution: "
                    "the per-step gradients look assigned instead of accumulated over time")
        return None

    return _last_step_only


def _averaged(inputs, ref, got):
    B, T = inputs["x"].shape[:2]
    found, seen = [], set()
    for n, what in ((B, f"B={B}: averaged over the batch"), (T, f"T={T}: averaged over time"),
                    (B * T, f"B*T={B * T}: averaged over batch and time")):
        if n < 2 or n in seen:  # a divisor equal to an earlier one is ambiguous: the first names it
            continue
        seen.add(n)
        hits = [k for k in _PARAMS if k in got and not close(got[k], ref[k]) and close(got[k], ref[k] / n)]
        if hits:
            found.append(f"{ld._join(hits)} {'equals' if len(hits) == 1 else 'equal'} the reference divided by "
                         f"{what} instead of summed")
    return "; ".join(found) or None


def _dropped_h0(inputs, ref, got):
    if not close(got["dh0"], ref["dh0"]) and not np.any(got["dh0"]):
        return "dh0 is zero: the gradient flowing out of step 0 is dropped"
    return None


def hypotheses(reset):
    run = functools.partial(gru.run, reset=reset)
    own = (other_convention(reset), mix_swapped(reset)) + ((_biases_merged,) if reset == "after" else ())
    return own + (ld._missing_recurrent_dh, last_step_only(reset), _averaged, _dropped_h0, ld._delta_conventions,
                  ld.ignored_inputs(run), ld.last_upstream_only(run))


HYPOTHESES = hypotheses("after")
HYPOTHESES_BEFORE = hypotheses("before")


# --- localisation (gatecheck.tools.localise) ------------------------------------------------------


def isolating(inputs, ref):
    """One step, one sequence, both, and h0 = 0 (see ``lstm_diagnosis.isolating``)."""
    return ld.isolating(inputs, ref)


def step_parts(inputs, ref, t):
    """Step t alone (T=1), fed the reference's h_{t-1} and the total dL/dh_t arriving at it;
    the reference on these inputs gives step t's local derivatives, and its dh0 is what step
    t passes back."""
    h_prev = ref["h"][:, t - 1] if t > 0 else inputs["h0"]
    out = dict(inputs, x=inputs["x"][:, t:t + 1], h0=h_prev, gh=ref["dh"][:, t:t + 1])
    return {k: np.ascontiguousarray(v) for k, v in out.items()}


# --- local derivatives (gatecheck.tools.localise) ----------------------------------------------------


def local(reset):
    """Each gate's dL/dz on a one-step case (T = 1) as a product of factors with their usual slips
    (``Family.local``); dL/dh_t is the upstream gradient there."""
    def _local(inputs, ref):
        x, h0, dh = inputs["x"][:, 0], inputs["h0"], inputs["gh"][:, 0]
        r, z, n = (ref["gates"][:, 0, k] for k in range(3))
        hn = ref["hn"][:, 0]  # h_{t-1} U[n] + bh[n]
        U = inputs["U"]
        one = np.ones_like(z)
        mix = Factor("n_t's weight (1 - z_t)", 1 - z, (("n_t is weighed by z_t instead of (1 - z_t)", z),))
        dtanh = Factor("the tanh's derivative", 1 - n**2, (
            ("the tanh's derivative is taken as (1 - n_t) instead of (1 - n_t^2)", 1 - n),
            ("the tanh's derivative (1 - n_t^2) is missing", one)))
        if reset == "after":
            operand = Factor("its operand h_{t-1} U[n] + bh[n]", hn, tuple(
                [("its operand is h_{t-1} U[n] without bh[n]", hn - inputs["bh"][2])] * bool(np.any(inputs["bh"][2]))
                + [("its operand is h_{t-1} where h_{t-1} U[n] + bh[n] belongs", h0)]))
            r_factors = (Factor("dL/dh_t", dh), mix, dtanh, operand)
        else:
            # dL/d(r_t h_{t-1}) = (dL/da_n) U[n]^T: its slips carried through U[n]^T
            back = Factor("dL/d(r_t * h_{t-1}) through U[n]", (dh * (1 - z) * (1 - n**2)) @ U[2].T, (
                ("n's tanh derivative (1 - n_t^2) is missing from what reaches r_t", (dh * (1 - z)) @ U[2].T),
                ("n_t is weighed by z_t instead of (1 - z_t) in what reaches r_t", (dh * z * (1 - n**2)) @ U[2].T)))
            r_factors = (back, Factor("its operand h_{t-1}", h0, (("its operand is h_t where h_{t-1} belongs",
                                                                     ref["h"][:, 0]),)))
        r_factors += (Factor("the sigmoid's derivative", r * (1 - r), ld._sigmoid_slips(r, "r_t")),)

        def blocks(recurrent_scale=None, recurrent_input=h0):
            def fn(dz):
                dzh = dz if recurrent_scale is None else dz * recurrent_scale
                return {"dW": x.T @ dz, "dbx": dz.sum(axis=0), "dU": recurrent_input.T @ dzh, "dbh": dzh.sum(axis=0)}
            return fn

        return {
            "r": Local(r_factors, blocks()),
            "z": Local((Factor("dL/dh_t", dh),
                        Factor("the difference h_{t-1} - n_t", h0 - n, (
                            ("the difference is h_{t-1} alone (n_t missing)", h0),
                            ("the difference is n_t alone (h_{t-1} missing)", n))),
                        Factor("the sigmoid's derivative", z * (1 - z), ld._sigmoid_slips(z, "z_t"))), blocks()),
            "n": Local((Factor("dL/dh_t", dh), mix, dtanh),
                       blocks(r) if reset == "after" else blocks(None, r * h0)),
        }

    return _local
