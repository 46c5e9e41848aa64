"""ONNX's LSTM options coupled (input_forget=1) and peep (the input P) (gatecheck.model.options): each model written
out step by step, its gradients' structure (coupled: W[f], U[f], b[f] take no part), bad inputs named, the ONNX
remap of P, the mutants diverging from the reference where they say, every grid case moved by the option (the
deviations of the engines that drop it cover them), and the engines that drop the option computing the reference
without it."""

import numpy as np
import pytest

from gatecheck.core import mutants as mut
from gatecheck.core.cases import Case
from gatecheck.engines import ORACLES, reference_oracle
from gatecheck.engines.onnx import layout as onnx_layout
from gatecheck.families import FAMILIES
from gatecheck.families.lstm import peep
from gatecheck.model import options as opts
from gatecheck.reference import lstm
from gatecheck.run.battery import run_case
from gatecheck.run.grid import grid
from gatecheck.truth import deviations

LSTM = FAMILIES["lstm"]


def _sigmoid(z):
    return 1 / (1 + np.exp(-z))


def _by_hand(inputs, coupled=False):
    """h and c (B, T, H) of the LSTM with ONNX's input_forget (f = 1 - i) and peepholes (inputs' P: rows i, f, o),
    written out here as the ONNX spec's equations."""
    x, h, c = inputs["x"], inputs["h0"], inputs["c0"]
    W, U, b = inputs["W"], inputs["U"], inputs["b"]
    P = inputs.get("P", np.zeros((3, c.shape[1])))
    hs, cs = [], []
    for t in range(x.shape[1]):
        z = [x[:, t] @ W[k] + h @ U[k] + b[k] for k in range(4)]
        i = _sigmoid(z[0] + P[0] * c)
        f = 1 - i if coupled else _sigmoid(z[1] + P[1] * c)
        c = f * c + i * np.tanh(z[2])
        o = _sigmoid(z[3] + P[2] * c)
        h = o * np.tanh(c)
        hs.append(h)
        cs.append(c)
    return np.stack(hs, 1), np.stack(cs, 1)


@pytest.mark.parametrize("regime", ["std", "zero", "sat"])
def test_the_coupled_option_is_its_model_and_keeps_the_contract(regime):
    g = opts.under(LSTM, ("coupled",))
    assert (g.inputs, g.contract, g.keywords) == (LSTM.inputs, LSTM.contract, {"coupled": True})
    inputs = LSTM.make_inputs(Case("x", 2, 9, 3, 4, "f64", 0, regime, ("coupled",)))
    out, default = g.run(**inputs), LSTM.run(**inputs)
    h, c = _by_hand(inputs, coupled=True)
    np.testing.assert_allclose(out["h"], h, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(out["c"], c, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(out["gates"][:, :, 1], 1 - out["gates"][:, :, 0], rtol=0, atol=1e-15)
    assert not np.allclose(out["h"], default["h"], rtol=1e-3, atol=1e-3)


def test_under_coupled_the_forget_weights_take_no_part():
    """f = 1 - i: W[f], U[f] and b[f] take no part, so their gradients are exactly 0 and changing them changes
    nothing; every other gate's gradient is not 0."""
    g = opts.under(LSTM, ("coupled",))
    inputs = LSTM.make_inputs(Case("x", 3, 7, 4, 5, "f64", 0, "std", ("coupled",)))
    out = g.run(**inputs)
    for q in ("dW", "dU", "db"):
        assert not out[q][1].any(), q
        assert all(np.abs(out[q][k]).max() > 1e-3 for k in (0, 2, 3)), q
    moved = dict(inputs, W=inputs["W"].copy(), U=inputs["U"].copy(), b=inputs["b"].copy())
    for k in ("W", "U", "b"):
        moved[k][1] += 1.0
    again = g.run(**moved)
    assert all(np.array_equal(out[k], again[k]) for k in ("h", "c", "dh", "dc", "dx", "dh0", "dc0"))


@pytest.mark.parametrize("regime", ["std", "zero", "sat", "longmem"])
def test_the_peep_option_is_its_model(regime):
    g = opts.under(LSTM, ("peep",))
    assert g.inputs == ("x", "h0", "c0", "W", "U", "b", "P", "gh", "gc") and g.contract == LSTM.contract + ("dP",)
    inputs = g.make_inputs(Case("x", 2, 9, 3, 4, "f64", 0, regime, ("peep",)))
    assert inputs["P"].shape == (3, 4) and np.abs(inputs["P"]).min() > 0
    out = g.run(**inputs)
    h, c = _by_hand(inputs)
    np.testing.assert_allclose(out["h"], h, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(out["c"], c, rtol=1e-12, atol=1e-12)
    plain = LSTM.run(**{k: v for k, v in inputs.items() if k != "P"})
    assert not np.allclose(out["h"], plain["h"], rtol=1e-3, atol=1e-3)
    at_zero = g.run(**peep.with_zero_peepholes(inputs))
    assert all(np.array_equal(at_zero[k], plain[k]) for k in plain)


def test_peep_with_coupled_gates_is_onnxruntimes_model():
    """The reference's peepholes and coupling together (not a grid set yet: options compose later): i sees c_{t-1}
    through P[0], f = 1 - i (P[1] unused: dP[1] = 0)."""
    inputs = opts.under(LSTM, ("peep",)).make_inputs(Case("x", 2, 6, 3, 4, "f64", 1, "std", ("peep",)))
    out = lstm.run_peep(**inputs, coupled=True)
    h, c = _by_hand(inputs, coupled=True)
    np.testing.assert_allclose(out["h"], h, rtol=1e-12, atol=1e-12)
    assert not out["dP"][1].any() and np.abs(out["dP"][[0, 2]]).min() > 0


def test_bad_peepholes_and_coupling_are_named():
    g = opts.under(LSTM, ("peep",))
    inputs = g.make_inputs(Case("x", 2, 3, 3, 4, "f64", 0, "std", ("peep",)))
    with pytest.raises(ValueError, match=r"P: expected shape \(3, H\) .* = \(3, 4\), got \(4, 4\)"):
        lstm.run_peep(**dict(inputs, P=np.zeros((4, 4))))
    with pytest.raises(ValueError, match="P: expected the peephole weights"):
        lstm.run_peep(**dict(inputs, P=None))
    with pytest.raises(ValueError, match="P: .*finite"):
        lstm.run_peep(**dict(inputs, P=np.full((3, 4), np.nan)))
    with pytest.raises(TypeError, match="run_peep: unexpected keyword"):
        lstm.run_peep(**inputs, peepholes=True)
    plain = {k: v for k, v in inputs.items() if k != "P"}
    for bad in ("yes", 1, None):
        with pytest.raises(ValueError, match="coupled: expected True or False"):
            lstm.run(**plain, coupled=bad)


def test_the_onnx_remap_orders_peepholes_i_o_f():
    """ONNX's P is blocks i, o, f (onnx.reference's op_lstm.py: p_i, p_o, p_f = np.split(P, 3)); the canonical rows
    are i, f, o. Rows that all differ, there and back."""
    P = np.arange(12.0).reshape(3, 4)
    onnx_p = onnx_layout.peepholes_to_onnx(P)
    np.testing.assert_array_equal(np.split(onnx_p, 3), [P[0], P[2], P[1]])
    np.testing.assert_array_equal(onnx_layout.peepholes_from_onnx(onnx_p), P)
    params = dict(W=np.ones((4, 3, 4)), U=np.ones((4, 4, 4)), b=np.ones((4, 4)), P=P)
    np.testing.assert_array_equal(onnx_layout.from_onnx("lstm", onnx_layout.to_onnx("lstm", params))["P"], P)
    with pytest.raises(ValueError, match="P: expected the canonical peepholes"):
        onnx_layout.peepholes_to_onnx(P.T)
    with pytest.raises(ValueError, match="peepholes P are the LSTM's only"):
        onnx_layout.to_onnx("gru", dict(W=np.ones((3, 3, 4)), U=np.ones((3, 4, 4)), P=P))


@pytest.mark.parametrize("option", ["coupled", "peep"])
def test_the_mutants_diverge_where_they_say(option):
    """Against the reference oracle (the engines offering these options are forward only: the backward mutants
    are killed by the reference, proven by finite differences, which the battery adds on these sets); where each
    says it shows first, but in the zero regime, where it shows later."""
    f = opts.under(LSTM, (option,))
    oracle = reference_oracle("lstm")
    assert len(f.mutants) == 5
    for regime in ("std", "sat", "zero"):
        case = Case(oracle.name, 3, 7, 4, 5, "f64", 0, regime, (option,))
        for m in f.mutants:
            report = run_case(case, oracle, mut.candidate(f, m), m.name)
            assert report.failures, (m.name, regime)
            if regime == "zero":  # (c0 = 0: what f or P's f row multiplies at t = 0 is 0, the first step can hide it)
                continue
            first = report.failures[0].describe()
            assert first.startswith(m.first.replace("T-1", str(case.T - 1)).replace("T-2", str(case.T - 2))), \
                (m.name, regime, first)


@pytest.mark.parametrize("option", ["coupled", "peep"])
def test_every_grid_case_is_moved_by_the_option(option):
    """The engines that drop the option (onnx.reference: coupled; OpenVINO: both) deviate where the option moves
    what they observe (deviations.coupled_shows, peep_shows); each grid case's output moves by far more than float32
    rounding, so those entries cover every case."""
    seen = set()
    for profile in ("ci", "nightly"):
        for c in grid(profile, LSTM):
            key = (c.B, c.T, c.D, c.H, c.seed, c.regime, c.options)
            if option not in c.options or key in seen:
                continue
            seen.add(key)
            record = opts.under(LSTM, c.options)
            inputs = record.make_inputs(c)
            if option == "coupled":
                other, other_inputs = opts.under(LSTM, tuple(o for o in c.options if o != option)), inputs
            else:
                other, other_inputs = record, peep.with_zero_peepholes(inputs)
            a, b = record.run(**inputs), other.run(**other_inputs)
            moved = max(np.abs(a[k] - b[k]).max() for k in a if k.startswith(("h", "out")) and k in b)
            assert moved > 1e-2, (c.id, moved)
    assert len(seen) >= 20


@pytest.mark.parametrize("name,option,case", [
    ("onnx-reference-lstm", "coupled", (3, 7, 4, 5, "f64", 0, "std")),
    ("openvino-onnx-lstm", "coupled", (3, 7, 4, 5, "f32", 0, "std")),
    ("openvino-onnx-lstm-fed", "coupled", (2, 12, 4, 5, "f32", 2, "sat")),
    ("openvino-onnx-lstm", "peep", (3, 7, 4, 5, "f32", 0, "std")),
])
def test_an_engine_that_drops_the_option_computes_the_lstm_without_it(request, name, option, case):
    """onnx.reference (input_forget unread) and OpenVINO's ONNX frontend (input_forget and P dropped): the oracle
    fails the reference, its deviation applies, and it matches the reference without the option (coupled) or at
    P = 0 (peep)."""
    from conftest import require_framework

    oracle = ORACLES[name]
    require_framework(request.config, oracle.framework)
    c = Case(name, *case, (option,))
    assert not run_case(c, oracle).ok
    assert deviations.for_case(c) is not None
    assert (deviations.coupled_shows if option == "coupled" else deviations.peep_shows)(c)
    f = opts.under(LSTM, (option,))
    if option == "coupled":
        plain = opts.under(LSTM, ())
        without = lambda **kw: plain.run(**{k: v for k, v in kw.items() if k != "coupled"})  # noqa: E731
    else:
        without = lambda **kw: f.run(**peep.with_zero_peepholes(kw))  # noqa: E731
    assert run_case(c, oracle, without, "without the option").ok


@pytest.mark.parametrize("option,case", [("coupled", (3, 7, 4, 5, "f32", 0, "std")),
                                         ("peep", (2, 12, 4, 5, "f32", 2, "longmem"))])
def test_onnxruntime_computes_both_as_the_spec_says(request, option, case):
    """onnxruntime's LSTM (uni_directional_lstm.cc: f = 1 - i under input_forget; P i, o, f, o seeing C_t) matches
    the reference, with no deviation entry applying."""
    from conftest import require_framework

    oracle = ORACLES["ort-lstm"]
    require_framework(request.config, oracle.framework)
    c = Case(oracle.name, *case, (option,))
    assert deviations.for_case(c) is None
    assert run_case(c, oracle).ok
