"""The user command: `python -m gatecheck check` (a family's whole battery) and `verify` (one
case), their exit codes and their output, on the project's own examples and on candidates
that compare too little."""

import numpy as np
import pytest

from gatecheck.core.cases import Case
from gatecheck.engines import ORACLES
from gatecheck.families import FAMILIES
from gatecheck.frontends.cli import main
from gatecheck.model import options as opts
from gatecheck.reference import lstm, rnn
from gatecheck.run.grid import grid
from gatecheck.tools import check as chk

# Each family's own reference as the oracle keeps the test quick (the examples against every
# framework oracle: tests/meta/test_styles.py, tests/families/test_rnn.py); `check` without --oracles runs
# the family's whole battery.
FAST = {"lstm": "reference-lstm", "lstm-identity": "reference-lstm-identity", "lstm-head": "reference-lstm-head",
        "rnn": "reference-rnn", "gru": "reference-gru", "gru-reset-before": "reference-gru-before"}


def _need(request, oracle):
    from conftest import require_framework

    require_framework(request.config, ORACLES[oracle].framework)


EXAMPLES = [(family, spec, code) for family, f in sorted(FAMILIES.items()) for spec, code in f.examples.items()]


def test_every_family_has_a_passing_example():
    assert {family for family, _, code in EXAMPLES if code == 0} == set(FAMILIES)
    assert set(FAST) == set(FAMILIES) and all(ORACLES[FAST[f]].family == f for f in FAMILIES)


@pytest.mark.parametrize("family,spec,code", EXAMPLES, ids=[f"{f}-{s}" for f, s, _ in EXAMPLES])
def test_check_gives_each_example_its_exit_code(family, spec, code, request, capsys):
    _need(request, FAST[family])
    assert main(["check", spec, "--family", family, "--oracles", FAST[family]]) == code
    out = capsys.readouterr().out
    assert out.startswith("PASS: all " if code == 0 else "FAIL: ")
    assert len(out.splitlines()) <= 60, out


def forward_only(**kw):
    out = lstm.run(**kw)
    return {k: out[k] for k in ("h", "c")}


forward_only.cannot_observe = {k: "this code has no backward pass" for k in lstm.CONTRACT_KEYS if k not in ("h", "c")}


def blind(**kw):
    return {}


blind.cannot_observe = {k: "nothing is exposed" for k in lstm.CONTRACT_KEYS}


def test_forward_only_is_never_a_plain_pass(capsys):
    """A candidate that exposes h and c only: its forward pass matches, but that is exit 3,
    said in words, on both commands."""
    assert main(["verify", "tests.tools.test_check:forward_only", "--family", "lstm"]) == chk.FORWARD_ONLY
    out = capsys.readouterr().out
    assert "compared: c, h" in out and "FORWARD ONLY" in out


def test_forward_only_check_exits_3(capsys):
    assert main(["check", "tests.tools.test_check:forward_only", "--family", "lstm", "--oracles", "reference-lstm"]) == 3
    out = capsys.readouterr().out
    assert out.startswith("FORWARD ONLY: all 86 cases match, but no gradient was compared")
    assert "not compared: dh (the candidate cannot observe it: this code has no backward pass)" in out


def test_nothing_compared_is_a_candidate_error(capsys):
    assert main(["verify", "tests.tools.test_check:blind", "--family", "lstm"]) == chk.FAIL
    assert "nothing can be compared" in capsys.readouterr().out


def rnn_candidate(**kw):
    return rnn.run(**kw)


def test_verify_takes_every_family(capsys):
    """An RNN candidate is verified as the rnn family (it used to get the LSTM's c0)."""
    assert main(["verify", "tests.tools.test_check:rnn_candidate", "--family", "rnn"]) == 0
    assert capsys.readouterr().out.startswith("reference-rnn-B3-T7-D4-H5-f64-s0: tests.tools.test_check:rnn_candidate "
                                              "matches reference-rnn")
    with pytest.raises(SystemExit):
        main(["verify", "tests.tools.test_check:rnn_candidate", "--family", "rnn", "--oracle", "torch-lstm-cell"])
    assert "'torch-lstm-cell' is not an oracle of the rnn family" in capsys.readouterr().err


def raises(**kw):
    return kw["x"] @ kw["W"]  # (B,T,D) @ (4,D,H): the shapes do not fit


def test_a_raising_candidate_shows_its_own_line(capsys):
    assert main(["verify", "tests.tools.test_check:raises", "--family", "lstm"]) == chk.FAIL
    out = capsys.readouterr().out
    assert "raised ValueError" in out and "test_check.py:" in out and "in raises: return kw[\"x\"] @ kw[\"W\"]" in out


def test_bad_usage_is_exit_2(capsys):
    for argv in (["check", "gatecheck.reference.lstm:run"],  # --family is required
                 ["check", "gatecheck.reference.lstm:run", "--family", "lstm-peephole"],
                 ["check", "no_such_module:run", "--family", "lstm"],
                 ["check", "gatecheck.reference.lstm:run", "--family", "lstm", "-n", "0"],
                 ["check", "gatecheck.reference.lstm:run", "--family", "lstm", "--oracles", "torch-rnn-cell"]):
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == chk.USAGE, argv
    err = capsys.readouterr().err
    assert "the following arguments are required: --family" in err
    assert "--oracles: unknown for the lstm family: ['torch-rnn-cell']" in err


def test_exit_codes_are_documented_once():
    """The table in gatecheck.tools.check is the one `--help` prints (the docs' page is generated from it:
    tests/tools/test_docs.py)."""
    from gatecheck.frontends import cli

    for code, meaning in chk.EXIT_CODES.items():
        assert f"    {code}  {meaning}\n" in cli.__doc__
    assert len(set(chk.EXIT_CODES)) == 5


def test_a_missing_framework_is_a_partial_pass_not_a_pass(tmp_path):
    """torch made unimportable: the torch oracle's cases are listed as not run and the verdict
    is a partial pass (4); with no oracle that can run, it is a usage error (2)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    (tmp_path / "torch.py").write_text("raise ImportError('No module named torch')\n")
    repo = Path(__file__).resolve().parents[2]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), str(repo)]))

    def check(oracles):
        return subprocess.run([sys.executable, "-m", "gatecheck", "check", "gatecheck.reference.lstm:run", "--family", "lstm",
                               "--oracles", oracles], capture_output=True, text=True, env=env, cwd=repo)

    partial = check("torch-lstm-cell,reference-lstm")
    assert partial.returncode == chk.PARTIAL, partial.stdout + partial.stderr
    assert partial.stdout.startswith("PARTIAL PASS: all 86 cases that ran match")
    assert "not run: torch-lstm-cell: torch is not installed" in partial.stdout
    none = check("torch-lstm-cell")
    assert none.returncode == chk.USAGE and none.stdout.startswith("NOT RUN: no oracle of the lstm family could run")


def test_a_dtype_declined_where_only_unimplemented_sets_remain_reads_declined():
    """An oracle that declines float64 without options but runs it under some set: when that set is all
    it has in float64 and the candidate does not implement it, the cell says "declined", not "not run"."""
    import dataclasses
    import unittest.mock

    family = FAMILIES["lstm"]
    torch_cell = ORACLES["torch-lstm-cell"]
    fake = dataclasses.replace(torch_cell, name="fake-f64-only-nobias",
                               declines_dtype=lambda options, dtype: "no kernel" if dtype == "f64" and not options
                               else None)
    records = [dict(id="a", oracle=fake.name, dtype="f32", status="match", ratio=0.1, compared=["h"], warnings=[]),
               dict(id="b", oracle=fake.name, dtype="f64", status="unimplemented", options=["nobias"],
                    reason="not implemented")]
    with unittest.mock.patch.dict(ORACLES, {fake.name: fake}):
        _, lines = chk.render(records, family, family.run, "reference", "ci")
    row = next(line for line in lines if line.strip().startswith(fake.name))
    assert row.split()[1:] == ["1/1", "match", "declined"], row


def test_an_oracle_asked_for_that_has_no_case_is_named_with_the_reason():
    """An oracle the run was given that declines every case (torch-dynamo-rnn: the exporter freezes the
    RNN's time axis) is not a silent absence: a line names it and says why; one that ran is not named."""
    import dataclasses
    import unittest.mock

    family = FAMILIES["lstm"]
    torch_cell = ORACLES["torch-lstm-cell"]
    fake = dataclasses.replace(torch_cell, name="fake-declines-all", declines=lambda options: "a frozen time axis")
    records = [dict(id="a", oracle="torch-lstm-cell", dtype="f32", status="match", ratio=0.1, compared=["h"], warnings=[])]
    with unittest.mock.patch.dict(ORACLES, {fake.name: fake}):
        _, lines = chk.render(records, family, family.run, "reference", "ci", asked=["torch-lstm-cell", fake.name])
    named = [line for line in lines if "has no case" in line]
    assert named == ["  not run: fake-declines-all: it has no case in the ci profile (declined: a frozen time axis)"]


def test_quantities_unobserved_by_the_same_oracles_share_one_line():
    """A forward-only engine misses every gradient: one line names those oracles and all the quantities they
    miss, instead of a line per quantity repeating the same oracles."""
    family = FAMILIES["gru"]
    ran = ["torch-gru-cell", "torch-gru-layer", "ort-gru"]
    records = [dict(id=o, oracle=o, dtype="f32", status="match", ratio=0.1, warnings=[],
                    compared=list(family.quantities)) for o in ran]
    _, lines = chk.render(records, family, family.run, "reference", "ci")
    unobserved = [line for line in lines if line.startswith("  not observed by ")]
    sets = {}
    for o in ran:
        for q in ORACLES[o].cannot_observe:
            sets.setdefault(q, []).append(o)
    assert len(unobserved) == len({tuple(v) for v in sets.values()})
    for q, names in sets.items():
        assert [line for line in unobserved if f"by {', '.join(names)}: " in line and q in line.split(": ")[1]], q


def test_a_case_whose_every_compared_quantity_is_a_known_deviation_is_not_a_match(capsys, request):
    """flax-gru deviates on every quantity it observes wherever bh[n] shows (google/flax#5594): such a case
    judged nothing, so it is counted apart ("not judged"), never as a match; a case where the deviation does
    not show is judged as usual. verify on such a case is a usage error that says so."""
    from conftest import require_framework
    from gatecheck.frontends.cli import main
    from gatecheck.truth import deviations

    require_framework(request.config, "flax")
    family = FAMILIES["gru"]
    cases = [c for c in grid("ci", family, ["flax-gru"]) if not c.options]  # the reference run takes none
    records = chk.run_cases(family.run, "reference", family, cases)
    shows = [deviations.for_case(c) is not None for c in cases]
    assert any(shows) and not all(shows)
    assert [r["status"] for r in records] == ["not judged" if s else "match" for s in shows]
    code, headline = chk.verdict(records, family, family.run)
    assert code == chk.PASS and headline.endswith(f"; {sum(shows)} cases not judged (a known deviation covers "
                                                  f"every quantity an oracle compares there)"), headline
    _, lines = chk.render(records, family, family.run, "reference", "ci")
    row = next(line for line in lines if line.strip().startswith("flax-gru")).split()
    assert "not" in row and "judged" in row and "match" in row
    code, headline = chk.verdict([r for r, s in zip(records, shows) if s], family, family.run)
    assert code == chk.USAGE and headline.startswith("NOT JUDGED:")
    c = next(c for c, s in zip(cases, shows) if s)
    assert main(["verify", "gatecheck.reference.gru:run", "--family", "gru", "--oracle", "flax-gru", "--shape",
                 f"{c.B},{c.T},{c.D},{c.H}", "--dtype", c.dtype, "--seed", str(c.seed), "--regime", c.regime]) \
        == chk.USAGE
    assert "not judged: the known deviation of flax-gru" in capsys.readouterr().err


# --- layer options on the user's path: the rerun command, the selection, the counts ---------------------

def _one_case_per_set(profile, family):
    """The first case of each (oracle, set of layer options, dtype) of a family's grid, for every oracle
    of the family (its battery's and its reference's)."""
    from gatecheck.engines import of_family

    first = {}
    for case in grid(profile, family, of_family(family.name)):
        first.setdefault((case.oracle, case.options, case.dtype), case)
    return list(first.values())


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_the_rerun_command_of_every_option_set_is_that_case_for_verify(family):
    """The command `check` prints to rerun a case alone (for bi, L2, len, mask, maskz cases it was refused:
    "--options: the gru family defines ['nobias', 'rev']") is, parsed by verify, that very case: for a case
    of every oracle, set and dtype of the family's ci and nightly grids."""
    import shlex

    from gatecheck.core.cases import PROFILES
    from gatecheck.frontends.cli import parser, verify_case

    ap, f = parser(), FAMILIES[family]
    sets = set()
    for profile in PROFILES:
        for case in _one_case_per_set(profile, f):
            argv = shlex.split(chk.rerun_command("tests.layered:gru", f, case))
            assert argv[:4] == ["python", "-m", "gatecheck", "verify"], argv
            assert verify_case(ap, ap.parse_args(argv[3:])) == (f, case), argv
            sets.add(case.options)
    assert sets >= {()} | ({("bi",), ("L2",), ("len",), ("mask",), ("maskz",), ("bi", "L2")} if f.output else set())


RERUN = [("gru", ("bi",)), ("gru", ("L2",)), ("gru", ("len",)), ("gru", ("mask",)), ("gru", ("maskz",)),
         ("lstm", ("proj", "len", "bi", "L2")), ("rnn", ("nobias", "bi", "L2"))]


@pytest.mark.parametrize("family,options", RERUN, ids=["-".join((f,) + o) for f, o in RERUN])
def test_the_rerun_command_runs(family, options, capsys):
    """A few rerun commands run for real: a candidate that implements every set passes its case."""
    import shlex

    from gatecheck.core.cases import PROFILES

    f = FAMILIES[family]
    case = next(c for profile in PROFILES for c in _one_case_per_set(profile, f)
                if c.options == options and ORACLES[c.oracle].framework == "numpy")
    argv = shlex.split(chk.rerun_command(f"tests.layered:{family}", f, case))
    assert main(argv[3:]) == chk.PASS
    assert capsys.readouterr().out.startswith(f"{case.id}: tests.layered:{family} matches {case.oracle}")


def test_verify_names_the_sets_it_cannot_run(capsys):
    """An option the family does not define, or a combination that is not defined, is a usage error that
    names the valid options or the reason."""
    for argv, says in ((["--family", "lstm-head", "--options", "bi"], "--options: the lstm-head family defines no option"),
                       (["--family", "gru", "--options", "proj"], ("--options: the gru family defines "
                                                                    f"{list(opts.defined(FAMILIES['gru']))}")),
                       (["--family", "gru", "--options", "len+mask"], ("--options: options ['len', 'mask']: a layer "
                                                                        "has one mask semantics"))):
        with pytest.raises(SystemExit) as exc:
            main(["verify", "tests.layered:gru"] + argv)
        assert exc.value.code == chk.USAGE
        assert says in capsys.readouterr().err, argv


def test_select_keeps_the_sets_and_dtypes_asked_for():

    f = FAMILIES["gru"]
    cases = grid("ci", f, ["reference-gru", "torch-gru-cell"])
    kept = chk.select(cases, ["none", "nobias", "L2+bi"], ["f32"])
    assert kept == [c for c in cases if c.options in ((), ("nobias",), ("bi", "L2")) and c.dtype == "f32"]
    assert {c.options for c in kept} == {(), ("nobias",), ("bi", "L2")}
    assert chk.select(cases, "none,nobias", "f32") == chk.select(cases, [(), ("nobias",)], ("f32",))
    assert chk.select(cases) == cases
    for option_sets, dtypes, says in (
            (["bias"], None, "options: 'bias': option: expected names from ['nobias'"),
            (["rev+bi"], None, "options: no case has the set rev+bi; expected sets from: none, nobias, rev, "),
            ([""], None, "options: each element is an option name ('nobias'), a combination spelled 'bi+L2'"),
            (None, ["f16"], "dtype: expected f32 or f64 (comma separated), got 'f16'")):
        with pytest.raises(ValueError) as exc:
            chk.select(cases, option_sets, dtypes)
        assert str(exc.value).startswith(says), str(exc.value)
    with pytest.raises(ValueError, match="dtype: no case is in f64; expected dtypes from: f32"):
        chk.select(grid("ci", FAMILIES["rnn"], ["ort-rnn"]), None, ["f64"])


def test_check_runs_the_selected_sets_and_dtype_and_counts_the_option_cases(capsys):
    """`check --options none,nobias,bi+L2 --dtype f32`: only those cases run; the headline says how many had
    layer options, a line how many each set had."""

    f = FAMILIES["gru"]
    selected = chk.select(grid("ci", f, ["reference-gru"]), ["none", "nobias", "bi+L2"], ["f32"])
    base = [c for c in selected if not c.options]
    assert main(["check", "tests.layered:gru", "--family", "gru", "--oracles", "reference-gru",
                 "--options", "none,nobias,bi+L2", "--dtype", "f32"]) == chk.PASS
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"PASS: all {len(selected)} cases match ({len(base)} without layer options, "
                               f"{len(selected) - len(base)} with them; worst "), lines[0]
    assert lines[1].endswith("; profile ci; options none,nobias,bi+L2; dtype f32")
    count = {s: sum(1 for c in selected if c.options == s) for s in (("nobias",), ("bi", "L2"))}
    assert lines[2] == f"  with layer options: nobias {count[('nobias',)]}, bi+L2 {count[('bi', 'L2')]}"
    assert lines[4].split() == ["oracle", "f32"]


def test_check_selection_usage_errors(capsys):
    for extra, says in ((["--options", "bias"], "--options: 'bias': option: expected names from"),
                        (["--options", "rev+bi"], "--options: no case has the set rev+bi; expected sets from: none, "),
                        (["--dtype", "f16"], "--dtype: expected f32 or f64"),
                        (["--options", "nobias"], ("--options: the candidate declares none of the sets selected "
                                                   "(nobias); it declares none"))):
        with pytest.raises(SystemExit) as exc:
            main(["check", "gatecheck.reference.gru:run", "--family", "gru", "--oracles", "reference-gru"] + extra)
        assert exc.value.code == chk.USAGE, extra
        assert says in capsys.readouterr().err, extra


def test_nothing_run_because_no_set_selected_is_declared_is_not_run():
    f = FAMILIES["rnn"]
    cases = [Case("reference-rnn", 2, 3, 4, 5, "f64", n, "std", s) for n, s in enumerate([("bi",), ("bi", "L2")])]
    records = chk.run_cases(rnn.run, "ref:run", f, cases)
    assert chk.verdict(records, f, rnn.run) == (chk.USAGE, ("NOT RUN: the candidate implements none of the option "
                                                            "sets of the cases selected (bi, bi+L2)"))
    assert chk.verdict([], f, rnn.run) == (chk.USAGE, "NOT RUN: no case was selected")


def _stack_bug(**inputs):
    """An RNN that is right but for the reverse direction's dW under a bidirectional layer."""
    from tests import layered

    out = dict(layered.rnn(**inputs))
    if "dW_r" in out:
        out["dW_r"] = out["dW_r"] * 2
    return out


_stack_bug.options = {"nobias", "bi"}


def test_a_failing_headline_says_how_many_cases_with_layer_options_differ():
    sets = [(), (), ("nobias",), ("bi",), ("bi",)]
    cases = [Case("reference-rnn", 2, 3, 4, 5, "f64", n, "std", s) for n, s in enumerate(sets)]
    f = FAMILIES["rnn"]
    records = chk.run_cases(_stack_bug, "t:bug", f, cases)
    bad = [c for c in cases if "bi" in c.options]
    base = [c for c in cases if not c.options]
    code, lines = chk.render(records, f, _stack_bug, "t:bug", "ci")
    assert code == chk.FAIL
    assert lines[0] == (f"FAIL: {len(bad)} of {len(cases)} cases differ (0 of the {len(base)} without layer options, "
                        f"{len(bad)} of the {len(cases) - len(base)} with them)")
    assert lines[2] == f"  with layer options: nobias 1, bi {len(bad)} ({len(bad)} differ)"


def test_a_key_the_candidate_declares_is_reported_once_as_declared():
    """A quantity the candidate declares unobservable is said once, as declared, also where the oracles
    run cannot observe it either (or its copy in another direction: a family's key covers them)."""
    import dataclasses
    import unittest.mock

    family = FAMILIES["gru"]
    fake = dataclasses.replace(ORACLES["ort-gru"], name="fake-blind-reverse",
                               cannot_observe=dict(ORACLES["ort-gru"].cannot_observe, dbx_r="not exported"))

    def fn(**kw):
        return {}

    fn.cannot_observe = {"dbx": "my code fuses the biases"}
    compared = [q for q in family.quantities if q != "dbx"]
    records = [dict(id=o, oracle=o, dtype="f32", status="match", ratio=0.1, warnings=[], compared=compared)
               for o in ("reference-gru", fake.name)]
    with unittest.mock.patch.dict(ORACLES, {fake.name: fake}):
        _, lines = chk.render(records, family, fn, "t:fn", "ci")
    about = [line for line in lines if "dbx" in line and line.startswith(("  not compared", "  not observed"))]
    assert about == ["  not compared: dbx (the candidate cannot observe it: my code fuses the biases)"], lines


def test_an_oracle_id_from_before_the_family_was_in_it_is_read_as_the_id_of_now(capsys):
    """Scripts written with 'reference' or 'torch-cell' (gatecheck.engines.ALIASES) run the same oracles."""
    assert chk.oracle_names(["reference", "torch-cell"], FAMILIES["lstm"]) == ["reference-lstm", "torch-lstm-cell"]
    assert main(["check", "gatecheck.examples.course:run", "--family", "lstm", "--oracles", "reference",
                 "--dtype", "f64"]) == chk.PASS
    assert "  reference-lstm " in capsys.readouterr().out
    with pytest.raises(ValueError, match=r"^oracles: unknown for the lstm family: \['torch-gru-cell'\]"):
        chk.oracle_names(["torch-gru-cell"], FAMILIES["lstm"])


def _stack_reads_forward_only(*, merge_mode=None, num_layers=1, **inputs):
    """A vanilla RNN right under every option but a stack of bisum layers, whose second layer reads the first's
    forward direction only (h, not the sum h + h_r): declares bisum and L2, each alone (issue 29)."""
    from tests import layered

    if (merge_mode, num_layers) != ("sum", 2):
        return layered.rnn(merge_mode=merge_mode, num_layers=num_layers, **inputs)
    family, rev = FAMILIES["rnn"], opts.under(FAMILIES["rnn"], ("rev",))
    layer0 = {k: inputs[k] for k in ("h0", "W", "U", "b")}
    layer0_r = {k: inputs[k + "_r"] for k in ("h0", "W", "U", "b")}
    h = family.run(x=inputs["x"], gh=0 * inputs["gh"], **layer0)["h"]
    second = opts.under(family, ("bisum",)).run(x=h, gh=inputs["gh"], **{k[:-3]: v for k, v in inputs.items()
                                                                      if k.endswith("_l1")})
    forward = family.run(x=inputs["x"], gh=second["dx"], **layer0)
    backward = rev.run(x=inputs["x"], gh=0 * inputs["gh"], **layer0_r)
    out = dict(forward, **{k + "_r": v for k, v in backward.items()}, y=forward["h"] + backward["h"])
    out["dx"] = forward["dx"] + backward["dx"]
    return dict(out, **{k + "_l1": v for k, v in second.items() if k != "dx"})


_stack_reads_forward_only.options = {"bisum", "L2"}


def _stacks_keep_a_forget_bias(*, merge_mode=None, num_layers=1, **inputs):
    """An LSTM right under every option but no bias with a reverse direction or a second layer, where those keep
    a default forget bias (1, Keras' unit_forget_bias) the first layer's forward direction does not: declares
    every option (issue 29)."""
    from tests import layered

    extra = [k for k in inputs if k.startswith("W_")]  # W_r, W_l1, W_r_l1
    if "b" in inputs or not extra:
        return layered.lstm(merge_mode=merge_mode, num_layers=num_layers, **inputs)
    W = inputs["W"]
    biased = dict(inputs, b=np.zeros((4, W.shape[2]), W.dtype))
    for k in extra:
        biased["b" + k[1:]] = np.zeros((4, inputs[k].shape[2]), W.dtype)
        biased["b" + k[1:]][1] = 1.0
    out = layered.lstm(merge_mode=merge_mode, num_layers=num_layers, **biased)
    return {k: v for k, v in out.items() if not k.startswith("db")}


_stacks_keep_a_forget_bias.options = set(opts.OPTIONS)


def _passing_records(candidate, family, n=3):
    cases = [c for c in grid("ci", family, oracles=[FAST[family.name]]) if not c.options][:n]
    return chk.run_cases(candidate, "t:run", family, cases)


def test_declaring_options_each_alone_is_not_a_plain_pass_where_their_combination_is_in_no_grid():
    """Issue 29's first candidate: bisum and L2 declared each alone, their stack wrong. No grid has bisum+L2, so
    the ci run passes the rest: a partial pass (exit 4) that names the combination and the command that runs a
    case of it, which catches the mistake."""
    family = FAMILIES["rnn"]
    fn = _stack_reads_forward_only
    records = _passing_records(fn, family)
    assert all(r["status"] == "match" for r in records)
    sets = chk.unexercised(fn, family, records, "ci")
    assert (("bisum", "L2"), chk.NO_GRID) in sets
    code, lines = chk.render(records, family, fn, "t:run", "ci", not_run_sets=sets)
    assert code == chk.PARTIAL and lines[0].startswith("PARTIAL PASS: all 3 cases match")
    hint = "python -m gatecheck verify t:run --family rnn --options bisum+L2"
    assert [line for line in lines if "bisum+L2" in line and line.startswith("  not run:")] == [
        f"  not run: declared combination of options bisum+L2: in no grid of gatecheck, so nothing checks it; one "
        f"case against the reference: {hint}"]
    case = Case("reference-rnn", 3, 7, 4, 5, "f64", 0, "std", ("bisum", "L2"))  # what the hint runs
    assert chk.run_cases(fn, "t:run", family, [case])[0]["status"] == "mismatch"
    del fn.options  # (declaring nothing: a plain pass)
    try:
        assert chk.render(records, family, fn, "t:run", "ci", not_run_sets=chk.unexercised(fn, family, records,
                                                                                           "ci"))[0] == chk.PASS
    finally:
        fn.options = {"bisum", "L2"}


def test_a_combination_only_the_nightly_grid_has_is_named_with_its_profile():
    """Issue 29's second candidate: an LSTM declaring every option, wrong under no bias with a reverse direction or a
    second layer. The ci run is a partial pass (exit 4) naming nobias+bi+L2 and nobias+len+bi as the nightly
    profile's (where they fail), and the many combinations no grid has in one line; with a selection of sets
    (--options) nothing is left out by accident."""
    family = FAMILIES["lstm"]
    fn = _stacks_keep_a_forget_bias
    records = _passing_records(fn, family)
    sets = dict(chk.unexercised(fn, family, records, "ci"))
    assert sets[("nobias", "bi", "L2")] == sets[("nobias", "len", "bi")] == "nightly"
    assert sets[("bisum", "L2")] == chk.NO_GRID and sets[("bi", "L2")] == chk.IN_PROFILE
    assert set(sets) == set(opts.combinations(family, opts.implemented(fn)))  # (none of them ran here)
    code, lines = chk.render(records, family, fn, "t:run", "ci", not_run_sets=list(sets.items()))
    assert code == chk.PARTIAL
    assert lines[0].endswith(f"{len(sets)} declared combinations of options were not run (the lines 'not run: ... "
                             f"declared' below)")
    assert len([line for line in lines if "in no grid of gatecheck" in line]) == 1
    assert len([line for line in lines if "--profile nightly" in line and "more (--verbose lists them)" in line]) == 1
    _, lines = chk.render(records, family, fn, "t:run", "ci", verbose=True, not_run_sets=list(sets.items()))
    nightly = [line for line in lines if "--profile nightly" in line]
    assert len(nightly) == 1 and "nobias+bi+L2" in nightly[0] and "nobias+len+bi" in nightly[0]
    for options in (("nobias", "bi", "L2"), ("nobias", "len", "bi")):
        case = Case("reference-lstm", 3, 7, 4, 5, "f64", 0, "std", options)
        assert chk.run_cases(fn, "t:run", family, [case])[0]["status"] == "mismatch", options
    assert chk.unexercised(fn, family, records, "ci", option_sets=["none"]) == []


def test_a_declared_option_the_family_does_not_define_is_named():
    family = FAMILIES["rnn"]

    def fn(**kw):
        return rnn.run(**kw)

    fn.options = {"proj"}
    records = _passing_records(fn, family, 1)
    assert chk.unexercised(fn, family, records, "ci") == [(("proj",), chk.UNDEFINED)]
    code, lines = chk.render(records, family, fn, "t:run", "ci", not_run_sets=chk.unexercised(fn, family, records, "ci"))
    assert code == chk.PARTIAL
    assert ("  not run: declared option proj: the rnn family does not define it (gatecheck.model.options.defined); "
            "remove it from run.options") in lines
