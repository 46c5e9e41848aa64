"""The diagnosis under layer options names a family bug and the part it is in: each bug below is
the reference under the options with one family bug in one direction or layer, and the
diagnosis must give the finding the bug gets without options, named by its part, and name
no other part. ``gatecheck.model.parts`` is tested on correct outputs: every part of a correct
candidate matches its own reference, with nothing withheld."""

from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import pytest

from gatecheck.core import mutants
from gatecheck.core.cases import Case
from gatecheck.families import FAMILIES
from gatecheck.model import options as opts
from gatecheck.model import parts
from gatecheck.reference import layers
from gatecheck.tools.diagnose import diagnose

LSTM, GRU, RNN = FAMILIES["lstm"], FAMILIES["gru"], FAMILIES["rnn"]
PART_NAMES = ("forward direction", "reverse direction", "first layer", "second layer", "both", "steps in")


def case(options, B=3, T=7, D=4, H=5):
    return Case("reference-lstm", B, T, D, H, "f64", 0, "std", opts.canonical(options))


def bare(record, run):
    """``run`` (keyword inputs) called as a candidate under ``record``: the option keywords dropped."""
    def candidate(**kw):
        return run(**{k: v for k, v in kw.items() if k not in record.keywords})
    return candidate


def reference_with(family, options, edit):
    """The reference under ``options`` with its outputs edited: edit(out, inputs) -> changed keys."""
    record = opts.under(family, options)

    def run(**kw):
        out = record.run(**kw)
        return dict(out, **edit(out, kw))
    return bare(record, run)


def gates_permuted(family, options, keys, order):
    """The reference under ``options`` reading the gate blocks of ``keys`` in ``order`` (gate names),
    its gradients of them returned in that order: a consistent layout bug in those inputs."""
    record = opts.under(family, options)
    idx = [family.gates.index(g) for g in order]

    def run(**kw):
        out = record.run(**dict(kw, **{k: kw[k][idx] for k in keys}))
        return dict(out, **{"d" + k: out["d" + k][np.argsort(idx)] for k in keys})
    return bare(record, run)


def mutant(family, name):
    return mutants.candidate(family, family.mutants_by_name[name])


def nobias(family, run):
    """A family run (mutant or reference) as a no-bias model: its bias inputs zero, no bias gradient."""
    variant = family.options["nobias"]

    def run_nobias(**kw):
        out = run(**kw, **variant.fill(kw))
        return {k: v for k, v in out.items() if k not in variant.drops_keys}
    return run_nobias


def bidirectional(family, options, run_f, run_r):
    """A hand-written bidirectional layer: ``run_f`` forwards, ``run_r`` on the flipped sequence."""
    record = opts.under(family, options)
    base = opts.under(family, tuple(o for o in options if not opts.OPTIONS[o].structural))
    timeless = [k for k in base.contract if k in ("dW", "dU", "db", "dbx", "dbh", "dh0", "dc0")]
    reverse = layers.reversed_run(lambda ulps=0, **kw: run_r(**kw), timeless)
    run = layers.bidirectional(lambda ulps=0, **kw: run_f(**kw), reverse, opts.merge(options),
                               [k for k in base.inputs if k not in ("x", "gh")], base.contract)
    return bare(record, run)


def stack(family, run0, run1):
    """A hand-written stack of two layers: ``run0`` first, ``run1`` on its output."""
    record = opts.under(family, ("L2",))
    own = [k for k in family.inputs if k not in ("x", "gh")]

    def run(**kw):
        first = {k: kw[k] for k in own}
        second = {k: kw[k + "_l1"] for k in own}
        zero = np.zeros_like(kw["gh"])
        out1 = run1(x=run0(x=kw["x"], gh=zero, **first)["h"], gh=kw["gh"], **second)
        out0 = run0(x=kw["x"], gh=out1["dx"], **first)
        return dict(out0, **{k + "_l1": v for k, v in out1.items() if k != "dx"})
    return bare(record, run)


def _dW_last_step_layer0():
    return stack(LSTM, mutant(LSTM, "dW-last-step"), LSTM.run)


def _no_recurrent_dh_layer1():
    return stack(LSTM, LSTM.run, mutant(LSTM, "no-recurrent-dh"))


def _loss_mean_second_layer():
    """The second layer takes the mean over the batch of its loss (gh / B): everything it passes down is
    divided by B too, so the first layer's gradients are the reference's / B through no fault of its own."""
    return stack(GRU, GRU.run, lambda **kw: GRU.run(**dict(kw, gh=kw["gh"] / kw["x"].shape[0])))


LAYOUT = "your gates look ordered i,f,o,g (canonical: i,f,g,o); with that layout every quantity matches"
IFOG = ("i", "f", "o", "g")

class Bug(NamedTuple):
    id: str
    family: object
    options: tuple
    make: Callable  # () -> the buggy candidate
    expected: tuple  # lines of the diagnosis, each the start of a line of it
    absent: tuple  # parts no finding may start with


STEPS_R = "  - reverse direction (_r), steps in processing order: "
WITHHELD = ("  (first layer: its gradients are not diagnosed: its upstream gradient is the second layer's dx, which "
            "the contract does not return, and the second layer differs ({}))")
BUGS = [
    Bug("lstm-bi-gates-reverse-only", LSTM, ("bi",),
        lambda: gates_permuted(LSTM, ("bi",), ("W_r", "U_r", "b_r"), IFOG),
        ("  - reverse direction (_r): " + LAYOUT,), ("forward direction", "both")),
    Bug("gru-bisum-gates-reverse-only", GRU, ("bisum",),
        lambda: gates_permuted(GRU, ("bisum",), ("W_r", "U_r", "bx_r", "bh_r"), ("r", "n", "z")),
        (("  - reverse direction (_r): your gates look ordered r,n,z (canonical: r,z,n); with that layout every "
          "quantity matches"),), ("forward direction", "both")),
    Bug("lstm-L2-gates-second-layer", LSTM, ("L2",),
        lambda: gates_permuted(LSTM, ("L2",), ("W_l1", "U_l1", "b_l1"), IFOG),
        ("  - second layer (_l1): " + LAYOUT,), ("first layer", "both")),
    Bug("lstm-L2-gates-first-layer", LSTM, ("L2",),
        lambda: gates_permuted(LSTM, ("L2",), ("W", "U", "b"), IFOG),
        ("  - first layer: " + LAYOUT,), ("second layer", "both")),
    Bug("lstm-nobias-bi-L2-gates-everywhere", LSTM, ("nobias", "bi", "L2"),
        lambda: gates_permuted(LSTM, ("nobias", "bi", "L2"),
                               ("W", "U", "W_r", "U_r", "W_l1", "U_l1", "W_r_l1", "U_r_l1"), IFOG),
        ("  - both layers and directions: " + LAYOUT,),
        ("first layer", "second layer", "forward direction", "reverse direction")),
    Bug("lstm-bi-L2-gates-second-layer-reverse", LSTM, ("bi", "L2"),
        lambda: gates_permuted(LSTM, ("bi", "L2"), ("W_r_l1", "U_r_l1", "b_r_l1"), IFOG),
        ("  - second layer's reverse direction (_r_l1): " + LAYOUT,), ("first layer", "second layer's forward", "both")),
    Bug("lstm-L2-dU-transposed-second-layer", LSTM, ("L2",),
        lambda: reference_with(LSTM, ("L2",), lambda o, kw: {"dU_l1": o["dU_l1"].transpose(0, 2, 1)}),
        ("  - second layer (_l1): matches the known bug 'dU-transposed'",), ("first layer", "both")),
    Bug("lstm-bi-db-batch-mean-reverse", LSTM, ("bi",),
        lambda: reference_with(LSTM, ("bi",), lambda o, kw: {"db_r": o["db_r"] / kw["x"].shape[0]}),
        (STEPS_R + "db equal the reference divided by B=3: averaged over the batch instead of summed",
         "  - reverse direction (_r): matches the known bug 'db-batch-mean'"), ("forward direction", "both")),
    Bug("gru-bisum-dbx-batch-mean-reverse", GRU, ("bisum",),
        lambda: reference_with(GRU, ("bisum",), lambda o, kw: {"dbx_r": o["dbx_r"] / kw["x"].shape[0]}),
        (STEPS_R + "dbx equals the reference divided by B=3: averaged over the batch instead of summed",
         "  - reverse direction (_r): matches the known bug 'dbx-batch-mean'"), ("forward direction", "both")),
    Bug("lstm-nobias-dW-last-step", LSTM, ("nobias",),
        lambda: bare(opts.under(LSTM, ("nobias",)), nobias(LSTM, mutant(LSTM, "dW-last-step"))),
        (("  - dW matches only the last step's contribution: the per-step gradients look assigned instead of "
          "accumulated over time"), "  - matches the known bug 'dW-last-step'"), PART_NAMES),
    Bug("gru-nobias-dh0-dropped", GRU, ("nobias",),
        lambda: reference_with(GRU, ("nobias",), lambda o, kw: {"dh0": np.zeros_like(o["dh0"])}),
        ("  - dh0 is zero: the gradient flowing out of step 0 is dropped", "  - matches the known bug 'dh0-dropped'"),
        PART_NAMES),
    Bug("lstm-rev-no-recurrent-dh", LSTM, ("rev",),
        lambda: bare(opts.under(LSTM, ("rev",)), layers.reversed_run(
            lambda ulps=0, **kw: mutant(LSTM, "no-recurrent-dh")(**kw), ("dW", "dU", "db", "dh0", "dc0"))),
        (("  - steps in processing order (t = 0 is the step on x[:, T-1]): dh_t equals the upstream gradient alone "
          "from t=T-2=5 back"), "  - matches the known bug 'no-recurrent-dh'"), PART_NAMES[:-1]),
    # Under mul each direction's upstream share is gh times the other direction's output.
    Bug("lstm-bimul-no-recurrent-dh-forward", LSTM, ("bimul",),
        lambda: bidirectional(LSTM, ("bimul",), mutant(LSTM, "no-recurrent-dh"), LSTM.run),
        ("  - forward direction: dh_t equals the upstream gradient alone from t=T-2=5 back",
         "  - forward direction: matches the known bug 'no-recurrent-dh'"), ("reverse direction", "both")),
    Bug("rnn-bi-dW-last-step-reverse", RNN, ("bi",),
        lambda: bidirectional(RNN, ("bi",), RNN.run, mutant(RNN, "dW-last-step")),
        ("  - reverse direction (_r): matches the known bug 'dW-last-step'",), ("forward direction", "both")),
    Bug("lstm-L2-dW-last-step-first-layer", LSTM, ("L2",), _dW_last_step_layer0,
        ("  - first layer: dW matches only the last step's contribution",
         "  - first layer: matches the known bug 'dW-last-step'"), ("second layer", "both")),
    # A bug of the second layer reaches the first layer's gradients through its dx: the first layer is
    # not blamed, and the diagnosis says why its gradients were not examined.
    Bug("lstm-L2-no-recurrent-dh-second-layer", LSTM, ("L2",), _no_recurrent_dh_layer1,
        ("  - second layer (_l1): dh_t equals the upstream gradient alone from t=T-2=5 back",
         "  - second layer (_l1): matches the known bug 'no-recurrent-dh'", WITHHELD.format("dh_l1, dc_l1")),
        ("first layer", "both")),
    # Nothing reaches the first layer from the second: the stack's own mutant says so, and the first
    # layer's gradients (all but gc's share zero) are not read as its own bug.
    Bug("gru-bi-L2-no-gradient-from-above", GRU, ("bi", "L2"),
        lambda: mutants.candidate(opts.under(GRU, ("bi", "L2")),
                                  opts.under(GRU, ("bi", "L2")).mutants_by_name["L2-no-gradient-from-above"]),
        ("  - matches the known bug 'L2-no-gradient-from-above'",
         ("  (first layer's forward direction: its gradients are not diagnosed: its upstream gradient is the second "
          "layer's dx, which the contract does not return, and its dh at the last step processed (that gradient "
          "alone) is not the reference's: the second layer passes down something else, or this layer drops it)"),
         "  (first layer's reverse direction (_r): its gradients are not diagnosed: "), ("first layer", "both")),
    Bug("gru-L2-loss-mean-second-layer", GRU, ("L2",), _loss_mean_second_layer,
        (("  - second layer (_l1): dW, dU, dbx and dbh equal the reference divided by B=3: averaged over the "
          "batch instead of summed"), WITHHELD.format("dh_l1")), ("first layer", "both")),
]


@pytest.mark.parametrize("bug", [pytest.param(b, id=b.id) for b in BUGS])
def test_family_bug_under_options_is_named_with_its_part(bug):
    report, text = diagnose(bug.make(), case(bug.options), bug.family, "buggy", localise=False)
    assert report is not None and not report.ok, text
    lines = text.splitlines()
    for line in bug.expected:
        assert any(have.startswith(line) for have in lines), f"{line!r} not in:\n{text}"
    for name in bug.absent:
        assert not any(have.startswith("  - " + name) for have in lines), f"a finding names {name!r}:\n{text}"
    assert "no known bug shape explains it" not in text


def test_no_layout_is_claimed_for_a_part_that_no_gate_order_explains():
    """U of the second layer alone read in another gate order: no layout of any part makes the forward
    pass match, and none is claimed (a composite's empty forward list once made every order 'match')."""
    candidate = gates_permuted(LSTM, ("L2",), ("U_l1",), IFOG)
    report, text = diagnose(candidate, case(("L2",)), LSTM, "buggy", localise=False)
    assert not report.ok
    assert "your gates look ordered" not in text, text


def test_projection_says_the_family_hypotheses_are_not_tried():
    candidate = reference_with(LSTM, ("proj",), lambda o, kw: {"dh0": np.zeros_like(o["dh0"])})
    report, text = diagnose(candidate, case(("proj",)), LSTM, "buggy", localise=False)
    assert not report.ok
    assert ("  (the lstm hypotheses and mutants are not tried under proj: its model is not the lstm model on other "
            "inputs (its own mutants are))") in text, text


SETS = [("nobias",), ("rev",), ("bi",), ("bisum",), ("bimul",), ("biave",), ("binone",), ("L2",), ("bi", "L2"),
        ("bimul", "L2"), ("nobias", "bi", "L2")]
NAMES = ("lstm", "lstm-identity", "rnn", "gru", "gru-reset-before")


@pytest.mark.parametrize("options", SETS, ids=["-".join(s) for s in SETS])
@pytest.mark.parametrize("name", NAMES)
def test_every_part_of_a_correct_candidate_matches_its_reference(name, options):
    """The split itself: the reference's outputs under the options, split into parts, equal each part's
    own reference (the upstream shares, the second layer's x, the flips and the filled bias are right),
    and no part's gradients are withheld."""
    family = FAMILIES[name]
    record = opts.under(family, options)
    inputs = record.make_inputs(case(options, B=2, T=4, D=3, H=3))
    ref = record.run(**inputs)
    got = {k: ref[k] for k in record.contract}
    split, why = parts.split(family, options, inputs, ref, got)
    assert why == ""
    merge, depth = opts.merge(options), 2 if "L2" in options else 1
    assert len(split) == (2 if merge else 1) * depth
    base = opts.under(family, tuple(o for o in options if not opts.OPTIONS[o].structural))
    for part in split:
        assert part.withheld == "" and not parts.differs(part), (part.label, parts.differs(part))
        # dx is a part's own only in a layer of one direction at the bottom
        assert sorted(part.got) == sorted(k for k in base.contract if k != "dx" or not merge and not part.suffix)


def test_a_wrong_part_is_found_by_differs():
    """``differs`` is not vacuous: one direction's output changed shows in that part alone."""
    record = opts.under(LSTM, ("bi",))
    inputs = record.make_inputs(case(("bi",), B=2, T=4, D=3, H=3))
    ref = record.run(**inputs)
    got = dict({k: ref[k] for k in record.contract}, dW_r=ref["dW_r"] * 1.001)
    split, _ = parts.split(LSTM, ("bi",), inputs, ref, got)
    assert [(p.label, parts.differs(p)) for p in split] == [("forward direction", []), ("reverse direction (_r)",
                                                                                        ["dW"])]
