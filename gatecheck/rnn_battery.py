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
import zlib

import numpy as np

from gatecheck.battery import reference_view
from gatecheck.candidate import CandidateError
from gatecheck.cases import Case
from gatecheck.compare import RNN_QUANTITIES, compare, contract_value
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
# sat only where H >= 4. With H <= 2 and T <= 3 the tolerance policy rejects correct
# frameworks in sat (up to 7x the allowance on dx and db, torch and keras alike, float32
# and float64, over seeds 0-5): h_t is saturated, so nudging the inputs by an ulp leaves
# h_t's rounding unchanged and the three yardstick samples agree, small by luck; and the
# cancellation in 1 - h_t^2 turns an ulp of h_t into an error far above the normwise floor,
# which is relative to the small result (a single-element db, say), not to its terms.
SAT_SHAPES = [(3, 7, 4, 5), (2, 40, 3, 4)]


def make_inputs(case):
    """Float64 canonical RNN inputs for a case, before rounding to the case's dtype."""
    if case.regime not in RNN_REGIMES:
        raise ValueError(f"regime: expected one of {sorted(RNN_REGIMES)}, got {case.regime!r}")
    key = f"rnn-{case.B}-{case.T}-{case.D}-{case.H}-{case.seed}-{case.regime}"
    rng = np.random.default_rng(zlib.crc32(key.encode()))
    B, T, D, H = case.B, case.T, case.D, case.H
    w_scale, x_scale = (4.0, 3.0) if case.regime == "sat" else (1.0, 1.0)
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
    """The small deterministic grid: every shape in std and zero, SAT_SHAPES also in sat."""
    cases = []
    for oracle in oracles:
        for dtype in dtypes:
            for shape in SHAPES:
                for regime in ("std", "zero") + (("sat",) if shape in SAT_SHAPES else ()):
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


def cannot_observe(candidate):
    """RNN contract keys a candidate declares it cannot expose ({key: reason}), via an
    attribute ``cannot_observe`` on the callable (as in ``gatecheck.candidate``)."""
    declared = getattr(candidate, "cannot_observe", {}) or {}
    if not isinstance(declared, dict) or set(declared) - set(CONTRACT_KEYS):
        raise CandidateError(
            f"cannot_observe: expected a dict keyed by RNN contract keys {list(CONTRACT_KEYS)}, got {declared!r}"
        )
    return declared


def call_rnn(candidate, inputs, name="candidate"):
    """Run an RNN candidate on canonical inputs and check its result against the contract
    of ``reference.rnn.run``; every breach is a ``CandidateError`` naming the key."""
    args = {k: v.copy() for k, v in inputs.items()}  # a candidate may not alter our inputs
    try:
        out = candidate(**args)
    except Exception as exc:
        raise CandidateError(f"{name} raised {type(exc).__name__}: {exc}") from exc
    if not hasattr(out, "keys") or not hasattr(out, "__getitem__"):
        raise CandidateError(f"{name} returned a {type(out).__name__}; expected a mapping with keys {list(CONTRACT_KEYS)}")
    excused = cannot_observe(candidate)
    missing = [k for k in CONTRACT_KEYS if k not in out and k not in excused]
    if missing:
        raise CandidateError(f"{name} returned no {missing}; the contract needs {list(CONTRACT_KEYS)}")
    dtype = inputs["x"].dtype
    checked = {}
    for key, shape in expected_shapes(inputs).items():
        if key in excused and key not in out:
            continue
        value = out[key]
        if not isinstance(value, np.ndarray):
            raise CandidateError(f"{name}: {key!r} is a {type(value).__name__}; expected a numpy.ndarray")
        if value.shape != shape:
            raise CandidateError(f"{name}: {key!r} has shape {value.shape}; expected {shape}")
        if value.dtype != dtype:
            raise CandidateError(f"{name}: {key!r} has dtype {value.dtype}; expected {dtype} (the inputs' dtype)")
        if not np.all(np.isfinite(value)):
            bad = tuple(int(i) for i in np.argwhere(~np.isfinite(value))[0])
            raise CandidateError(f"{name}: {key!r} holds {value[bad]} at {bad}; expected finite values")
        checked[key] = value
    return checked


def comparable(observed, candidate):
    """The oracle's quantities less those the candidate declares it cannot observe."""
    excused = cannot_observe(candidate)
    return tuple(q for q in observed if RNN_QUANTITIES[q].source not in excused)


def run_case(case, oracle, candidate=rnn.run, candidate_name="reference"):
    """Return the comparison ``Report`` of an RNN candidate vs an RNN oracle on ``case``.

    Raises ``CandidateError`` when the candidate breaks the contract.
    """
    inputs, truth, yard = _reference_view(*_key(case))
    expected = oracle.run({k: v.copy() for k, v in inputs.items()})
    result = call_rnn(candidate, inputs, candidate_name)
    quantities = comparable(oracle.observes, candidate)
    actual = {q: contract_value(result, q, RNN_QUANTITIES) for q in quantities}
    return compare(
        case.id, actual, expected, truth, yard, quantities, case.np_dtype, case.B, case.T,
        actual_name=candidate_name, expected_name=oracle.name, table=RNN_QUANTITIES,
    )
