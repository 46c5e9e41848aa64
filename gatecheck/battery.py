"""One case of the battery: the candidate and an oracle on the same inputs, compared
under the tolerance policy, with the reference providing scale and yardstick."""

import functools

import numpy as np

from gatecheck import candidate as cand
from gatecheck.cases import make_inputs, rounded
from gatecheck.compare import QUANTITIES, compare, contract_value
from reference import _numerics, lstm


# The yardstick is the largest of several float32 errors of the reference: on the inputs
# rounded to float32 and nudged by 0, +1 and -1 ulp (one sample alone can be near zero by
# luck on a small slice, a single element of dh0, say), and with the activations moved by
# +-ACTIVATION_ULPS ulps (frameworks' tanh and sigmoid are that far off; with saturated
# units input nudges do not show it: see reference/_numerics.py).
YARD_SAMPLES = 3
ACTIVATION_ULPS = 4


def _nudged(inputs32, k):
    if k == 0:
        return inputs32
    target = np.float32(np.inf if k % 2 else -np.inf)
    return {name: np.nextafter(v, target) for name, v in inputs32.items()}


def reference_view(inputs64, dtype, reference, table=QUANTITIES):
    """(inputs in ``dtype``, truth, yardstick) for a model.

    ``reference(**inputs)`` computes the model; truth is it in float64 on the exact
    values the case's dtype holds; the yardstick is, per quantity of ``table``, the
    largest |ref_f32 - ref_f64| over the float32 samples (see YARD_SAMPLES).
    """
    inputs = rounded(inputs64, np.dtype(dtype))
    truth = reference(**rounded(inputs, np.float64))
    names = [q for q in table if table[q].source in truth]
    truth_q = {q: contract_value(truth, q, table) for q in names}
    yard = {q: np.zeros(v.shape) for q, v in truth_q.items()}
    in32 = rounded(inputs64, np.float32)
    samples = [(_nudged(in32, k), 0) for k in range(YARD_SAMPLES)]
    samples += [(in32, ulps) for ulps in (ACTIVATION_ULPS, -ACTIVATION_ULPS)]
    for sample, ulps in samples:
        with _numerics.activation_jitter(ulps):
            r32 = reference(**sample)
        r64 = reference(**rounded(sample, np.float64))
        for q in names:
            err = np.abs(contract_value(r32, q, table).astype(np.float64) - contract_value(r64, q, table))
            np.maximum(yard[q], err, out=yard[q])
    return inputs, truth_q, yard


# Every oracle of a case shares its view; the grid visits a case's four oracles far apart,
# so the cache holds every coordinate of a profile (a few hundred, mostly small arrays).
@functools.lru_cache(maxsize=1024)
def _reference_view(B, T, D, H, seed, regime, dtype_name, output="tanh"):
    """The LSTM's ``reference_view`` for a case, shared by every oracle of the case;
    ``output`` selects the reference model (see ``reference.lstm.run``)."""
    from gatecheck.cases import Case

    inputs64 = make_inputs(Case("-", B, T, D, H, "f64", seed, regime))
    return reference_view(inputs64, dtype_name, functools.partial(lstm.run, output=output))


def case_inputs(case):
    return {k: v.copy() for k, v in _reference_view(*_key(case))[0].items()}


def _key(case):
    return (case.B, case.T, case.D, case.H, case.seed, case.regime, case.np_dtype.name)


def run_case(case, oracle, candidate=lstm.run, candidate_name="reference", output="tanh"):
    """Return the comparison ``Report`` of candidate vs oracle on ``case``; ``output`` is
    the model the oracle computes (the identity-output variant for ``REFERENCE_IDENTITY``).

    Raises ``CandidateError`` when the candidate breaks the contract.
    """
    view = _reference_view(*_key(case), output)
    expected = oracle.run({k: v.copy() for k, v in view[0].items()})
    return judge(case, oracle, view, expected, candidate, candidate_name)


def judge(case, oracle, view, expected, candidate, candidate_name, table=QUANTITIES,
          keys=lstm.CONTRACT_KEYS, shapes=cand.expected_shapes):
    """The candidate on a case's inputs, compared with the oracle's output ``expected``;
    ``view`` is the case's (inputs, truth, yardstick) and ``table``, ``keys``, ``shapes``
    describe the model (the LSTM's by default). Raises ``CandidateError``."""
    inputs, truth, yard = view
    result = cand.call(candidate, inputs, candidate_name, keys=keys, shapes=shapes)
    quantities = comparable(oracle.observes, candidate, table, keys)
    actual = {q: contract_value(result, q, table) for q in quantities}
    return compare(
        case.id, actual, expected, truth, yard, quantities, case.np_dtype, case.B, case.T,
        actual_name=candidate_name, expected_name=oracle.name, table=table,
    )


def comparable(observed, candidate, table=QUANTITIES, keys=lstm.CONTRACT_KEYS):
    """The oracle's quantities less those the candidate declares it cannot observe."""
    excused = cand.cannot_observe(candidate, keys)
    return tuple(q for q in observed if table[q].source not in excused)
