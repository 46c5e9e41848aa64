"""The diagnosis names the bugs of hand-written code (examples/buggy/): hypotheses that rerun
the reference with an input changed, a gate's gradient copied from another's, and the
localisation of what no known shape explains."""

import numpy as np
import pytest

from examples.buggy import (
    copied_gate_grad,
    last_step_upstream,
    output_path_local,
    sequence_c0_zero,
    two_bugs,
)
from gatecheck.core import mutants
from gatecheck.core.cases import Case
from gatecheck.families.lstm import diagnosis as ld
from gatecheck.families.lstm.record import LSTM
from gatecheck.reference import lstm
from gatecheck.tools.diagnose import diagnose
from gatecheck.tools.localise import localise
from gatecheck.truth.views import case_inputs

CASE = Case("reference-lstm", 3, 7, 4, 5, "f64", 0)
ZERO = CASE._replace(regime="zero")

C0_AND_GC = ("c0 and gc look ignored: every quantity compared matches the reference run with c0 = 0 and gc = 0 "
             "(the initial cell state and the upstream gradient of the final cell state C_T are not used); "
             "a sequence API that starts from c = 0 and takes no gradient of C_T does this")
LAST_UPSTREAM = ("only the last step's upstream gradient is used: every quantity compared matches the reference "
                 "run with gh_t = 0 for t < T-1 = 6 (gh[:, :-1] treated as zero)")
COPIED = "db of gate f is gate i's (copied); the other gates of db match"
LOCALISED = "where the error is born (the candidate rerun in float64 on smaller cases):"


def text_of(fn, case=CASE):
    report, text = diagnose(fn, case, LSTM, "example")
    assert report is not None and not report.ok, text
    return text


def with_inputs(**changes):
    """The reference run on inputs changed by ``changes`` (name -> inputs -> value)."""
    def run(**kw):
        return lstm.run(**dict(kw, **{k: f(kw) for k, f in changes.items()}))
    return run


def zero(name):
    return lambda kw: np.zeros_like(kw[name])


# --- the examples ------------------------------------------------------------------------


def test_sequence_api_passes_zero_regime_and_is_named_on_std():
    report, text = diagnose(sequence_c0_zero.run, ZERO, LSTM, "example")
    assert report.ok and text == "diagnosis: in float64 the candidate matches the reference"
    text = text_of(sequence_c0_zero.run)
    assert "  - " + C0_AND_GC in text
    assert "c0 looks ignored" not in text and "gc looks ignored" not in text
    assert "no known bug shape explains it" not in text


def test_last_step_upstream_only():
    text = text_of(last_step_upstream.run)
    assert "  - " + LAST_UPSTREAM in text
    assert "no known bug shape explains it" not in text


def test_copied_gate_gradient():
    text = text_of(copied_gate_grad.run)
    assert "  - " + COPIED + "\n" in text
    assert "no known bug shape explains it" not in text


def test_output_path_wrong_at_one_step_is_localised():
    text = text_of(output_path_local.run)
    assert "dc wrong from t=5 (T-2) back" in text
    assert "no known bug shape explains it" in text and LOCALISED in text
    lines = text[text.index(LOCALISED):].splitlines()
    assert lines[1].strip() == "right with B=1 T=1, T=1; wrong with B=1, h0=c0=gc=0"
    assert ("every step is right, including what it passes back (dh0, dc0)" in text)
    assert ("in the full run dc is first wrong at t=5 (T-2), dh_5 right, every later step right: with each step "
            "alone right, the error is in what is carried from step 6 into step 5, or in code that runs only "
            "inside the whole sequence") in text


def test_two_bugs_are_localised():
    text = text_of(two_bugs.run)
    assert "no known bug shape explains it" in text
    block = text[text.index(LOCALISED):text.index("   t |")].splitlines()
    local = [line for line in block if line.startswith("      ")]  # the local derivatives, gate by gate
    assert len(block) - len(local) <= 8 and len(local) <= len(LSTM.gates)
    assert ("B=1 T=1: forward right; wrong: dx, dh0, dW, dU and db of gate f only: gate f's dL/dz "
            "(the local derivative) is wrong, the other gates' right") in text
    assert ("T=1: forward right; wrong: dx, dh0, dW and dU of gate f only, db of every gate "
            "(the reference's value divided by B=3 in gates i, g, o)") in text
    assert ("every step is wrong the same way as T=1; the error is inside a step, not in what is carried "
            "between steps") in text


def test_two_bugs_in_the_zero_regime():
    # c0 = 0 makes the forget gate's dz vanish at t=0: at T=1 only db's batch mean shows.
    text = text_of(two_bugs.run, ZERO)
    assert "T=1: forward right; wrong: db of gates i, g, o only (the reference's value divided by B=3)" in text


# --- the hypotheses on constructed candidates ----------------------------------------------


@pytest.mark.parametrize("changes,expected", [
    (dict(c0=zero("c0")), "c0 looks ignored: every quantity compared matches the reference run with c0 = 0 "
                          "(the initial cell state is not used)"),
    (dict(gc=zero("gc")), "gc looks ignored: every quantity compared matches the reference run with gc = 0 "
                          "(the upstream gradient of the final cell state C_T is not used)"),
    (dict(h0=zero("h0")), "h0 looks ignored: every quantity compared matches the reference run with h0 = 0 "
                          "(the initial hidden state is not used)"),
    (dict(c0=zero("c0"), gc=zero("gc")), C0_AND_GC),
])
def test_ignored_state_is_named(changes, expected):
    text = text_of(with_inputs(**changes))
    assert "  - " + expected in text


def test_ignored_initial_state_with_zero_gradient_returned():
    def run(**kw):
        out = lstm.run(**dict(kw, c0=np.zeros_like(kw["c0"])))
        return dict(out, dc0=np.zeros_like(out["dc0"]))
    assert ("c0 looks ignored: every quantity compared matches the reference run with c0 = 0 (the initial cell "
            "state is not used); dc0 is returned as zero") in text_of(run)


def test_many_to_one_upstream_is_named():
    def last_only(kw):
        gh = np.zeros_like(kw["gh"])
        gh[:, -1] = kw["gh"][:, -1]
        return gh
    text = text_of(with_inputs(gh=last_only, gc=zero("gc")))
    assert LAST_UPSTREAM[:-1] + " and gc = 0: gc looks ignored too)" in text


@pytest.mark.parametrize("key,k,j,expected", [
    ("dW", 3, 2, "dW of gate o is gate g's (copied); the other gates of dW match"),
    ("dU", 0, 1, "dU of gate i is gate f's (copied); the other gates of dU match"),
])
def test_copied_blocks_of_weights(key, k, j, expected):
    def run(**kw):
        out = lstm.run(**kw)
        grad = out[key].copy()
        grad[k] = out[key][j]
        return dict(out, **{key: grad})
    assert "  - " + expected in text_of(run)


def test_exchanged_gate_gradients():
    def run(**kw):
        out = lstm.run(**kw)
        return dict(out, db=out["db"][[1, 0, 2, 3]])
    assert "db of gates i and f are exchanged (each is the other's); the other gates of db match" in text_of(run)


@pytest.mark.parametrize("change,expected", [
    (lambda o, kw: dict(dW=o["dW"] / 7), "dW equals the reference divided by T=7: averaged over time instead of summed"),
    (lambda o, kw: dict(db=o["db"] / 21, dU=o["dU"] / 21),
     "dU and db equal the reference divided by B*T=21: averaged over batch and time instead of summed"),
    (lambda o, kw: dict(dW=-o["dW"], dx=-o["dx"]),
     "dW and dx are the reference negated: the descent direction -dL/d(.) is returned instead of the gradient"),
    (lambda o, kw: dict(dh=o["dh"] - kw["gh"]),
     "dh_t is the total dL/dh_t less the upstream gh_t: it holds only what step t+1 passes back (dz_{t+1} @ U^T)"),
    (lambda o, kw: dict(dh=np.concatenate([o["dh0"][:, None], (o["dh"] - kw["gh"])[:, :-1]], axis=1)),
     "dh_t holds what step t passes back to h_{t-1} (dz_t @ U^T), not the total dL/dh_t of the contract"),
    (lambda o, kw: dict(dc=o["dc"] * o["gates"][:, :, 1]),
     "dc_t holds dL/dc_t * f_t (what step t passes back to c_{t-1}), not the total dL/dc_t of the contract"),
])
def test_scaled_and_convention_gradients(change, expected):
    def run(**kw):
        out = lstm.run(**kw)
        return dict(out, **change(out, kw))
    assert "  - " + expected in text_of(run)


NEW = [h for h in ld.HYPOTHESES if h.__name__ in (
    "_state_ignored", "_only_last_upstream", "_copied_gate_grad", "_scaled_gradients", "_delta_conventions")]


def test_new_hypotheses_are_registered():
    assert len(NEW) == 5
    for family_hypotheses in (ld.HYPOTHESES_IDENTITY, ld.HYPOTHESES_HEAD):
        assert {h.__name__ for h in NEW} <= {h.__name__ for h in family_hypotheses}


@pytest.mark.parametrize("candidate", [
    lstm.run,
    mutants.candidate(LSTM, LSTM.mutants_by_name["dW-last-step"]),
    mutants.candidate(LSTM, LSTM.mutants_by_name["sigmoid-derivative-wrong"]),
    mutants.candidate(LSTM, LSTM.mutants_by_name["f-grad-uses-c_t"]),
], ids=["reference", "dW-last-step", "sigmoid-derivative-wrong", "f-grad-uses-c_t"])
@pytest.mark.parametrize("regime", ["std", "zero"])
@pytest.mark.parametrize("hypothesis", NEW, ids=[h.__name__ for h in NEW])
def test_new_hypotheses_stay_silent(hypothesis, candidate, regime):
    inputs = case_inputs(CASE._replace(regime=regime), LSTM)
    ref = LSTM.run(**inputs)
    got = {k: v for k, v in candidate(**inputs).items() if k in LSTM.contract}
    assert hypothesis(inputs, ref, got) is None


def test_localisation_is_silent_on_a_correct_candidate():
    lines = localise(lstm.run, CASE, LSTM, "reference")
    assert lines[1].strip() == "right with B=1 T=1, T=1, B=1, h0=c0=gc=0"
    assert lines[2].strip().endswith("every step is right, including what it passes back (dh0, dc0)")
    assert lines[3].strip() == "the full run matches in float64"


def test_step_parts_feed_the_reference_its_own_step():
    inputs = case_inputs(CASE, LSTM)
    ref = LSTM.run(**inputs)
    for t in (0, 3, 6):
        one = LSTM.run(**ld.step_parts(inputs, ref, t))
        for key in ("h", "c", "dh", "dc", "dx"):
            np.testing.assert_allclose(one[key][:, 0], ref[key][:, t], rtol=1e-12, atol=1e-14)
        passed_back = ref["dh"][:, t - 1] - inputs["gh"][:, t - 1] if t else ref["dh0"]
        np.testing.assert_allclose(one["dh0"], passed_back, rtol=1e-12, atol=1e-14)


def test_localisation_shows_each_kind_of_error_once():
    # dh0 returned as zero is wrong the same way in every isolating case: one detail line.
    lines = localise(mutants.candidate(LSTM, LSTM.mutants_by_name["dh0-dropped"]), CASE, LSTM, "m")
    assert lines[1].strip() == "wrong with B=1 T=1, T=1, B=1, h0=c0=gc=0"
    assert lines[2].strip() == "B=1 T=1: forward right; wrong: dh0 (all zeros)"
    assert not any(line.strip().startswith(("T=1:", "B=1:", "h0=c0=gc=0:")) for line in lines)


# --- the localisation's words for a slice that is a multiple of the reference's ------------------------

def test_a_multiple_of_the_reference_is_said_in_words():
    """What a wrong slice is in terms of the reference's value reads as a sentence ("12.8 times the
    reference's value", "divided by B=3"), never as "the reference x 1" (a factor that rounds to 1 is
    printed with the digits that show it is not 1)."""
    from gatecheck.tools.localise import _scale

    e = np.linspace(-1.0, 2.0, 12).reshape(3, 4)
    assert _scale(12.8 * e, e, 3, 7) == "12.8 times the reference's value"
    assert _scale((1 + 2e-6) * e, e, 3, 7) == "1.000002 times the reference's value"
    assert _scale(e / 3, e, 3, 7) == "the reference's value divided by B=3"
    assert _scale(e / 21, e, 3, 7) == "the reference's value divided by B*T=21"
    assert _scale(-e, e, 3, 7) == "the reference's value negated"
    assert _scale(0 * e, e, 3, 7) == "all zeros"
    assert _scale(e + 1, e, 3, 7) == ""


def test_a_multiple_held_by_some_slices_names_their_gates_and_quantities():
    """A multiple that holds for some of the slices a phrase is about names the gate it holds in and
    the quantities (once each, not a gate per quantity: "gates f, f")."""
    from gatecheck.tools.localise import Wrong, _describe

    times = "12.8 times the reference's value"
    wrong = [Wrong((0,), "dW", None, "f", times), Wrong((1,), "dU", None, "f", times), Wrong((2,), "db", None, "f", "")]
    assert _describe(wrong, LSTM) == \
        f"forward right; wrong: dW, dU and db of gate f only ({times} in gate f (dW and dU))"
    every = [Wrong((0,), "dW", None, "f", times), Wrong((1,), "dU", None, "f", times)]
    assert _describe(every, LSTM) == f"forward right; wrong: dW and dU of gate f only ({times})"
