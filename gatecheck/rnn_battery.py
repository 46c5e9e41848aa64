"""The battery for the vanilla RNN (``reference.rnn``): a candidate and an oracle on the
same inputs, compared under the tolerance policy of ``gatecheck.battery`` with the
quantities of ``gatecheck.compare.RNN_QUANTITIES``.

Cases are ``gatecheck.cases.Case`` tuples named by the RNN oracles
(``torch-rnn-cell-B3-T7-D4-H5-f64-s0``); inputs depend on the shape, seed and regime
only, drawn in float64 and rounded to the case's dtype. The truth is the reference in
float64 on those exact values; the yardstick is the largest of three float32 rounding
errors of the reference (inputs nudged by 0, +1, -1 ulp), quantity by quantity.
"""

import functools

import numpy as np

from gatecheck.battery import judge, reference_view
from gatecheck.cases import Case, case_rng, scales
from gatecheck.compare import RNN_QUANTITIES
from reference import rnn
from reference.rnn import CONTRACT_KEYS

RNN_REGIMES = {
    "std": "random weights, inputs and upstream gradients; h0 non-zero",
    "zero": "as std, but h0 = 0",
    "sat": "weights x4 and inputs x3: most units saturated (|h| near 1)",
}

RNN_ORACLE_NAMES = ("keras-rnn-cell", "keras-rnn-layer", "torch-rnn-cell", "torch-rnn-layer")

# (B, T, D, H): B=1, T=1, D=1, H=1, D != H, B >= 3 and T >= 40 all appear.
SHAPES = [(1, 1, 1, 1), (1, 1, 3, 2), (2, 3, 4, 1), (3, 7, 4, 5), (2, 40, 3, 4)]


def make_inputs(case):
    """Float64 canonical RNN inputs for a case, before rounding to the case's dtype."""
    if case.regime not in RNN_REGIMES:
        raise ValueError(f"regime: expected one of {sorted(RNN_REGIMES)}, got {case.regime!r}")
    rng = case_rng(case, "rnn-")
    B, T, D, H = case.B, case.T, case.D, case.H
    w_scale, x_scale = scales(case.regime)
    inputs = dict(
        x=x_scale * rng.standard_normal((B, T, D)),
        h0=0.5 * rng.standard_normal((B, H)),
        W=w_scale * rng.standard_normal((D, H)) / np.sqrt(D),
        U=w_scale * rng.standard_normal((H, H)) / np.sqrt(H),
        b=0.5 * rng.standard_normal(H),
        gh=rng.standard_normal((B, T, H)),
    )
    if case.regime == "zero":
        inputs["h0"] = np.zeros_like(inputs["h0"])
    return inputs


def grid(oracles=RNN_ORACLE_NAMES, dtypes=("f32", "f64"), seed=0):
    """The small deterministic grid: every shape in every regime."""
    cases = []
    for oracle in oracles:
        for dtype in dtypes:
            for shape in SHAPES:
                for regime in RNN_REGIMES:
                    cases.append(Case(oracle, *shape, dtype, seed, regime))
    return cases


@functools.lru_cache(maxsize=64)
def _reference_view(B, T, D, H, seed, regime, dtype_name):
    """(inputs in the case's dtype, truth, yardstick), shared by every oracle of the case."""
    inputs64 = make_inputs(Case("-", B, T, D, H, "f64", seed, regime))
    return reference_view(inputs64, dtype_name, rnn.run, RNN_QUANTITIES)


def _key(case):
    return (case.B, case.T, case.D, case.H, case.seed, case.regime, case.np_dtype.name)


def case_inputs(case):
    return {k: v.copy() for k, v in _reference_view(*_key(case))[0].items()}


# --- the candidate contract ------------------------------------------------------------


def expected_shapes(inputs):
    B, T, D = inputs["x"].shape
    H = inputs["h0"].shape[1]
    return dict(h=(B, T, H), dh=(B, T, H), dW=(D, H), dU=(H, H), db=(H,), dx=(B, T, D), dh0=(B, H))


def run_case(case, oracle, candidate=rnn.run, candidate_name="reference"):
    """Return the comparison ``Report`` of an RNN candidate vs an RNN oracle on ``case``.

    Raises ``CandidateError`` when the candidate breaks the contract.
    """
    view = _reference_view(*_key(case))
    expected = oracle.run({k: v.copy() for k, v in view[0].items()})
    return judge(case, oracle, view, expected, candidate, candidate_name, RNN_QUANTITIES, CONTRACT_KEYS,
                 expected_shapes)
