"""The reverse-direction option (``rev``, gatecheck.model.options): the references' semantics (reverse
is forward on the time-flipped sequence, flipped back; the final state is after x[:, 0]), the
Keras oracles (flipping their processing-order sequence back is what makes them agree), the
grid and ids, PyTorch's absence in the registry, and the option's mutants."""


import numpy as np
import pytest

from gatecheck.core import mutants as mut
from gatecheck.core.cases import Case
from gatecheck.core.compare import contract_value
from gatecheck.engines import ORACLES, battery_oracles, reference_oracle
from gatecheck.engines.keras import common as keras_common
from gatecheck.families import FAMILIES
from gatecheck.model import options as opts
from gatecheck.run.battery import run_case
from gatecheck.run.grid import grid
from gatecheck.tools import killmatrix
from gatecheck.tools.diagnose import diagnose

REV = ("rev",)
NAMES = ("lstm", "lstm-identity", "rnn", "gru", "gru-reset-before")
# The inputs with a time axis, the outputs without one: every other output is per step.
SEQUENCES = ("x", "gh")
TIMELESS = ("dW", "dU", "db", "dbx", "dbh", "dh0", "dc0")


def _reference(name):
    return ORACLES["reference-lstm-identity"] if name == "lstm-identity" else reference_oracle(name)


def _flipped(inputs):
    return {k: v[:, ::-1] if k in SEQUENCES else v for k, v in inputs.items()}


# --- ids, the registry, the grid ------------------------------------------------------------

def test_rev_is_a_suffix_after_the_regime_and_after_nobias():
    case = Case("keras-lstm-cell", 3, 7, 4, 5, "f64", 0, "zero", REV)
    assert case.id == "keras-lstm-cell-B3-T7-D4-H5-f64-s0-zero-rev"
    assert opts.canonical(["rev", "nobias"]) == ("nobias", "rev") and opts.parse("rev") == REV


def test_the_registry_says_pytorch_lacks_it():
    torch = opts.OPTIONS["rev"].frameworks["torch"]
    assert torch.startswith("none:") and "bidirectional=True" in torch
    assert "go_backwards=True" in opts.OPTIONS["rev"].frameworks["keras"]
    assert not [o.name for o in ORACLES.values() if o.framework == "torch" and "rev" in o.options]
    assert "none: PyTorch offers reverse only inside bidirectional=True" in torch and opts.suffix(("rev",)) == "-rev"


def test_a_torch_oracle_refuses_rev():
    case = Case("torch-rnn-cell", 2, 3, 4, 5, "f64", 0)
    with pytest.raises(ValueError, match=r"does not offer option\(s\) \['rev'\]"):
        ORACLES["torch-rnn-cell"].run(FAMILIES["rnn"].make_inputs(case), REV)


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_ci_rev_cases_go_to_keras_and_trace_no_new_shape(name):
    """Reverse cases go to the battery oracles that offer it (Keras, and the identity LSTM's
    reference), in ci on a (D, H) pair the grid already has, T >= 2, both dtypes; the nightly
    grid has them too, T >= 2."""
    f = FAMILIES[name]
    cases = grid("ci", f)
    rev = [c for c in cases if c.options == REV]
    nightly = [c for c in grid("nightly", f) if "rev" in c.options]
    assert all(c.T >= 2 and "rev" in ORACLES[c.oracle].options for c in nightly)
    assert bool(nightly) == ("rev" in f.options)
    if name == "lstm-head":
        assert rev == [] and "rev" not in f.options
        return
    assert {c.oracle for c in rev} == {o for o in battery_oracles(name) if "rev" in ORACLES[o].options}
    assert all(ORACLES[c.oracle].framework != "torch" for c in rev)
    assert {(c.D, c.H) for c in rev} <= {(c.D, c.H) for c in cases if not c.options}
    assert min(c.T for c in rev) >= 2 and {c.dtype for c in rev} == {"f32", "f64"}


def test_rev_is_not_combined_with_nobias_or_bidirectional():
    with pytest.raises(ValueError, match="combining nobias and rev is not defined yet"):
        opts.under(FAMILIES["lstm"], ("nobias", "rev"))
    with pytest.raises(ValueError, match="a bidirectional layer has its own reverse direction"):
        opts.under(FAMILIES["lstm"], ("rev", "bi"))


# --- the references' semantics ------------------------------------------------------------

@pytest.mark.parametrize("name", NAMES)
def test_reverse_is_forward_on_the_flipped_sequence_flipped_back(name):
    base = FAMILIES[name]
    f = opts.under(base, REV)
    assert (f.inputs, f.contract, f.removed, f.applied) == (base.inputs, base.contract, (), REV)
    inputs = f.make_inputs(Case("-", 2, 6, 3, 4, "f64", 1, "std", REV))
    got, fwd = f.run(**inputs), base.run(**_flipped(inputs))
    for k in f.contract:
        expected = fwd[k] if k in TIMELESS else fwd[k][:, ::-1]
        np.testing.assert_array_equal(got[k], expected, err_msg=k)
    assert not np.allclose(got["h"], base.run(**inputs)["h"])  # the direction matters
    # h[:, t] is the state after x[:, t] having consumed x[:, t+1:]: the last state processed is at t = 0.
    tail = base.run(**dict(_flipped(inputs), x=inputs["x"][:, :1:-1], gh=inputs["gh"][:, :1:-1]))
    np.testing.assert_array_equal(got["h"][:, 2], tail["h"][:, -1])


@pytest.mark.parametrize("name", ["lstm", "lstm-identity"])
def test_the_final_state_is_after_x0(name):
    """C_T under rev (gc's state, a whole-sequence layer's returned state) is c[:, 0]."""
    f = opts.under(FAMILIES[name], REV)
    assert f.quantities["cT"].final == 0 and FAMILIES[name].quantities["cT"].final == -1
    inputs = f.make_inputs(Case("-", 2, 5, 3, 4, "f64", 2, "std", REV))
    out = f.run(**inputs)
    fwd = FAMILIES[name].run(**_flipped(inputs))
    np.testing.assert_array_equal(contract_value(out, "cT", f.quantities), fwd["c"][:, -1])
    assert not np.allclose(out["c"][:, -1], out["c"][:, 0])


# --- the Keras oracles ----------------------------------------------------------------------

KERAS = ["keras-lstm-cell", "keras-lstm-layer", "keras-rnn-cell", "keras-rnn-layer", "keras-gru-cell-before"]


@pytest.mark.parametrize("oracle", KERAS)
def test_keras_flipping_its_sequence_back_is_what_makes_it_agree(oracle, request, monkeypatch):
    """With the flip back (``keras_common.in_time_order``) the oracle matches the reference;
    without it (Keras' processing order, tensorflow#40345) the first step it computes differs."""
    from conftest import precise_dtype, require_framework

    o = ORACLES[oracle]
    require_framework(request.config, o.framework)
    f = opts.under(FAMILIES[o.family], REV)
    case = Case(oracle, 3, 7, 4, 5, precise_dtype(o, REV), 0, "std", REV)
    assert run_case(case, o, f.run, "reference").ok
    monkeypatch.setattr(keras_common, "_cache", {})
    monkeypatch.setattr(keras_common, "in_time_order", lambda tf, seq, backwards: seq)
    report = run_case(case, o, f.run, "reference")
    # (the first step the reverse layer computes, t = T-1, is where processing order differs first)
    assert not report.ok and report.failures[0].describe().startswith((f"h t={case.T - 1}", f"c t={case.T - 1}"))


# --- the option's mutants -----------------------------------------------------------------

# One slice per family: the reverse cases of one oracle in its most precise dtype (f64; f32 where it declines f64).
SLICES = {"lstm": "keras-lstm-layer", "lstm-identity": "reference-lstm-identity", "rnn": "keras-rnn-cell",
          "gru": "keras-gru-cell", "gru-reset-before": "keras-gru-layer-before"}


@pytest.mark.parametrize("name", sorted(SLICES))
def test_rev_mutants_are_killed_by_every_rev_case_and_the_reference_is_not(name, request):
    from conftest import precise_dtype, require_framework

    f, oracle = FAMILIES[name], SLICES[name]
    require_framework(request.config, ORACLES[oracle].framework)
    dtype = precise_dtype(ORACLES[oracle], REV)
    mutants = [(o, m) for o, m in killmatrix.catalogue(f) if o == REV]
    assert {m.name for _, m in mutants} >= {"rev-ignored", "rev-processing-order", "rev-h-not-flipped"}
    cases = [c for c in grid("ci", f, oracles=[oracle]) if c.options == REV and c.dtype == dtype]
    assert len(cases) == 3
    result = killmatrix.matrix(cases, ORACLES, mutants, f)
    assert result.pop(killmatrix.REFERENCE_ROW) == []
    assert all(len(ids) == 3 for ids in result.values()), result


@pytest.mark.parametrize("name", NAMES)
def test_rev_mutants_diverge_where_they_say(name):
    """Against the family's reference (no framework needed): each mutant's first divergence is
    its ``first`` and the diagnosis names it."""
    f = opts.under(FAMILIES[name], REV)
    case = Case(_reference(name).name, 3, 7, 4, 5, "f64", 0, "std", REV)
    for m in f.mutants:
        fn = mut.candidate(f, m)
        # (the reverse direction computes t = T-1 first: its first divergence is named in that order)
        first = m.first.replace("T-1", str(case.T - 1))
        assert run_case(case, _reference(name), fn, m.name).failures[0].describe().startswith(first), m.name
        assert f"matches the known bug '{m.name}'" in diagnose(fn, case, FAMILIES[name], m.name)[1]


def test_the_lstm_final_state_mutant_is_seen_by_the_whole_sequence_layer():
    """c left in processing order puts the final state at t = T-1: keras-lstm-layer, which only
    returns C_T, sees it in cT."""
    f = opts.under(FAMILIES["lstm"], REV)
    m = f.mutants_by_name["rev-c-not-flipped"]
    inputs = f.make_inputs(Case("-", 3, 7, 4, 5, "f64", 0, "std", REV))
    got, ref = mut.candidate(f, m)(**inputs), f.run(**inputs)
    np.testing.assert_array_equal(got["h"], ref["h"])
    assert not np.allclose(contract_value(got, "cT", f.quantities), contract_value(ref, "cT", f.quantities))


def test_a_candidate_is_told_the_direction_by_a_keyword():
    """Under rev the inputs are the forward model's: a candidate is called with them and
    ``reverse=True`` (never on a forward case), so one function can implement both."""
    from gatecheck.reference import rnn

    calls = []

    def run(x, h0, W, U, b, gh, *, reverse=False):
        calls.append(reverse)
        return (rnn.run_rev if reverse else rnn.run)(x, h0, W, U, b, gh)

    run.options = {"rev"}
    oracle = reference_oracle("rnn")
    for options in ((), REV):
        assert run_case(Case(oracle.name, 3, 7, 4, 5, "f64", 0, "std", options), oracle, run, "both").ok
    assert calls == [False, True]
    assert opts.under(FAMILIES["rnn"], REV).keywords == {"reverse": True} and FAMILIES["rnn"].keywords == {}
