"""Variable lengths and masks (the options len, mask, maskz of gatecheck.model.options), built from each
family's own model (gatecheck.reference.layers.masked, gatecheck.model.structures.masked): the masks drawn,
what a masked step does (keeps the state, outputs 0 or the previous output, computes nothing), the
packed semantics as each row's model on its own prefix, the entries left undefined, the frameworks'
semantics (what makes their oracles agree), refusals, the candidate's keyword, and the mutants."""

import functools

import numpy as np
import pytest

from gatecheck.core import mutants as mut
from gatecheck.core.cases import Case
from gatecheck.engines import ORACLES, reference_oracle
from gatecheck.engines.keras import common as keras_common
from gatecheck.engines.torch import common as torch_common
from gatecheck.engines.torch import gru as torch_gru
from gatecheck.families import FAMILIES
from gatecheck.model import options as opts
from gatecheck.model import structures
from gatecheck.reference import layers
from gatecheck.run.battery import run_case
from gatecheck.run.grid import grid

NAMES = ("lstm", "rnn", "gru", "gru-reset-before")
MASKS = ("len", "mask", "maskz")


def _record(name, options):
    return opts.under(FAMILIES[name], opts.canonical(options))


def _inputs(f, shape=(3, 7, 4, 5), seed=0):
    return f.make_inputs(Case("-", *shape, "f64", seed, "std", f.applied))


def _keep(inputs):
    return inputs["mask"] > 0.5


# --- the masks drawn ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(1, 1), (1, 5), (2, 12), (3, 7), (8, 20)])
@pytest.mark.parametrize("seed", range(3))
def test_masks_have_a_valid_step_in_every_row_and_their_padding(shape, seed):
    B, T = shape
    right = structures.draw_mask(Case("-", B, T, 1, 1, "f64", seed), "right")
    free = structures.draw_mask(Case("-", B, T, 1, 1, "f64", seed), "any")
    for mask in (right, free):
        assert set(np.unique(mask)) <= {0.0, 1.0} and (mask > 0.5).any(axis=1).all()
    lengths = right.sum(axis=1).astype(int)
    assert (right == (np.arange(T)[None] < lengths[:, None])).all()  # prefixes: packed sequences' lengths
    if T > 1:
        assert lengths[0] == T if B > 1 else lengths[0] < T
        assert (lengths[1:] < T).all() and (free < 1).any(axis=1).all()
        # every row of an "any" mask but a right-padded one starts masked (left padding, gaps)
        if B >= 3:
            kinds = {"right" if m[0] == 1 else "left" if (np.diff(m) >= 0).all() else "gaps" for m in free}
            assert kinds == {"right", "left", "gaps"}


def test_a_mask_is_a_function_of_the_case_and_shared_by_directions_and_layers():
    f = _record("lstm", ("mask", "bi", "L2"))
    a, b = _inputs(f), _inputs(f)
    assert np.array_equal(a["mask"], b["mask"]) and "mask_r" not in a and "mask_l1" not in a
    assert "mask" in f.shared and "mask" in f.inputs


# --- what a masked step does -----------------------------------------------------------------------------------

@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("option", MASKS)
def test_an_all_valid_mask_is_the_model_itself(name, option):
    f, base = _record(name, (option,)), FAMILIES[name]
    inputs = dict(_inputs(f), mask=np.ones((3, 7)))
    got, own = f.run(**inputs), base.run(**{k: v for k, v in inputs.items() if k != "mask"})
    for k in base.contract:
        np.testing.assert_allclose(got[k], own[k], rtol=1e-12, atol=1e-12, err_msg=k)
    np.testing.assert_allclose(got["out"], own[base.output], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("option", MASKS)
def test_a_masked_step_keeps_the_state_computes_nothing_and_outputs_zero_or_the_last_output(name, option):
    f = _record(name, (option,))
    inputs = _inputs(f)
    out, keep = f.run(**inputs), _keep(inputs)
    base = FAMILIES[name]
    zero = opts.MASKS[option][0] == "zero"
    for b in range(keep.shape[0]):
        for t in range(keep.shape[1]):
            if keep[b, t]:
                continue
            before = np.flatnonzero(keep[b, :t])
            for s in base.states:
                held = out[s][b, before[-1]] if len(before) else inputs[s + "0"][b]
                assert np.array_equal(out[s][b, t], held), (s, b, t)
                assert not out["d" + s][b, t].any()  # the reference's 0 (not compared: structures.masked)
            assert not out["dx"][b, t].any(), (b, t)
            expected = 0 if zero or not len(before) else out[base.output][b, before[-1]]
            assert np.array_equal(out["out"][b, t], np.broadcast_to(expected, out["out"][b, t].shape)), (b, t)
    assert np.array_equal(out["out"][keep], out[base.output][keep])


@pytest.mark.parametrize("name", NAMES)
def test_packed_lengths_are_each_rows_model_on_its_prefix_alone(name):
    """Under len, row b of length n is the model run on x[b, :n] alone: its states and dx there, the
    final state at n-1, zeros past n, and the parameter gradients the rows' sum."""
    f, base = _record(name, ("len",)), FAMILIES[name]
    inputs = _inputs(f, (4, 9, 3, 5), 1)
    out = f.run(**inputs)
    lengths = inputs["mask"].sum(axis=1).astype(int)
    assert len(set(lengths)) > 1
    rows = ("x", "gh", "h0", "c0", "gc")
    total = {}
    for b, n in enumerate(lengths):
        row = {k: (v[b:b + 1, :n] if k in ("x", "gh") else v[b:b + 1]) if k in rows else v
               for k, v in inputs.items() if k != "mask"}
        own = base.run(**row)
        for k in ("h", "dh", "dx"):
            np.testing.assert_allclose(out[k][b:b + 1, :n], own[k], rtol=1e-12, atol=1e-13, err_msg=f"{k} row {b}")
        assert not out["dx"][b, n:].any() and not out["out"][b, n:].any()
        assert np.array_equal(out["h"][b, -1], out["h"][b, n - 1])  # h_n: the last valid step's
        np.testing.assert_allclose(out["dh0"][b], own["dh0"][0], rtol=1e-12, atol=1e-13)
        for k in f.contract:
            if k.startswith("d") and k not in ("dh", "dc", "dx", "dh0", "dc0"):
                total[k] = total.get(k, 0) + own[k]
    for k, v in total.items():
        np.testing.assert_allclose(out[k], v, rtol=1e-12, atol=1e-12, err_msg=k)


def test_the_deltas_at_masked_steps_are_not_compared_and_dx_there_is():
    """The states' deltas at a masked step depend on how a candidate writes the hold (the state's or
    the output's copy carries the later outputs' gradients): the contract leaves them open. dx there
    is 0 in every formulation: compared."""
    f = _record("lstm", ("mask",))
    oracle = reference_oracle("lstm")
    case = Case(oracle.name, 3, 7, 4, 5, "f64", 0, "std", ("mask",))

    def candidate(leak, **inputs):
        out = dict(f.run(**inputs))
        gap = 1 - inputs["mask"][..., None]
        out["dh"], out["dc"] = out["dh"] + 7 * gap, out["dc"] - 3 * gap
        if leak:
            out["dx"] = out["dx"] + gap
        return out

    for leak in (False, True):
        run = functools.partial(candidate, leak)
        run.options = {"mask"}
        report = run_case(case, oracle, run, "candidate")
        assert report.ok is not leak
        compared = {r.step: r.n for r in report.results if r.quantity == "dh"}
        keep = _keep(_inputs(f))
        assert compared == {t: int(keep[:, t].sum()) * 5 for t in range(7)}
    assert report.failures[0].quantity == "dx"


# --- refusals, keywords ------------------------------------------------------------------------------------------

def test_combinations_that_are_not_defined_are_refused():
    with pytest.raises(ValueError, match="one mask semantics"):
        opts.under(FAMILIES["rnn"], ("len", "mask"))
    with pytest.raises(ValueError, match="reverse layer under a mask is not defined yet"):
        opts.under(FAMILIES["rnn"], ("rev", "mask"))
    f = _record("rnn", ("mask",))
    inputs = _inputs(f)
    inputs["mask"][1] = 0
    with pytest.raises(ValueError, match=r"mask: every row needs a valid step; rows \[1\]"):
        f.run(**inputs)
    with pytest.raises(ValueError, match="masked_output: this model's masked steps output 'carry'"):
        f.run(**_inputs(f), masked_output="zero")


def test_a_candidate_is_told_the_mask_semantics_by_keyword():
    calls = []
    f = _record("gru", ("maskz", "L2"))

    def run(*, masked_output=None, num_layers=1, **inputs):
        calls.append((masked_output, num_layers, inputs["mask"].shape))
        return f.run(**inputs, masked_output=masked_output)

    run.options = {"maskz+L2"}
    oracle = reference_oracle("gru")
    assert run_case(Case(oracle.name, 3, 7, 4, 5, "f64", 0, "std", ("maskz", "L2")), oracle, run, "both").ok
    assert calls == [("zero", 2, (3, 7))]


# --- the frameworks' semantics -------------------------------------------------------------------------------------

def test_the_grid_gives_each_oracle_the_mask_sets_it_runs():
    for name in NAMES:
        cases = grid("ci", FAMILIES[name])
        for oracle in {c.oracle for c in cases if ORACLES[c.oracle].battery}:  # (not the reference's backstop)
            o = ORACLES[oracle]
            mine = {c.options for c in cases if c.oracle == oracle and opts.masking(c.options)
                    and all(opts.OPTIONS[n].structural for n in c.options)}  # (a family's own options: their tests)
            if "len" not in o.options:  # the cells: no mask
                assert not mine, oracle
            elif not {"mask", "maskz"} & o.options:  # packed sequences, sequence_lens: right padding only
                assert mine == {s for s in (("len",), ("len", "bi", "L2")) if o.offers(s)}, oracle  # (or declines)
            else:
                assert mine == {s for s in opts.STRUCTURAL if opts.masking(s)}, oracle
    declined = ORACLES["keras-lstm-layer"].declines(("mask", "bi"))
    assert "zero_output_for_mask=True" in declined
    assert not ORACLES["keras-lstm-layer"].offers(("mask", "bi")) and ORACLES["keras-lstm-layer"].offers(("maskz", "bi"))
    with pytest.raises(ValueError, match="does not run options"):
        ORACLES["keras-lstm-layer"].run(_inputs(_record("lstm", ("mask", "bi"))), ("mask", "bi"))


@pytest.mark.parametrize("oracle", ["torch-lstm-layer", "torch-gru-layer"])
def test_packing_is_what_makes_torch_agree(oracle, request, monkeypatch):
    """With every row's length taken as T (the padding run through), the same len case fails; a
    mask that is not right-padded is refused by name."""
    from conftest import require_framework
    from gatecheck.engines import structured

    o = ORACLES[oracle]
    require_framework(request.config, o.framework)
    case = Case(oracle, 3, 7, 4, 5, "f64", 0, "std", ("len", "bi"))
    assert run_case(case, o).ok
    f = _record(o.family, ("maskz",))
    with pytest.raises(ValueError, match=r"packed sequences take right padding only.*rows \[0, 2\]"):
        torch_common._run_torch(structured_model(o), _inputs(f), ("len",))
    monkeypatch.setattr(structured, "right_padded_lengths", lambda mask: np.full(mask.shape[0], mask.shape[1]))
    report = run_case(case, o)
    assert not report.ok and {r.quantity for r in report.failures} >= {"hT", "hT_r"}


def structured_model(oracle):
    from gatecheck.engines.torch import lstm as torch_oracle

    return {"torch-lstm-layer": torch_oracle.MODEL, "torch-gru-layer": torch_gru.TORCH_MODEL}[oracle.name]


@pytest.mark.parametrize("oracle", ["keras-lstm-layer", "keras-rnn-layer", "keras-gru-layer-before"])
@pytest.mark.parametrize("option", ["mask", "maskz"])
def test_zero_output_for_mask_is_what_makes_keras_agree(oracle, option, request, monkeypatch):
    """Keras' zero_output_for_mask decides what a masked step outputs: built with the other value,
    the same case fails, first on the output (then on the gradients: a zero output drops the
    masked steps' upstream gradient, a carried one hands it to the last valid step)."""
    from conftest import precise_dtype, require_framework, skip_where_deviating

    o = ORACLES[oracle]
    require_framework(request.config, o.framework)
    case = Case(oracle, 3, 7, 4, 5, precise_dtype(o, (option,)), 0, "std", (option,))
    skip_where_deviating(case)
    assert run_case(case, o).ok
    real = keras_common.built
    swapped = {"zero": "carry", "carry": "zero"}
    # (the builder's arguments end with the masked output, then the model's own option: gatecheck.engines.keras.common)
    monkeypatch.setattr(keras_common, "built",
                        lambda build, *args: real(build, *args[:-2], swapped[args[-2]], args[-1]))
    report = run_case(case, o)
    assert not report.ok and report.failures[0].quantity == "out"


# --- the mutants ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("options", [("len",), ("mask",), ("maskz",), ("len", "bi", "L2"), ("mask", "L2")],
                         ids="-".join)
def test_mask_mutants_diverge_where_they_say(name, options):
    """Against the family's reference (no framework): every mutant fails, at its ``first`` where stated."""
    f = _record(name, options)
    oracle = reference_oracle(name)
    case = Case(oracle.name, 3, 7, 4, 5, "f64", 0, "std", f.applied)
    assert f.mutant_source is layers
    names = {m.name for m in f.mutants}
    assert "mask-steps-update-state" in names
    assert ("mask-initial-output" in names) == (opts.MASKS[options[0]][0] == "carry")
    assert ("bi-mask-not-flipped" in names) == ("bi" in options)
    assert ("L2-mask-not-handed-on" in names) == ("L2" in options)
    for m in f.mutants:
        report = run_case(case, oracle, mut.candidate(f, m), m.name)
        assert not report.ok, m.name
        first = f"{report.failures[0].quantity} {report.failures[0].label}"
        expected = m.first.replace("T-1", str(case.T - 1))
        assert first.startswith(expected), (m.name, first, expected)


def test_the_diagnosis_names_a_mask_bug_whatever_the_deltas_at_masked_steps():
    """A candidate whose masked steps' deltas follow another convention (not compared) and which has
    a mask bug is still matched to that bug's mutant."""
    from gatecheck.tools.diagnose import diagnose

    f = _record("rnn", ("mask",))
    bug = mut.candidate(f, f.mutants_by_name["mask-initial-output"])

    def run(**inputs):
        out = dict(bug(**inputs))
        out["dh"] = out["dh"] + 5 * (1 - inputs["mask"][..., None])
        return out

    run.options = {"mask"}
    report, text = diagnose(run, Case("reference-rnn", 3, 7, 4, 5, "f64", 0, "std", ("mask",)), FAMILIES["rnn"])
    assert not report.ok and "matches the known bug 'mask-initial-output'" in text
    assert "hypotheses and mutants are not tried under mask" in text


@pytest.mark.parametrize("options", [("proj", "len"), ("proj", "len", "bi", "L2")], ids="-".join)
def test_packed_sequences_into_the_projected_lstm(options, request):
    """nn.LSTM(proj_size=P) takes packed sequences too: torch-lstm-layer agrees on the ci cases of the set, and every
    mutant of the set is killed by each f64 one (h and the output P wide)."""
    from conftest import require_framework

    require_framework(request.config, "torch")
    f = _record("lstm", options)
    cases = [c for c in grid("ci", FAMILIES["lstm"], oracles=["torch-lstm-layer"]) if c.options == options]
    assert len(cases) == 4
    for case in cases:
        assert run_case(case, ORACLES["torch-lstm-layer"]).ok, case.id
    inputs = _inputs(f)
    assert f.run(**inputs)["out"].shape[-1] == inputs["h0"].shape[-1] < inputs["c0"].shape[-1]
    for m in f.mutants:
        for case in (c for c in cases if c.dtype == "f64"):
            assert not run_case(case, ORACLES["torch-lstm-layer"], mut.candidate(f, m), m.name).ok, (m.name, case.id)


@pytest.mark.parametrize("options", [("mask",), ("len", "bi", "L2")], ids="-".join)
def test_gate_orders_are_tried_under_a_mask_on_the_whole_layer(options):
    """A mask bug is not taken for a gate order (the masked layer's forward pass must match under it), and
    gates permuted in every direction and layer of a masked LSTM are found."""
    from gatecheck.tools.diagnose import diagnose

    f = _record("lstm", options)
    case = Case("reference-lstm", 3, 7, 4, 5, "f64", 0, "std", f.applied)
    bug = mut.candidate(f, f.mutants_by_name["mask-steps-update-state"])
    bug.options = {options}
    _, text = diagnose(bug, case, FAMILIES["lstm"])
    assert "gates look ordered" not in text and "'mask-steps-update-state'" in text
    order = [0, 1, 3, 2]  # the candidate's blocks i, f, o, g

    def permuted(**inputs):
        return f.run(**{k: v[order] if k in f.gated else v for k, v in inputs.items()})

    permuted.options = {options}
    report, text = diagnose(permuted, case, FAMILIES["lstm"])
    assert not report.ok and "your gates look ordered i,f,o,g" in text
