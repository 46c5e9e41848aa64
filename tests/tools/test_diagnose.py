"""The diagnosis names the bug: each realistic bug, run as a candidate, is explained by
the right hypothesis, and a correct candidate gets none."""

import numpy as np
import pytest

from gatecheck.core import mutants
from gatecheck.core.cases import Case
from gatecheck.families.lstm.record import LSTM
from gatecheck.reference import lstm
from gatecheck.tools import diagnose as dg

CASE = Case("reference-lstm", 3, 7, 4, 5, "f64", 0)
SQUARE = Case("reference-lstm", 2, 5, 4, 4, "f64", 1)  # D == H: the concatenation order is testable


# A consistent LSTM with the concatenation the other way round (W meets h_{t-1}, U meets
# x_t); also run by the CLI test below as tests.tools.test_diagnose:swapped_concat.
swapped_concat = mutants.candidate(LSTM, LSTM.mutants_by_name["weights-swapped"])


def edited(**changes):
    def run(**kw):
        out = lstm.run(**kw)
        return dict(out, **{k: f(out, kw) for k, f in changes.items()})
    return run


BUGS = [
    ("gate-order-ifog", CASE, mutants.candidate(LSTM, LSTM.mutants_by_name["gate-order-ifog"]),
     "your gates look ordered i,f,o,g (canonical: i,f,g,o); with that layout every quantity matches"),
    ("gate-order-fiog", CASE, mutants.candidate(LSTM, LSTM.mutants_by_name["gate-order-fiog"]),
     "your gates look ordered f,i,o,g"),
    ("concat-swapped", SQUARE, swapped_concat,
     "the concatenation order looks swapped ([h; x] vs [x; h]); with that layout every quantity matches"),
    ("no-recurrent-dh", CASE, mutants.candidate(LSTM, LSTM.mutants_by_name["no-recurrent-dh"]),
     "dh_t equals the upstream gradient alone from t=T-2=5 back: the recurrent term dz_{t+1} @ U^T of dh looks missing"),
    ("dW-last-step", CASE, mutants.candidate(LSTM, LSTM.mutants_by_name["dW-last-step"]),
     "dW matches only the last step's contribution"),
    ("db-batch-mean", CASE, edited(db=lambda o, kw: o["db"] / kw["x"].shape[0]),
     "db equal the reference divided by B=3: averaged over the batch instead of summed"),
    ("dh0-dropped", CASE, edited(dh0=lambda o, kw: np.zeros_like(o["dh0"])),
     "dh0 are zero: the gradient flowing out of step 0 is dropped"),
    ("no-output-tanh", CASE, None,
     "h diverges at t=0 while c_0 matches; consistent with a missing output tanh (h_t = o_t * c_t); "
     "if that is the model you mean, check it with --family lstm-identity"),
]


def no_output_tanh(**kw):
    """h_t = o_t * c_t: a different model (node style), run through the reference's own step."""
    x, h, c = kw["x"], kw["h0"], kw["c0"]
    xw = lstm.input_projection(x, kw["W"], kw["b"])
    Uj = lstm.join_gates(kw["U"])
    hs, cs = [], []
    for t in range(x.shape[1]):
        gates, c = lstm.step(xw[t], h, c, Uj)
        h = gates[:, 3] * c
        hs.append(h)
        cs.append(c)
    out = lstm.run(**kw)  # gradients of the canonical model: only the forward matters here
    return dict(out, h=np.stack(hs, 1), c=np.stack(cs, 1))


@pytest.mark.parametrize("case,fn,expected", [b[1:] for b in BUGS], ids=[b[0] for b in BUGS])
def test_bug_is_diagnosed(case, fn, expected):
    fn = fn or no_output_tanh
    report, text = dg.diagnose(fn, case, LSTM, "buggy")
    assert report is not None and not report.ok
    assert expected in text, text


def test_correct_candidate_gets_no_diagnosis():
    report, text = dg.diagnose(lstm.run, CASE, LSTM, "reference")
    assert report.ok and text == "diagnosis: in float64 the candidate matches the reference"


def test_pattern_and_table_locate_the_steps():
    _, text = dg.diagnose(mutants.candidate(LSTM, LSTM.mutants_by_name["no-recurrent-dh"]), CASE, LSTM, "m")
    assert "forward matches; dh wrong from t=5 (T-2) back; dc wrong from t=5 (T-2) back" in text
    rows = [line for line in text.splitlines() if line.strip().startswith(("5 |", "6 |"))]
    assert rows[0].split("|")[1].strip() == "ok" and rows[0].split("|")[3].strip().startswith("x ")
    assert all(cell.strip() == "ok" for cell in rows[1].split("|")[1:])


def test_unexplained_failure_says_so():
    def noisy(**kw):
        out = lstm.run(**kw)
        return dict(out, dU=out["dU"] * (1 + 1e-3 * np.cos(np.arange(out["dU"].size)).reshape(out["dU"].shape)))
    _, text = dg.diagnose(noisy, CASE, LSTM, "noisy")
    assert "no known bug shape explains it" in text
    assert "forward matches; wrong: dU; right: dh, dc, dx, dh0, dc0, dW, db" in text


def test_cli_verifies_and_diagnoses(capsys):
    from gatecheck.frontends.cli import main

    assert main(["verify", "gatecheck.reference.lstm:run", "--family", "lstm", "--shape", "2,3,2,2"]) == 0
    assert "matches reference" in capsys.readouterr().out
    assert main(["verify", "tests.tools.test_diagnose:swapped_concat", "--family", "lstm", "--shape", "2,5,4,4",
                 "--dtype", "f32"]) == 1
    out = capsys.readouterr().out
    assert out.startswith("reference-lstm-B2-T5-D4-H4-f32-s0: tests.tools.test_diagnose:swapped_concat differs from reference")
    assert "first divergence: c t=0" in out and "concatenation order looks swapped" in out


def test_cli_rejects_bad_usage(capsys):
    from gatecheck.frontends.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["verify", "gatecheck.families.lstm.mutants:MUTANTS"])
    assert exc.value.code == 2
    assert "'MUTANTS' is a list, not callable" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["verify", "gatecheck.reference.lstm:run", "--shape", "2,3"])
    assert "expected four positive integers B,T,D,H" in capsys.readouterr().err
