"""The softmax / cross-entropy head: the reference proven by finite differences, the
head oracles (Keras LSTMCell + Dense, PyTorch LSTMCell + Linear) against it, and each
hand-derived BPTT formula of the usual derivation checked against both frameworks."""

import numpy as np
import pytest

from gatecheck.core.cases import Case
from gatecheck.core.tolerance import FORMULA_RTOL
from gatecheck.engines import ORACLES, battery_oracles
from gatecheck.families.head.record import HEAD
from gatecheck.families.head.record import make_inputs as make_head_inputs
from gatecheck.reference import head, lstm
from gatecheck.truth.views import view

# The head oracles against the reference are the lstm-head family's part of the battery
# (tests/battery/test_battery.py); here, the reference's own proofs and the derivation.
HEAD_ORACLES = {name: ORACLES[name] for name in battery_oracles("lstm-head")}


def _require(request, oracle):
    from conftest import require_framework

    require_framework(request.config, oracle.framework)


def test_head_oracles_observe_the_head_and_the_per_step_deltas():
    assert sorted(HEAD_ORACLES) == ["jax-lstm-head", "keras-lstm-head-cell", "torch-lstm-head-cell"]
    for oracle in HEAD_ORACLES.values():
        assert {"p", "dV", "dcb", "dh", "dc"} <= set(oracle.observes)


def test_head_rejects_targets_that_are_not_distributions():
    inputs = make_head_inputs(Case("-", 2, 3, 3, 4, "f64", 0))
    with pytest.raises(ValueError, match="y: expected per-step target distributions"):
        head.run(**dict(inputs, y=inputs["y"] * 2))
    with pytest.raises(ValueError, match=r"V: expected shape \(H, K\) = \(4, 3\)"):
        head.run(**dict(inputs, V=inputs["V"].T.copy()))


# --- the derivation, formula by formula, in each framework's own numbers -------------

FORMULA_CASE = Case("-", 3, 6, 4, 5, "f64", 7)


@pytest.fixture(scope="module", params=sorted(HEAD_ORACLES))
def framework_view(request):
    """(framework outputs, reference gates, inputs) in float64; the framework's forward
    pass is checked against the reference first, since the formulas use its gates."""
    oracle = HEAD_ORACLES[request.param]
    _require(request, oracle)
    declined = oracle.declined((), "f64")
    if declined:  # the formulas hold to float64 rounding (FORMULA_RTOL)
        pytest.skip(f"{oracle.name} declines float64 here: {declined}")
    inputs, _, _ = view(FORMULA_CASE._replace(oracle=oracle.name), HEAD)
    got = oracle.run({k: v.copy() for k, v in inputs.items()})
    ref = head.run(**inputs)
    for q in ("h", "c", "p"):
        assert_formula(got[q], ref[q], f"{oracle.name} forward {q}")
    gates = ref["gates"]
    return got, dict(i=gates[:, :, 0], f=gates[:, :, 1], g=gates[:, :, 2], o=gates[:, :, 3]), inputs


def assert_formula(actual, expected, what):
    __tracebackhide__ = True
    scale = max(float(np.max(np.abs(expected))), np.finfo(np.float64).tiny)
    err = float(np.max(np.abs(actual - expected)))
    assert err <= FORMULA_RTOL * scale, f"{what}: max |diff| {err:.3g} > {FORMULA_RTOL:g} * {scale:.3g}"


def test_dh_T_is_V_times_the_output_error(framework_view):
    """δh_T = Vᵀ(ŷ_T − y_T)"""
    got, _, inputs = framework_view
    assert_formula(got["dh"][:, -1], (got["p"][:, -1] - inputs["y"][:, -1]) @ inputs["V"].T, "δh_T")


def test_dc_T_is_dh_T_through_the_output_gate(framework_view):
    """δC_T = δh_T ⊙ o_T ⊙ (1 − tanh² C_T)"""
    got, gate, _ = framework_view
    c_T = got["c"][:, -1]
    assert_formula(got["dc"][:, -1], got["dh"][:, -1] * gate["o"][:, -1] * (1 - np.tanh(c_T) ** 2), "δC_T")


def test_dh_t_collects_the_output_error_and_both_recurrent_paths(framework_view):
    """δh_t = Vᵀ(ŷ_t − y_t) + (∂C_{t+1}/∂h_t)ᵀ δC_{t+1} + (∂h_{t+1}/∂o_{t+1} · ∂o_{t+1}/∂h_t)ᵀ δh_{t+1}"""
    got, gate, inputs = framework_view
    U, V = inputs["U"], inputs["V"]
    i, f, g, o = (gate[k][:, 1:] for k in "ifgo")
    c_prev, c_next = got["c"][:, :-1], got["c"][:, 1:]
    dc_next, dh_next = got["dc"][:, 1:], got["dh"][:, 1:]
    via_c = ((dc_next * g * i * (1 - i)) @ U[0].T + (dc_next * c_prev * f * (1 - f)) @ U[1].T
             + (dc_next * i * (1 - g**2)) @ U[2].T)
    via_o = (dh_next * np.tanh(c_next) * o * (1 - o)) @ U[3].T
    expected = (got["p"][:, :-1] - inputs["y"][:, :-1]) @ V.T + via_c + via_o
    assert_formula(got["dh"][:, :-1], expected, "δh_t, t < T")


def test_dc_t_adds_the_forget_gated_future(framework_view):
    """δC_t = δh_t ⊙ o_t ⊙ (1 − tanh² C_t) + δC_{t+1} ⊙ f_{t+1}"""
    got, gate, _ = framework_view
    expected = (got["dh"][:, :-1] * gate["o"][:, :-1] * (1 - np.tanh(got["c"][:, :-1]) ** 2)
                + got["dc"][:, 1:] * gate["f"][:, 1:])
    assert_formula(got["dc"][:, :-1], expected, "δC_t, t < T")


def _gate_deltas(got, gate, inputs):
    """The per-gate pre-activation deltas written with the framework's δh, δC:
    i: δC⊙g⊙i(1−i), f: δC⊙C_{t−1}⊙f(1−f), a (=g): δC⊙i⊙(1−g²), o: δh⊙tanh C⊙o(1−o)."""
    c_prev = np.concatenate([inputs["c0"][:, None], got["c"][:, :-1]], axis=1)
    dc, dh = got["dc"], got["dh"]
    return dict(
        i=dc * gate["g"] * gate["i"] * (1 - gate["i"]),
        f=dc * c_prev * gate["f"] * (1 - gate["f"]),
        g=dc * gate["i"] * (1 - gate["g"] ** 2),
        o=dh * np.tanh(got["c"]) * gate["o"] * (1 - gate["o"]),
    )


@pytest.mark.parametrize("k,gate_name", list(enumerate(lstm.GATES)))
def test_recurrent_kernel_gradient_per_gate(framework_view, k, gate_name):
    """∂L/∂W_f (recurrent) = Σ_t h_{t−1}ᵀ [δC_t ⊙ C_{t−1} ⊙ f_t ⊙ (1 − f_t)], and likewise
    for W_i, W_a (= g) and W_o."""
    got, gate, inputs = framework_view
    h_prev = np.concatenate([inputs["h0"][:, None], got["h"][:, :-1]], axis=1)
    delta = _gate_deltas(got, gate, inputs)[gate_name]
    assert_formula(got["dU"][k], np.einsum("btj,bth->jh", h_prev, delta), f"dU gate {gate_name}")


@pytest.mark.parametrize("k,gate_name", list(enumerate(lstm.GATES)))
def test_input_kernel_and_bias_gradients_per_gate(framework_view, k, gate_name):
    """∂L/∂W_k (input) = Σ_t x_tᵀ δz_t[k];  ∂L/∂b_k = Σ_t Σ_batch δz_t[k]"""
    got, gate, inputs = framework_view
    delta = _gate_deltas(got, gate, inputs)[gate_name]
    assert_formula(got["dW"][k], np.einsum("btd,bth->dh", inputs["x"], delta), f"dW gate {gate_name}")
    assert_formula(got["db"][k], delta.sum(axis=(0, 1)), f"db gate {gate_name}")
