"""The activation options of the LSTM and GRU families (gatecheck.model.options: relu, hardsig): each option's
model written out step by step, the table path of the references equal to their canonical arithmetic, the
options' mutants killed and diverging where they say, and what the engines are given (the activations as data
and the RNN's relu: tests/model/test_activations.py)."""


import numpy as np
import pytest

from gatecheck.core import mutants as mut
from gatecheck.core.cases import Case
from gatecheck.engines import ORACLES, reference_oracle
from gatecheck.families import FAMILIES
from gatecheck.model import options as opts
from gatecheck.reference import activations as act
from gatecheck.reference import gru, lstm
from gatecheck.run.battery import explained, run_case
from gatecheck.run.grid import grid
from gatecheck.tools import killmatrix
from gatecheck.truth import deviations

GATED = ("lstm", "gru", "gru-reset-before")
OPTIONS = ("relu", "hardsig")


def _hard(z):
    return np.clip(z / 6 + 0.5, 0, 1)


def _sigmoid(z):
    return 1 / (1 + np.exp(-z))


# (gate function, activation function) of each option, written out here rather than read from the table.
WRITTEN = {"relu": (_sigmoid, lambda z: np.maximum(z, 0)), "hardsig": (_hard, np.tanh)}


def _lstm_by_hand(inputs, gate, act_fn):
    x, h, c, W, U, b = (inputs[k] for k in ("x", "h0", "c0", "W", "U", "b"))
    hs = []
    for t in range(x.shape[1]):
        z = [x[:, t] @ W[k] + h @ U[k] + b[k] for k in range(4)]
        i, f, g, o = gate(z[0]), gate(z[1]), act_fn(z[2]), gate(z[3])
        c = f * c + i * g
        h = o * act_fn(c)
        hs.append(h)
    return np.stack(hs, 1)


def _gru_by_hand(inputs, gate, act_fn, reset):
    x, h, W, U, bx, bh = (inputs[k] for k in ("x", "h0", "W", "U", "bx", "bh"))
    hs = []
    for t in range(x.shape[1]):
        r = gate(x[:, t] @ W[0] + bx[0] + h @ U[0] + bh[0])
        z = gate(x[:, t] @ W[1] + bx[1] + h @ U[1] + bh[1])
        inner = r * (h @ U[2] + bh[2]) if reset == "after" else (r * h) @ U[2] + bh[2]
        n = act_fn(x[:, t] @ W[2] + bx[2] + inner)
        h = (1 - z) * n + z * h
        hs.append(h)
    return np.stack(hs, 1)


@pytest.mark.parametrize("family", GATED)
@pytest.mark.parametrize("option", OPTIONS)
def test_each_option_is_its_model_and_keeps_the_contract(family, option):
    """Under the option the candidate gets the family's inputs and returns its contract, called with the
    option's keyword; h is the model with the option's functions, step by step, not the default model."""
    f = FAMILIES[family]
    g = opts.under(f, (option,))
    expected = {"relu": {"activation": "relu"}, "hardsig": {"recurrent_activation": ("hard_sigmoid", 1 / 6, 0.5)}}
    assert (g.inputs, g.contract, g.keywords) == (f.inputs, f.contract, expected[option])
    inputs = f.make_inputs(Case("x", 2, 6, 3, 4, "f64", 0, "sat" if option == "hardsig" else "std", (option,)))
    out, default = g.run(**inputs), f.run(**inputs)
    by_hand = (_lstm_by_hand(inputs, *WRITTEN[option]) if family == "lstm"
               else _gru_by_hand(inputs, *WRITTEN[option], "after" if family == "gru" else "before"))
    assert np.allclose(out["h"], by_hand, rtol=1e-12, atol=1e-12)
    assert not np.allclose(out["h"], default["h"], rtol=1e-3, atol=1e-3)
    if option == "hardsig":  # the sat regime reaches the clip: gates exactly 0 and 1
        gates = out["gates"][:, :, [0, 1, 3] if family == "lstm" else [0, 1]]
        assert (gates == 0).any() and (gates == 1).any()


@pytest.mark.parametrize("family", ["lstm", "gru", "gru-reset-before"])
def test_the_table_path_at_the_defaults_is_the_canonical_arithmetic(family):
    """The references' other-activation path (each slope from the table at the recomputed pre-activation),
    forced with sigmoid and tanh, gives the canonical path's numbers: the branch the options take is the same
    model, not another one (the canonical path itself is kept bit for bit: see the commit)."""
    f = FAMILIES[family]
    inputs = f.make_inputs(Case("x", 3, 9, 4, 5, "f64", 1, "std"))
    forced = (act.choose("sigmoid"), act.choose("tanh"))
    if family == "lstm":
        forced += (act.choose("tanh"),)
        fwd = lstm.forward_tm(*(inputs[k] for k in ("x", "h0", "c0", "W", "U", "b")), acts=forced)
        table = lstm.backward(fwd, *(inputs[k] for k in ("x", "h0", "c0", "W", "U", "gh", "gc")), b=inputs["b"],
                              acts=forced)
        canonical = f.run(**inputs)
    else:
        reset = "after" if family == "gru" else "before"
        fwd = gru.forward_tm(*(inputs[k] for k in ("x", "h0", "W", "U", "bx", "bh")), reset, acts=forced)
        table = gru.backward(fwd, *(inputs[k] for k in ("x", "h0", "W", "U", "gh")), reset, inputs["bx"],
                             inputs["bh"], acts=forced)
        canonical = f.run(**inputs)
    assert np.allclose(lstm.batch_major(fwd["h"]), canonical["h"], rtol=1e-14, atol=1e-14)
    for k in f.contract:
        if k in table:
            assert np.allclose(table[k], canonical[k], rtol=1e-12, atol=1e-13), k


def test_an_option_with_another_alpha_is_another_model():
    """hardsig states its alpha: the ONNX default's (0.2) is a different function, and the references tell."""
    f = FAMILIES["lstm"]
    inputs = f.make_inputs(Case("x", 2, 5, 3, 4, "f64", 0, "std"))
    ours = lstm.run(**inputs, recurrent_activation=("hard_sigmoid", 1 / 6, 0.5))
    onnx_default = lstm.run(**inputs, recurrent_activation="hard_sigmoid")
    assert not np.allclose(ours["h"], onnx_default["h"], rtol=1e-3, atol=1e-3)
    with pytest.raises(ValueError, match="a name or a \\(name, alpha, beta\\) tuple"):
        lstm.run(**inputs, recurrent_activation=("hard_sigmoid", 0.2))


@pytest.mark.parametrize("family", GATED)
@pytest.mark.parametrize("option", OPTIONS)
def test_the_mutants_diverge_where_they_say(family, option):
    """Against the reference (no framework needed): each mutant's first divergence is its ``first``."""
    f = opts.under(FAMILIES[family], (option,))
    oracle = reference_oracle(family)
    assert len(f.mutants) >= 3
    for regime in ("std", "sat"):
        case = Case(oracle.name, 3, 7, 4, 5, "f64", 0, regime, (option,))
        for m in f.mutants:
            report = run_case(case, oracle, mut.candidate(f, m), m.name)
            assert report.failures, (m.name, regime)
            first = report.failures[0].describe()
            assert first.startswith(m.first.replace("T-1", str(case.T - 1))), (m.name, regime, first)


_CELLS = {"lstm": "keras-lstm-cell", "gru": "keras-gru-cell", "gru-reset-before": "keras-gru-cell-before"}


@pytest.mark.parametrize("family", GATED)
@pytest.mark.parametrize("option", OPTIONS)
def test_the_mutants_are_killed_on_the_ci_cases_and_the_reference_is_not(family, option, request):
    from conftest import require_framework

    oracle = _CELLS[family]
    require_framework(request.config, ORACLES[oracle].framework)
    why = ORACLES[oracle].declined((option,))
    if why:  # Keras 2's hard_sigmoid is another function (the next test): no case of the option to kill on
        pytest.skip(f"{oracle} declines {option}: {why}")
    f = FAMILIES[family]
    mutants = [(o, m) for o, m in killmatrix.catalogue(f) if o == (option,)]
    cases = [c for c in grid("ci", f, oracles=[oracle]) if c.options == (option,)]
    assert len(mutants) >= 3 and len(cases) >= 4
    result = killmatrix.matrix(cases, ORACLES, mutants, f)
    assert result.pop(killmatrix.REFERENCE_ROW) == []
    assert [name for name, ids in result.items() if not ids] == []


@pytest.mark.parametrize("family", GATED)
def test_the_options_grids_reach_the_oracles_that_offer_them(family):
    f = FAMILIES[family]
    for option in OPTIONS:
        cases = [c for c in grid("ci", f) if option in c.options]
        assert {c.options for c in cases} == {(option,), (option, "bi", "L2"), (option, "len")}
        assert {c.oracle for c in cases if ORACLES[c.oracle].battery} == {  # (not the reference's backstop)
            n for n, o in ORACLES.items() if o.family == family and o.battery
                                              and o.offers((option,)) and o.framework != "numpy"} - {
            n for n, o in ORACLES.items() if o.family == family and not o.offers((option,), "f32")}
        if family == "lstm" and option == "relu":  # (the record says why: relu's kink and c_t's growth)
            assert {c.regime for c in cases} == {"std"}
    for name in ("torch-lstm-cell", "torch-lstm-layer", "torch-gru-cell", "torch-gru-layer"):
        assert not set(OPTIONS) & ORACLES[name].options  # torch's LSTM and GRU have no activation argument


def test_keras_declines_hardsig_where_its_hard_sigmoid_is_another(monkeypatch, request):
    """Keras 3's hard_sigmoid is the option's; Keras 2's (0.2x + 0.5) is not, and is declined with the reason
    (what each version's function is: gatecheck.engines.keras.versions)."""
    from conftest import require_framework
    from gatecheck.engines.keras import common as keras_common

    require_framework(request.config, "keras")
    monkeypatch.setattr(keras_common, "_keras_version", lambda: "3.15.1")
    assert keras_common.declines_activation(("hardsig",)) is None
    assert keras_common.activation_kwargs(("hardsig",)) == dict(activation="tanh", recurrent_activation="hard_sigmoid")
    monkeypatch.setattr(keras_common, "_keras_version", lambda: "2.15.0")
    why = keras_common.declines_activation(("hardsig",))
    assert why.startswith("Keras 2.15.0's hard_sigmoid (keras/src/backend.py: hard_sigmoid = clip(0.2 x + 0.5")
    assert keras_common.declines_activation(("relu",)) is None


def test_the_onnx_nodes_state_the_options_activations(request):
    from gatecheck.engines.onnx import oracles as onnx_oracles

    assert onnx_oracles.LSTM.under(("relu",)).activations == ("Sigmoid", "Relu", "Relu")
    node = onnx_oracles.GRU.under(("hardsig",))
    assert node.activations == ("HardSigmoid", "Tanh")
    assert dict(node.attributes) == {"linear_before_reset": 1, "activation_alpha": (1 / 6,), "activation_beta": (0.5,)}
    pytest.importorskip("onnx")
    model = onnx_oracles.build_model(node, 3, "float32", 0, True, "bidirectional", "concat", 1, False)
    attrs = {a.name: a for a in model.graph.node[0].attribute}
    assert attrs["activations"].strings == [b"HardSigmoid", b"Tanh"] * 2
    assert np.allclose(attrs["activation_alpha"].floats, [1 / 6] * 2) and list(attrs["activation_beta"].floats) == [0.5] * 2


@pytest.mark.parametrize("name", ["onnx-reference-lstm", "onnx-reference-gru", "onnx-reference-gru-before"])
def test_onnx_reference_computes_the_default_model_under_an_activation(name, request):
    """onnx.reference's LSTM and GRU read no activations: under relu and hardsig each case's numbers are the
    reference's without the option (the entry's model, Deviation.computes), and not the option's."""
    from conftest import require_framework

    require_framework(request.config, ORACLES[name].framework)
    oracle = ORACLES[name]
    entry = next(d for d in deviations.DEVIATIONS if d.oracle == name)
    for option in OPTIONS:
        case = Case(name, 3, 7, 4, 5, "f64", 0, "std", (option,))
        assert deviations.for_case(case) is entry
        assert not run_case(case, oracle).ok
        assert explained(case, oracle, entry).ok
        assert not explained(case, oracle, entry._replace(computes=None)).ok
