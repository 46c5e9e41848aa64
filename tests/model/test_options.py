"""Layer options (gatecheck.model.options), with no bias as the first: case ids, the grid and its
grouping, the family records under an option, the pure remaps without biases, the candidate
contract and its ``options`` attribute, results and drift, the option's mutants."""

import numpy as np
import pytest

from gatecheck.core import candidate as cand
from gatecheck.core.cases import Case
from gatecheck.engines import ORACLES, battery_oracles
from gatecheck.engines.keras import gru_layout, layout, rnn_layout
from gatecheck.engines.torch import gru_layout as torch_gru_layout
from gatecheck.engines.torch import layout as torch_layout
from gatecheck.engines.torch import rnn_layout as torch_rnn_layout
from gatecheck.families import FAMILIES
from gatecheck.model import options as opts
from gatecheck.reference import gru, lstm, rnn
from gatecheck.run.grid import grid, group, group_name, shard
from gatecheck.tools import check as chk
from gatecheck.tools import drift, killmatrix
from gatecheck.tools import results as res
from tests import layered

NOBIAS = ("nobias",)
CASE = Case("torch-lstm-cell", 3, 7, 4, 5, "f64", 0)
# What no bias removes, per family: the candidate gets none of these inputs and returns none of these keys.
REMOVED = {"lstm": (("b",), ("db",)), "lstm-identity": (("b",), ("db",)), "rnn": (("b",), ("db",)),
           "gru": (("bx", "bh"), ("dbx", "dbh")), "gru-reset-before": (("bx", "bh"), ("dbx", "dbh"))}


# --- ids, the grid, grouping ---------------------------------------------------------------

def test_a_case_without_options_keeps_its_id_and_nobias_is_a_suffix_after_the_regime():
    assert CASE.id == "torch-lstm-cell-B3-T7-D4-H5-f64-s0"
    assert CASE._replace(options=NOBIAS).id == "torch-lstm-cell-B3-T7-D4-H5-f64-s0-nobias"
    assert CASE._replace(regime="zero", options=NOBIAS).id == "torch-lstm-cell-B3-T7-D4-H5-f64-s0-zero-nobias"


def test_options_are_checked_and_canonical():
    assert opts.canonical(["nobias", "nobias"]) == NOBIAS
    assert opts.parse("") == () and opts.parse("nobias") == NOBIAS
    with pytest.raises(ValueError, match=r"option: expected names from \['nobias', 'rev', 'proj', .*'bi', .*'L2'.*\], got \['bias'\]"):
        opts.parse("bias")


def test_the_grouping_key_holds_the_options():
    """Keras builds another model for use_bias=False: another traced graph, another group."""
    nob = CASE._replace(oracle="keras-lstm-cell", options=NOBIAS)
    assert group(nob) != group(nob._replace(options=()))
    assert group_name(nob) == "keras-lstm-cell-D4-H5-f64-nobias"
    assert group_name(nob._replace(options=())) == "keras-lstm-cell-D4-H5-f64"


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_option_cases_go_to_the_oracles_that_offer_them(name):
    f = FAMILIES[name]
    for profile in ("ci", "nightly"):
        cases = grid(profile, f)
        for c in cases:
            assert set(c.options) <= ORACLES[c.oracle].options, c.id
        with_option = [c for c in cases if c.options]
        if "nobias" in f.options:
            # the oracles that offer no bias and run, in some dtype, a set with it of this profile's blocks (an
            # oracle may offer rev alone; Keras' GRU layer on JAX runs no bias only under a mask, a nightly set)
            blocks = [(opts.canonical(b.get("options", ())), b.get("oracles", lambda o: True))
                      for b in f.profiles[profile]]
            running = {o for o in battery_oracles(name) if "nobias" in ORACLES[o].options
                       and any(ORACLES[o].offers(s, d) and holds(ORACLES[o]) for s, holds in blocks if "nobias" in s
                               for d in ("f32", "f64"))}
            assert {c.oracle for c in with_option if "nobias" in c.options} == running, profile
        else:
            assert with_option == [], name  # the head: its oracles do not offer it


@pytest.mark.parametrize("name", sorted(REMOVED))
def test_ci_no_bias_cases_trace_no_new_shape(name):
    """The ci grid's no-bias cases reuse a (D, H) pair of its other cases: one more trace per
    Keras oracle and dtype, no more; and both dtypes and the zero and sat regimes appear."""
    cases = grid("ci", FAMILIES[name])
    plain = {(c.D, c.H) for c in cases if not c.options}
    nob = [c for c in cases if c.options == NOBIAS]
    assert {(c.D, c.H) for c in nob} <= plain and len({(c.D, c.H) for c in nob}) <= 2
    assert {c.dtype for c in nob} == {"f32", "f64"} and {c.regime for c in nob} == {"std", "zero", "sat"}


def test_shards_keep_an_option_group_together():
    cases = [c for f in FAMILIES.values() for c in grid("ci", f)]
    parts = [shard(cases, i, 3) for i in (1, 2, 3)]
    owner = {}
    for i, part in enumerate(parts):
        for c in part:
            assert owner.setdefault(group(c), i) == i
    assert sorted(c.id for p in parts for c in p) == sorted(c.id for c in cases)


# --- the family records under no bias -------------------------------------------------------

@pytest.mark.parametrize("name", sorted(REMOVED))
def test_no_bias_contract_per_family(name):
    f = opts.under(FAMILIES[name], NOBIAS)
    inputs_gone, keys_gone = REMOVED[name]
    assert f.name == name and opts.under(FAMILIES[name], NOBIAS) is f and opts.under(f, NOBIAS) is f
    assert f.inputs == tuple(k for k in FAMILIES[name].inputs if k not in inputs_gone)
    assert f.contract == tuple(k for k in FAMILIES[name].contract if k not in keys_gone) and f.removed == keys_gone
    assert not {q.source for q in f.quantities.values()} & set(keys_gone)
    inputs = f.make_inputs(Case("-", 2, 3, 4, 5, "f64", 0))
    assert set(inputs) == set(f.inputs)
    out = f.run(**inputs)
    assert set(f.contract) <= set(out) and not set(keys_gone) & set(out)
    assert {k: out[k].shape for k in f.contract} == f.shapes(inputs)


@pytest.mark.parametrize("name,module", [("lstm", lstm), ("rnn", rnn), ("gru", gru)])
def test_no_bias_is_the_model_at_zero_bias_and_differs_from_the_biased_one(name, module):
    full = FAMILIES[name].make_inputs(Case("-", 2, 4, 3, 5, "f64", 1))
    f = opts.under(FAMILIES[name], NOBIAS)
    kept = {k: v for k, v in full.items() if k in f.inputs}
    zero = FAMILIES[name].run(**dict(full, **module.no_bias(full["W"])))
    got = f.run(**kept)
    for k in f.contract:
        np.testing.assert_array_equal(got[k], zero[k], err_msg=k)
    assert not np.allclose(got["h"], FAMILIES[name].run(**full)["h"])  # the cases' biases are not zero


def test_families_without_the_option_say_so():
    with pytest.raises(ValueError, match="family lstm-head does not define option"):
        opts.under(FAMILIES["lstm-head"], NOBIAS)


# --- remaps without biases (pure NumPy) -----------------------------------------------------

def test_lstm_and_rnn_remaps_have_no_bias_slot_without_a_bias():
    rng = np.random.default_rng(0)
    p = dict(W=rng.standard_normal((4, 3, 5)), U=rng.standard_normal((4, 5, 5)))
    assert set(layout.to_keras(p)) == {"kernel", "recurrent_kernel"}
    assert set(torch_layout.to_torch(p)) == {"weight_ih", "weight_hh"}
    back = torch_layout.grads_from_torch(torch_layout.to_torch(p))
    assert set(back) == {"dW", "dU"} and np.array_equal(back["dW"], p["W"]) and np.array_equal(back["dU"], p["U"])
    back = layout.grads_from_keras(layout.to_keras(p))
    assert set(back) == {"dW", "dU"} and np.array_equal(back["dU"], p["U"])
    r = dict(W=rng.standard_normal((3, 5)), U=rng.standard_normal((5, 5)))
    assert set(rnn_layout.to_keras(r)) == {"kernel", "recurrent_kernel"}
    assert set(torch_rnn_layout.grads_from_torch(torch_rnn_layout.to_torch(r))) == {"dW", "dU"}
    assert set(rnn_layout.grads_from_keras(rnn_layout.to_keras(r))) == {"dW", "dU"}


@pytest.mark.parametrize("reset_after", [True, False])
def test_gru_remaps_have_no_bias_slot_without_a_bias(reset_after):
    rng = np.random.default_rng(1)
    p = dict(W=rng.standard_normal((3, 4, 5)), U=rng.standard_normal((3, 5, 5)))
    k = gru_layout.to_keras(p, reset_after=reset_after)
    assert set(k) == {"kernel", "recurrent_kernel"}
    back = gru_layout.grads_from_keras(k)
    assert set(back) == {"dW", "dU"} and np.array_equal(back["dW"], p["W"])
    assert set(torch_gru_layout.grads_from_torch(torch_gru_layout.to_torch(p))) == {"dW", "dU"}


def test_an_oracle_refuses_an_option_it_does_not_offer():
    with pytest.raises(ValueError, match="oracle keras-lstm-head-cell does not offer option"):
        ORACLES["keras-lstm-head-cell"].run({}, NOBIAS)


# --- the candidate side -------------------------------------------------------------------

def rnn_nobias(x, h0, W, U, gh):
    """A candidate that implements no bias (the reference's own code)."""
    return rnn.run_nobias(x, h0, W, U, gh)


rnn_nobias.options = {"nobias"}


def rnn_returns_db(x, h0, W, U, gh):
    return rnn.run(x, h0, W, U, np.zeros(W.shape[1], W.dtype), gh)


rnn_returns_db.options = {"nobias"}


def _declaring(options):
    """A candidate of the rnn family that implements every set and declares ``options``."""
    run = layered.candidate("rnn")
    run.options = options
    return run


def test_a_candidate_declares_options_and_with_them_every_combination_of_them():
    """Each element of run.options is a name alone, a combination spelled 'bi+L2', or a tuple or frozenset of
    names; the candidate declares every combination of the options named that its family defines (``under``
    accepts it): declaring bi and L2 each alone declares their stack, declaring 'bi+L2' each alone."""
    assert opts.implemented(rnn.run) == frozenset()
    assert opts.implemented(rnn_nobias) == {NOBIAS}
    alone = opts.implemented(_declaring({"bi", "L2"}))
    assert alone == {("bi",), ("L2",)}
    assert all(opts.implements(alone, s) for s in ((), ("bi",), ("L2",), ("bi", "L2")))
    assert not opts.implements(alone, ("nobias", "bi")) and not opts.implements(alone, ("bisum",))
    assert opts.combinations(FAMILIES["rnn"], alone) == [("bi",), ("L2",), ("bi", "L2")]
    assert opts.combinations(FAMILIES["rnn"], opts.implemented(_declaring({"bi+L2"}))) == [("bi",), ("L2",),
                                                                                           ("bi", "L2")]
    # only what the family defines: one merge per layer, no reverse inside a bidirectional layer, no projection
    found = opts.combinations(FAMILIES["rnn"], frozenset({("rev",), ("bi",), ("bisum",), ("proj",)}))
    assert found == [("rev",), ("bi",), ("bisum",)]
    every = opts.combinations(FAMILIES["lstm"], frozenset((name,) for name in opts.OPTIONS))
    for s in every:
        opts.under(FAMILIES["lstm"], s)  # each is defined
    assert set(opts.grid_sets(FAMILIES["lstm"])) <= set(every)
    spelled = _declaring({"nobias", "L2+bi", ("L2", "maskz"), frozenset({"len", "bi", "L2"})})
    assert opts.implemented(spelled) == {NOBIAS, ("bi", "L2"), ("maskz", "L2"), ("len", "bi", "L2")}
    for bad, says in (("nobias", "options: expected a set of option sets"),
                      ({"bi+"}, "options: each element is an option name"),
                      ({("bi", 2)}, "options: each element is an option name"),
                      ({"bi,L2"}, r"options: 'bi,L2': option: expected names from \['nobias'")):
        with pytest.raises(ValueError, match=says):
            opts.implemented(_declaring(bad))


# A candidate in a process of its own declares combinations as tuples and frozensets too.
spelled = _declaring({"nobias", ("L2", "bi"), frozenset({"maskz", "L2"})})


def test_an_isolated_candidate_declares_the_same_sets():
    from gatecheck.run.isolation import Isolated

    fn = Isolated("tests.model.test_options:spelled", FAMILIES["rnn"])
    try:
        assert opts.implemented(fn) == opts.implemented(spelled) == {NOBIAS, ("bi", "L2"), ("maskz", "L2")}
    finally:
        fn.close()


def test_a_candidate_runs_on_the_combinations_of_what_it_declares_and_on_none_other():
    """Declared bi and L2 (each alone): run on them, their stack and the cases without options, not on a set
    with an option it does not declare, whose line says how to declare it; declared 'bi+L2': the same."""
    f = FAMILIES["rnn"]
    sets = [(), ("bi",), ("L2",), ("bi", "L2"), ("nobias", "bi", "L2")]
    cases = [Case("reference-rnn", 2, 3, 4, 5, "f64", 0, "std", s) for s in sets]
    for declared in ({"bi", "L2"}, {"bi+L2"}):
        records = chk.run_cases(_declaring(declared), "t:each", f, cases)
        assert [r["status"] for r in records] == ["match", "match", "match", "match", "unimplemented"]
    assert records[-1]["reason"] == ("the candidate does not implement nobias+bi+L2 (once it does, add its options "
                                     "to run.options, e.g. run.options = {'nobias', 'bi', 'L2'}: declaring options "
                                     "declares every combination of them; docs/guide/contracts.md)")
    _, lines = chk.render(records, f, rnn.run, "t:each", "ci")
    assert "  not run: 1 case with option nobias+bi+L2: " + records[-1]["reason"] in lines


def test_a_bias_gradient_returned_under_no_bias_breaks_the_contract():
    f = opts.under(FAMILIES["rnn"], NOBIAS)
    inputs = f.make_inputs(Case("-", 2, 3, 4, 5, "f64", 0))
    cand.call(rnn_nobias, inputs, f)
    with pytest.raises(cand.CandidateError, match=r"returned \['db'\], which the rnn contract under its options"):
        cand.call(rnn_returns_db, inputs, f)


def _rnn_cases():
    return [c for c in grid("ci", FAMILIES["rnn"], oracles=["torch-rnn-cell"]) if c.dtype == "f64"
            and c.options in ((), ("nobias",))]


def test_check_runs_a_candidate_only_on_the_options_it_implements(request):
    """No silent skip: the report says which option cases were not run and why; they do not
    change the verdict (they are not the candidate's failures, nor a framework's absence)."""
    from conftest import require_framework

    require_framework(request.config, "torch")
    f, cases = FAMILIES["rnn"], _rnn_cases()
    records = chk.run_cases(rnn.run, "ref:run", f, cases)
    skipped = [r for r in records if r["status"] == "unimplemented"]
    assert [r["id"] for r in skipped] == [c.id for c in cases if c.options] and len(skipped) == 3
    code, lines = chk.render(records, f, rnn.run, "ref:run", "ci")
    assert code == chk.PASS and lines[0].startswith(f"PASS: all {len(cases) - 3} cases match")
    assert any(line.startswith("  not run: 3 cases with option nobias: the candidate does not implement nobias")
               for line in lines), lines
    records = chk.run_cases(rnn_nobias, "t:rnn_nobias", f, cases)
    assert all(r["status"] == "match" for r in records if r["id"] in {c.id for c in cases if c.options})


def test_many_option_sets_not_run_are_one_line_with_each_count():
    """Where a candidate implements none of many option sets, the report says so in one line that
    names each set and its count (and the total), not a line per set."""
    sets = [()] + [("nobias",)] * 3 + [("rev",)] * 2 + [("bi", "L2")] * 4
    cases = [Case("reference-rnn", 2, 3, 4, 5, "f64", n, "std", o) for n, o in enumerate(sets)]
    records = chk.run_cases(rnn.run, "ref:run", FAMILIES["rnn"], cases)
    code, lines = chk.render(records, FAMILIES["rnn"], rnn.run, "ref:run", "ci")
    assert code == chk.PASS
    found = [line for line in lines if line.startswith("  not run: ")]
    assert found == ["  not run: 9 cases with layer options the candidate does not implement (nobias 3, rev 2, "
                     "bi+L2 4); declare the options it implements as run.options = {'nobias', 'rev', 'bi', ...}: "
                     "declaring options declares every combination of them "
                     "(docs/guide/contracts.md)"]


def test_rerun_command_and_verify_take_the_options(capsys, request):
    from conftest import require_framework
    from gatecheck.frontends.cli import main

    require_framework(request.config, "torch")
    case = Case("torch-rnn-cell", 3, 7, 4, 5, "f64", 0, "std", NOBIAS)
    assert chk.rerun_command("m:run", FAMILIES["rnn"], case).endswith("--regime std --options nobias")
    assert main(["verify", "tests.model.test_options:rnn_nobias", "--family", "rnn", "--oracle", "torch-rnn-cell",
                 "--options", "nobias"]) == 0
    assert "torch-rnn-cell-B3-T7-D4-H5-f64-s0-nobias: tests.model.test_options:rnn_nobias matches" in capsys.readouterr().out
    assert main(["verify", "tests.model.test_options:rnn_returns_db", "--family", "rnn", "--options", "nobias"]) == chk.FAIL
    assert main(["verify", "examples.course_rnn:run", "--family", "rnn", "--options", "nobias"]) == chk.USAGE
    assert "not run: the candidate does not implement nobias" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["verify", "examples.course:run", "--family", "lstm-head", "--options", "nobias"])


# --- results and drift --------------------------------------------------------------------

def _not_compared(case):
    """A case's record where the candidate broke the contract (nothing compared)."""
    from gatecheck.run import outcome

    return res.summarize(outcome.decide(case, ORACLES[case.oracle], cand.CandidateError("x")))


def _record(case, ratio=0.1):
    return dict(_not_compared(case), ok=True, error=None,
                quantities={"h": dict(max_abs=0.0, max_rel=0.0, ratio=ratio)})


def _data(cases):
    return dict(meta=dict(format=res.FORMAT, profile="ci", candidate=res.REFERENCE_LABEL), cases=cases)


def test_results_carry_the_options_as_data():
    nob = CASE._replace(options=NOBIAS)
    assert _not_compared(nob)["options"] == ["nobias"]
    assert "options" not in _not_compared(CASE)  # files without options read as before
    assert res.options_of(_not_compared(CASE)) == ()
    res.validate(_data([_record(nob), _record(CASE)]), "t")
    bad = dict(_record(nob), options=["bias"])
    with pytest.raises(res.ResultsError, match="field 'options': expected a list of distinct option names"):
        res.validate(_data([bad]), "t")


def test_drift_compares_options_as_data():
    nob = CASE._replace(options=NOBIAS)
    base = _data([_record(nob)])
    assert drift.drift(_data([_record(nob)]), base) == ([], [], [])
    changed = dict(_record(nob))
    del changed["options"]  # same id, other options: not the same case
    failures, _, _ = drift.drift(_data([changed]), base)
    assert failures and "options [], baseline ['nobias']" in failures[0]
    assert drift.drift(_data([_record(nob, ratio=0.9)]), base)[2]  # growth is judged as for any case


# --- the option's mutants -----------------------------------------------------------------

# One slice per family: the no-bias cases of one oracle, seed 0 std, in each dtype it runs (both but where it
# declines one: the Keras oracles on JAX and PyTorch, gatecheck.engines.keras.backends).
SLICES = {"lstm": "torch-lstm-cell", "lstm-identity": "reference-lstm-identity", "rnn": "torch-rnn-cell",
          "gru": "torch-gru-cell", "gru-reset-before": "keras-gru-cell-before"}


@pytest.mark.parametrize("name", sorted(SLICES))
def test_no_bias_mutants_are_killed_and_the_reference_is_not(name, request):
    from conftest import require_framework

    f, oracle = FAMILIES[name], SLICES[name]
    require_framework(request.config, ORACLES[oracle].framework)
    mutants = [(o, m) for o, m in killmatrix.catalogue(f) if o == NOBIAS]
    assert len(mutants) >= 2  # a bias added anyway, a bias gradient still returned
    cases = [c for c in grid("ci", f, oracles=[oracle]) if c.options == NOBIAS and c.regime == "std"]
    assert len(cases) == len([d for d in ("f32", "f64") if ORACLES[oracle].offers(NOBIAS, d)]) >= 1
    result = killmatrix.matrix(cases, ORACLES, mutants, f)
    assert result.pop(killmatrix.REFERENCE_ROW) == []
    assert all(len(ids) == len(cases) for ids in result.values()), result


@pytest.mark.parametrize("name", sorted(SLICES))
def test_no_bias_mutants_diverge_where_they_say(name):
    """Against the family's own reference (no framework needed): each mutant's first divergence
    is its ``first`` ("contract": the candidate breaks the no-bias contract), and the diagnosis
    names it."""
    from gatecheck.core import mutants as mut
    from gatecheck.engines import reference_oracle
    from gatecheck.run.battery import run_case
    from gatecheck.tools.diagnose import diagnose

    f = opts.under(FAMILIES[name], NOBIAS)
    oracle = reference_oracle(name) if name != "lstm-identity" else ORACLES["reference-lstm-identity"]
    case = Case(oracle.name, 3, 7, 4, 5, "f64", 0, "std", NOBIAS)
    for m in f.mutants:
        fn = mut.candidate(f, m)
        try:
            first = run_case(case, oracle, fn, m.name).failures[0].describe()
        except cand.CandidateError:
            first = "contract"
        assert first.startswith(m.first), (m.name, first)
        if m.first != "contract":
            assert f"matches the known bug '{m.name}'" in diagnose(fn, case, FAMILIES[name], m.name)[1]
