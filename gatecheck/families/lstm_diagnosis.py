"""Diagnosis hypotheses of the LSTM families: known bug shapes, each tested on the
candidate's own float64 output against the reference's (``fn(inputs, ref, got)`` returns a
sentence, or None), and the isolating cases that localise what no known shape explains."""

import numpy as np

from gatecheck.compare import close


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


def _extra_output_tanh(inputs, ref, got):
    o0 = ref["gates"][:, 0, 3]
    if close(got["c"][:, 0], ref["c"][:, 0]) and not close(got["h"][:, 0], ref["h"][:, 0]) \
            and close(got["h"][:, 0], o0 * np.tanh(got["c"][:, 0])):
        return ("h diverges at t=0 while c_0 matches; h_t = o_t * tanh(c_t): this is the canonical LSTM, "
                "not the identity-output model; check it with --family lstm")
    return None


_COMMON = (_missing_recurrent_dh, _dc_without_forget, _last_step_only, _batch_mean, _dropped_initial)
HYPOTHESES = (_missing_output_tanh,) + _COMMON
HYPOTHESES_IDENTITY = (_extra_output_tanh,) + _COMMON
HYPOTHESES_HEAD = (_missing_output_tanh, _missing_recurrent_dh, _dc_without_forget, _last_step_only, _batch_mean,
                   _dropped_initial)




def isolating(inputs, ref):
    return []


def step_parts(inputs, ref, t):
    return None
