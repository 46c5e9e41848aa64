"""The clip option (gatecheck.model.options: ONNX's clip): each family's model written out step by step, its
mutants diverging from the reference where they say, every grid case moved by the clip, the finite-difference
points away from the clip's bounds, and onnxruntime's LSTM equal to the reading it takes (c_t unclipped before
the output's tanh: the mutant clip-not-on-output, the model of its deviation)."""

import numpy as np
import pytest

from gatecheck.core import mutants as mut
from gatecheck.core.cases import Case
from gatecheck.core.finite_diff import STEP
from gatecheck.engines import ORACLES, reference_oracle
from gatecheck.families import FAMILIES
from gatecheck.model import options as opts
from gatecheck.reference import gru, lstm, rnn
from gatecheck.run.battery import run_case
from gatecheck.run.grid import grid
from gatecheck.truth import deviations

FAMILIES_WITH_CLIP = ("lstm", "gru", "gru-reset-before", "rnn")
C = opts.CLIP


def _sigmoid(z):
    return 1 / (1 + np.exp(-z))


def _clip(z):
    return np.clip(z, -C, C)


def _by_hand(family, inputs):
    """h (B, T, H) of the family's model with every activation's input clipped, written out here."""
    x, h = inputs["x"], inputs["h0"]
    hs = []
    c = inputs.get("c0")
    for t in range(x.shape[1]):
        if family == "lstm":
            W, U, b = inputs["W"], inputs["U"], inputs["b"]
            z = [_clip(x[:, t] @ W[k] + h @ U[k] + b[k]) for k in range(4)]
            i, f, g, o = _sigmoid(z[0]), _sigmoid(z[1]), np.tanh(z[2]), _sigmoid(z[3])
            c = f * c + i * g
            h = o * np.tanh(_clip(c))
        elif family == "rnn":
            h = np.tanh(_clip(x[:, t] @ inputs["W"] + h @ inputs["U"] + inputs["b"]))
        else:
            W, U, bx, bh = inputs["W"], inputs["U"], inputs["bx"], inputs["bh"]
            r = _sigmoid(_clip(x[:, t] @ W[0] + bx[0] + h @ U[0] + bh[0]))
            z = _sigmoid(_clip(x[:, t] @ W[1] + bx[1] + h @ U[1] + bh[1]))
            inner = r * (h @ U[2] + bh[2]) if family == "gru" else (r * h) @ U[2] + bh[2]
            n = np.tanh(_clip(x[:, t] @ W[2] + bx[2] + inner))
            h = (1 - z) * n + z * h
        hs.append(h)
    return np.stack(hs, 1)


@pytest.mark.parametrize("family", FAMILIES_WITH_CLIP)
def test_the_clip_option_is_its_model_and_keeps_the_contract(family):
    f = FAMILIES[family]
    g = opts.under(f, ("clip",))
    assert (g.inputs, g.contract, g.keywords) == (f.inputs, f.contract, {"clip": C})
    inputs = f.make_inputs(Case("x", 2, 9, 3, 4, "f64", 0, "longmem" if family == "lstm" else "std", ("clip",)))
    out, default = g.run(**inputs), f.run(**inputs)
    assert np.allclose(out["h"], _by_hand(family, inputs), rtol=1e-12, atol=1e-12)
    assert not np.allclose(out["h"], default["h"], rtol=1e-3, atol=1e-3)
    if family == "lstm":  # the output's clip matters here: c_t beyond it
        assert np.abs(out["c"]).max() > C


def test_a_clip_threshold_is_checked():
    inputs = FAMILIES["rnn"].make_inputs(Case("x", 1, 2, 3, 4, "f64", 0))
    for bad in (0.0, -1.0, float("nan"), "1", True):
        with pytest.raises(ValueError, match="clip: expected a positive finite threshold"):
            rnn.run(**inputs, clip=bad)


@pytest.mark.parametrize("family", FAMILIES_WITH_CLIP)
def test_the_clip_mutants_diverge_where_they_say(family):
    """Against the reference (every engine that offers clip is forward only: the backward mutants are killed
    here, by the reference proven by finite differences, not by the battery)."""
    f = opts.under(FAMILIES[family], ("clip",))
    oracle = reference_oracle(family)
    assert len(f.mutants) >= 3
    for regime in ("std", "sat", "longmem") if family != "rnn" else ("std", "sat"):
        case = Case(oracle.name, 3, 7, 4, 5, "f64", 0, regime, ("clip",))
        for m in f.mutants:
            report = run_case(case, oracle, mut.candidate(f, m), m.name)
            if m.needs and regime != "longmem":
                continue  # (c_t beyond the clip: the longmem case has it)
            assert report.failures, (m.name, regime)
            first = report.failures[0].describe()
            assert first.startswith(m.first.replace("T-1", str(case.T - 1))), (m.name, regime, first)


@pytest.mark.parametrize("family", FAMILIES_WITH_CLIP)
def test_every_clip_case_is_moved_by_the_clip(family):
    """An engine that ignores clip (onnx.reference) is a deviation on every clip case: so each case's output
    must differ with and without the clip, well beyond float32 rounding."""
    f = FAMILIES[family]
    seen = set()
    for profile in ("ci", "nightly"):
        for c in grid(profile, f):
            key = (c.B, c.T, c.D, c.H, c.seed, c.regime, c.options)
            if "clip" not in c.options or key in seen:
                continue
            seen.add(key)
            record = opts.under(f, c.options)
            plain = opts.under(f, tuple(o for o in c.options if o != "clip"))
            inputs = record.make_inputs(c)
            a, b = record.run(**inputs), plain.run(**inputs)
            moved = max(np.abs(a[k] - b[k]).max() for k in a if k.startswith(("h", "out")) and k in b)
            assert moved > 1e-2, (c.id, moved)
    assert len(seen) >= 20


def _pre_activations(family, record, inputs):
    """Every input of an activation of the clip model on ``inputs`` (the LSTM's c_t included)."""
    if family == "rnn":
        h = rnn.forward_tm(*(inputs[k] for k in ("x", "h0", "W", "U", "b")), clip=C)
        h_prev = np.concatenate([inputs["h0"][None], h[:-1]])
        return [rnn.input_projection(inputs["x"], inputs["W"], inputs["b"]) + h_prev @ inputs["U"]]
    if family == "lstm":
        fwd = lstm.forward_tm(*(inputs[k] for k in ("x", "h0", "c0", "W", "U", "b")), acts=lstm.chosen(clip=C))
        h_prev = np.concatenate([inputs["h0"][None], fwd["h"][:-1]])
        z = lstm.split_gates(lstm.input_projection(inputs["x"], inputs["W"], inputs["b"]))
        return [z + lstm.split_gates(h_prev @ lstm.join_gates(inputs["U"])), fwd["c"]]
    reset = "after" if family == "gru" else "before"
    args = [inputs[k] for k in ("x", "h0", "W", "U", "bx", "bh")]
    return [gru.pre_activations(gru.forward_tm(*args, reset, acts=gru.chosen(clip=C)), *args, reset)]


@pytest.mark.parametrize("family", FAMILIES_WITH_CLIP)
def test_the_finite_difference_points_straddle_the_clip_away_from_its_bounds(family):
    """The clip's finite-difference points (tests/core/test_finite_differences.py) each hold inputs of the
    activations on both sides of the clip (all but two of them), none within 1e3 finite-difference steps of its bounds (where a
    difference would straddle the kink); the LSTM's points include c_t beyond the clip."""
    record = opts.under(FAMILIES[family], ("clip",))
    c_beyond = clipped = 0
    for shape, seed, regime in record.fd_points:
        inputs = record.make_inputs(Case("fd", *shape, "f64", seed, regime, ("clip",)))
        values = _pre_activations(family, record, inputs)
        every = np.concatenate([v.ravel() for v in values])
        clipped += int((np.abs(every) > C).any())
        assert np.abs(np.abs(every) - C).min() > 1e3 * STEP, (shape, seed, regime)
        if family == "lstm" and regime != "longmem":  # (longmem points are not run under an option)
            c_beyond += int((np.abs(values[1]) > C).any())
    assert clipped >= len(record.fd_points) - 2 and (family != "lstm" or c_beyond >= 2)


def test_onnxruntime_lstm_clips_the_gates_and_not_c_before_the_output(request):
    """onnxruntime's LSTM under clip is the mutant clip-not-on-output (c_t unclipped before tanh), case by case,
    where its deviation applies; and where the cell state stays within the clip, it is the reference."""
    from conftest import require_framework

    oracle = ORACLES["ort-lstm"]
    require_framework(request.config, oracle.framework)
    f = opts.under(FAMILIES["lstm"], ("clip",))
    reading = mut.candidate(f, f.mutants_by_name["clip-not-on-output"])
    beyond = Case(oracle.name, 3, 7, 4, 5, "f32", 0, "std", ("clip",))
    within = Case(oracle.name, 1, 1, 4, 5, "f32", 1, "zero", ("clip",))
    assert deviations.clip_output_shows(beyond) and not deviations.clip_output_shows(within)
    assert not run_case(beyond, oracle).ok
    assert run_case(beyond, oracle, reading, "clip-not-on-output").ok
    assert run_case(within, oracle).ok


def test_the_gates_only_reading_is_the_mutant_clip_not_on_output():
    """LSTM_GATES_CLIPPED (the model of onnxruntime's and OpenVINO's deviation: clip_output=False) and the mutant
    clip-not-on-output are one reading: equal on a case whose cell state exceeds the clip, and both differ from
    the reference there."""
    from gatecheck.families.lstm.record import LSTM_GATES_CLIPPED

    f = opts.under(FAMILIES["lstm"], ("clip",))
    model = opts.under(LSTM_GATES_CLIPPED, ("clip",))
    mutant = mut.candidate(f, f.mutants_by_name["clip-not-on-output"])
    inputs = f.make_inputs(Case("ort-lstm", 3, 7, 4, 5, "f64", 0, "std", ("clip",)))
    a, b, ref = (run(**{k: v.copy() for k, v in inputs.items()}) for run in (model.run, mutant, f.run))
    for q in ("h", "c", "dh", "dc", "dW", "dU", "db", "dx", "dh0", "dc0"):
        np.testing.assert_allclose(a[q], b[q], rtol=1e-12, atol=1e-12, err_msg=q)
    assert np.abs(a["h"] - ref["h"]).max() > 1e-3
