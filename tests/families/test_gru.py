"""The GRU families end to end: the reference in both reset conventions (its finite-difference
proof is in tests/core/test_finite_differences.py), its argument checks, the remaps
(oracles.gru_layout), the oracles' dtypes, the course-style GRU (examples/course_gru.py), where
each mutant of the catalogues is first seen, and the diagnosis of every mutant. The
reference against the GRU oracles is the families' part of the battery (tests/battery/test_battery.py);
their kill matrices run in tests/families/test_mutants.py."""

import itertools
import re

import numpy as np
import pytest

from examples import course_gru
from gatecheck.core import mutants
from gatecheck.core.cases import Case
from gatecheck.core.compare import compare
from gatecheck.engines import ORACLES, battery_oracles
from gatecheck.engines.frameworks import FRAMEWORKS
from gatecheck.engines.keras import gru_layout
from gatecheck.engines.torch import gru_layout as torch_gru_layout
from gatecheck.families.gru.record import GRU, GRU_RESET_BEFORE, make_inputs
from gatecheck.reference import gru
from gatecheck.run import outcome as oc
from gatecheck.run.battery import run_case
from gatecheck.run.grid import grid as family_grid
from gatecheck.tools.diagnose import diagnose
from gatecheck.truth.views import case_inputs, view

FAMILIES = {"after": GRU, "before": GRU_RESET_BEFORE}
CASE = Case("reference-lstm", 3, 7, 4, 5, "f64", 0)


def _sigmoid(a):
    return 1 / (1 + np.exp(-a))


# --- the reference on its own --------------------------------------------------------------


@pytest.mark.parametrize("reset", ["after", "before"])
def test_forward_matches_the_equations(reset):
    """Two steps written out from the issue's equations, gate by gate (B=2, D != H)."""
    inputs = make_inputs(Case("-", 2, 2, 3, 4, "f64", 7))
    x, h, W, U, bx, bh = (inputs[k] for k in ("x", "h0", "W", "U", "bx", "bh"))
    out = gru.run(**inputs, reset=reset)
    for t in range(2):
        r = _sigmoid(x[:, t] @ W[0] + bx[0] + h @ U[0] + bh[0])
        z = _sigmoid(x[:, t] @ W[1] + bx[1] + h @ U[1] + bh[1])
        if reset == "after":
            n = np.tanh(x[:, t] @ W[2] + bx[2] + r * (h @ U[2] + bh[2]))
        else:
            n = np.tanh(x[:, t] @ W[2] + bx[2] + (r * h) @ U[2] + bh[2])
        h = (1 - z) * n + z * h
        np.testing.assert_allclose(out["gates"][:, t], np.stack([r, z, n], 1), rtol=1e-14, atol=1e-15)
        np.testing.assert_allclose(out["h"][:, t], h, rtol=1e-14, atol=1e-15)


def test_the_conventions_differ_and_reset_before_has_one_bias_gradient():
    """Reset-after and reset-before are different models; in reset-before L depends on bx + bh
    only, so dbx and dbh are equal (exactly: the same sums), while in reset-after r_t scales
    bh[n], so dbh[n] differs from dbx[n] and the r, z blocks agree."""
    inputs = make_inputs(CASE)
    after, before = gru.run(**inputs, reset="after"), gru.run(**inputs, reset="before")
    assert not np.allclose(after["h"], before["h"])
    assert np.array_equal(before["dbx"], before["dbh"])
    np.testing.assert_array_equal(after["dbx"][:2], after["dbh"][:2])
    assert not np.allclose(after["dbx"][2], after["dbh"][2])
    with pytest.raises(ValueError, match=r"reset: expected one of \['after', 'before'\], got 'middle'"):
        gru.run(**inputs, reset="middle")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("reset", ["after", "before"])
def test_dtype_is_kept(dtype, reset):
    inputs = {k: v.astype(dtype) for k, v in make_inputs(CASE).items()}
    out = gru.run(**inputs, reset=reset)
    assert {k: out[k].dtype for k in out} == {k: np.dtype(dtype) for k in out}
    assert set(gru.CONTRACT_KEYS) <= set(out)


def test_reference_is_bitwise_deterministic_and_jitter_is_an_argument():
    inputs = make_inputs(CASE._replace(regime="longmem"))
    a, b = gru.run(**inputs), gru.run(**inputs)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    shaken = gru.run(**inputs, ulps=4)
    assert not np.array_equal(shaken["h"], a["h"])
    np.testing.assert_allclose(shaken["h"], a["h"], rtol=1e-13, atol=1e-14)
    again = gru.run(**inputs)
    assert all(np.array_equal(again[k], a[k]) for k in a)


def test_regimes_do_what_they_say():
    std = make_inputs(CASE)
    assert not np.any(make_inputs(CASE._replace(regime="zero"))["h0"]) and np.any(std["h0"])
    longmem = gru.run(**make_inputs(CASE._replace(regime="longmem")))
    assert longmem["gates"][:, :, 1].mean() > 0.9  # z near 1: h_t carried over
    sat = gru.run(**make_inputs(CASE._replace(regime="sat")))
    assert np.abs(sat["gates"][:, :, 2]).mean() > np.abs(gru.run(**std)["gates"][:, :, 2]).mean()
    with pytest.raises(ValueError, match=r"regime: expected one of \['longmem', 'sat', 'std', 'zero'\]"):
        make_inputs(CASE._replace(regime="hot"))


def _bad(**changes):
    inputs = make_inputs(Case("-", 2, 3, 4, 5, "f64", 0))
    for k, fn in changes.items():
        inputs[k] = fn(inputs[k])
    return inputs


def _with(value, flat_index):
    def put(a):
        a = a.copy()
        a.flat[flat_index] = value
        return a

    return put


BAD_INPUTS = [
    ("W-gates", _bad(W=lambda a: np.concatenate([a, a[:1]])), ValueError,
     r"W: expected the gate axis first with 3 gates \(r, z, n\), got shape \(4, 4, 5\)"),
    ("W-ndim", _bad(W=lambda a: a[0]), ValueError, r"W: expected 3 dimensions, got 2"),
    ("U-shape", _bad(U=lambda a: a[:, :, :4]), ValueError,
     r"U: expected shape \(3, H, H\) = \(3, 5, 5\), got \(3, 5, 4\)"),
    ("bx-shape", _bad(bx=lambda a: a[:, :3]), ValueError, r"bx: expected shape \(3, H\) = \(3, 5\), got \(3, 3\)"),
    ("bh-ndim", _bad(bh=lambda a: a.reshape(-1)), ValueError, r"bh: expected 2 dimensions, got 1"),
    ("h0-batch", _bad(h0=lambda a: a[:1]), ValueError, r"h0: expected shape \(B, H\) = \(2, 5\), got \(1, 5\)"),
    ("gh-steps", _bad(gh=lambda a: a[:, :2]), ValueError, r"gh: expected shape \(B, T, H\) = \(2, 3, 5\)"),
    ("T-zero", _bad(x=lambda a: a[:, :0], gh=lambda a: a[:, :0]), ValueError, r"x: expected at least one time step"),
    ("mixed-dtype", _bad(bh=lambda a: a.astype(np.float32)), TypeError, r"mixed dtypes: .*bh=float32"),
    ("int-dtype", _bad(bx=lambda a: a.astype(np.int64)), TypeError,
     r"bx: expected dtype float32 or float64, got int64"),
    ("list", _bad(x=lambda a: a.tolist()), TypeError, r"x: expected a numpy.ndarray .* got list"),
    ("nan", _bad(gh=_with(np.nan, 3)), ValueError, r"gh: expected finite values, found nan at index \(0, 0, 3\)"),
    ("inf", _bad(bh=_with(np.inf, 6)), ValueError, r"bh: expected finite values, found inf at index \(1, 1\)"),
]


@pytest.mark.parametrize("inputs,exc,match", [b[1:] for b in BAD_INPUTS], ids=[b[0] for b in BAD_INPUTS])
def test_bad_argument_is_named(inputs, exc, match):
    with pytest.raises(exc, match=match):
        gru.run(**inputs)


# --- remaps --------------------------------------------------------------------------------

REMAP_SHAPES = [(1, 1), (3, 2), (4, 5), (1, 4)]  # (D, H), D != H included
_IDS = [f"D{d}-H{h}" for d, h in REMAP_SHAPES]


def params(D, H, seed=0):
    p = make_inputs(Case("-", 2, 3, D, H, "f64", seed))
    p = {k: p[k] for k in ("W", "U", "bx", "bh")}
    for name, value in p.items():  # every gate distinct, so a permutation cannot hide
        for j, k in itertools.combinations(range(3), 2):
            assert not np.array_equal(value[j], value[k]), f"{name}: gates {j} and {k} equal"
    return p


@pytest.mark.parametrize("D,H", REMAP_SHAPES, ids=_IDS)
def test_keras_round_trip_reset_after(D, H):
    p = params(D, H)
    k = gru_layout.to_keras(p, reset_after=True)
    assert (k["kernel"].shape, k["recurrent_kernel"].shape, k["bias"].shape) == ((D, 3 * H), (H, 3 * H), (2, 3 * H))
    back = gru_layout.from_keras(k)
    assert all(np.array_equal(back[n], p[n]) for n in p)
    grads = gru_layout.grads_from_keras(k)
    assert all(np.array_equal(grads["d" + n], p[n]) for n in p)


@pytest.mark.parametrize("D,H", REMAP_SHAPES, ids=_IDS)
def test_keras_reset_before_merges_the_biases(D, H):
    """reset_after=False has one bias (3H,) = bx + bh; weights come back whole, the biases as
    their sum, and a bias gradient maps to dbx = dbh = d(bias) (L depends on the sum only)."""
    p = params(D, H)
    k = gru_layout.to_keras(p, reset_after=False)
    assert k["bias"].shape == (3 * H,)
    back = gru_layout.from_keras(k)
    assert np.array_equal(back["W"], p["W"]) and np.array_equal(back["U"], p["U"])
    np.testing.assert_array_equal(back["bx"] + back["bh"], p["bx"] + p["bh"])
    grads = gru_layout.grads_from_keras(k)
    np.testing.assert_array_equal(grads["dbx"], p["bx"] + p["bh"])
    np.testing.assert_array_equal(grads["dbh"], grads["dbx"])


@pytest.mark.parametrize("D,H", REMAP_SHAPES, ids=_IDS)
def test_torch_round_trip(D, H):
    p = params(D, H)
    t = torch_gru_layout.to_torch(p)
    assert (t["weight_ih"].shape, t["weight_hh"].shape) == ((3 * H, D), (3 * H, H))
    assert t["bias_ih"].shape == t["bias_hh"].shape == (3 * H,)
    back = torch_gru_layout.from_torch(t)
    assert all(np.array_equal(back[n], p[n]) for n in p)
    grads = torch_gru_layout.grads_from_torch(t)
    assert all(np.array_equal(grads["d" + n], p[n]) for n in p)


def test_blocks_follow_the_documented_orders():
    """Keras: kernel[:, k*H:(k+1)*H] is gate k of (z, r, h); bias[0] input, bias[1] recurrent.
    PyTorch: weight_ih[k*H:(k+1)*H] is W[k].T for gate k of (r, z, n); bias_ih = bx, bias_hh = bh."""
    p = params(3, 2)
    k = gru_layout.to_keras(p)
    t = torch_gru_layout.to_torch(p)
    for j, canon in enumerate((1, 0, 2)):  # z, r, h
        assert np.array_equal(k["kernel"][:, 2 * j:2 * j + 2], p["W"][canon])
        assert np.array_equal(k["recurrent_kernel"][:, 2 * j:2 * j + 2], p["U"][canon])
        assert np.array_equal(k["bias"][0, 2 * j:2 * j + 2], p["bx"][canon])
        assert np.array_equal(k["bias"][1, 2 * j:2 * j + 2], p["bh"][canon])
    for j in range(3):  # r, z, n
        assert np.array_equal(t["weight_ih"][2 * j:2 * j + 2], p["W"][j].T)
        assert np.array_equal(t["weight_hh"][2 * j:2 * j + 2], p["U"][j].T)
        assert np.array_equal(t["bias_ih"][2 * j:2 * j + 2], p["bx"][j])
        assert np.array_equal(t["bias_hh"][2 * j:2 * j + 2], p["bh"][j])


WRONG_ORDERS = [p for p in itertools.permutations(range(3)) if p != (0, 1, 2)]
TO = [
    ("keras-after", lambda p: gru_layout.to_keras(p, True)),
    ("keras-before", lambda p: gru_layout.to_keras(p, False)),
    ("torch", torch_gru_layout.to_torch),
]


@pytest.mark.parametrize("perm", WRONG_ORDERS, ids=lambda p: "".join("rzn"[k] for k in p))
@pytest.mark.parametrize("name,to", TO, ids=[t[0] for t in TO])
def test_every_wrong_gate_order_is_detected(perm, name, to):
    """All 5 wrong orders of r, z, n map to different framework arrays, every one of them."""
    p = params(3, 4)
    permuted = {k: v[list(perm)] for k, v in p.items()}
    a, b = to(p), to(permuted)
    assert all(not np.array_equal(a[k], b[k]) for k in a), name


# --- the oracles ---------------------------------------------------------------------------


def _mark(name):
    return getattr(pytest.mark, FRAMEWORKS[ORACLES[name].framework].marker)


def _param(case):
    return pytest.param(case, id=case.id, marks=_mark(case.oracle))


def _oracle(case, request):
    from conftest import require_framework

    oracle = ORACLES[case.oracle]
    require_framework(request.config, oracle.framework)
    return oracle


# D=4, H=5 as the course style's cases below: a Keras oracle traces one graph per D, H, dtype.
ONE_CASE_EACH = [Case(o, 2, 3, 4, 5, dtype, 0) for f in FAMILIES.values() for o in battery_oracles(f.name)
                 for dtype in ("f32", "f64") if ORACLES[o].offers((), dtype)]


def test_torch_offers_the_reset_after_gru_only():
    assert {ORACLES[o].framework for o in battery_oracles("gru")} == {"keras", "torch", "onnxruntime", "torch-onnx",
                                                                      "keras-onnx", "jax", "flax", "openvino", "litert", "paddle", "mlx",
                                                                      "executorch"}
    assert {ORACLES[o].framework for o in battery_oracles("gru-reset-before")} == {"keras", "onnxruntime", "keras-onnx",
                                                                                   "jax", "openvino", "litert"}
    assert all("PyTorch has no reset-before GRU" in ORACLES[o].description
               for o in battery_oracles("gru") if ORACLES[o].framework == "torch")
    assert all("Paddle has no reset-before GRU" in ORACLES[o].description
               for o in battery_oracles("gru") if ORACLES[o].framework == "paddle")


@pytest.mark.parametrize("case", [_param(c) for c in ONE_CASE_EACH])
def test_oracle_keeps_the_input_dtype_and_the_merged_bias_gradient(case, request):
    oracle = _oracle(case, request)
    family = GRU if oracle.family == "gru" else GRU_RESET_BEFORE
    out = oracle.run(case_inputs(case, family))
    assert {k: v.dtype for k, v in out.items()} == {k: case.np_dtype for k in out}
    if oracle.family == "gru-reset-before" and "dbx" in out:  # one Keras bias: both gradients are its gradient
        assert np.array_equal(out["dbx"], out["dbh"])


# --- the course style ----------------------------------------------------------------------

STYLE = {"after": course_gru.run, "before": course_gru.run_before}
STYLE_CASES = [(reset, c) for reset, f in FAMILIES.items() for c in family_grid("ci", f)
               if c.seed == 0 and c.regime in ("std", "longmem") and c.T == 24 and not c.options]


@pytest.mark.parametrize("reset,case", [pytest.param(r, c, id=c.id, marks=_mark(c.oracle)) for r, c in STYLE_CASES])
def test_course_style_matches_oracle(reset, case, request):
    oracle = _oracle(case, request)
    o = oc.decide(case, oracle, run_case(case, oracle, STYLE[reset], f"course_gru ({reset})"))
    assert o.status in (oc.MATCH, oc.NOT_JUDGED), o.reason  # (on a known deviation's quantities the oracle does not judge)


@pytest.mark.parametrize("reset", ["after", "before"])
@pytest.mark.parametrize("dtype", ["f32", "f64"])
def test_course_style_matches_the_reference_in_its_dtype(reset, dtype):
    family = FAMILIES[reset]
    case = Case("reference-lstm", 3, 9, 4, 5, dtype, 2, "sat")
    inputs, truth, yard = view(case, family)
    got = STYLE[reset](**inputs)
    assert {k: v.dtype for k, v in got.items()} == {k: case.np_dtype for k in got}
    report = compare(case.id, got, family.run(**inputs), truth, yard, tuple(family.contract), case.np_dtype,
                     case.B, case.T, family, "course_gru", "reference")
    assert report.ok, report.message()


def test_course_style_in_the_other_convention_is_diagnosed():
    report, text = diagnose(course_gru.run_before, CASE, GRU, "examples.course_gru:run_before")
    assert not report.ok
    assert ("h matches the reset-before convention (n_t = tanh(x W[n] + bx[n] + (r_t * h_{t-1}) U[n] + bh[n])), "
            "with it every quantity matches; if that is the model you mean, check it with --family "
            "gru-reset-before") in text
    _, text = diagnose(course_gru.run, CASE, GRU_RESET_BEFORE, "examples.course_gru:run")
    assert "check it with --family gru" in text


def test_course_style_without_r_in_the_backward_is_located():
    """A classic slip in the hand-written reset-after backward: dhn = dan (r forgotten)."""
    variant = mutants.edited(course_gru, "dhn = dan * r", "dhn = dan", "course-gru-variant")
    report = run_case(CASE, ORACLES["reference-gru"], variant.run, "course_gru variant")
    assert not report.ok
    assert report.failures[0].quantity == "dh" and report.failures[0].step == CASE.T - 2, report.message()


# --- the catalogues: where each mutant is first seen, and its diagnosis -------------------------


def _resolve(first, T):
    return re.sub(r"T-(\d+)", lambda m: str(T - int(m.group(1))), first)


def _case_for(mutant, base=CASE):
    return base._replace(T=25) if mutant.needs == "T>20" else base


MUTANTS = [pytest.param(f, m, id=f"{f.name}-{m.name}") for f in FAMILIES.values() for m in f.mutants]


def test_catalogues_are_data_and_complete():
    for f in FAMILIES.values():
        names = [m.name for m in f.mutants]
        assert len(names) == len(set(names)) and len(names) >= 25, f.name
        orders = {m.name for m in f.mutants if m.family == "gate-order"}
        assert orders == {"gate-order-" + "".join(p) for p in itertools.permutations(gru.GATES) if p != gru.GATES}
        assert {"reset-convention-swapped", "reset-convention-swapped-in-forward",
                "reset-convention-swapped-in-backward", "mix-swapped", "no-r-in-n-backward"} <= set(names)
        assert all(m.first for m in f.mutants if m.name != "silent-float32"), f.name


@pytest.mark.parametrize("family,mutant", MUTANTS)
def test_mutant_is_located_against_the_reference(family, mutant):
    from gatecheck.engines import reference_oracle

    case = _case_for(mutant, CASE._replace(oracle=reference_oracle(family.name).name))
    report = run_case(case, reference_oracle(family.name), mutants.candidate(family, mutant), mutant.name)
    first = report.failures[0]
    expected = _resolve(mutant.first, case.T) if mutant.first else "h t=0"  # silent float32: from the start
    assert f"{first.quantity} {first.label}".startswith(expected.strip()), report.message()


# The hypotheses that name a mutant's shape in their own words (beyond "matches the known bug").
TARGETED = {
    "reset-convention-swapped": "with it every quantity matches; if that is the model you mean, check it with --family",
    "reset-convention-swapped-in-forward": "with it the forward pass matches but the gradients do not",
    "reset-convention-swapped-in-backward": "the two conventions are mixed",
    "mix-swapped": "the update gate mixes the other way round, h_t = z_t * n_t + (1 - z_t) * h_{t-1} (the contract: "
                   "(1 - z_t) * n_t + z_t * h_{t-1}), consistently",
    "mix-swapped-in-forward": "the update gate mixes the other way round, h_t = z_t * n_t + (1 - z_t) * h_{t-1} "
                              "(the contract: (1 - z_t) * n_t + z_t * h_{t-1}), in the forward pass only",
    "no-recurrent-dh": "the recurrent term dz_{t+1} @ U^T of dh looks missing",
    "dW-last-step": "dW matches only the last step's contribution",
    "dbx-batch-mean": "dbx equals the reference divided by B=3: averaged over the batch instead of summed",
    "dh0-dropped": "dh0 is zero: the gradient flowing out of step 0 is dropped",
    "bh-n-outside-r": "bh[n] looks added outside r_t",
}


@pytest.mark.parametrize("family,mutant", MUTANTS)
def test_every_mutant_gets_its_own_diagnosis(family, mutant):
    """Each mutant is named, by its gate order or as the known bug it is, and by nothing else;
    the targeted hypotheses also say it in their own words."""
    case = _case_for(mutant)
    report, text = diagnose(mutants.candidate(family, mutant), case, family, mutant.name, localise=False)
    assert not report.ok, text
    findings = [line[4:] for line in text.splitlines() if line.startswith("  - ")]
    known = [f.split("'")[1] for f in findings if f.startswith("matches the known bug")]
    if mutant.family == "gate-order":
        order = ",".join(mutant.name.split("-")[-1])
        assert f"your gates look ordered {order} (canonical: r,z,n); with that layout every quantity matches" \
            in findings, text
        assert known == [], text
    else:
        assert known == [mutant.name], text
    if mutant.name in TARGETED:
        assert any(TARGETED[mutant.name] in f for f in findings), text


def test_an_unknown_bug_is_localised_to_its_gate_and_step():
    """No known shape explains a recurrent-bias gradient of n off by 1 %: the localisation
    (the family's isolating cases and steps) puts it inside a step, in dbh of gate n."""
    variant = mutants.edited(course_gru, 'grads["dbhn"] = dhn.sum(axis=1, keepdims=True)',
                             'grads["dbhn"] = dhn.sum(axis=1, keepdims=True) * 1.01', "course-gru-dbhn")
    _, text = diagnose(variant.run, CASE, GRU, "course_gru variant")
    assert "no known bug shape explains it" in text
    assert "B=1 T=1: forward right; wrong: dbh of gate n only (1.01 times the reference's value)" in text
    assert "the error is inside a step, not in what is carried between steps" in text


def _edited(**changes):
    def run(**kw):
        out = gru.run(**kw)
        return dict(out, **{k: f(out, kw) for k, f in changes.items()})
    return run


def _with_inputs(**changes):
    def run(**kw):
        return gru.run(**dict(kw, **{k: f(kw) for k, f in changes.items()}))
    return run


@pytest.mark.parametrize("candidate,expected", [
    (_edited(dW=lambda o, kw: o["dW"] / 7),
     "dW equals the reference divided by T=7: averaged over time instead of summed"),
    (_edited(dU=lambda o, kw: o["dU"] / 21, dbh=lambda o, kw: o["dbh"] / 21),
     "dU and dbh equal the reference divided by B*T=21: averaged over batch and time instead of summed"),
    (_with_inputs(h0=lambda kw: np.zeros_like(kw["h0"])),
     "h0 looks ignored: every quantity compared matches the reference run with h0 = 0 (the initial hidden state "
     "is not used)"),
    (_edited(dh=lambda o, kw: o["dh"] - kw["gh"]), "dh_t is the total dL/dh_t less the upstream gh_t"),
], ids=["dW-over-T", "dU-dbh-over-BT", "h0-ignored", "dh-without-upstream"])
def test_constructed_bugs_are_named(candidate, expected):
    _, text = diagnose(candidate, CASE, GRU, "constructed")
    assert expected in text, text
