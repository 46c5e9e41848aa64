"""Activations as data (gatecheck.reference.activations) and the first option built on them, the RNN's relu:
each derivative proven by finite differences, the option's contract, and its mutants killed and diverging where
they say (the table against the ONNX spec's own list: tests/engines/onnx/test_onnx.py)."""

import numpy as np
import pytest

from gatecheck.core import mutants as mut
from gatecheck.core.cases import Case
from gatecheck.engines import ORACLES, reference_oracle
from gatecheck.families import FAMILIES
from gatecheck.model import options as opts
from gatecheck.reference import activations as act
from gatecheck.reference import rnn
from gatecheck.run.battery import run_case
from gatecheck.run.grid import grid
from gatecheck.tools import killmatrix

# Parameters for the activations whose alpha and beta the spec leaves open, and explicit ones for the others.
EXPLICIT = {"affine": (0.7, -0.3), "scaled_tanh": (1.7, 0.6), "leaky_relu": (0.2, None), "thresholded_relu": (0.5, None),
            "hard_sigmoid": (0.3, 0.4), "elu": (0.8, None)}


def chosen():
    found = [act.choose(name) for name in act.ACTIVATIONS if name not in ("affine", "scaled_tanh")]
    return found + [act.choose(name, *params) for name, params in EXPLICIT.items()]


@pytest.mark.parametrize("a", chosen(), ids=lambda a: f"{a.name}-{a.alpha}-{a.beta}")
def test_every_derivative_matches_finite_differences(a):
    """f'(z) of the table against central differences of f, in float64, away from the activation's kinks."""
    z = np.random.default_rng(0).uniform(-4, 4, 4000)
    for kink in a.activation.kinks(a.alpha, a.beta):
        z = z[np.abs(z - kink) > 1e-3]
    step = 1e-6
    numeric = (a(z + step) - a(z - step)) / (2 * step)
    assert np.allclose(a.derivative(z, a(z)), numeric, rtol=1e-6, atol=1e-8), a.name
    assert a(z.astype(np.float32)).dtype == np.float32  # the dtype of the inputs is kept


def test_a_wrong_derivative_is_seen():
    """The check above fails on a derivative that is wrong (relu's slope taken as 1 everywhere)."""
    z = np.random.default_rng(1).uniform(-4, 4, 100)
    relu = act.choose("relu")
    numeric = (relu(z + 1e-6) - relu(z - 1e-6)) / 2e-6
    assert not np.allclose(np.ones_like(z), numeric, rtol=1e-6, atol=1e-8)


def test_choose_names_what_is_wrong():
    with pytest.raises(ValueError, match=r"activation: expected one of \['tanh', .*got 'gelu'"):
        act.choose("gelu")
    with pytest.raises(ValueError, match="activation 'affine': the ONNX spec gives no default for alpha and beta"):
        act.choose("affine")
    with pytest.raises(ValueError, match="no default for beta"):
        act.choose("scaled_tanh", alpha=1.0)


RNN = FAMILIES["rnn"]
RELU = ("relu",)


def test_relu_is_the_rnn_with_relu_and_keeps_the_contract():
    """Under relu the candidate gets the family's inputs and returns its contract, called with
    activation='relu'; the model is h_t = relu(z_t), not the tanh one."""
    f = opts.under(RNN, RELU)
    assert (f.inputs, f.contract, f.keywords) == (RNN.inputs, RNN.contract, {"activation": "relu"})
    inputs = RNN.make_inputs(Case("reference-rnn", 2, 5, 3, 4, "f64", 0, "std", RELU))
    out, tanh = f.run(**inputs), RNN.run(**inputs)
    x, h0, W, U, b = (inputs[k] for k in ("x", "h0", "W", "U", "b"))
    h = h0
    for t in range(x.shape[1]):  # the relu RNN written out, step by step
        h = np.maximum(x[:, t] @ W + h @ U + b, 0)
        assert np.allclose(out["h"][:, t], h, rtol=1e-13, atol=1e-13)
    assert (out["h"] == 0).any() and not np.allclose(out["h"], tanh["h"])
    with pytest.raises(ValueError, match="activation: expected one of"):
        rnn.run(**inputs, activation="gelu")


def test_relu_cases_go_to_the_oracles_that_offer_relu():
    cases = [c for c in grid("ci", RNN) if "relu" in c.options]
    assert {c.oracle for c in cases} == {n for n, o in ORACLES.items() if o.family == "rnn" and o.battery
                                          and any(o.offers(c.options) for c in cases)}
    assert not any(c.regime == "sat" for c in cases)  # (the record says why)
    assert {c.options for c in cases} == {RELU, ("relu", "bi", "L2"), ("relu", "len")}
    assert ORACLES["onnx-reference-rnn"].declined(RELU).startswith("onnx.reference's RNN evaluator knows")


def test_relu_mutants_are_killed_and_the_reference_is_not(request):
    from conftest import require_framework

    oracle = "torch-rnn-cell"
    require_framework(request.config, ORACLES[oracle].framework)
    mutants = [(o, m) for o, m in killmatrix.catalogue(RNN) if o == RELU]
    assert len(mutants) >= 4
    cases = [c for c in grid("ci", RNN, oracles=[oracle]) if c.options == RELU]
    assert cases
    result = killmatrix.matrix(cases, ORACLES, mutants, RNN)
    assert result.pop(killmatrix.REFERENCE_ROW) == []
    assert all(ids for ids in result.values()), result


def test_relu_mutants_diverge_where_they_say():
    """Against the reference (no framework needed): each mutant's first divergence is its ``first``."""
    f = opts.under(RNN, RELU)
    oracle = reference_oracle("rnn")
    case = Case(oracle.name, 3, 7, 4, 5, "f64", 0, "std", RELU)
    for m in f.mutants:
        first = run_case(case, oracle, mut.candidate(f, m), m.name).failures[0].describe()
        assert first.startswith(m.first.replace("T-1", str(case.T - 1))), (m.name, first)


@pytest.mark.parametrize("oracle", ["keras-rnn-layer", "torch-rnn-layer"])
def test_relu_layers_mutants_are_killed(oracle, request):
    """relu in a bidirectional stack and under lengths: the layers' mutants and relu's own, carried into
    the layers (its Variant's in_layers), are each killed by every case of their set; the reference is not."""
    from conftest import require_framework

    require_framework(request.config, ORACLES[oracle].framework)
    cases = [c for c in grid("ci", RNN, oracles=[oracle]) if "relu" in c.options and len(c.options) > 1]
    in_f64 = {c.options for c in cases if c.dtype == "f64"}
    cases = [c for c in cases if c.dtype == "f64" or c.options not in in_f64]
    sets = {c.options for c in cases}
    assert sets == {("relu", "bi", "L2"), ("relu", "len")}
    mutants = [(o, m) for o, m in killmatrix.catalogue(RNN) if o in sets]
    carried = {m.name for o, m in mutants if m.name.startswith("relu-")}
    assert len(carried) >= 4 and len(mutants) >= 5 * len(sets)
    result = killmatrix.matrix(cases, ORACLES, mutants, RNN)
    assert result.pop(killmatrix.REFERENCE_ROW) == []
    per_set = {s: sum(1 for c in cases if c.options == s) for s in sets}
    for o, m in mutants:
        assert len(result[killmatrix.row(o, m)]) == per_set[o], killmatrix.row(o, m)
