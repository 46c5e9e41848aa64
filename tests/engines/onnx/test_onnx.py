"""The ONNX oracles (gatecheck.engines.onnx.oracles): the remaps to the ONNX nodes' layout
(gatecheck.engines.onnx.layout: round trips, gate order, biases, layouts), a wrong remap of each family
killed by a ci case (first divergence in h), what the engines refuse (ONNX Runtime's CPU kernels: layout=1
and float64), how the engine reports oracles that observe no gradient, and the grid they get. The
reference against these oracles is part of the battery (tests/battery/test_battery.py -k "ort- or onnx-reference")."""

import dataclasses
import functools

import numpy as np
import pytest

from gatecheck.core.cases import Case
from gatecheck.engines import ORACLES
from gatecheck.engines.onnx import layout as onnx_layout
from gatecheck.engines.onnx import oracles as onnx_oracles
from gatecheck.families import FAMILIES
from gatecheck.model import options as opts
from gatecheck.reference import gru, lstm
from gatecheck.run.battery import run_case
from gatecheck.run.grid import grid
from gatecheck.tools import check as chk
from gatecheck.truth.views import case_inputs

pytestmark = pytest.mark.onnxruntime  # the ONNX engines' tests (tox -e onnx selects them by this marker)

NODES = {"lstm": onnx_oracles.LSTM, "rnn": onnx_oracles.RNN, "gru": onnx_oracles.GRU,
         "gru-reset-before": onnx_oracles.GRU_BEFORE}
NAMES = {"lstm": "lstm", "rnn": "rnn", "gru": "gru", "gru-reset-before": "gru-before"}
ENGINES = {"onnxruntime": "ort", "onnx-reference": "onnx-reference"}
# Every oracle of this module: engine x family.
ALL = [f"{prefix}-{NAMES[f]}" for prefix in ENGINES.values() for f in NAMES]


def _require(request):
    from conftest import require_framework

    return require_framework(request.config, "onnxruntime")


def _params(kind, H=3, D=2, seed=0, bias=True):
    """One direction's canonical weights with every gate (and every entry) different."""
    rng = np.random.default_rng(seed)
    G = len(onnx_layout.GATES[kind])
    shape = (lambda *s: s) if kind != "rnn" else (lambda *s: s[1:])
    out = {"W": rng.standard_normal(shape(G, D, H)), "U": rng.standard_normal(shape(G, H, H))}
    if bias:
        out.update({b: rng.standard_normal(shape(G, H)) for b in onnx_layout.BIASES[kind]})
    return out


# --- the remaps ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("kind", sorted(onnx_layout.GATES))
def test_weights_round_trip(kind, bias):
    p = _params(kind, bias=bias)
    w = onnx_layout.to_onnx(kind, p)
    G, H, D = len(onnx_layout.GATES[kind]), 3, 2
    assert w["W"].shape == (G * H, D) and w["R"].shape == (G * H, H)
    assert ("B" in w) == bias and (not bias or w["B"].shape == (2 * G * H,))
    back = onnx_layout.from_onnx(kind, w)
    assert back.keys() == p.keys()
    for k in p:  # exact: the split b / 2 + b / 2 is b in binary floating point
        assert np.array_equal(back[k], p[k]), (kind, k)
    two = onnx_layout.stack_directions([w, onnx_layout.to_onnx(kind, _params(kind, seed=1, bias=bias))])
    assert all(v.shape[0] == 2 for v in two.values())
    assert all(np.array_equal(a, w[k]) for k, a in onnx_layout.split_directions(two)[0].items())


@pytest.mark.parametrize("layout", onnx_layout.LAYOUTS)
def test_sequences_and_states_round_trip_in_both_layouts(layout):
    rng = np.random.default_rng(2)
    B, T, D, H = 3, 5, 2, 4  # all different: a swapped axis changes the shape
    x = rng.standard_normal((B, T, D))
    X = onnx_layout.sequence_to_onnx(x, layout)
    assert X.shape == ((T, B, D) if layout == 0 else (B, T, D))
    assert np.array_equal(onnx_layout.sequence_from_onnx(X, layout), x)
    states = [rng.standard_normal((B, H)) for _ in range(2)]
    S = onnx_layout.states_to_onnx(states, layout)
    assert S.shape == ((2, B, H) if layout == 0 else (B, 2, H))
    assert all(np.array_equal(a, b) for a, b in zip(onnx_layout.states_from_onnx(S, layout), states, strict=True))
    seqs = [rng.standard_normal((B, T, H)) for _ in range(2)]
    Y = onnx_layout.outputs_to_onnx(seqs, layout)
    assert Y.shape == ((T, 2, B, H) if layout == 0 else (B, T, 2, H))
    assert all(np.array_equal(a, b) for a, b in zip(onnx_layout.outputs_from_onnx(Y, layout), seqs, strict=True))


def test_gate_blocks_are_in_onnx_order():
    """ONNX stacks LSTM gates i, o, f, c (c the cell candidate, canonical g) and GRU gates z, r, h (h the
    candidate, canonical n); each block is the canonical (D, H) kernel transposed."""
    onnx_names = {"lstm": ("i", "o", "f", "g"), "gru": ("z", "r", "n")}
    canonical = {"lstm": lstm.GATES, "gru": gru.GATES}
    for kind, names in onnx_names.items():
        p = _params(kind)
        w = onnx_layout.to_onnx(kind, p)
        H = 3
        for k, gate in enumerate(names):
            g = canonical[kind].index(gate)
            assert np.array_equal(w["W"][k * H:(k + 1) * H], p["W"][g].T), (kind, gate)
            assert np.array_equal(w["R"][k * H:(k + 1) * H], p["U"][g].T), (kind, gate)


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_permuted_gates_give_different_arrays(kind):
    p = _params(kind)
    for perm in ([1, 0] + list(range(2, len(onnx_layout.GATES[kind]))), list(range(len(onnx_layout.GATES[kind])))[::-1]):
        permuted = {k: v[perm] for k, v in p.items()}
        a, b = onnx_layout.to_onnx(kind, p), onnx_layout.to_onnx(kind, permuted)
        assert all(not np.array_equal(a[k], b[k]) for k in a), (kind, perm)


def test_bias_slots():
    """GRU: bx in Wb, bh in Rb; LSTM and RNN: b split in halves over both slots (Wb = Rb = b / 2)."""
    p = _params("gru")
    wb, rb = np.split(onnx_layout.to_onnx("gru", p)["B"], 2)
    assert np.array_equal(wb, np.concatenate([p["bx"][g] for g in onnx_layout.GATES["gru"]]))
    assert np.array_equal(rb, np.concatenate([p["bh"][g] for g in onnx_layout.GATES["gru"]]))
    for kind in ("lstm", "rnn"):
        p = _params(kind)
        b = p["b"] if kind == "lstm" else p["b"][None]
        wb, rb = np.split(onnx_layout.to_onnx(kind, p)["B"], 2)
        assert np.array_equal(wb, rb) and np.array_equal(wb, np.concatenate([b[g] / 2 for g in onnx_layout.GATES[kind]]))
    with pytest.raises(ValueError, match="come together"):
        onnx_layout.to_onnx("gru", {k: v for k, v in _params("gru").items() if k != "bh"})


# --- the oracles against the reference, and wrong remaps ------------------------------------------------------

def _case(name, options=()):
    oracle = ORACLES[name]
    dtype = "f64" if oracle.offers((), "f64") else "f32"
    return Case(name, 3, 7, 4, 5, dtype, 0, "std", options)


def _gates_in(order):
    """A remap that stacks the canonical gates in ``order`` (canonical gate indices) instead of ONNX's."""
    def remap(kind, params):
        out = _REAL_TO_ONNX(kind, params)
        real = onnx_layout.GATES[kind]

        def reorder(a):
            by_gate = dict(zip(real, np.split(a, len(real)), strict=True))
            return np.concatenate([by_gate[g] for g in order])

        out.update(W=reorder(out["W"]), R=reorder(out["R"]))
        if "B" in out:
            out["B"] = np.concatenate([reorder(half) for half in np.split(out["B"], 2)])
        return out
    return remap


_REAL_TO_ONNX = onnx_layout.to_onnx


def _untransposed_recurrent(kind, params):
    out = _REAL_TO_ONNX(kind, params)
    H = out["R"].shape[1]
    out["R"] = np.concatenate([block.T for block in np.split(out["R"], out["R"].shape[0] // H)])
    return out


def _bias_in_one_slot(kind, params):
    """The whole of b in Wb and b again in Rb (the split forgotten): the node adds b twice."""
    out = _REAL_TO_ONNX(kind, params)
    half = out["B"].size // 2
    out["B"] = np.concatenate([out["B"][:half] * 2, out["B"][:half] * 2])
    return out


# One remap mutant per family: LSTM gates written i, f, o, c (ONNX wants i, o, f, c); GRU r and z swapped
# (both conventions); the RNN's recurrent kernel not transposed (U is square: silent in shape); the LSTM's
# bias not split (added twice).
MUTANTS = {
    "lstm": ("gates i,f,o,c", _gates_in((0, 1, 3, 2))),
    "gru": ("gates r,z,h", _gates_in((0, 1, 2))),
    "gru-reset-before": ("gates r,z,h", _gates_in((0, 1, 2))),
    "rnn": ("R = U, not U^T", _untransposed_recurrent),
}


@pytest.mark.parametrize("engine", sorted(ENGINES))
@pytest.mark.parametrize("family", sorted(NAMES))
def test_a_wrong_remap_fails_first_on_h(family, engine, request, monkeypatch):
    _require(request)
    name = f"{ENGINES[engine]}-{NAMES[family]}"
    case = _case(name)
    assert run_case(case, ORACLES[name]).ok
    what, remap = MUTANTS[family]
    monkeypatch.setattr(onnx_layout, "to_onnx", remap)
    report = run_case(case, ORACLES[name])
    assert not report.ok, what
    first = report.failures[0]
    assert (first.quantity, first.step) == ("h", 0), (what, first.describe())


@pytest.mark.parametrize("engine", sorted(ENGINES))
def test_the_lstm_bias_must_be_split(engine, request, monkeypatch):
    _require(request)
    name = f"{ENGINES[engine]}-lstm"
    monkeypatch.setattr(onnx_layout, "to_onnx", _bias_in_one_slot)
    report = run_case(_case(name), ORACLES[name])
    assert not report.ok and (report.failures[0].quantity, report.failures[0].step) == ("h", 0)


@pytest.mark.parametrize("engine", sorted(ENGINES))
def test_the_reverse_direction_is_read_by_the_original_t(engine, request, monkeypatch):
    """Y of a reverse direction is indexed by the original t. Read as if in processing order (flipped), a
    bidirectional len case fails on that direction's outputs (out_r, the first at t=0) and on nothing of
    the forward one; without len, where Y_h is not compared, the check that Y_h is Y's final step refuses it."""
    _require(request)
    name = f"{ENGINES[engine]}-gru"
    real = onnx_layout.outputs_from_onnx

    def flipped(Y, layout):
        found = real(Y, layout)
        return found[:-1] + [np.ascontiguousarray(found[-1][:, ::-1])]

    monkeypatch.setattr(onnx_layout, "outputs_from_onnx", flipped)
    case = _case(name, ("len", "bi"))
    if case.oracle.startswith("ort-"):  # (the evaluator ignores sequence_lens: gatecheck/truth/deviations.py)
        report = run_case(case, ORACLES[name])
        failed = {r.quantity for r in report.failures}
        # (the first in that direction's own order: it computes t = T-1 first)
        last = max(r.step for r in report.failures if r.quantity == "out_r")
        assert not report.ok and (report.failures[0].quantity, report.failures[0].step) == ("out_r", last)
        assert failed == {"out_r"}, failed
    for options, direction in ((("rev",), 0), (("bi",), 1)):
        with pytest.raises(RuntimeError, match=f"Y_h0 of direction {direction} is not Y0's final step"):
            run_case(_case(name, options), ORACLES[name])


def test_sequence_lens_is_what_makes_onnxruntime_agree(request, monkeypatch):
    """With every row's length taken as T (the padding run through), the len case fails on hT and out."""
    _require(request)
    from gatecheck.engines import structured

    case = _case("ort-lstm", ("len", "bi"))
    assert run_case(case, ORACLES["ort-lstm"]).ok
    monkeypatch.setattr(structured, "right_padded_lengths", lambda mask: np.full(mask.shape[0], mask.shape[1]))
    report = run_case(case, ORACLES["ort-lstm"])
    assert not report.ok and {r.quantity for r in report.failures} >= {"out", "hT", "cT", "out_r", "hT_r"}


@pytest.mark.parametrize("engine", sorted(ENGINES))
def test_a_final_state_that_is_not_the_last_step_is_an_error(engine, request, monkeypatch):
    """Without len, Y_h is not compared; it must be Y's last step (t = 0 for the reverse direction)."""
    _require(request)
    real = onnx_oracles.session

    def shifted(*args):
        compute = real(*args)
        return lambda feeds: {k: v + (k == "Y_h0") for k, v in compute(feeds).items()}

    monkeypatch.setattr(onnx_oracles, "session", shifted)
    name = f"{ENGINES[engine]}-rnn"
    for options in ((), ("rev",), ("bi",)):
        with pytest.raises(RuntimeError, match="Y_h0 of direction 0 is not Y0's final step"):
            run_case(_case(name, options), ORACLES[name])


@pytest.mark.parametrize("family", sorted(NAMES))
def test_the_evaluator_agrees_in_layout_0_too(family, request):
    """The onnx-reference oracles run layout=1 (ONNX Runtime runs layout=0); the same graph in layout=0
    matches the reference in the evaluator too, options included."""
    _require(request)
    oracle = ORACLES[f"onnx-reference-{NAMES[family]}"]
    time_major = dataclasses.replace(oracle, runner=functools.partial(onnx_oracles.run, "onnx-reference",
                                                                      NODES[family], 0))
    for options in ((), ("rev",), ("bi", "L2")):
        assert run_case(_case(oracle.name, options), time_major).ok, options


# --- what ONNX Runtime refuses ---------------------------------------------------------------------------------

def _run_plain(node, dtype, layout):
    family = {"LSTM": "lstm", "GRU": "gru", "RNN": "rnn"}[node.op]
    inputs = {k: v.astype(dtype) for k, v in case_inputs(Case("-", 2, 3, 4, 5, "f64", 0), FAMILIES[family]).items()}
    return onnx_oracles.run("onnxruntime", node, layout, inputs)


@pytest.mark.parametrize("node", [onnx_oracles.LSTM, onnx_oracles.GRU, onnx_oracles.RNN], ids=lambda n: n.op)
def test_onnxruntime_still_refuses_layout_1_and_float64(node, request):
    """The registry builds ONNX Runtime's graphs in layout=0 and declines float64 because its CPU kernels
    refuse the rest; when a release runs them, this fails: add a layout=1 oracle, lift the decline."""
    _require(request)
    assert _run_plain(node, np.float32, 0)["h"].dtype == np.float32
    with pytest.raises(Exception, match=r"Batchwise recurrent operations \(layout == 1\) are not supported"):
        _run_plain(node, np.float32, 1)
    refusal = "Could not find an implementation for RNN" if node.op == "RNN" else f"{node.op} operator does not " \
        "support double"
    with pytest.raises(Exception, match=refusal):
        _run_plain(node, np.float64, 0)


def test_a_declined_dtype_is_refused_by_name():
    inputs = case_inputs(Case("-", 2, 3, 4, 5, "f64", 0), FAMILIES["lstm"])
    with pytest.raises(ValueError, match="does not run f64 under options \\[\\]: onnxruntime's CPU kernels"):
        ORACLES["ort-lstm"].run(inputs)


# --- the grid and the reports -------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ALL)
def test_the_ci_grid_gives_every_oracle_cases_of_each_option_it_offers(name):
    oracle = ORACLES[name]
    cases = [c for c in grid("ci", FAMILIES[oracle.family]) if c.oracle == name]
    dtypes = {d for d in ("f32", "f64") if oracle.offers((), d)}
    assert {c.dtype for c in cases} == dtypes
    for option in oracle.options:  # (an option it declines, as onnx-reference-rnn relu, has no case)
        assert {c.dtype for c in cases if option in c.options} == {d for d in dtypes if oracle.offers((option,), d)}, \
            option
    assert not [c for c in cases if {"mask", "maskz", "proj"} & set(c.options)]
    assert oracle.options == onnx_oracles.OFFERED | NODES[oracle.family].activation_options | NODES[oracle.family].node_options
    for option in ("mask", "maskz", "proj"):
        assert opts.OPTIONS[option].frameworks["onnxruntime"].startswith("none:"), option
    assert ORACLES[name].framework == "onnxruntime"


@pytest.mark.parametrize("name", ALL)
def test_each_engine_builds_its_layout(name, request, monkeypatch):
    """ONNX Runtime's oracles build layout=0 graphs, the evaluator's layout=1: between them both layouts
    of the graph and the remaps are on the grid."""
    _require(request)
    built = []
    real = onnx_oracles.build_model

    def recording(node, H, dtype_name, layout, *rest):
        built.append(layout)
        return real(node, H, dtype_name, layout, *rest)

    monkeypatch.setattr(onnx_oracles, "build_model", recording)
    onnx_oracles.session.cache_clear()
    try:
        assert run_case(_case(name), ORACLES[name]).ok
    finally:
        onnx_oracles.session.cache_clear()
    assert built == [0 if name.startswith("ort-") else 1]
    assert f"layout={built[0]}" in ORACLES[name].description


def test_an_oracle_that_observes_no_gradient_is_reported_as_such(request):
    """A forward-only oracle: its cases compare the forward quantities only; the verdict is FORWARD ONLY
    (never a plain pass), says that the oracles observe no gradient (the candidate declared nothing), and
    the report names what was not compared and the dtype it declines."""
    _require(request)
    family = FAMILIES["lstm"]
    cases = [c for c in grid("ci", family, oracles=["ort-lstm"]) if c.T <= 7][:4]
    records = chk.run_cases(family.run, "reference", family, cases)
    assert {r["status"] for r in records} == {"match"}
    assert all(set(r["compared"]) <= {"h", "cT"} for r in records)
    code, lines = chk.render(records, family, family.run, "reference", "ci")
    text = "\n".join(lines)
    assert code == chk.FORWARD_ONLY, text
    assert lines[0].endswith("no gradient was compared (the oracles run observe no gradient: ort-lstm)"), lines[0]
    for key in ("dW", "dx", "dh0", "dc"):
        assert f"not compared: {key} (no oracle here observes it)" in text, key
    assert "not run: ort-lstm in f64 (declined): onnxruntime's CPU kernels" in text
    # beside an oracle that runs both dtypes, its f64 column says so
    records += chk.run_cases(family.run, "reference", family, [c._replace(oracle="onnx-reference-lstm", dtype="f64") for c in cases])
    _, lines = chk.render(records, family, family.run, "reference", "ci")
    row = next(line for line in lines if line.strip().startswith("ort-lstm "))
    assert row.split()[1:] == ["4/4", "match", "declined"], row


def test_the_activation_table_holds_every_activation_of_the_spec(request):
    """The activations ONNX's RNN, GRU and LSTM list (their schemas' docs, read from the installed onnx) are
    gatecheck.reference.activations' table, by their ONNX names, with the defaults the spec gives."""
    import re

    from gatecheck.reference.activations import ACTIVATIONS

    onnx, _ = _require(request)
    for op in ("RNN", "GRU", "LSTM"):
        doc = onnx.defs.get_schema(op).doc
        listed = re.findall(r"^\* (\w+)\(x\)\s+- ", doc[doc.index("Activation functions"):], re.M)
        assert set(listed) == {a.onnx for a in ACTIVATIONS.values()}, (op, listed)
    assert (ACTIVATIONS["hard_sigmoid"].alpha, ACTIVATIONS["hard_sigmoid"].beta) == (0.2, 0.5)
    assert ACTIVATIONS["leaky_relu"].alpha == 0.01 and ACTIVATIONS["thresholded_relu"].alpha == 1.0


def test_onnx_reference_still_refuses_relu(request):
    """onnx-reference-rnn declines relu because onnx.reference's RNN evaluator raises on Relu: checked afresh,
    so that a release that learns Relu is noticed (then the decline goes)."""
    from onnx.reference import ReferenceEvaluator

    _require(request)
    model = onnx_oracles.build_model(onnx_oracles.RNN.under(("relu",)), 3, "float32", 1, True, "forward", None, 1,
                                     False)
    assert [a for a in model.graph.node[0].attribute if a.name == "activations"][0].strings == [b"Relu"]
    with pytest.raises(RuntimeError, match="Unknown activation function 'Relu'"):
        ReferenceEvaluator(model)
    assert "Unknown activation function" in ORACLES["onnx-reference-rnn"].declined(("relu",))
