"""The projection option (``proj``, PyTorch ``nn.LSTM(proj_size=P)``): ids and the registry (Keras
and nn.LSTMCell lack it), P from the case, the record under it (inputs, contract, shapes, its
inputs), the reference's semantics (h_t = (o_t * tanh(c_t)) @ Wr fed back through U (4, P, H)),
its argument checks, the pure torch remaps, torch-lstm-layer against the reference, the candidate
side, and the option's mutants. Its finite-difference proof is tests/core/test_finite_differences.py's
(it runs every option a family defines)."""


import numpy as np
import pytest

from gatecheck.core import mutants as mut
from gatecheck.core.cases import Case
from gatecheck.engines import ORACLES, battery_oracles
from gatecheck.engines.torch import proj as torch_proj
from gatecheck.families import FAMILIES
from gatecheck.families.lstm import proj as lstm_proj
from gatecheck.model import options as opts
from gatecheck.reference import lstm
from gatecheck.run.battery import run_case
from gatecheck.run.grid import grid
from gatecheck.tools import check as chk
from gatecheck.tools import killmatrix
from gatecheck.tools.diagnose import diagnose

PROJ = ("proj",)
NAMES = ("lstm", "lstm-identity")
OUTPUT = {"lstm": "tanh", "lstm-identity": "identity"}
# The reference oracle of each family (lstm's is not in its battery; the identity model's is).
REFERENCE = {"lstm": "reference-lstm", "lstm-identity": "reference-lstm-identity"}


def _inputs(name, B=3, T=6, D=4, H=5, seed=1, regime="std"):
    return opts.under(FAMILIES[name], PROJ).make_inputs(Case("-", B, T, D, H, "f64", seed, regime, PROJ))


# --- ids, the registry, P, the grid -------------------------------------------------------------

def test_proj_is_a_suffix_after_the_regime_and_the_other_options():
    case = Case("torch-lstm-layer", 3, 7, 4, 5, "f64", 0, "zero", PROJ)
    assert case.id == "torch-lstm-layer-B3-T7-D4-H5-f64-s0-zero-proj"
    assert opts.canonical(["proj", "rev", "nobias"]) == ("nobias", "rev", "proj") and opts.parse("proj") == PROJ


def test_the_registry_says_keras_and_the_cell_lack_it():
    o = opts.OPTIONS["proj"]
    assert list(opts.OPTIONS).index("proj") == list(opts.OPTIONS).index("rev") + 1
    assert o.frameworks["keras"].startswith("none:") and "proj_size=P" in o.frameworks["torch"]
    assert "LSTMCell has none" in o.frameworks["torch"] and "H // 2" in o.meaning
    offering = {name for name, oracle in ORACLES.items() if oracle.offers(("proj",))}  # (others decline it)
    assert offering == {"torch-lstm-layer", "reference-lstm", "reference-lstm-identity", "paddle-lstm-cell",
                        "paddle-lstm-layer", "paddle-lstm-layer-tm"}
    assert opts.suffix(("proj",)) == "-proj"


@pytest.mark.parametrize("H", range(2, 70))
def test_p_is_half_of_h_and_a_true_projection(H):
    P = lstm_proj.proj_size(H)
    assert 1 <= P < H and P == H // 2


def test_a_case_without_room_for_a_projection_is_refused_by_name():
    with pytest.raises(ValueError, match=r"H: the projection option needs H >= 2"):
        _inputs("lstm", H=1)


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_proj_cases_go_to_the_layer_and_the_identity_reference_only(name):
    f = FAMILIES[name]
    for profile in ("ci", "nightly"):
        cases = [c for c in grid(profile, f) if "proj" in c.options]
        assert bool(cases) == (name in NAMES), (name, profile)
        if not cases:
            assert "proj" not in f.options
            continue
        assert {c.oracle for c in cases} == {o for o in battery_oracles(name) if ORACLES[o].offers(("proj",))}
        assert all(c.H >= 2 and c.T >= 2 for c in cases) and {c.dtype for c in cases} == {"f32", "f64"}
        assert {c.regime for c in cases} == {"std", "zero", "longmem", "sat"}
    assert {c.oracle for c in grid("ci", f) if "proj" in c.options} <= {"torch-lstm-layer", "reference-lstm-identity",
                                                                        "paddle-lstm-cell", "paddle-lstm-layer",
                                                                        "paddle-lstm-layer-tm"}


# --- the record under proj and its inputs ---------------------------------------------------------

@pytest.mark.parametrize("name", NAMES)
def test_the_record_under_proj_states_its_contract_and_shapes(name):
    base = FAMILIES[name]
    f = opts.under(base, PROJ)
    assert f.inputs == ("x", "h0", "c0", "W", "U", "b", "Wr", "gh", "gc") and f.applied == PROJ
    assert f.contract == base.contract + ("dWr",) and f.removed == ()
    assert f.quantities["dWr"].phase == 2 and f.quantities["dWr"].split == "" and "dWr" not in base.quantities
    assert "Wr (H,P)" in f.contract_doc and f.contract_doc != base.contract_doc
    inputs = _inputs(name)
    assert set(inputs) == set(f.inputs)
    out = f.run(**inputs)
    assert {k: out[k].shape for k in f.contract} == f.shapes(inputs)
    assert f.shapes(inputs)["h"] == (3, 6, 2) and f.shapes(inputs)["c"] == (3, 6, 5)


@pytest.mark.parametrize("regime", ["std", "zero", "longmem", "sat"])
def test_proj_inputs_are_the_case_inputs_plus_their_own_draws(regime):
    """x, c0, W, b and gc are the option-less case's; U, h0, gh and Wr (width P) come from a
    stream of their own (never a slice of the case's U, h0, gh), with every gate of U different."""
    case = Case("-", 3, 6, 4, 5, "f64", 2, regime)
    plain = FAMILIES["lstm"].make_inputs(case)
    got = _inputs("lstm", seed=2, regime=regime)
    for k in ("x", "c0", "W", "b", "gc"):
        np.testing.assert_array_equal(got[k], plain[k], err_msg=k)
    P = 2
    assert (got["U"].shape, got["h0"].shape, got["gh"].shape, got["Wr"].shape) == ((4, P, 5), (3, P), (3, 6, P), (5, P))
    assert not np.allclose(got["U"], plain["U"][:, :P]) and not np.allclose(got["gh"], plain["gh"][..., :P])
    assert all(not np.allclose(got["U"][j], got["U"][k]) for j in range(4) for k in range(j))
    assert not got["h0"].any() if regime == "zero" else got["h0"].all()


# --- the reference's semantics ------------------------------------------------------------------

@pytest.mark.parametrize("name", NAMES)
def test_h_is_the_projected_gated_output_and_is_what_the_next_step_reads(name):
    """From the reference's own gates and cell states: h_t = (o_t * act(c_t)) @ Wr, and the
    gates of step t are those of one step from h_{t-1} (width P) through U (4, P, H)."""
    output = OUTPUT[name]
    inputs = _inputs(name)
    out = opts.under(FAMILIES[name], PROJ).run(**inputs)
    act = np.tanh(out["c"]) if output == "tanh" else out["c"]
    np.testing.assert_allclose(out["h"], (out["gates"][:, :, 3] * act) @ inputs["Wr"], rtol=1e-13, atol=1e-15)
    x, W, U, b = inputs["x"], inputs["W"], inputs["U"], inputs["b"]
    xw = lstm.input_projection(x, W, b)
    for t in range(1, x.shape[1]):
        gates, c_t = lstm.step(xw[t], out["h"][:, t - 1], out["c"][:, t - 1], lstm.join_gates(U))
        np.testing.assert_allclose(gates, out["gates"][:, t], rtol=1e-13, atol=1e-15, err_msg=f"t={t}")
        np.testing.assert_allclose(c_t, out["c"][:, t], rtol=1e-13, atol=1e-15, err_msg=f"t={t}")


@pytest.mark.parametrize("output", lstm.OUTPUTS)
def test_the_identity_projection_is_the_model_without_one(output):
    """At P = H with Wr = I the projected model is the LSTM exactly (one loop for both);
    with any other Wr it is not."""
    inputs = FAMILIES["lstm"].make_inputs(Case("-", 3, 6, 4, 5, "f64", 3))
    plain = lstm.run(**inputs, output=output)
    same = lstm.run_proj(**inputs, Wr=np.eye(5), output=output)
    for k in lstm.CONTRACT_KEYS:
        np.testing.assert_array_equal(same[k], plain[k], err_msg=k)
    np.testing.assert_allclose(same["dWr"], np.einsum("btj,btk->jk", plain["h"], plain["dh"]), rtol=1e-12)
    other = lstm.run_proj(**inputs, Wr=np.eye(5)[::-1].copy(), output=output)
    assert not np.allclose(other["h"], plain["h"])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_reference_keeps_the_dtype(dtype):
    inputs = {k: v.astype(dtype) for k, v in _inputs("lstm").items()}
    out = lstm.run_proj(**inputs)
    assert {out[k].dtype for k in lstm_proj.CONTRACT_KEYS} == {np.dtype(dtype)}


@pytest.mark.parametrize("key,value,message", [
    ("Wr", np.zeros((4, 2)), r"Wr: expected shape \(H, P\) = \(5, P\) with P >= 1 \(H from W\), got \(4, 2\)"),
    ("Wr", np.zeros((5, 0)), r"Wr: expected shape \(H, P\) = \(5, P\) with P >= 1"),
    ("Wr", np.zeros(5), r"Wr: expected 2 dimensions"),
    ("U", np.zeros((4, 5, 5)), r"U: expected shape \(4, P, H\) = \(4, 2, 5\), got \(4, 5, 5\)"),
    ("h0", np.zeros((3, 5)), r"h0: expected shape \(B, P\) = \(3, 2\), got \(3, 5\)"),
    ("gh", np.zeros((3, 6, 5)), r"gh: expected shape \(B, T, P\) = \(3, 6, 2\)"),
    ("c0", np.zeros((3, 2)), r"c0: expected shape \(B, H\) = \(3, 5\)"),
    ("Wr", np.full((5, 2), np.nan), r"Wr: expected finite values"),
    ("Wr", np.zeros((5, 2), np.float32), r"mixed dtypes"),
])
def test_bad_arguments_are_refused_by_name(key, value, message):
    inputs = dict(_inputs("lstm"), **{key: value})
    with pytest.raises((ValueError, TypeError), match=message):
        lstm.run_proj(**inputs)


# --- PyTorch: the pure remaps and the oracle --------------------------------------------------------

def test_the_torch_remap_round_trips_and_transposes_wr():
    inputs = _inputs("lstm")
    weights = torch_proj.to_torch(inputs)
    assert weights["weight_hr"].shape == (2, 5) and weights["weight_hh"].shape == (20, 2)
    np.testing.assert_array_equal(weights["weight_hr"], inputs["Wr"].T)
    back = torch_proj.grads_from_torch(weights)  # the remap is linear: weights map back like gradients
    for k in ("W", "U", "Wr"):
        np.testing.assert_array_equal(back["d" + k], inputs[k], err_msg=k)


def test_torch_cell_refuses_proj():
    with pytest.raises(ValueError, match=r"oracle torch-lstm-cell does not offer option\(s\) \['proj'\]"):
        ORACLES["torch-lstm-cell"].run(_inputs("lstm"), PROJ)


def _torch_cases():
    return [c for c in grid("ci", FAMILIES["lstm"], oracles=["torch-lstm-layer"]) if c.options == PROJ]


def test_torch_layer_agrees_with_the_reference_on_every_ci_proj_case(request):
    from conftest import require_framework

    require_framework(request.config, "torch")
    cases = _torch_cases()
    assert len(cases) == 8
    for case in cases:
        report = run_case(case, ORACLES["torch-lstm-layer"])
        assert report.ok, report.message()
        assert "dWr" in {r.quantity for r in report.results}


def test_torch_layer_sees_a_wrongly_loaded_projection(request, monkeypatch):
    """Not vacuous: weight_hr loaded with its rows swapped makes h differ from the first step."""
    from conftest import require_framework

    require_framework(request.config, "torch")
    remap = torch_proj.to_torch
    monkeypatch.setattr(torch_proj, "to_torch", lambda p: dict(remap(p), weight_hr=remap(p)["weight_hr"][::-1].copy()))
    report = run_case(_torch_cases()[0], ORACLES["torch-lstm-layer"])
    assert not report.ok and report.failures[0].describe().startswith("h t=0")


# --- the candidate side -------------------------------------------------------------------------

def proj_candidate(x, h0, c0, W, U, b, Wr, gh, gc):
    """A candidate that implements the option (the reference's own code)."""
    return lstm.run_proj(x, h0, c0, W, U, b, Wr, gh, gc)


proj_candidate.options = {"proj"}


def test_check_runs_the_proj_cases_only_for_a_candidate_that_declares_them(request):
    from conftest import require_framework

    require_framework(request.config, "torch")
    f = FAMILIES["lstm"]
    cases = [c for c in grid("ci", f, oracles=["torch-lstm-layer"]) if c.dtype == "f64" and c.options in ((), PROJ)][-6:]
    n_proj = sum(c.options == PROJ for c in cases)
    assert n_proj == 4
    records = chk.run_cases(lstm.run, "ref:run", f, cases)
    assert [r["id"] for r in records if r["status"] == "unimplemented"] == [c.id for c in cases if c.options]
    _, lines = chk.render(records, f, lstm.run, "ref:run", "ci")
    assert any(line.startswith(f"  not run: {n_proj} cases with option proj: the candidate does not implement proj")
               for line in lines), lines
    records = chk.run_cases(proj_candidate, "t:proj_candidate", f, [c for c in cases if c.options])
    assert [r["status"] for r in records] == ["match"] * n_proj, records
    assert all("dWr" in r["compared"] for r in records)


def test_verify_runs_one_proj_case(capsys):
    from gatecheck.frontends.cli import main

    assert main(["verify", "tests.model.test_proj:proj_candidate", "--family", "lstm", "--options", "proj"]) == 0
    assert "reference-lstm-B3-T7-D4-H5-f64-s0-proj: tests.model.test_proj:proj_candidate matches" in capsys.readouterr().out


# --- the option's mutants -------------------------------------------------------------------------

@pytest.mark.parametrize("name,oracle", [("lstm", "torch-lstm-layer"), ("lstm", "reference-lstm"),
                                         ("lstm-identity", "reference-lstm-identity")])
def test_proj_mutants_are_killed_by_every_ci_proj_case_and_the_reference_is_not(name, oracle, request):
    from conftest import require_framework

    f = FAMILIES[name]
    require_framework(request.config, ORACLES[oracle].framework)
    mutants = [(o, m) for o, m in killmatrix.catalogue(f) if o == PROJ]
    assert {m.name for _, m in mutants} == {m.name for m in lstm_proj.MUTANTS} and len(mutants) >= 5
    cases = [c for c in grid("ci", f, oracles=[oracle]) if c.options == PROJ]
    assert len(cases) == 8
    result = killmatrix.matrix(cases, ORACLES, mutants, f)
    assert result.pop(killmatrix.REFERENCE_ROW) == []
    assert all(len(ids) == len(cases) for ids in result.values()), result


@pytest.mark.parametrize("name", NAMES)
def test_proj_mutants_diverge_where_they_say(name):
    """Against the family's reference (no framework needed): each mutant's first divergence is
    its ``first`` ("contract": it breaks the contract's shapes), and the diagnosis names it."""
    from gatecheck.core import candidate as cand

    f = opts.under(FAMILIES[name], PROJ)
    oracle = ORACLES[REFERENCE[name]]
    case = Case(oracle.name, 3, 7, 4, 5, "f64", 0, "std", PROJ)
    for m in f.mutants:
        fn = mut.candidate(f, m)
        try:
            first = run_case(case, oracle, fn, m.name).failures[0].describe()
        except cand.CandidateError:
            first = "contract"
        assert first.startswith(m.first), (m.name, first)
        if m.first != "contract":
            assert f"matches the known bug '{m.name}'" in diagnose(fn, case, FAMILIES[name], m.name)[1], m.name


# --- with bidirectional and stacked layers (nn.LSTM(proj_size=P, bidirectional=True, num_layers=2)) ---------

LAYERED = list(lstm_proj.STRUCTURAL)
PARTS = {("proj", "bi"): ("", "_r"), ("proj", "L2"): ("", "_l1"), ("proj", "bi", "L2"): ("", "_r", "_l1", "_r_l1")}


def _layered(name, options, shape=(3, 6, 4, 5), seed=1, regime="std"):
    f = opts.under(FAMILIES[name], options)
    return f, f.make_inputs(Case("-", *shape, "f64", seed, regime, options))


def test_the_grids_combine_proj_with_each_layer_structure_torch_offers():
    assert set(map(tuple, LAYERED)) == {("proj", "bi"), ("proj", "L2"), ("proj", "bi", "L2")}
    for name in NAMES:
        assert set(LAYERED) <= set(opts.grid_sets(FAMILIES[name]))


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("options", LAYERED, ids="-".join)
def test_layers_of_the_projected_model_are_p_wide_where_h_is(name, options):
    """Every (layer, direction) has Wr (H, P), U (4, P, H), h0 (B, P) and c0 (B, H), drawn from its own
    stream; the second layer's input is P wide (2P bidirectional), as is gh (the top output's); h, dh, dh0 are
    P wide, c, dc, dc0 H; the record's shapes and quantity table say so, and its reference returns them."""
    f, inputs = _layered(name, options)
    B, T, D, H, P = 3, 6, 4, 5, 2
    bi, stacked = "bi" in options, "L2" in options
    out, shapes = f.run(**inputs), f.shapes(inputs)
    assert {k: out[k].shape for k in f.contract} == shapes
    for s in PARTS[options]:
        D_s = (2 * P if bi else P) if s.endswith("_l1") else D
        assert {k: inputs[k + s].shape for k in ("W", "U", "Wr", "h0", "c0")} == \
            dict(W=(4, D_s, H), U=(4, P, H), Wr=(H, P), h0=(B, P), c0=(B, H)), s
        assert {k: shapes[k + s] for k in ("h", "dh", "c", "dc", "dh0", "dc0", "dU", "dWr")} == \
            dict(h=(B, T, P), dh=(B, T, P), c=(B, T, H), dc=(B, T, H), dh0=(B, P), dc0=(B, H), dU=(4, P, H),
                 dWr=(H, P)), s
        assert f.quantities["dWr" + s].source == "dWr" + s
    assert inputs["gh"].shape == (B, T, 2 * P if bi else P) and shapes["dx"] == (B, T, D)
    if bi:
        assert shapes["y_l1" if stacked else "y"] == (B, T, 2 * P)
    walls = [inputs["Wr" + s] for s in PARTS[options]]
    assert all(not np.allclose(a, b) for n, a in enumerate(walls) for b in walls[:n])


@pytest.mark.parametrize("name", NAMES)
def test_a_projected_stack_feeds_h_not_m_to_the_second_layer(name):
    """The second layer consumes the first's projected h (width P), and the gradient of that input is the
    first layer's upstream gradient: checked against the projected reference run layer by layer."""
    base, (f, inputs) = opts.under(FAMILIES[name], PROJ), _layered(name, ("proj", "L2"))
    own = [k for k in base.inputs if k not in ("x", "gh")]
    first = {k: inputs[k] for k in ["x"] + own}
    second = {k: inputs[k + "_l1"] for k in own}
    y0 = base.run(**first, gh=np.zeros_like(inputs["gh"]))["h"]
    assert y0.shape[-1] == 2 and second["W"].shape[1] == 2
    top = base.run(x=y0, **second, gh=inputs["gh"])
    bottom = base.run(**first, gh=top["dx"])
    out = f.run(**inputs)
    for k in base.contract:
        np.testing.assert_allclose(out[k], bottom[k], rtol=1e-12, atol=1e-13, err_msg=k)
        if k != "dx":
            np.testing.assert_allclose(out[k + "_l1"], top[k], rtol=1e-12, atol=1e-13, err_msg=k + "_l1")


@pytest.mark.parametrize("name", NAMES)
def test_a_projected_bidirectional_layer_is_two_projected_directions(name):
    """The forward direction is the projected reference; the reverse one is the projected reference on the
    time-flipped x and its half of gh (the concatenation's second P columns), its per-step arrays flipped back."""
    base, (f, inputs) = opts.under(FAMILIES[name], PROJ), _layered(name, ("proj", "bi"))
    own = [k for k in base.inputs if k not in ("x", "gh")]
    x, gy, P = inputs["x"], inputs["gh"], 2
    fwd = base.run(x=x, **{k: inputs[k] for k in own}, gh=gy[..., :P])
    rev = base.run(x=x[:, ::-1], **{k: inputs[k + "_r"] for k in own}, gh=gy[:, ::-1, P:])
    out = f.run(**inputs)
    for k in base.contract:
        if k == "dx":
            continue
        np.testing.assert_allclose(out[k], fwd[k], rtol=1e-12, atol=1e-13, err_msg=k)
        back = rev[k][:, ::-1] if k in ("h", "c", "dh", "dc") else rev[k]
        np.testing.assert_allclose(out[k + "_r"], back, rtol=1e-12, atol=1e-13, err_msg=k + "_r")
    np.testing.assert_allclose(out["dx"], fwd["dx"] + rev["dx"][:, ::-1], rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(out["y"], np.concatenate([fwd["h"], rev["h"][:, ::-1]], -1), rtol=1e-13, atol=1e-14)


def test_keras_never_gets_a_projection_case():
    """Keras has no projection: no case of any profile gives it one, alone or with a layer structure, and its
    oracles and structured runner refuse one by name."""
    from gatecheck.engines import structured
    from gatecheck.engines.keras import lstm as keras_oracle

    for profile in ("ci", "nightly"):
        for f in FAMILIES.values():
            for oracle in {c.oracle for c in grid(profile, f) if "proj" in c.options}:
                assert ORACLES[oracle].framework != "keras", (profile, f.name, oracle)
    keras = [o for o in ORACLES.values() if o.framework == "keras"]
    assert keras and all("proj" not in o.options for o in keras)
    with pytest.raises(ValueError, match=r"oracle keras-lstm-layer does not offer option\(s\) \['proj'\]"):
        ORACLES["keras-lstm-layer"].run(_layered("lstm", ("proj", "bi"))[1], ("proj", "bi"))
    with pytest.raises(ValueError, match=r"the structured oracles build \['proj'\] with no layer structure"):
        structured.modelled(keras_oracle.MODEL, ("proj", "bi"))


def _layered_torch_cases():
    return [c for c in grid("ci", FAMILIES["lstm"], oracles=["torch-lstm-layer"]) if c.options in LAYERED]


def test_torch_layer_agrees_with_the_reference_on_every_ci_layered_proj_case(request):
    """nn.LSTM(proj_size=P, bidirectional=True, num_layers=2): h_0 (P wide) and c_0 (H wide) layer-major, the
    second layer's input 2P wide, weight_hr_l{k}[_reverse] of every part compared through dWr."""
    from conftest import require_framework

    require_framework(request.config, "torch")
    cases = _layered_torch_cases()
    assert {c.options for c in cases} == set(LAYERED) and len(cases) == 12
    assert {lstm_proj.proj_size(c.H) for c in cases} == {1, 2}
    for case in cases:
        report = run_case(case, ORACLES["torch-lstm-layer"])
        assert report.ok, report.message()
        compared = {r.quantity for r in report.results}
        assert {"dWr" + s for s in PARTS[case.options]} | {"dh0" + s for s in PARTS[case.options]} <= compared


@pytest.mark.parametrize("options", LAYERED, ids="-".join)
def test_torch_layer_sees_a_wrongly_loaded_projection_in_a_layer(options, request, monkeypatch):
    """Not vacuous: with every weight_hr_l{k}[_reverse] loaded with its rows swapped, each set's case fails."""
    from conftest import require_framework

    require_framework(request.config, "torch")
    remap = torch_proj.to_torch
    monkeypatch.setattr(torch_proj, "to_torch", lambda p: dict(remap(p), weight_hr=remap(p)["weight_hr"][::-1].copy()))
    case = next(c for c in _layered_torch_cases() if c.options == options and c.dtype == "f64")
    assert not run_case(case, ORACLES["torch-lstm-layer"]).ok


@pytest.mark.parametrize("name,oracle", [("lstm", "torch-lstm-layer"), ("lstm", "reference-lstm"),
                                         ("lstm-identity", "reference-lstm-identity")])
def test_layered_proj_mutants_are_killed_by_every_ci_case_and_the_reference_is_not(name, oracle, request):
    """Under each set: the projection's own mutants (carried into the layers, each built on the mutated
    model), the set's bidirectional and stacked mutants, and the combination's: a layer's Wr read from the
    first direction (layer) for both."""
    from conftest import require_framework

    f = FAMILIES[name]
    require_framework(request.config, ORACLES[oracle].framework)
    mutants = [(o, m) for o, m in killmatrix.catalogue(f) if o in LAYERED]
    for s in LAYERED:
        names = {m.name for o, m in mutants if o == s}
        structural = {m.name for m in opts.under(f, tuple(o for o in s if o != "proj")).mutants}
        assert names == {m.name for m in lstm_proj.MUTANTS} | structural | {
            n for n in ("bi-shared-Wr", "L2-shared-Wr") if n.split("-")[0] in s}, s
    cases = [c for c in grid("ci", f, oracles=[oracle]) if c.options in LAYERED]
    assert len(cases) == 12
    result = killmatrix.matrix(cases, ORACLES, mutants, f)
    assert result.pop(killmatrix.REFERENCE_ROW) == []
    per_set = {s: sum(c.options == s for c in cases) for s in LAYERED}
    for o, m in mutants:
        assert len(result[killmatrix.row(o, m)]) == per_set[o], killmatrix.row(o, m)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("options", LAYERED, ids="-".join)
def test_layered_proj_mutants_diverge_where_they_say(name, options):
    """Against the family's reference: each mutant's first divergence is its ``first`` (a carried projection
    mutant's is where it shows in the model alone: h t=0, dWr, or the contract)."""
    from gatecheck.core import candidate as cand

    f = opts.under(FAMILIES[name], options)
    oracle = ORACLES[REFERENCE[name]]
    case = Case(oracle.name, 3, 7, 4, 5, "f64", 0, "std", options)
    carried = {m.name: m.first for m in lstm_proj.MUTANTS}
    for m in f.mutants:
        assert m.first == carried.get(m.name, m.first), m.name
        try:
            report = run_case(case, oracle, mut.candidate(f, m), m.name)
            assert not report.ok, m.name
            first = report.failures[0].describe()
        except cand.CandidateError:
            first = "contract"
        assert first.startswith(m.first.replace("T-1", str(case.T - 1))), (m.name, first)
