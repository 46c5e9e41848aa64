"""Bidirectional and stacked layers (the structural options of gatecheck.model.options: bi, bisum, bimul,
biave, binone, L2), built from each family's own model (gatecheck.reference.layers,
gatecheck.model.structures): ids, the registry, the composed reference against the families'
own forward and reverse references, the frameworks' layouts (what makes their oracles agree), the
candidate's keywords, and the mutants, killed by the ci cases and diverging where they say."""

import dataclasses

import numpy as np
import pytest

from gatecheck.core import mutants as mut
from gatecheck.core.cases import Case, per_step_traced
from gatecheck.engines import ORACLES, battery_oracles, reference_oracle
from gatecheck.families import FAMILIES
from gatecheck.model import options as opts
from gatecheck.reference import layers
from gatecheck.run.battery import run_case
from gatecheck.run.grid import grid
from gatecheck.tools import killmatrix
from gatecheck.truth import deviations

NAMES = ("lstm", "lstm-identity", "rnn", "gru", "gru-reset-before")
SETS = [("bi",), ("bisum",), ("bimul",), ("biave",), ("binone",), ("L2",), ("bi", "L2"), ("nobias", "bi", "L2")]
MERGE = {"bi": "concat", "bisum": "sum", "bimul": "mul", "biave": "ave", "binone": "none"}


def _reference(name):
    return ORACLES["reference-lstm-identity"] if name == "lstm-identity" else reference_oracle(name)


def _inputs(f, options, shape=(3, 7, 4, 5), seed=0):
    return f.make_inputs(Case("-", *shape, "f64", seed, "std", options))


# --- ids, registry ----------------------------------------------------------------------------------

def test_ids_carry_one_suffix_per_option_in_the_registry_order():
    case = Case("torch-lstm-layer", 3, 7, 4, 5, "f64", 0, "sat", opts.canonical(["L2", "bi", "nobias"]))
    assert case.id == "torch-lstm-layer-B3-T7-D4-H5-f64-s0-sat-nobias-bi-L2"
    assert opts.parse("bimul") == ("bimul",) and opts.merge(("bimul", "L2")) == "mul"


def test_combinations_that_mean_nothing_are_refused():
    with pytest.raises(ValueError, match="a layer has one merge mode"):
        opts.under(FAMILIES["lstm"], ("bi", "bisum"))
    with pytest.raises(ValueError, match="own reverse direction"):
        opts.under(FAMILIES["rnn"], ("rev", "bi"))
    with pytest.raises(ValueError, match=r"does not define option\(s\) \['bi'\]"):
        opts.under(FAMILIES["lstm-head"], ("bi",))  # the head names no output to build layers from
    # an option whose record states no output hook (fd_output) gives no layers: the projection without its hook
    lstm = FAMILIES["lstm"]
    proj = lstm.options["proj"]
    hookless = dataclasses.replace(proj, replace={k: v for k, v in proj.replace.items() if k != "fd_output"})
    family = dataclasses.replace(lstm, options=dict(lstm.options, proj=hookless))
    with pytest.raises(ValueError, match=r"options \['proj'\] and \['L2'\]: combining them is not defined yet"):
        opts.under(family, ("proj", "L2"))
    assert opts.under(lstm, ("proj", "L2")).applied == ("proj", "L2")  # with its hook it is (tests/model/test_proj.py)


def test_the_registry_says_what_each_framework_offers():
    for name, merge in MERGE.items():
        torch = opts.OPTIONS[name].frameworks["torch"]
        assert torch.startswith("bidirectional=True") if merge == "concat" else torch.startswith("none:"), name
        assert opts.suffix((name,)) == f"-{name}"
        offered = {o.name for o in ORACLES.values() if o.framework == "torch" and name in o.options}
        assert bool(offered) == (merge == "concat"), name


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_every_structured_oracle_has_ci_cases_of_every_set_it_offers(name):
    """The probed cells (a trace of about a second per set and dtype) take each set once, the sets
    taking turns between the dtypes; every other oracle takes each set in both, on 2 points."""
    f = FAMILIES[name]
    cases = grid("ci", f)
    for oracle in battery_oracles(name):
        offered = [s for s in opts.STRUCTURAL if set(s) <= ORACLES[oracle].options]
        sparse = per_step_traced(ORACLES[oracle])
        for s in offered:
            mine = [c for c in cases if c.oracle == oracle and c.options == s]
            dtypes = {d for d in ("f32", "f64") if ORACLES[oracle].offers(s, d)}
            if sparse:
                assert len(mine) == 1, (oracle, s)
            else:
                assert {c.dtype for c in mine} == dtypes and len(mine) >= 2 * len(dtypes), (oracle, s)
        if sparse and offered:  # (a dtype it declines: the sets of its turn in the other)
            assert {c.dtype for c in cases if c.oracle == oracle and c.options in offered} == \
                {d for d in ("f32", "f64") if any(ORACLES[oracle].offers(s, d) for s in offered)}
    if name == "lstm-head":
        assert not [c for c in cases if c.options]


# --- the composed reference ---------------------------------------------------------------------------------

@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("bi", sorted(MERGE))
def test_a_bidirectional_layer_is_the_forward_and_the_reverse_reference_merged(name, bi):
    """Checked against the family's own run and its own reverse reference (run_rev, not the
    layers module's reversal), each direction on its own weights, never equal to the other's."""
    base, f = FAMILIES[name], opts.under(FAMILIES[name], (bi,))
    rev = opts.under(base, ("rev",))
    inputs = _inputs(f, (bi,))
    out = f.run(**inputs)
    own = [k for k in base.inputs if k not in ("x", "gh")]
    for k in own:
        assert not np.allclose(inputs[k], inputs[k + "_r"]), k
    forward = {k: inputs[k] for k in ["x"] + own}
    reverse = {"x": inputs["x"], **{k: inputs[k + "_r"] for k in own}}
    H = inputs["h0"].shape[1]
    zeros = np.zeros(inputs["x"].shape[:2] + (H,))
    h_f, h_r = base.run(**forward, gh=zeros)["h"], rev.run(**reverse, gh=zeros)["h"]
    np.testing.assert_allclose(out["h"], h_f, rtol=1e-13, atol=1e-14)
    np.testing.assert_allclose(out["h_r"], h_r, rtol=1e-13, atol=1e-14)
    merge, gy = MERGE[bi], inputs["gh"]
    if merge in ("concat", "none"):
        expected, g_f, g_r = np.concatenate([h_f, h_r], -1), gy[..., :H], gy[..., H:]
    elif merge == "sum":
        expected, g_f, g_r = h_f + h_r, gy, gy
    elif merge == "mul":
        expected, g_f, g_r = h_f * h_r, gy * h_r, gy * h_f
    else:
        expected, g_f, g_r = (h_f + h_r) / 2, gy / 2, gy / 2
    np.testing.assert_allclose(out["y"], expected, rtol=1e-13, atol=1e-14)
    fwd, bwd = base.run(**forward, gh=g_f), rev.run(**reverse, gh=g_r)
    for k in base.contract:
        if k != "dx":
            np.testing.assert_allclose(out[k], fwd[k], rtol=1e-12, atol=1e-13, err_msg=k)
            np.testing.assert_allclose(out[k + "_r"], bwd[k], rtol=1e-12, atol=1e-13, err_msg=k + "_r")
    np.testing.assert_allclose(out["dx"], fwd["dx"] + bwd["dx"], rtol=1e-12, atol=1e-13)
    assert f.keywords["merge_mode"] == MERGE[bi]


@pytest.mark.parametrize("name", NAMES)
def test_a_stack_feeds_the_first_layers_output_to_the_second_and_its_dx_back(name):
    base, f = FAMILIES[name], opts.under(FAMILIES[name], ("L2",))
    inputs = _inputs(f, ("L2",))
    out = f.run(**inputs)
    own = [k for k in base.inputs if k not in ("x", "gh")]
    first = {k: inputs[k] for k in ["x"] + own}
    second = {k: inputs[k + "_l1"] for k in own}
    assert second["W"].shape[-2] == inputs["h0"].shape[1]  # the second layer's input is h (width H)
    y0 = base.run(**first, gh=np.zeros_like(inputs["gh"]))["h"]
    top = base.run(x=y0, **second, gh=inputs["gh"])
    bottom = base.run(**first, gh=top["dx"])
    for k in base.contract:
        np.testing.assert_allclose(out[k], bottom[k], rtol=1e-12, atol=1e-13, err_msg=k)
        if k != "dx":
            np.testing.assert_allclose(out[k + "_l1"], top[k], rtol=1e-12, atol=1e-13, err_msg=k + "_l1")
    assert "dx_l1" not in f.contract and f.keywords == {"num_layers": 2}


# --- the frameworks' layouts ----------------------------------------------------------------------------------

def test_torch_layer_major_states_are_what_makes_it_agree(request, monkeypatch):
    """PyTorch orders h_0 and its parameters layer-major ([l0 fwd, l0 rev, l1 fwd, l1 rev]); read
    direction-major, the same case fails (D = 2H, so that every layer's weights fit every slot)."""
    from conftest import require_framework
    from gatecheck.engines import structured

    require_framework(request.config, "torch")
    o = ORACLES["torch-lstm-layer"]
    f = opts.under(FAMILIES["lstm"], ("bi", "L2"))
    case = Case("torch-lstm-layer", 3, 7, 10, 5, "f64", 0, "std", ("bi", "L2"))
    assert run_case(case, o, f.run, "reference").ok
    monkeypatch.setattr(structured, "suffixes", lambda options: ["", "_l1", "_r", "_r_l1"])
    assert not run_case(case, o, f.run, "reference").ok


@pytest.mark.parametrize("oracle", ["keras-lstm-layer", "keras-rnn-layer", "keras-gru-layer-before", "keras-lstm-cell",
                                    "keras-gru-cell"])
def test_keras_bidirectional_states_are_forward_then_backward(oracle, request, monkeypatch):
    """Keras' Bidirectional takes and returns [forward states, backward states]: given the two
    directions' weights in the other order, the case fails."""
    from conftest import precise_dtype, require_framework
    from gatecheck.engines import structured

    o = ORACLES[oracle]
    require_framework(request.config, o.framework)
    case = Case(oracle, 3, 7, 4, 5, precise_dtype(o, ("bisum",)), 0, "std", ("bisum",))
    f = opts.under(FAMILIES[o.family], ("bisum",))
    assert run_case(case, o, f.run, "reference").ok
    monkeypatch.setattr(structured, "suffixes", lambda options: ["_r", ""])
    assert not run_case(case, o, f.run, "reference").ok


CELLS = {"keras-lstm-cell": ("h", "c"), "keras-rnn-cell": ("h",), "keras-gru-cell": ("h",),
         "keras-gru-cell-before": ("h",)}


def _failed(case, oracle, f):
    return {r.quantity for r in run_case(case, oracle, f.run, "reference").failures}


@pytest.mark.parametrize("oracle", ["keras-lstm-cell", "keras-gru-cell-before"])
def test_keras_cells_read_the_reverse_direction_by_the_original_t(oracle, request, monkeypatch):
    """The probed cells in a stack of bidirectional layers compare every layer's and direction's
    per-step states and deltas. The reverse direction's layer returns its states in processing
    order (flipped back here) and its probes' gradients by the original t (the probes are inputs
    beside x): its probes read in processing order fail its deltas alone, its states left in
    processing order its states alone (C_T is Keras' returned state, not read from the sequence)."""
    from conftest import precise_dtype, require_framework
    from gatecheck.engines.keras import common as keras_common

    o = ORACLES[oracle]
    require_framework(request.config, o.framework)
    options = ("bi", "L2")
    case = Case(oracle, 3, 7, 4, 5, precise_dtype(o, options), 0, "std", options)
    f = opts.under(FAMILIES[o.family], options)
    report = run_case(case, o, f.run, "reference")
    assert report.ok, report.message()
    states = CELLS[oracle]
    every = [(p + k, s) for k in states for p in ("", "d") for s in ("", "_r", "_l1", "_r_l1")]
    assert {k + s for k, s in every} | {"y", "y_l1", "dx"} <= {r.quantity for r in report.results}

    def probes_in_processing_order(sequence, deltas, backwards):
        return (sequence[:, ::-1], deltas[:, ::-1]) if backwards else (sequence, deltas)

    monkeypatch.setattr(keras_common, "direction_in_time_order", probes_in_processing_order)
    assert _failed(case, o, f) == {k + s for k, s in every if k.startswith("d") and s.startswith("_r")}
    monkeypatch.setattr(keras_common, "direction_in_time_order", lambda sequence, deltas, backwards: (sequence, deltas))
    assert _failed(case, o, f) == {k + s for k, s in every if not k.startswith("d") and s.startswith("_r")}


def test_the_cells_of_pytorch_offer_no_structure():
    """nn.LSTMCell, nn.RNNCell and nn.GRUCell have no direction or layers: their oracles offer no
    structural option (the torch layers do; docs/reference/coverage.md shows it, generated from the registry)."""
    for o in ORACLES.values():
        if o.framework == "torch" and o.family in NAMES and "dh" in o.observes:
            assert not {n for n in o.options if opts.OPTIONS[n].structural}, o.name


def test_a_candidate_is_told_the_structure_by_keywords():
    calls = []
    f = opts.under(FAMILIES["rnn"], ("bisum", "L2"))

    def run(*, merge_mode=None, num_layers=1, **inputs):
        calls.append((merge_mode, num_layers))
        return f.run(**inputs)

    run.options = {"bisum+L2"}
    oracle = reference_oracle("rnn")
    assert run_case(Case(oracle.name, 3, 7, 4, 5, "f64", 0, "std", ("bisum", "L2")), oracle, run, "both").ok
    assert calls == [("sum", 2)]


# --- the mutants ----------------------------------------------------------------------------------------------

# Per family, the oracles whose f64 ci cases of each set must kill every mutant of the set: a layer
# oracle, and a probed cell (whose set may be f32 only: it takes each set in one dtype) of each kind,
# with two states (LSTM) and with one (the RNN's, the cheapest to trace: the GRUs' run the same code).
KILLERS = {"lstm": ("keras-lstm-layer", "keras-lstm-cell"), "lstm-identity": ("reference-lstm-identity",),
           "rnn": ("keras-rnn-layer", "keras-rnn-cell"), "gru": ("torch-gru-layer",),
           "gru-reset-before": ("keras-gru-layer-before",)}


@pytest.mark.parametrize("name, oracle", [(n, o) for n, names in sorted(KILLERS.items()) for o in names])
def test_every_structural_mutant_is_killed_and_the_reference_is_not(name, oracle, request):
    from conftest import require_framework

    f = FAMILIES[name]
    require_framework(request.config, ORACLES[oracle].framework)
    # (the projection's layers are tests/model/test_proj.py's; the activations' tests/model/test_activations.py's)
    cases = [c for c in grid("ci", f, oracles=[oracle])
             if any(opts.OPTIONS[o].structural for o in c.options) and "proj" not in c.options
             and not opts.activation_keywords(c.options)]
    in_f64 = {c.options for c in cases if c.dtype == "f64"}
    cases = [c for c in cases if c.dtype == "f64" or c.options not in in_f64]
    # a case where the oracle has a known deviation does not judge the deviating quantities (on JAX, Keras'
    # masked output is the mutant mask-initial-output): the sets it judges are the others
    deviating = {c.options for c in cases if deviations.for_case(c)}
    cases = [c for c in cases if c.options not in deviating]
    sets = {c.options for c in cases}
    assert sets | deviating == {s for s in opts.STRUCTURAL if set(s) <= ORACLES[oracle].options}
    mutants = [(o, m) for o, m in killmatrix.catalogue(f) if o in sets]
    assert len(mutants) >= 5 * len(sets)
    result = killmatrix.matrix(cases, ORACLES, mutants, f)
    assert result.pop(killmatrix.REFERENCE_ROW) == []
    per_set = {s: sum(1 for c in cases if c.options == s) for s in sets}
    survivors = {row: ids for row, ids in result.items() if not ids}
    assert survivors == {}
    # each mutant is killed by every case of its set
    for o, m in mutants:
        assert len(result[killmatrix.row(o, m)]) == per_set[o], killmatrix.row(o, m)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("options", SETS[:-1], ids=lambda s: "-".join(s))
def test_structural_mutants_diverge_where_they_say(name, options):
    """Against the family's reference (no framework): each mutant's first divergence is its ``first``."""
    f = opts.under(FAMILIES[name], options)
    case = Case(_reference(name).name, 3, 7, 4, 5, "f64", 0, "std", options)
    assert f.mutants and f.mutant_source is layers
    for m in f.mutants:
        report = run_case(case, _reference(name), mut.candidate(f, m), m.name)
        assert not report.ok, m.name
        first = f"{report.failures[0].quantity} {report.failures[0].label}"
        expected = m.first.replace("T-1", str(case.T - 1))
        assert first.startswith(expected), (m.name, first, expected)
